"""The embedded fast path (``router/fast_path.py``) answers as the general path does.

Differential: two embedded routers, each over its own engine, see the same
requests in the same order; one offers them to the fast path first, the
other never does.  Every answer must be the same bytes (status, headers,
body, CRC32) but for the request id and the Date, and both tables must end
up holding the same items.  The corpus is what the fast path serves and,
around it, what it must leave to the general path (unknown members, nulls,
bad types, expressions, missing tables, errors of every step); each entry
also says which of the two should answer it, so a fast path that quietly
stopped serving would show.  Both runs: without and with ``--sync`` (where a
write waits for its group commit).  Then the HTTP side: pipelined answers
keep their order when a fast answer follows one that waits, and the
outbox (``router/http_outbox.py``) writes answers at the end of the loop's
round, at once past its bound, and before a connection closes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from rawhttp import SIGNED_HEADERS, build_request  # noqa: E402

from meridian.model import limits  # noqa: E402
from meridian.node.engine import Engine  # noqa: E402
from meridian.router import app as app_module  # noqa: E402
from meridian.router.console.routes import console_handler  # noqa: E402
from meridian.router.fast_path import fast_path_for  # noqa: E402
from meridian.router.http import HttpProtocol, Request  # noqa: E402
from meridian.router.server import start_router  # noqa: E402
from meridian.router.storage_embedded import EmbeddedStorage  # noqa: E402

WAIT_S = 10.0
_VOLATILE = re.compile(rb"(x-amzn-RequestId: |Date: )[^\r]*\r\n")


class FakeTransport:
    """Collects what the protocol writes."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Side:
    """One embedded router and one connection to it, with or without the fast path."""

    def __init__(self, router: Any, storage: EmbeddedStorage, fast: bool) -> None:
        self.router = router
        fast_path = fast_path_for(router.app, storage) if fast else None
        self.served: list[bool] = []

        def offer(req: Request) -> Any:
            answer = fast_path(req) if fast_path is not None else None
            self.served.append(answer is not None)
            return answer

        handle = console_handler(router.app.handle, router.app.ctx, None)
        self.proto = HttpProtocol(handle, router.app.encode, router.stats, fast=offer)
        self.transport = FakeTransport()
        self.proto.connection_made(self.transport)  # type: ignore[arg-type]

    async def exchange(self, raw: bytes) -> bytes:
        """Send one request; its answer, with the request id and Date blanked."""
        self.proto.data_received(raw)
        return _VOLATILE.sub(rb"\1-\r\n", await self.next_answer())

    async def next_answer(self) -> bytes:
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            answer = _split_answer(self.transport.data)
            if answer is not None:
                del self.transport.data[: len(answer)]
                return answer
            assert asyncio.get_running_loop().time() < deadline, "no answer"
            await asyncio.sleep(0.001)


def _split_answer(data: bytearray) -> bytes | None:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = int(re.search(rb"Content-Length: (\d+)", bytes(data[:end])).group(1))  # type: ignore[union-attr]
    total = end + 4 + length
    return bytes(data[:total]) if len(data) >= total else None


async def _side(path: Path, sync: bool, fast: bool) -> Side:
    storage = EmbeddedStorage(Engine(str(path), node_id="embedded", region="us-east-1", sync=sync))
    router = await start_router(storage, host="127.0.0.1", port=0, region="us-east-1", shared_catalog=False)
    return Side(router, storage, fast)


def _request(action: str, body: Any, **kwargs: Any) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return build_request(f"DynamoDB_20120810.{action}", raw, **kwargs)


def _table(name: str, keys: list[tuple[str, str, str]], **extra: Any) -> bytes:
    return _request("CreateTable", {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": n, "KeyType": k} for n, _t, k in keys],
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t, _k in keys]
        + extra.pop("more_definitions", []),
        **extra,
    })  # fmt: skip


