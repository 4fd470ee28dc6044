"""A load generator that speaks DAX's protocol: GetItem over many connections, like the DAX clients.

    python bench/dax_load.py --port DAX_PORT [--host 127.0.0.1] [--table bench] [--keys 10000]
        [--connections 64] [--duration-s 10] [--seed 1] [--warm]

Prints one line ``DAX_LOAD_RESULT_JSON {...}`` (requests, duration_us, requests_per_s, client-side
latency_p50_us / latency_p99_us, errors, empty answers, the generator's own CPU seconds), as
bench/wrk/common.lua does for wrk, so bench/dax.py can run it the way bench/run.py runs wrk.

Why its own generator: the published Python DAX client spends far more CPU per call than the
server it calls (botocore-shaped requests, its own CBOR in Python), so it cannot load a server;
wrk speaks only HTTP.  This one does what a client does on the wire and nothing else:

* Discovery: one connection to the seed, the handshake, ``endpoints``; then the connections are
  spread over every node listed (a client reads from any node of the cluster).
* Each connection: the handshake, ``defineKeySchema`` of the table (as a client does before its
  first call on a table), then GetItem after GetItem, **one request in flight per connection**
  (the clients never pipeline), each sent as soon as the previous answer is complete.
* Requests are encoded once, before the clock starts (``--keys`` GetItems of keys ``k000000``...,
  with ``meridian.router.dax`` helpers for the key bytes and CBOR), with ReturnConsumedCapacity
  NONE in an indefinite-length kwargs map as the Python client sends it; each request picks a
  random one.  Answers are framed with ``cbor.decode_item`` (one item after the success marker;
  three after an error's code array) and only counted.
* ``--warm``: GetItem every key exactly once on every node (spread over that node's connections),
  then stop: fills each node's item cache (caches are per node) so the measured rounds are all hits.

One asyncio event loop (uvloop when installed) with ``asyncio.Protocol`` connections: a request
costs the generator a few µs, well under the server's cost, so one core of it keeps a server busy.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is a folder of scripts, not a package

import dynamo  # noqa: E402  (the key names the HTTP preload used)

from meridian.router.dax.cbor import CborError, Encoder, NeedMore, decode_item  # noqa: E402
from meridian.router.dax.latency import LatencyHistogram  # noqa: E402
from meridian.router.dax.values import encode_key  # noqa: E402

MAGIC = "J7yne5G"
REQUEST = 1
ENDPOINTS, DEFINE_KEY_SCHEMA, GET_ITEM = 455855874, -742646399, 263244906
RETURN_CONSUMED_CAPACITY, CONSUMED_CAPACITY_NONE = 3, 0
ENDPOINT_ADDRESS, ENDPOINT_PORT = 2, 3  # keys of an endpoints entry
SUCCESS = 0x80  # an empty CBOR array: the marker before a success body
ERROR_TRAILING_ITEMS = 2  # after an error's code array: the message, then [requestId, type, status...]
USER_AGENT = "meridian-bench-dax-load/1"
#: Time allowed for setting up every connection, and for the answers in flight when the run ends.
SETUP_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 10.0


def handshake() -> bytes:
    return (Encoder().text(MAGIC).int(0).bytes_(os.urandom(16)).map_header(1).text("UserAgent").text(USER_AGENT)
            .int(0).getvalue())  # fmt: skip


def request(method_id: int, *args: bytes) -> bytes:
    """``1 methodId args...``, each argument already CBOR."""
    enc = Encoder().int(REQUEST).int(method_id)
    for arg in args:
        enc.raw(arg)
    return enc.getvalue()


def get_item_requests(table: str, key_count: int) -> list[bytes]:
    """GetItem of each preloaded key (hash key ``pk`` S), kwargs as the Python client writes them."""
    kwargs = Encoder().map_stream_header().int(RETURN_CONSUMED_CAPACITY).int(CONSUMED_CAPACITY_NONE).break_()
    table_arg = Encoder().bytes_(table.encode()).getvalue()
    schema = [("pk", "S")]
    return [
        request(GET_ITEM, table_arg, Encoder().bytes_(encode_key({"pk": {"S": dynamo.key(i)}}, schema)).getvalue(),
                kwargs.getvalue())
        for i in range(key_count)
    ]  # fmt: skip


class Answers:
    """Splits a connection's byte stream into answers: success bodies and errors."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> tuple[bool, object] | None:
        """``(ok, body or error message)`` of the next complete answer, or None until more bytes come."""
        buf = self._buf
        if not buf:
            return None
        try:
            if buf[0] == SUCCESS:
                body, end = decode_item(buf, 1)
                ok = True
            else:
                _codes, end = decode_item(buf, 0)
                body, end = decode_item(buf, end)
                for _ in range(ERROR_TRAILING_ITEMS - 1):
                    _, end = decode_item(buf, end)
                ok = False
        except NeedMore:
            return None
        del buf[:end]
        return ok, body


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.empty = 0  # null answers: the key has no item (should be 0 once preloaded)
        self.first_error: object = None
        self.latency = LatencyHistogram()


