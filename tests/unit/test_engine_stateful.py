"""The storage engine against a plain dict, driven by the same random steps.

A hypothesis state machine (``hypothesis.stateful``) runs PutItem,
UpdateItem (SET, REMOVE, a counter), DeleteItem, conditional writes that
may fail, GetItem, Query over a partition, parallel Scan and restarts on a
real ``Engine`` (RocksDB in a temporary folder) and on a dict of items
keyed by (partition key, sort key).  After every step:

* every answer matches the model (items, ``ReturnValues``, key order);
* the table statistics hold the model's item count and total item size;
* the change log holds exactly one record per successful mutation, the
  newest one being that mutation; a failed condition writes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from meridian.model.errors import ConditionalCheckFailedException
from meridian.model.keycodec import encode_item_key, partition_prefix, prefix_end, table_prefix
from meridian.model.ops import ItemOp, OpKind, RangeKind, RangeRead, ReturnValues, scan_segment_bounds
from meridian.model.values import item_size
from meridian.node.engine import Engine

TABLE = 21
SCHEMA = [("pk", "S"), ("sk", "N")]
PARTITIONS = ["a", "b", "c"]
SORT_KEYS = ["-1.5", "0", "1", "2", "10"]  # numeric order differs from string order

keys = st.tuples(st.sampled_from(PARTITIONS), st.sampled_from(SORT_KEYS))
values = st.sampled_from(["", "x", "yy", "zzz" * 20])

Key = tuple[str, str]


class Clock:
    """A millisecond clock that moves on a little at every reading."""

    def __init__(self) -> None:
        self.now_ms = 1_000_000

    def __call__(self) -> int:
        self.now_ms += 1
        return self.now_ms


def key_item(k: Key) -> dict:
    return {"pk": {"S": k[0]}, "sk": {"N": k[1]}}


def item_key(k: Key) -> bytes:
    return encode_item_key(TABLE, SCHEMA, key_item(k))


def op(kind: OpKind, k: Key, **kw) -> ItemOp:
    return ItemOp(kind, TABLE, item_key(k), key_item(k), **kw)


def loads(raw: bytes | None) -> dict | None:
    return None if raw is None else orjson.loads(raw)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="engine-stateful-")
        self.clock = Clock()
        self.engine = self._open()
        self.model: dict[Key, dict] = {}
        self.mutations = 0  # successful mutations: the change log's expected length

    def _open(self) -> Engine:
        return Engine(f"{self.folder}/db", node_id="n1", region="us-east-1", now_ms=self.clock)

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- checks shared by the rules --------------------------------------------------

    def _logged(self, k: Key, item: dict | None) -> None:
        """A mutation of ``k`` succeeded: it is the log's one new, newest record."""
        self.mutations += 1
        assert self.engine.last_sequence() == self.mutations
        (change,) = self.engine.read_changes(self.mutations - 1, 10)
        assert change.sequence == self.mutations
        assert change.table_id == TABLE
        assert change.key == item_key(k)
        assert change.tombstone == (item is None)
        assert loads(change.item_json) == item

    def _refused(self, result, k: Key) -> None:
        """A failed condition: the error, and nothing written."""
        assert isinstance(result.error, ConditionalCheckFailedException)
        assert self.engine.last_sequence() == self.mutations
        assert loads(self.engine.execute(op(OpKind.GET, k)).item_json) == self.model.get(k)

    # --- writes ------------------------------------------------------------------------

    @rule(k=keys, v=values)
    def put(self, k: Key, v: str) -> None:
        item = {**key_item(k), "v": {"S": v}}
        result = self.engine.execute(op(OpKind.PUT, k, item=item, return_values=ReturnValues.ALL_OLD))
        assert result.error is None
        assert loads(result.item_json) == self.model.get(k)
        self.model[k] = item
        self._logged(k, item)

    @rule(k=keys, v=values)
    def put_if_absent(self, k: Key, v: str) -> None:
        item = {**key_item(k), "w": {"S": v}}
        result = self.engine.execute(op(OpKind.PUT, k, item=item, condition="attribute_not_exists(pk)"))
        if k in self.model:
            self._refused(result, k)
            return
        assert result.error is None and result.item_json is None
        self.model[k] = item
        self._logged(k, item)

    @rule(k=keys, v=values)
    def update_set(self, k: Key, v: str) -> None:
        result = self.engine.execute(
            op(
                OpKind.UPDATE,
                k,
                update="SET #v = :v, n = if_not_exists(n, :zero) + :one",
                names={"#v": "v"},
                values={":v": {"S": v}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
                return_values=ReturnValues.ALL_NEW,
            )
        )
        assert result.error is None
        new = dict(self.model.get(k) or key_item(k))
        new["v"] = {"S": v}
        new["n"] = {"N": str(int(new.get("n", {"N": "0"})["N"]) + 1)}
        assert loads(result.item_json) == new
        self.model[k] = new
        self._logged(k, new)

    @rule(k=keys)
    def update_remove(self, k: Key) -> None:
        result = self.engine.execute(op(OpKind.UPDATE, k, update="REMOVE v", return_values=ReturnValues.ALL_NEW))
        assert result.error is None
        if k not in self.model:  # an update that only removes creates no item (DynamoDB's rule)
            assert result.item_json is None
            assert self.engine.last_sequence() == self.mutations
            assert self.engine.execute(op(OpKind.GET, k)).item_json is None
            return
        new = {name: value for name, value in self.model[k].items() if name != "v"}
        assert loads(result.item_json) == new
        self.model[k] = new
        self._logged(k, new)

    @rule(k=keys, v=values)
    def update_if_exists(self, k: Key, v: str) -> None:
        result = self.engine.execute(
            op(
                OpKind.UPDATE,
                k,
                update="SET v = :v",
                condition="attribute_exists(pk)",
                values={":v": {"S": v}},
                return_values=ReturnValues.UPDATED_OLD,
            )
        )
        old = self.model.get(k)
        if old is None:
            self._refused(result, k)
            return
        assert result.error is None
        assert loads(result.item_json) == ({"v": old["v"]} if "v" in old else None)
        new = {**old, "v": {"S": v}}
        self.model[k] = new
        self._logged(k, new)

    @rule(k=keys)
    def delete(self, k: Key) -> None:
        result = self.engine.execute(op(OpKind.DELETE, k, return_values=ReturnValues.ALL_OLD))
        assert result.error is None
        old = self.model.pop(k, None)
        assert loads(result.item_json) == old
        if old is None:  # a delete of a missing item writes nothing (DynamoDB's rule)
            assert self.engine.last_sequence() == self.mutations
            return
        self._logged(k, None)

    @rule(k=keys)
    def delete_if_it_has_v(self, k: Key) -> None:
        result = self.engine.execute(op(OpKind.DELETE, k, condition="attribute_exists(v)"))
        if "v" not in self.model.get(k, {}):
            self._refused(result, k)
            return
        assert result.error is None
        del self.model[k]
        self._logged(k, None)

    @precondition(lambda self: self.mutations > 0)
    @rule()
    def restart(self) -> None:
        self.engine.close()
        self.engine = self._open()

    # --- reads -------------------------------------------------------------------------

    @rule(k=keys)
    def get(self, k: Key) -> None:
        result = self.engine.execute(op(OpKind.GET, k))
        assert result.error is None
        assert loads(result.item_json) == self.model.get(k)
        expected = self.model.get(k)
        assert result.size_bytes == (item_size(expected) if expected is not None else 0)

    @rule(pk=st.sampled_from(PARTITIONS), reverse=st.booleans(), limit=st.integers(0, 4))
    def query(self, pk: str, reverse: bool, limit: int) -> None:
        lower = partition_prefix(TABLE, "S", pk)
        result = self.engine.read_range(
            RangeRead(RangeKind.QUERY, TABLE, lower, prefix_end(lower), reverse=reverse, items_max=limit)
        )
        expected = [self.model[k] for k in sorted((k for k in self.model if k[0] == pk), key=lambda k: Decimal(k[1]))]
        if reverse:
            expected.reverse()
        if limit:
            expected = expected[:limit]
        assert [loads(raw) for raw in result.items] == expected
        assert result.count == result.scanned == len(expected)

    @rule(segments=st.integers(1, 4))
    def scan(self, segments: int) -> None:
        found = []
        for segment in range(segments):
            lower, upper = scan_segment_bounds(table_prefix(TABLE), segment, segments)
            result = self.engine.read_range(RangeRead(RangeKind.SCAN, TABLE, lower, upper))
            assert not result.more
            found += [loads(raw) for raw in result.items]
        by_key = {(i["pk"]["S"], i["sk"]["N"]): i for i in found}
        assert len(by_key) == len(found)  # segments do not overlap
        assert by_key == self.model

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def statistics_match_the_model(self) -> None:
        stats = self.engine.table_stats(TABLE)
        assert stats.item_count == len(self.model)
        assert stats.size_bytes == sum(item_size(item) for item in self.model.values())

    @invariant()
    def the_log_has_one_record_per_mutation(self) -> None:
        assert self.engine.last_sequence() == self.mutations
        assert self.engine.statistics().pending_writes == 0


EngineMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_against_a_dict = EngineMachine.TestCase