SETUP = [
    _table("plain", [("pk", "S", "HASH")]),
    _table("numbered", [("n", "N", "HASH"), ("b", "B", "RANGE")]),
    _table(
        "indexed", [("pk", "S", "HASH"), ("sk", "S", "RANGE")],
        more_definitions=[{"AttributeName": "g", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
        LocalSecondaryIndexes=[{"IndexName": "by-l", "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}],
    ),
]  # fmt: skip

FAST, GENERAL = True, False
BIG = "x" * (limits.ITEM_SIZE_BYTES_MAX + 10)
# (served by the fast path?, request)
CORPUS: list[tuple[bool, bytes]] = [
    # PutItem, served
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "a"}, "v": {"S": "one"}}})),
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "a"}, "v": {"N": "2"}}, "ReturnValues": "ALL_OLD"})),
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "b"}, "n": {"N": "01.50"}, "t": {"BOOL": True},
                                                               "z": {"NULL": True}, "s": {"SS": ["x", "y"]},
                                                               "m": {"M": {"k": {"L": [{"N": "1e2"}, {"B": "AAEC"}]}}}}})),
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "c"}, "v": {"S": "w", "N": None}}})),
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "d"}, "v": {"S": "w", "Unknown": 1}}})),
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "e"}}, "ReturnConsumedCapacity": "TOTAL",
                                "ReturnValues": "NONE", "ReturnItemCollectionMetrics": "SIZE"})),
    (FAST, _request("PutItem", {"TableName": "numbered", "Item": {"n": {"N": "7.0"}, "b": {"B": "AQID"}}})),
    (FAST, _request("PutItem", {"TableName": "indexed", "Item": {"pk": {"S": "p"}, "sk": {"S": "1"}, "g": {"S": "G"},
                                                                 "l": {"N": "3"}}, "ReturnConsumedCapacity": "INDEXES",
                                "ReturnItemCollectionMetrics": "SIZE"})),
    (FAST, _request("PutItem", {"TableName": "indexed", "Item": {"pk": {"S": "p"}, "sk": {"S": "1"}, "g": {"S": "H"}},
                                "ReturnConsumedCapacity": "TOTAL", "ReturnValues": "ALL_OLD"})),
    (FAST, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "f"}}}, content_type="application/json")),
    # PutItem, refused by a step after the fast path's checks: answered by the general path
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "big"}, "v": {"S": BIG}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"v": {"S": "no key"}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"N": "1"}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": ""}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "x"}, "v": {"S": 5}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "x"}, "v": {"SS": []}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "x"}, "v": {"NULL": False}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "x"}, "v": {"BOOL": "yes"}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "x"}, "v": {"B": "AQ="}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "x"}, "v": {}}})),
    (GENERAL, _request("PutItem", {"TableName": "indexed", "Item": {"pk": {"S": "p"}, "sk": {"S": "2"}, "g": {"N": "1"}}})),
    (GENERAL, _request("PutItem", {"TableName": "missing", "Item": {"pk": {"S": "x"}}})),
    # PutItem, not the fast path's shape
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "g"}}, "ReturnValues": "ALL_NEW"})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "g"}}, "ReturnValues": None})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "g"}}, "ReturnConsumedCapacity": "ALL"})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "g"}}, "Extra": 1})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "a"}},
                                   "ConditionExpression": "attribute_not_exists(pk)"})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "h"}}, "Expected": {"pk": {"Exists": False}}})),
    (GENERAL, _request("PutItem", {"TableName": "plain", "Item": []})),
    (GENERAL, _request("PutItem", {"TableName": "ab", "Item": {"pk": {"S": "x"}}})),
    (GENERAL, _request("PutItem", {"TableName": 7, "Item": {"pk": {"S": "x"}}})),
    # GetItem, served
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "b"}}})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "nobody"}}})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "c"}}, "ConsistentRead": True,
                                "ReturnConsumedCapacity": "TOTAL"})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "d"}}, "ReturnConsumedCapacity": "INDEXES"})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "e"}}, "ConsistentRead": False})),
    (FAST, _request("GetItem", {"TableName": "numbered", "Key": {"n": {"N": "7"}, "b": {"B": "AQID"}}})),
    (FAST, _request("GetItem", {"TableName": "indexed", "Key": {"pk": {"S": "p"}, "sk": {"S": "1"}}})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a", "N": None}}})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "f"}}}, content_type="application/json")),
    # GetItem, refused after the fast path's checks
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"N": "1"}}})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": ""}}})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}, "v": {"S": "x"}}})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {}})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": 1}}})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a", "N": "1"}}})),
    (GENERAL, _request("GetItem", {"TableName": "numbered", "Key": {"n": {"N": "x"}, "b": {"B": "AQID"}}})),
    (GENERAL, _request("GetItem", {"TableName": "numbered", "Key": {"n": {"N": "7"}, "b": {"B": "AQI"}}})),
    (GENERAL, _request("GetItem", {"TableName": "missing", "Key": {"pk": {"S": "a"}}})),
    # GetItem, not the fast path's shape
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "ConsistentRead": "true"})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "ConsistentRead": None})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "ReturnConsumedCapacity": 1})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "v"})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "AttributesToGet": ["v"]})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "ExpressionAttributeNames": {}})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}, "Unknown": True})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": None})),
    (GENERAL, _request("GetItem", {"TableName": "plain"})),
    (GENERAL, _request("GetItem", {"TableName": "pl ain", "Key": {"pk": {"S": "a"}}})),
    (GENERAL, _request("GetItem", {"TableName": "p" * 256, "Key": {"pk": {"S": "a"}}})),
    (GENERAL, _request("GetItem", [])),
    (GENERAL, _request("GetItem", b"null")),
    (GENERAL, _request("GetItem", b"{not json")),
    (GENERAL, _request("GetItem", b"")),
    # the HTTP envelope around an ordinary GetItem
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, signed=False)),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, extra={"X-Amz-Date": ""})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}},
                       extra={"Authorization": "AWS4-HMAC-SHA256 Credential=a, Signature=b"})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, content_type="text/plain")),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, extra={"Content-Encoding": "br"})),
    (GENERAL, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, method="PUT")),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, extra={"Origin": "https://x.example"})),
    (FAST, _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}}, extra={"Accept-Encoding": "gzip"})),
    (GENERAL, build_request("DynamoDB_20120810.Scan", b'{"TableName": "plain"}')),
    (GENERAL, build_request("DynamoDB_20120810.Scan", b'{"TableName": "indexed"}')),
    (GENERAL, build_request("DynamoDB_20120810.Scan", b'{"TableName": "numbered"}')),
]  # fmt: skip