class LoadConnection(asyncio.Protocol):
    """One connection: setup calls one at a time, then GetItem in a closed loop until ``stop``."""

    def __init__(self, run: Run, node_index: int = 0) -> None:
        self.run = run
        self.node_index = node_index
        self.answers = Answers()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None  # setup: the next answer
        self.looping = False
        self.sent_ns = 0
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))
        self.run.connection_gone(self)

    async def call(self, data: bytes) -> object:
        """A setup request and its success body (RuntimeError on an error answer)."""
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        ok, body = await asyncio.wait_for(self.waiter, SETUP_TIMEOUT_S)
        if not ok:
            raise RuntimeError(f"DAX error answer: {body!r}")
        return body

    def data_received(self, data: bytes) -> None:
        self.answers.feed(data)
        while True:
            try:
                answer = self.answers.next()
            except CborError as exc:
                self.run.fail(f"undecodable answer: {exc}")
                return
            if answer is None:
                return
            if not self.looping:
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(answer)
                continue
            self.run.answered(self, answer)

    def send(self, data: bytes) -> None:
        self.sent_ns = time.perf_counter_ns()
        assert self.transport is not None
        self.transport.write(data)


class Run:
    """The connections of one run and what they counted."""

    def __init__(self, requests: list[bytes], seed: int, warm: bool) -> None:
        self.requests = requests
        self.rng = random.Random(seed)
        self.stats = Stats()
        self.warm = warm
        self.warm_next: dict[int, int] = {}  # node index -> next key to warm there
        self.stopping = False
        self.in_flight = 0
        self.drained: asyncio.Future = asyncio.get_running_loop().create_future()
        self.failure: str | None = None

    def next_request(self, conn: LoadConnection) -> bytes | None:
        if self.stopping:
            return None
        if self.warm:
            index = self.warm_next.get(conn.node_index, 0)
            if index >= len(self.requests):
                return None
            self.warm_next[conn.node_index] = index + 1
            return self.requests[index]
        return self.requests[self.rng.randrange(len(self.requests))]

    def start(self, conn: LoadConnection) -> None:
        conn.looping = True
        self._send_next(conn)

    def _send_next(self, conn: LoadConnection) -> None:
        data = self.next_request(conn)
        if data is None:
            self._check_drained()
            return
        self.in_flight += 1
        conn.send(data)

    def answered(self, conn: LoadConnection, answer: tuple[bool, object]) -> None:
        stats = self.stats
        stats.latency.record_ns(time.perf_counter_ns() - conn.sent_ns)
        self.in_flight -= 1
        ok, body = answer
        stats.requests += 1
        if not ok:
            stats.errors += 1
            stats.first_error = stats.first_error or body
        elif body is None:
            stats.empty += 1
        self._send_next(conn)

    def connection_gone(self, conn: LoadConnection) -> None:
        if conn.looping and not self.stopping:
            self.fail("the server closed a connection")

    def fail(self, why: str) -> None:
        self.failure = self.failure or why
        self.stopping = True
        if not self.drained.done():
            self.drained.set_result(None)

    def stop(self) -> None:
        self.stopping = True
        self._check_drained()

    def _check_drained(self) -> None:
        if (self.stopping or self.warm) and self.in_flight == 0 and not self.drained.done():
            self.drained.set_result(None)


