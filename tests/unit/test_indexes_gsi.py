"""Global secondary index maintenance between nodes, in one process.

Two engines stand for two nodes; each runs a ``GsiMaintainer`` whose
"network" is a function calling the other engine, into which failures are
injected: a send refused before it is applied, and a send applied whose
acknowledgement is lost.  Whatever happens, once the faults stop, every base
item must be in the index exactly once, on the node the ring gives its index
key, with its current projection, and nothing else may be there.
"""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from meridian.model import limits
from meridian.model.keycodec import encode_item_key, partition_hash, table_prefix
from meridian.model.ops import (
    CatalogEntry,
    IndexSpec,
    ItemOp,
    OpKind,
    decode_index_key,
    index_entry_table_key,
    index_key_hash,
)
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer
from meridian.model.records import record_item_json
from meridian.model.ring import Ring

TABLE = 31
SCHEMA = [("id", "S")]
BY_G = IndexSpec("by_g", 951, True, (("g", "S"), ("n", "N")), "INCLUDE", ("v",))
NODES = ["a", "b"]
RING = Ring(NODES)
CONVERGE_S = 10.0


def catalog(spec: IndexSpec, revision: int = 1) -> CatalogEntry:
    return CatalogEntry("t", revision, {"table_id": TABLE, "key_schema": [["id", "S"]],
                                        "indexes": [spec.to_record()]})


class Cluster:
    """Two engines, their maintainers and a faulty network between them."""

    def __init__(self, root, spec: IndexSpec | None = BY_G) -> None:
        self.root = root
        self.engines = {node: Engine(str(root / node), node_id=node) for node in NODES}
        if spec is not None:
            for engine in self.engines.values():
                engine.catalog_put(catalog(spec))
        self.maintainers: dict[str, GsiMaintainer] = {}
        self.refuse = 0.0  # probability a send fails before it is applied
        self.lose_ack = 0.0  # probability a send is applied but reported failed
        self.rng = random.Random(7)

    async def send(self, node: str, entries) -> None:
        if self.rng.random() < self.refuse:
            raise ConnectionError("refused")
        self.engines[node].apply_index_entries(entries)
        if self.rng.random() < self.lose_ack:
            raise ConnectionError("acknowledgement lost")

    def start(self) -> None:
        for node, engine in self.engines.items():
            maintainer = GsiMaintainer(engine, owner=RING.owner, remote_send=self.send)
            maintainer.start()
            self.maintainers[node] = maintainer

    async def stop(self) -> None:
        for maintainer in self.maintainers.values():
            await maintainer.stop()
        self.maintainers.clear()

    async def restart(self, node: str) -> None:
        """Close one node's engine mid-maintenance and open it again from disk."""
        await self.maintainers.pop(node).stop()
        self.engines[node].close()
        engine = self.engines[node] = Engine(str(self.root / node), node_id=node)
        maintainer = self.maintainers[node] = GsiMaintainer(engine, owner=RING.owner, remote_send=self.send)
        maintainer.start()

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()

    # --- writes, placed by the table's partition key ---------------------------

    def _op(self, kind: OpKind, key: str, item: dict | None = None) -> None:
        key_item = {"id": {"S": key}}
        engine = self.engines[RING.owner(partition_hash("S", key))]
        result = engine.execute(ItemOp(kind, TABLE, encode_item_key(TABLE, SCHEMA, key_item), key_item, item=item))
        assert result.error is None

    def put(self, key: str, **attrs) -> None:
        self._op(OpKind.PUT, key, {"id": {"S": key}, **attrs})

    def delete(self, key: str) -> None:
        self._op(OpKind.DELETE, key)

    # --- the invariant -----------------------------------------------------------

    def expected(self, spec: IndexSpec = BY_G) -> dict[bytes, dict]:
        """Base item key -> the entry it must have (projected item)."""
        out = {}
        for engine in self.engines.values():
            for table_key, record in engine.table_items(TABLE, b"", 1 << 30, 1 << 40):
                item = orjson.loads(record_item_json(record))
                if all(name in item for name, _ in spec.key_schema):
                    keep = {"id", "g", "n", *spec.non_key_attributes}
                    out[table_key] = {k: v for k, v in item.items() if k in keep}
        return out

    def actual(self, spec: IndexSpec = BY_G) -> list[tuple[bytes, dict, str]]:
        """Every index entry: (base item key, projected item, node holding it)."""
        out = []
        prefix = table_prefix(spec.index_id)
        for node, engine in self.engines.items():
            for key, record in engine._index.items(from_key=prefix):
                if not key.startswith(prefix):
                    break
                item = orjson.loads(record_item_json(record))
                assert decode_index_key(key, spec.key_schema, SCHEMA) == {k: item[k] for k in ("g", "n", "id")}
                assert RING.owner(index_key_hash(key)) == node, "an entry on a node that does not own it"
                out.append((index_entry_table_key(key, spec.key_schema, TABLE), item, node))
        return out

    def converged(self, spec: IndexSpec = BY_G) -> bool:
        actual = self.actual(spec)
        table_keys = [table_key for table_key, _, _ in actual]
        if len(table_keys) != len(set(table_keys)):
            return False  # an item in the index twice (a stale entry)
        return {table_key: item for table_key, item, _ in actual} == self.expected(spec)

    async def wait_converged(self, spec: IndexSpec = BY_G) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONVERGE_S
        while not self.converged(spec):
            assert loop.time() < deadline, "the index did not converge"
            await asyncio.sleep(0.02)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def random_writes(cluster: Cluster, rng: random.Random, count: int) -> None:
    for _ in range(count):
        key = f"k{rng.randrange(40)}"
        roll = rng.random()
        if roll < 0.15:
            cluster.delete(key)
        elif roll < 0.25:
            cluster.put(key, v={"S": "no index key"})
        else:
            cluster.put(key, g={"S": f"g{rng.randrange(6)}"}, n={"N": str(rng.randrange(100))},
                        v={"N": str(rng.randrange(1000))}, w={"S": "not projected"})