async def _differential(tmp_path: Path, sync: bool) -> None:
    fast = await _side(tmp_path / "fast", sync, fast=True)
    general = await _side(tmp_path / "general", sync, fast=False)
    try:
        for raw in SETUP:  # the answers hold creation times: only their status is compared
            assert (await fast.exchange(raw))[:15] == (await general.exchange(raw))[:15] == b"HTTP/1.1 200 OK"
        fast.served.clear()
        for i, (expected, raw) in enumerate(CORPUS):
            got, want = await fast.exchange(raw), await general.exchange(raw)
            assert got == want, f"request {i}: {raw!r}"
            assert fast.served[-1] is expected, f"request {i} {'not ' if expected else ''}served by the fast path: {raw!r}"
        assert fast.router.app.errors_by_type == general.router.app.errors_by_type
        assert fast.router.app.inflight == general.router.app.inflight == 0
    finally:
        await fast.router.close()
        await general.router.close()


@pytest.mark.parametrize("sync", [False, True], ids=["async-commit", "sync"])
def test_fast_path_answers_as_the_general_path(tmp_path: Path, sync: bool) -> None:
    uvloop.run(_differential(tmp_path, sync))


def test_a_fast_answer_waits_for_the_pipelined_answers_before_it(tmp_path: Path) -> None:
    """``--sync``: a PutItem waits for its commit; a GetItem of the same key waits
    for it too; a GetItem of another key is ready at once but goes out third."""

    async def run() -> None:
        side = await _side(tmp_path / "data", True, fast=True)
        try:
            await side.exchange(SETUP[0])
            put = _request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "k"}, "v": {"S": "new"}}})
            get_same = _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "k"}}})
            get_other = _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "other"}}})
            side.proto.data_received(put + get_same + get_other)
            answers = [await side.next_answer() for _ in range(3)]
            assert [a.endswith(b) for a, b in zip(answers, (b"\r\n\r\n{}", b'"new"}}}', b"\r\n\r\n{}"))] == [True] * 3
            assert side.served == [False, True, True, True]  # CreateTable, then all three
            assert side.router.app.inflight == 0
        finally:
            await side.router.close()

    uvloop.run(run())


