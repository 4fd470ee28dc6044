"""Transactions on real engines: a node's locks and phases, and the router's
coordinator over three in-process nodes (``tests/unit/backup_seam.py``)."""

from __future__ import annotations

import types

import orjson
import pytest

from meridian.model import limits
from meridian.model.errors import (
    ConditionalCheckFailedException,
    ServiceUnavailable,
    TransactionConflictException,
    ValidationException,
)
from meridian.model.keycodec import partition_hash, table_prefix
from meridian.model.ops import CatalogEntry, ItemOp, OpKind, ReturnValues
from meridian.model.ring import Ring
from meridian.model.transactions import TxnOutcome, TxnRequest
from meridian.node.engine import Engine
from meridian.node.txn_recovery import TxnResolver
from meridian.router import transactions
from tests.unit.backup_seam import ThreeNodes

TABLE = 7


class Clock:
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def key(pk: str) -> bytes:
    return table_prefix(TABLE) + pk.encode()


def key_item(pk: str) -> dict:
    return {"pk": {"S": pk}}


def put(pk: str, **attrs) -> ItemOp:
    item = {"pk": {"S": pk}, **{k: {"N": str(v)} for k, v in attrs.items()}}
    return ItemOp(OpKind.PUT, TABLE, key(pk), key_item(pk), item=item)


def add(pk: str, n: int, condition: str | None = None, **kw) -> ItemOp:
    return ItemOp(OpKind.UPDATE, TABLE, key(pk), key_item(pk), update="ADD n :n", condition=condition,
                  values={":n": {"N": str(n)}, **({":z": {"N": "0"}} if condition else {})}, **kw)


def check(pk: str, condition: str = "attribute_exists(pk)") -> ItemOp:
    return ItemOp(OpKind.CHECK, TABLE, key(pk), key_item(pk), condition=condition)


def get(pk: str) -> ItemOp:
    return ItemOp(OpKind.GET, TABLE, key(pk), key_item(pk))


def n_of(engine: Engine, pk: str) -> int | None:
    answer = engine.execute(get(pk))
    return None if answer.item_json is None else int(orjson.loads(answer.item_json)["n"]["N"])


def catalog_entry() -> CatalogEntry:
    return CatalogEntry("t", 1, {"table_id": TABLE, "key_schema": [["pk", "S"]], "indexes": []})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    e = Engine(str(tmp_path / "db"), node_id="n1", region="us-east-1", now_ms=clock)
    e.catalog_put(catalog_entry())
    yield e
    e.close()


# --- one node -----------------------------------------------------------------------------


def test_alone_applies_every_action_in_one_batch(engine):
    engine.execute(put("a", n=1))
    results, durable = engine.transact(TxnRequest(b"t1", [add("a", 5), put("b", n=7), check("a")]))
    assert durable is None and [r.error for r in results] == [None, None, None]
    assert n_of(engine, "a") == 6 and n_of(engine, "b") == 7


def test_alone_a_failed_condition_writes_nothing(engine):
    engine.execute(put("a", n=1))
    op = add("a", -5, condition="n >= :n", return_old_on_condition_failure=True)
    op.values = {":n": {"N": "5"}}
    results, _ = engine.transact(TxnRequest(b"t1", [put("b", n=7), op]))
    assert results[0].error is None
    assert isinstance(results[1].error, ConditionalCheckFailedException)
    assert results[1].error.item == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert n_of(engine, "b") is None and n_of(engine, "a") == 1


def test_alone_an_update_that_cannot_apply_is_a_validation_error(engine):
    engine.execute(ItemOp(OpKind.PUT, TABLE, key("a"), key_item("a"), item={"pk": {"S": "a"}, "n": {"S": "x"}}))
    results, _ = engine.transact(TxnRequest(b"t1", [put("b", n=1), add("a", 1)]))
    assert isinstance(results[1].error, ValidationException)
    assert n_of(engine, "b") is None


def test_prepare_locks_then_commit_applies(engine):
    engine.execute(put("a", n=1))
    results, _ = engine.transact(TxnRequest(b"t1", [add("a", 2), check("c", "attribute_not_exists(pk)")],
                                            prepare=True, coordinator="n1"))
    assert [r.error for r in results] == [None, None]
    # Locked: client writes and other transactions conflict; reads see the committed version.
    assert isinstance(engine.execute(put("a", n=9)).error, TransactionConflictException)
    assert isinstance(engine.execute(put("c", n=9)).error, TransactionConflictException)
    other, _ = engine.transact(TxnRequest(b"t2", [put("z", n=1), add("a", 1)]))
    assert other[0].error is None and isinstance(other[1].error, TransactionConflictException)
    assert n_of(engine, "a") == 1 and n_of(engine, "z") is None
    read, _ = engine.txn_read([get("a"), get("z")])
    assert isinstance(read[0].error, TransactionConflictException) and read[1].error is None
    engine.txn_finish(b"t1", commit=True)
    assert n_of(engine, "a") == 3 and n_of(engine, "c") is None
    assert engine.execute(put("c", n=9)).error is None
    assert engine.txn_locked_keys() == 0