async def test_entries_reach_their_owners_and_follow_every_change(cluster):
    cluster.start()
    random_writes(cluster, random.Random(1), 300)
    await cluster.wait_converged()
    nodes = {node for _, _, node in cluster.actual()}
    assert nodes == set(NODES)  # the index really is spread over both nodes
    stats = [engine.table_stats(TABLE).indexes[BY_G.index_id] for engine in cluster.engines.values()]
    assert sum(s.item_count for s in stats) == len(cluster.expected())
    await cluster.stop()


async def test_faults_and_restarts_lose_nothing_and_leave_nothing_stale(cluster):
    cluster.refuse = cluster.lose_ack = 0.3
    cluster.start()
    rng = random.Random(2)
    failures = 0
    for round_ in range(6):
        random_writes(cluster, rng, 60)
        await asyncio.sleep(0.01)
        failures += cluster.maintainers[NODES[round_ % 2]].statistics().failures
        await cluster.restart(NODES[round_ % 2])
    assert failures > 0  # the faults did hit
    cluster.refuse = cluster.lose_ack = 0.0
    await cluster.wait_converged()
    await cluster.stop()


async def test_an_index_added_later_is_backfilled(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "GSI_BATCH_CHANGES_MAX", 7)  # many small rounds
    cluster = Cluster(tmp_path, spec=None)
    try:
        rng = random.Random(3)
        random_writes(cluster, rng, 200)
        spec = IndexSpec("late", 952, True, (("g", "S"), ("n", "N")), "INCLUDE", ("v",), backfill=True)
        for engine in cluster.engines.values():
            engine.catalog_put(catalog(spec))
        assert any(e.table_stats(TABLE).indexes[spec.index_id].backfilling for e in cluster.engines.values())
        cluster.lose_ack = 0.2
        cluster.start()
        random_writes(cluster, rng, 50)  # writes while the backfill runs
        await asyncio.sleep(0.01)
        await cluster.restart("a")  # and a node restarting in the middle of it
        cluster.lose_ack = 0.0
        await cluster.wait_converged(spec)
        for engine in cluster.engines.values():
            assert not engine.table_stats(TABLE).indexes[spec.index_id].backfilling
        random_writes(cluster, rng, 50)
        await cluster.wait_converged(spec)
        await cluster.stop()
    finally:
        cluster.close()


async def test_a_dropped_index_leaves_nothing_behind(cluster):
    cluster.start()
    random_writes(cluster, random.Random(4), 100)
    await cluster.wait_converged()
    for engine in cluster.engines.values():
        engine.catalog_put(CatalogEntry("t", 2, {"table_id": TABLE, "key_schema": [["id", "S"]], "indexes": []}))
    assert cluster.actual() == []
    random_writes(cluster, random.Random(5), 20)
    await asyncio.sleep(0.05)
    assert cluster.actual() == []
    await cluster.stop()
