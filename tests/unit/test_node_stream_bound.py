"""The node's ``Execute`` stream holds at most ``NODE_STREAM_ANSWERS_MAX``
batches awaiting their answer: past that it stops reading (backpressure),
and once the answers drain it reads on, answering everything in order."""

from __future__ import annotations

import asyncio

import pytest

from meridian.model import limits
from meridian.model.ops import ItemResult
from meridian.node.service import StorageService
from meridian.proto import storage_pb2 as pb

ANSWERS_MAX = 4
BATCHES = 20


class _GatedEngine:
    """Answers every op at once; durability waits for ``durable`` (an fsync that hangs)."""

    node_id = "n1"
    writes_held = False  # no backup's write pause (node/checkpoints.py) in these tests

    def __init__(self) -> None:
        self.durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.batches = 0

    def execute_many(self, ops):
        self.batches += 1
        return [ItemResult(None) for _ in ops], self.durable


class _Context:
    def __init__(self) -> None:
        self.written: list[pb.ResultBatch] = []

    async def write(self, message: pb.ResultBatch) -> None:
        self.written.append(message)


def _op(op_id: int) -> pb.ItemOp:
    return pb.ItemOp(id=op_id, kind=0, table_id=1, key=b"k", key_item=b'{"pk":{"S":"k"}}')


@pytest.fixture(autouse=True)
def small_bound(monkeypatch):
    monkeypatch.setattr(limits, "NODE_STREAM_ANSWERS_MAX", ANSWERS_MAX)


async def _wait_until(condition) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_a_sender_faster_than_the_answers_is_held_back() -> None:
    engine = _GatedEngine()
    service = StorageService(engine)  # type: ignore[arg-type]
    context = _Context()
    pulled = 0

    async def requests():
        nonlocal pulled
        for i in range(BATCHES):
            pulled += 1
            yield pb.OpBatch(ops=[_op(2 * i + 1), _op(2 * i + 2)])

    stream = asyncio.create_task(service.Execute(requests(), context))
    await _wait_until(lambda: service.stalls == 1)
    for _ in range(100):  # nothing moves while the answers cannot drain
        await asyncio.sleep(0)
    # ANSWERS_MAX queued, one held by the writer awaiting durability, one waiting for room.
    assert pulled == engine.batches == ANSWERS_MAX + 2
    assert context.written == [] and not stream.done()

    engine.durable.set_result(None)
    await asyncio.wait_for(stream, 5)
    assert pulled == engine.batches == BATCHES
    ids = [r.id for batch in context.written for r in batch.results]
    assert ids == list(range(1, 2 * BATCHES + 1))  # every op answered, in order


async def test_a_stream_whose_answers_fail_stops_reading() -> None:
    engine = _GatedEngine()
    service = StorageService(engine)  # type: ignore[arg-type]

    class _Gone(_Context):
        async def write(self, message: pb.ResultBatch) -> None:
            raise ConnectionResetError("the router went away")

    pulled = 0

    async def requests():
        nonlocal pulled
        for i in range(BATCHES):
            pulled += 1
            yield pb.OpBatch(ops=[_op(i + 1)])

    stream = asyncio.create_task(service.Execute(requests(), _Gone()))
    await _wait_until(lambda: service.stalls == 1)
    engine.durable.set_result(None)  # the writer answers, fails, and ends
    await asyncio.wait_for(stream, 5)  # the reader, held for room, sees it and stops
    assert pulled < BATCHES