async def discover(host: str, port: int) -> list[tuple[str, int]]:
    """Every node's (address, port) from ``endpoints`` on the seed, as a client's start-up does."""
    loop = asyncio.get_running_loop()
    dummy = Run([], 0, warm=False)
    _, conn = await loop.create_connection(lambda: LoadConnection(dummy), host, port)
    try:
        conn.transport.write(handshake())  # type: ignore[union-attr]
        endpoints = await conn.call(request(ENDPOINTS))
    finally:
        conn.transport.close()  # type: ignore[union-attr]
    assert isinstance(endpoints, list) and endpoints, f"endpoints answered {endpoints!r}"
    return [(str(ipaddress.ip_address(bytes(entry[ENDPOINT_ADDRESS]))), int(entry[ENDPOINT_PORT]))
            for entry in endpoints]  # fmt: skip


async def open_connection(run: Run, nodes: list[tuple[str, int]], index: int, table: str) -> LoadConnection:
    """Connection ``index``, to node ``index % len(nodes)`` (round robin, as a client spreads its reads)."""
    loop = asyncio.get_running_loop()
    node_index = index % len(nodes)
    _, conn = await loop.create_connection(lambda: LoadConnection(run, node_index), *nodes[node_index])
    conn.transport.write(handshake())  # type: ignore[union-attr]
    schema = await conn.call(request(DEFINE_KEY_SCHEMA, Encoder().bytes_(table.encode()).getvalue()))
    if schema != {"pk": "S"}:
        raise RuntimeError(f"defineKeySchema({table}) answered {schema!r}, expected {{'pk': 'S'}}")
    return conn


async def run_load(args: argparse.Namespace) -> dict:
    nodes = await discover(args.host, args.port)
    run = Run(get_item_requests(args.table, args.keys), args.seed, args.warm)
    conns = await asyncio.gather(*(
        open_connection(run, nodes, i, args.table) for i in range(max(args.connections, len(nodes)))))  # fmt: skip
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started_ns = time.perf_counter_ns()
    for conn in conns:
        run.start(conn)
    if not args.warm:
        asyncio.get_running_loop().call_later(args.duration_s, run.stop)
    await run.drained
    duration_ns = time.perf_counter_ns() - started_ns
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    run.stopping = True  # the closes below are ours, not the server's
    for conn in conns:
        conn.transport.close()  # type: ignore[union-attr]
    await asyncio.wait([conn.lost for conn in conns], timeout=DRAIN_TIMEOUT_S)
    if run.failure is not None:
        raise RuntimeError(run.failure)
    stats = run.stats
    return {
        "requests": stats.requests,
        "duration_us": duration_ns // 1000,
        "requests_per_s": round(stats.requests / (duration_ns / 1e9), 1),
        "latency_p50_us": stats.latency.percentile_ns(50) / 1000,
        "latency_p99_us": stats.latency.percentile_ns(99) / 1000,
        "errors": stats.errors,
        "first_error": None if stats.first_error is None else repr(stats.first_error)[:200],
        "empty": stats.empty,
        "nodes": [f"{host}:{port}" for host, port in nodes],
        "connections": len(conns),
        "client_cpu_s": (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="the DAX seed node's port")
    p.add_argument("--table", default="bench")
    p.add_argument("--keys", type=int, default=10_000, help="GetItem picks among k000000 .. keys - 1")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration-s", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--warm", action="store_true", help="GetItem every key once, then stop")
    args = p.parse_args(argv)
    if args.connections < 1 or args.keys < 1 or args.duration_s <= 0:
        p.error("--connections, --keys and --duration-s must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop  # noqa: PLC0415

        result = uvloop.run(run_load(args))
    except ImportError:
        result = asyncio.run(run_load(args))
    print("DAX_LOAD_RESULT_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