def test_abort_releases_and_applies_nothing(engine):
    engine.execute(put("a", n=1))
    engine.transact(TxnRequest(b"t1", [add("a", 2)], prepare=True, coordinator="n1"))
    engine.txn_finish(b"t1", commit=False)
    assert n_of(engine, "a") == 1
    assert engine.execute(add("a", 1)).error is None and n_of(engine, "a") == 2
    engine.txn_finish(b"t1", commit=True)  # too late: nothing prepared any more
    assert n_of(engine, "a") == 2


def test_first_decision_wins_and_applies_to_the_coordinators_share(engine):
    engine.transact(TxnRequest(b"t1", [put("a", n=1)], prepare=True, coordinator="n1"))
    outcome, _ = engine.txn_decide(b"t1", TxnOutcome.ABORT)
    assert outcome is TxnOutcome.ABORT and n_of(engine, "a") is None
    assert engine.txn_decide(b"t1", TxnOutcome.COMMIT)[0] is TxnOutcome.ABORT
    engine.transact(TxnRequest(b"t2", [put("a", n=2)], prepare=True, coordinator="n1"))
    assert engine.txn_decide(b"t2", TxnOutcome.COMMIT)[0] is TxnOutcome.COMMIT
    assert n_of(engine, "a") == 2
    engine.txn_forget([b"t1", b"t2"])
    assert engine.txn_expired_decisions(1 << 62) == []


def test_prepared_state_and_decisions_survive_a_restart(tmp_path, clock):
    path = str(tmp_path / "db")
    e = Engine(path, node_id="n1", region="us-east-1", now_ms=clock)
    e.catalog_put(catalog_entry())
    e.execute(put("a", n=1))
    e.transact(TxnRequest(b"t1", [add("a", 4)], prepare=True, coordinator="n2"))
    e.transact(TxnRequest(b"t2", [put("b", n=1)], prepare=True, coordinator="n1"))
    e.txn_decide(b"t2", TxnOutcome.ABORT)
    e.close()
    e = Engine(path, node_id="n1", region="us-east-1", now_ms=clock)
    try:
        assert isinstance(e.execute(put("a", n=9)).error, TransactionConflictException)
        assert e.txn_decide(b"t2", TxnOutcome.COMMIT)[0] is TxnOutcome.ABORT
        e.txn_finish(b"t1", commit=True)
        assert n_of(e, "a") == 5
    finally:
        e.close()


async def test_resolver_aborts_an_undecided_transaction_it_coordinates(engine, clock):
    engine.transact(TxnRequest(b"t1", [put("a", n=1)], prepare=True, coordinator="n1"))
    resolver = TxnResolver(engine)
    assert await resolver.resolve_once() == 0  # not stale yet
    clock.now_ms += int(limits.TXN_RESOLVE_AFTER_S * 1000) + 1
    assert await resolver.resolve_once() == 1
    assert resolver.resolved_abort == 1 and engine.txn_locked_keys() == 0 and n_of(engine, "a") is None


async def test_resolver_applies_the_coordinators_decision(engine, clock):
    engine.transact(TxnRequest(b"t1", [put("a", n=1)], prepare=True, coordinator="n9"))
    asked = []

    async def remote_decide(node_id, txn_id, outcome):
        asked.append((node_id, txn_id, outcome))
        return TxnOutcome.COMMIT

    clock.now_ms += int(limits.TXN_RESOLVE_AFTER_S * 1000) + 1
    resolver = TxnResolver(engine, remote_decide)
    assert await resolver.resolve_once() == 1
    assert asked == [("n9", b"t1", TxnOutcome.ABORT)] and n_of(engine, "a") == 1


async def test_resolver_waits_for_an_unreachable_coordinator(engine, clock):
    engine.transact(TxnRequest(b"t1", [put("a", n=1)], prepare=True, coordinator="n9"))

    async def remote_decide(node_id, txn_id, outcome):
        raise ServiceUnavailable("down")

    clock.now_ms += int(limits.TXN_RESOLVE_AFTER_S * 1000) + 1
    resolver = TxnResolver(engine, remote_decide)
    assert await resolver.resolve_once() == 0
    assert resolver.failures == 1 and engine.txn_locked_keys() == 1


# --- three nodes through the coordinator -------------------------------------------------------


