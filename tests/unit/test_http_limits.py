"""The HTTP front's bounds, driven for real over 127.0.0.1 sockets.

* per router, ``HTTP_INFLIGHT_REQUESTS_MAX`` DynamoDB requests suspended in
  their action: the next one is answered ``RequestLimitExceeded`` (HTTP 400,
  DynamoDB's ``__type`` and message), and everything works again once they end;
* per connection, ``HTTP_PIPELINED_REQUESTS_MAX`` requests started and not
  answered: later pipelined requests wait (reading pauses), nothing fails,
  answers keep their order;
* answers a client does not read stop the reading too (write back-pressure).

Each test runs its own server (an ``Application`` over ``HttpProtocol``, as
``start_router`` builds it) on a uvloop thread, with small bounds given
through the constructors, and an action that waits on a gate for keys named
``slow...``.  One last test does the same through ``start_router`` over the
embedded storage, with boto3.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from rawhttp import Connection, build_request  # noqa: E402

from meridian.router.app import Application  # noqa: E402
from meridian.router.http import HttpProtocol, HttpStats  # noqa: E402
from tests.conftest import make_client  # noqa: E402

REQUEST_LIMIT_BODY = {
    "__type": "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
    "message": "Throughput exceeds the current throughput limit for your account. "
    "Please contact AWS Support at https://aws.amazon.com/support request a limit increase",
}
WAIT_S = 10.0  # a state the test waits for must come within this long


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class LoopThread:
    """A uvloop event loop on its own thread; ``run`` a coroutine there and get its result."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_S)

    def call(self, fn: Callable[[], Any]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_S)
        self.loop.close()