def test_answers_leave_at_the_end_of_the_round(tmp_path: Path) -> None:
    """Two connections' answers are written when the loop's round ends, one write
    each; an answer past the outbox's bound and one that closes go at once."""

    async def run() -> None:
        side = await _side(tmp_path / "data", False, fast=True)
        try:
            await side.exchange(SETUP[0])
            other = Side(side.router, side.router.storage, fast=True)  # a second connection
            get = _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}})
            writes = side.transport.writes, other.transport.writes
            side.proto.data_received(get + get)
            other.proto.data_received(get)
            assert (side.transport.writes, other.transport.writes) == writes and not side.transport.data
            await asyncio.sleep(0)
            assert (side.transport.writes, other.transport.writes) == (writes[0] + 1, writes[1] + 1)
            assert [await side.next_answer() for _ in range(2)] and await other.next_answer()

            value = "v" * limits.HTTP_WRITE_COALESCE_BYTES_MAX
            await side.exchange(_request("PutItem", {"TableName": "plain", "Item": {"pk": {"S": "big"}, "v": {"S": value}}}))
            side.proto.data_received(_request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "big"}}}))
            assert value.encode() in side.transport.data  # written without waiting for the round
            await side.next_answer()

            side.proto.data_received(get + _request("GetItem", {"TableName": "plain", "Key": {"pk": {"S": "a"}}},
                                                    extra={"Connection": "close"}))
            assert side.transport.closed  # both answers written, in order, before the close
            first, last = await side.next_answer(), await side.next_answer()
            assert b"Connection: close" not in first and b"Connection: close\r\n" in last
        finally:
            await side.router.close()

    uvloop.run(run())


@pytest.mark.parametrize("signature", [
    "0123456789abcdef", "ABCdef09", "", "ab cd", "ab,cd", "ab=cd", "ab\t", "\u00e9t\u00e9", "ab, Signature=cd", "x,",
])  # fmt: skip
def test_a_signature_alone_changed_gets_the_same_verdict(signature: str) -> None:
    """``check_authorization`` skips the parse for a known prefix with another
    signature: never with a different verdict from the parse's."""
    prefix = SIGNED_HEADERS["Authorization"].rsplit(", Signature=", 1)[0]

    def verdict(auth: str, primed: bool) -> tuple[str, str] | None:
        app_module._last_good_auth[:] = [None, None]
        req = Request()
        req.date = SIGNED_HEADERS["X-Amz-Date"]
        if primed:
            req.authorization = SIGNED_HEADERS["Authorization"]
            assert app_module.check_authorization(req) is None
        req.authorization = auth
        err = app_module.check_authorization(req)
        return None if err is None else (err.type_name, str(err.body()))

    for auth in (f"{prefix}, Signature={signature}", f"{prefix},Signature={signature}", f"{prefix} , Signature={signature}"):
        assert verdict(auth, primed=True) == verdict(auth, primed=False), auth