@pytest.fixture
async def nodes(tmp_path):
    storage = ThreeNodes(tmp_path)
    await storage.catalog_put(catalog_entry())
    yield storage
    await storage.close()


def spread_keys(storage: ThreeNodes) -> list[str]:
    """One key per node."""
    ring = Ring(storage.node_ids)
    found: dict[str, str] = {}
    for i in range(1000):
        pk = f"k{i}"
        found.setdefault(ring.owner(partition_hash("S", {"S": pk})), pk)
        if len(found) == 3:
            break
    return [found[node_id] for node_id in storage.node_ids]


def routed(storage: ThreeNodes, op: ItemOp) -> tuple[str, ItemOp]:
    return Ring(storage.node_ids).owner(partition_hash("S", op.key_item["pk"])), op


def engine_of(storage: ThreeNodes, pk: str) -> Engine:
    return storage._by_id[Ring(storage.node_ids).owner(partition_hash("S", {"S": pk}))]


async def test_coordinator_commits_across_nodes(nodes):
    a, b, c = spread_keys(nodes)
    ctx = types.SimpleNamespace(storage=nodes)
    for pk in (a, b):
        await nodes.call(*routed(nodes, put(pk, n=10)))
    add_rv = add(b, 3)
    add_rv.return_values = ReturnValues.ALL_NEW
    results = await transactions.execute_write(ctx, [routed(nodes, add(a, -3)), routed(nodes, add_rv),
                                                     routed(nodes, check(c, "attribute_not_exists(pk)"))])
    assert [r.error for r in results] == [None, None, None]
    assert orjson.loads(results[1].item_json)["n"] == {"N": "13"}
    assert n_of(engine_of(nodes, a), a) == 7 and n_of(engine_of(nodes, b), b) == 13
    assert all(e.txn_locked_keys() == 0 for e in nodes.engines)
    reads = await transactions.execute_read(ctx, [routed(nodes, get(a)), routed(nodes, get(b)), routed(nodes, get(c))])
    assert [r.error for r in reads] == [None, None, None] and reads[2].item_json is None
    assert orjson.loads(reads[0].item_json)["n"] == {"N": "7"}


async def test_coordinator_cancels_everywhere_when_one_action_fails(nodes):
    a, b, _c = spread_keys(nodes)
    ctx = types.SimpleNamespace(storage=nodes)
    results = await transactions.execute_write(ctx, [routed(nodes, put(a, n=1)), routed(nodes, check(b))])
    assert results[0].error is None and isinstance(results[1].error, ConditionalCheckFailedException)
    assert n_of(engine_of(nodes, a), a) is None
    assert all(e.txn_locked_keys() == 0 for e in nodes.engines)


async def test_a_participant_unreachable_at_commit_resolves_from_the_coordinator(nodes):
    a, b, _c = spread_keys(nodes)
    ctx = types.SimpleNamespace(storage=nodes)
    node_b = Ring(nodes.node_ids).owner(partition_hash("S", {"S": b}))
    real_finish = nodes.txn_finish

    async def finish_fails_on_b(node_id, txn_id, commit):
        if node_id == node_b:
            raise ServiceUnavailable("cut")
        await real_finish(node_id, txn_id, commit)

    nodes.txn_finish = finish_fails_on_b
    results = await transactions.execute_write(ctx, [routed(nodes, put(a, n=1)), routed(nodes, put(b, n=2))])
    assert [r.error for r in results] == [None, None]
    engine_b = engine_of(nodes, b)
    assert n_of(engine_b, b) is None and engine_b.txn_locked_keys() == 1
    # b's resolver asks the coordinator (a's node), which recorded COMMIT.
    stale = engine_b.txn_stale(1 << 62)
    assert len(stale) == 1
    coordinator = nodes._by_id[stale[0].coordinator]
    outcome = await coordinator.txn_decide_async(stale[0].txn_id, TxnOutcome.ABORT)
    assert outcome is TxnOutcome.COMMIT
    await engine_b.txn_finish_async(stale[0].txn_id, True)
    assert n_of(engine_b, b) == 2 and engine_b.txn_locked_keys() == 0


async def test_a_node_unreachable_at_prepare_aborts_the_others(nodes):
    a, b, _c = spread_keys(nodes)
    ctx = types.SimpleNamespace(storage=nodes)
    nodes.fail_txn_on = Ring(nodes.node_ids).owner(partition_hash("S", {"S": b}))
    with pytest.raises(ServiceUnavailable):
        await transactions.execute_write(ctx, [routed(nodes, put(a, n=1)), routed(nodes, put(b, n=2))])
    assert n_of(engine_of(nodes, a), a) is None
    assert all(e.txn_locked_keys() == 0 for e in nodes.engines)