class GatedGetItem:
    """A GetItem action: keys named ``slow...`` wait for the gate; answers echo the key.

    ``running``/``running_max`` count the slow ones waiting; ``item_bytes``
    pads each answer, to make answers big.  Counters are touched on the
    loop thread only.
    """

    def __init__(self, item_bytes: int = 0) -> None:
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.running_max = 0
        self.calls = 0
        self.pad = "x" * item_bytes

    async def __call__(self, ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if body["Key"]["id"]["S"].startswith("slow"):
            assert self.gate is not None
            self.running += 1
            self.running_max = max(self.running_max, self.running)
            try:
                await self.gate.wait()
            finally:
                self.running -= 1
        item = dict(body["Key"])
        if self.pad:
            item["pad"] = {"S": self.pad}
        return {"Item": item}


class Front:
    """An Application + HttpProtocol server on 127.0.0.1, bounds as given."""

    def __init__(self, *, inflight_max: int, pipelined_max: int, resume_below: int, item_bytes: int = 0) -> None:
        self.loop = LoopThread()
        self.action = GatedGetItem(item_bytes)
        self.app = Application(None, {"GetItem": self.action}, inflight_max=inflight_max)
        self.stats = HttpStats()

        async def start() -> asyncio.AbstractServer:
            self.action.gate = asyncio.Event()
            return await asyncio.get_running_loop().create_server(
                lambda: HttpProtocol(
                    self.app.handle, self.app.encode, self.stats, pipelined_max=pipelined_max, resume_below=resume_below
                ),
                "127.0.0.1",
                0,
            )

        self.server = self.loop.run(start())
        self.endpoint = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def release(self) -> None:
        gate = self.action.gate
        assert gate is not None
        self.loop.call(gate.set)

    def close(self) -> None:
        self.release()

        async def stop() -> None:
            self.server.close()

        self.loop.run(stop())
        self.loop.stop()


@pytest.fixture
def front_factory():
    fronts: list[Front] = []

    def make(**kwargs: int) -> Front:
        front = Front(**kwargs)
        fronts.append(front)
        return front

    yield make
    for front in fronts:
        front.close()


def get_item(key: str, **kw: Any) -> bytes:
    return build_request("DynamoDB_20120810.GetItem", json.dumps({"TableName": "tbl", "Key": {"id": {"S": key}}}).encode(), **kw)


def key_of(resp) -> str:
    return resp.json()["Item"]["id"]["S"]


# --- per router: RequestLimitExceeded -------------------------------------------


def test_requests_past_the_inflight_bound_get_request_limit_exceeded(front_factory):
    front = front_factory(inflight_max=3, pipelined_max=4, resume_below=2)
    slow = [Connection(front.endpoint) for _ in range(3)]
    other = Connection(front.endpoint)
    try:
        for i, conn in enumerate(slow):
            conn.send(get_item(f"slow-{i}"))
        wait_until(lambda: front.app.inflight == 3, "three requests in flight")

        resp = other.request("DynamoDB_20120810.GetItem", json.dumps({"TableName": "tbl", "Key": {"id": {"S": "a"}}}).encode())
        assert resp.status == 400
        assert resp.json() == REQUEST_LIMIT_BODY
        assert resp.headers["content-type"] == "application/x-amz-json-1.0"
        assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(resp.body)
        assert len(resp.headers["x-amzn-requestid"]) == 52
        assert front.app.errors_by_type["RequestLimitExceeded"] == 1
        assert front.app.inflight == 3  # a refused request is never counted

        # boto3 sees DynamoDB's error, with its code and status, and retries
        # it as throttling (standard retry mode; the test client allows one retry).
        ddb = make_client(front.endpoint)
        with pytest.raises(ClientError) as info:
            ddb.get_item(TableName="tbl", Key={"id": {"S": "b"}})
        assert info.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        retries = info.value.response["ResponseMetadata"]["RetryAttempts"]
        assert retries == ddb.meta.config.retries["total_max_attempts"] - 1
        assert front.app.errors_by_type["RequestLimitExceeded"] == 1 + 1 + retries

        front.release()
        assert [key_of(conn.read_response()) for conn in slow] == ["slow-0", "slow-1", "slow-2"]
        wait_until(lambda: front.app.inflight == 0, "nothing in flight")
        # The bound is released; the refused connection and boto3 work again.
        resp = other.request("DynamoDB_20120810.GetItem", json.dumps({"TableName": "tbl", "Key": {"id": {"S": "c"}}}).encode())
        assert resp.status == 200 and key_of(resp) == "c"
        assert ddb.get_item(TableName="tbl", Key={"id": {"S": "d"}})["Item"] == {"id": {"S": "d"}}
        for conn in slow:
            conn.send(get_item("again"))
            assert key_of(conn.read_response()) == "again"
    finally:
        for conn in (*slow, other):
            conn.close()
    assert front.app.inflight == 0
    assert front.app.errors_by_type["RequestLimitExceeded"] == 1 + 1 + retries


def test_requests_answered_inline_never_count(front_factory):
    """Requests that do not suspend enter and leave at once: any number pass a bound of one."""
    front = front_factory(inflight_max=1, pipelined_max=1, resume_below=1)
    with Connection(front.endpoint) as conn:
        conn.send(b"".join(get_item(f"k{i}") for i in range(50)))
        assert [key_of(conn.read_response()) for _ in range(50)] == [f"k{i}" for i in range(50)]
    assert front.app.errors_by_type == {}


# --- per connection: pipelining pauses, never fails --------------------------------


def test_pipelined_requests_past_the_bound_wait_and_keep_their_order(front_factory):
    front = front_factory(inflight_max=64, pipelined_max=4, resume_below=2)
    count = 20
    with Connection(front.endpoint) as conn, Connection(front.endpoint) as other:
        conn.send(b"".join(get_item(f"slow-{i}") for i in range(count)))
        wait_until(lambda: front.action.running == 4, "four requests started")
        assert front.stats.reads_paused == 1
        # Another connection is served while this one is held back.
        other.send(get_item("fast"))
        assert key_of(other.read_response()) == "fast"
        assert front.action.running == 4 and front.app.inflight == 4

        front.release()
        answers = [conn.read_response() for _ in range(count)]
        assert [r.status for r in answers] == [200] * count
        assert [key_of(r) for r in answers] == [f"slow-{i}" for i in range(count)]
        assert front.action.running_max == 4  # never more than the bound at once
        # Reading resumed: the connection keeps working.
        conn.send(get_item("after"))
        assert key_of(conn.read_response()) == "after"
    assert front.app.errors_by_type == {}


def test_a_flood_of_parked_requests_answered_inline(front_factory):
    """One slow request, then thousands that complete inline, bound 4: the ones
    parked behind it start from the drain loop, one after the other, no recursion."""
    front = front_factory(inflight_max=64, pipelined_max=4, resume_below=2)
    count = 3000
    data = get_item("slow-0") + b"".join(get_item(f"k{i}") for i in range(1, count))
    with Connection(front.endpoint) as conn:
        sender = threading.Thread(target=conn.send, args=(data,))
        sender.start()
        wait_until(lambda: front.stats.reads_paused == 1, "reading paused behind the slow request")
        assert front.action.calls == 4  # the slow one and three answered, waiting behind it
        front.release()
        keys = [key_of(conn.read_response()) for _ in range(count)]
        sender.join(WAIT_S)
    assert keys == ["slow-0"] + [f"k{i}" for i in range(1, count)]


def test_a_client_that_does_not_read_stops_the_reading(front_factory):
    """Big answers, never read: the router stops taking requests instead of buffering answers."""
    front = front_factory(inflight_max=64, pipelined_max=4, resume_below=2, item_bytes=100_000)
    count = 300  # 30 MB of answers, more than any socket buffers hold
    data = b"".join(get_item(f"k{i}") for i in range(count))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(WAIT_S)
    sock.connect(("127.0.0.1", int(front.endpoint.rsplit(":", 1)[1])))
    conn = Connection.__new__(Connection)
    conn.sock, conn.buf = sock, b""
    sender = threading.Thread(target=conn.send, args=(data,), daemon=True)
    sender.start()
    try:
        # Wait until the router has stopped taking requests.
        last, still_since = -1, time.monotonic()
        while time.monotonic() - still_since < 0.5:
            seen = front.action.calls
            if seen != last:
                last, still_since = seen, time.monotonic()
            time.sleep(0.02)
        assert front.action.calls < count
        assert front.stats.reads_paused >= 1
        keys = [key_of(conn.read_response()) for _ in range(count)]
        assert keys == [f"k{i}" for i in range(count)]
        sender.join(WAIT_S)
    finally:
        conn.close()


def test_bad_bytes_after_pipelined_requests_are_answered_after_them(front_factory):
    front = front_factory(inflight_max=64, pipelined_max=1, resume_below=1)
    with Connection(front.endpoint) as conn:
        conn.send(get_item("slow-0") + get_item("k1") + get_item("k2") + b"\x16\x03\x01 not http\r\n\r\n")
        wait_until(lambda: front.action.running == 1, "the first request started")
        front.release()
        answers = [conn.read_response() for _ in range(4)]
        assert [r.status for r in answers] == [200, 200, 200, 400]
        assert [key_of(r) for r in answers[:3]] == ["slow-0", "k1", "k2"]
        assert conn.read_response() is None  # closed
    assert front.stats.protocol_errors == 1


def test_connection_close_inside_a_pipeline_drops_what_follows(front_factory):
    front = front_factory(inflight_max=64, pipelined_max=1, resume_below=1)
    with Connection(front.endpoint) as conn:
        conn.send(get_item("slow-0") + get_item("k1", extra={"Connection": "close"}) + get_item("k2"))
        wait_until(lambda: front.action.running == 1, "the first request started")
        front.release()
        assert key_of(conn.read_response()) == "slow-0"
        resp = conn.read_response()
        assert key_of(resp) == "k1" and resp.headers["connection"] == "close"
        assert conn.read_response() is None
    wait_until(lambda: front.stats.connections_open == 0, "the connection closed")


# --- errors go through the one formatter --------------------------------------------


def test_authorization_errors_are_formatted_and_counted_like_the_others(front_factory):
    front = front_factory(inflight_max=4, pipelined_max=4, resume_below=2)
    with Connection(front.endpoint) as conn:
        resp = conn.request("DynamoDB_20120810.GetItem", b"{}", signed=False)
        assert resp.status == 400
        assert resp.json() == {
            "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
            "message": "Request is missing Authentication Token",
        }
        resp = conn.request("DynamoDB_20120810.GetItem", b"{}", signed=False, extra={"Authorization": "AWS4-HMAC-SHA256 x"})
        assert resp.status == 400
        body = resp.json()
        assert body["__type"] == "com.amazon.coral.service#IncompleteSignatureException"
        assert body["message"].startswith("Authorization header requires 'Credential' parameter.")
        assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(resp.body)
    assert front.app.errors_by_type == {"MissingAuthenticationTokenException": 1, "IncompleteSignatureException": 1}


# --- the same through start_router, the embedded storage and boto3 -------------------


def test_start_router_enforces_the_inflight_bound(tmp_path):
    from meridian.model.ops import OpKind
    from meridian.node.engine import Engine
    from meridian.router.server import start_router
    from meridian.router.storage_embedded import EmbeddedStorage

    class GatedStorage(EmbeddedStorage):
        """GetItem of a key in ``slow`` waits for the gate."""

        gate: asyncio.Event

        async def call(self, node_id, op):  # type: ignore[no-untyped-def]
            if op.kind is OpKind.GET and b"slow" in op.key:
                await self.gate.wait()
            return await super().call(node_id, op)

    loop = LoopThread()

    async def start():
        storage = GatedStorage(Engine(str(tmp_path / "data"), node_id="embedded", region="us-east-1", sync=False))
        storage.gate = asyncio.Event()
        router = await start_router(
            storage, host="127.0.0.1", port=0, region="us-east-1", shared_catalog=False, inflight_max=2
        )
        return storage, router

    storage, router = loop.run(start())
    endpoint = f"http://127.0.0.1:{router.port}"
    ddb = make_client(endpoint)
    results: dict[str, Any] = {}
    try:
        ddb.create_table(
            TableName="gated", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        for key in ("slow-a", "slow-b", "fast"):
            ddb.put_item(TableName="gated", Item={"id": {"S": key}})

        def slow_get(key: str) -> None:
            results[key] = make_client(endpoint).get_item(TableName="gated", Key={"id": {"S": key}})["Item"]

        threads = [threading.Thread(target=slow_get, args=(k,)) for k in ("slow-a", "slow-b")]
        for thread in threads:
            thread.start()
        wait_until(lambda: router.app.inflight == 2, "two GetItems waiting in storage")
        with pytest.raises(ClientError) as info:
            ddb.get_item(TableName="gated", Key={"id": {"S": "fast"}})
        assert info.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert info.value.response["Error"]["Message"] == REQUEST_LIMIT_BODY["message"]
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        loop.call(storage.gate.set)
        for thread in threads:
            thread.join(WAIT_S)
        assert results == {"slow-a": {"id": {"S": "slow-a"}}, "slow-b": {"id": {"S": "slow-b"}}}
        assert ddb.get_item(TableName="gated", Key={"id": {"S": "fast"}})["Item"] == {"id": {"S": "fast"}}
        assert router.app.inflight == 0
    finally:
        loop.call(storage.gate.set)
        loop.run(router.close())
        loop.stop()
