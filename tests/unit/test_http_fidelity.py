"""HTTP the way DynamoDB speaks it, over real 127.0.0.1 sockets.

* request bodies with ``Content-Encoding: gzip`` / ``deflate`` (botocore's
  request compression); DynamoDB's 500 for unknown codings and broken or
  empty compressed bodies; a decompression bomb stops at
  ``HTTP_REQUEST_BYTES_MAX`` (413);
* answers compressed for ``Accept-Encoding`` from 4 KB on, ``x-amz-crc32``
  over the compressed bytes (boto3 checks it on a large Scan/BatchGetItem);
* CORS headers on answers to requests with an ``Origin``, and preflight;
* ``GET /`` answers ``healthy: <host> ``, ``Server: Server`` on every answer,
  Meridian's own ``/health`` still there;
* request line + headers past 16 KB: 400 and the connection closes.

One router (``start_router`` over the embedded storage) serves the module,
on a uvloop thread.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from rawhttp import Connection, RawResponse, build_request  # noqa: E402

from meridian.model import limits  # noqa: E402
from tests.conftest import make_client  # noqa: E402

TABLE = "fidelity"
INTERNAL_ERROR = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"}
WAIT_S = 20.0


class Router:
    def __init__(self, data_dir: str, **kwargs: Any) -> None:
        from meridian.node.engine import Engine
        from meridian.router.server import RouterOptions, start_router
        from meridian.router.storage_embedded import EmbeddedStorage

        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start():
            storage = EmbeddedStorage(Engine(data_dir, node_id="embedded", region="us-east-1", sync=False))
            return await start_router(
                storage, host="127.0.0.1", port=0, region="us-east-1", shared_catalog=False,
                options=RouterOptions(**kwargs),
            )

        self.router = self.run(start())
        self.endpoint = f"http://127.0.0.1:{self.router.port}"

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_S)

    def close(self) -> None:
        self.run(self.router.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_S)
        self.loop.close()


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    r = Router(str(tmp_path_factory.mktemp("fidelity")), cors_origins="*")
    ddb = make_client(r.endpoint)
    ddb.create_table(
        TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    yield r
    r.close()


def raw(router: Router, data: bytes) -> RawResponse | None:
    with Connection(router.endpoint) as conn:
        conn.send(data)
        return conn.read_response()


def put_request(key: str, value: str = "v", **kw: Any) -> tuple[str, bytes]:
    body = json.dumps({"TableName": TABLE, "Item": {"id": {"S": key}, "v": {"S": value}}}).encode()
    return "DynamoDB_20120810.PutItem", body


def get_raw(router: Router, key: str, extra: dict[str, str] | None = None) -> RawResponse:
    body = json.dumps({"TableName": TABLE, "Key": {"id": {"S": key}}, "ConsistentRead": True}).encode()
    with Connection(router.endpoint) as conn:
        return conn.request("DynamoDB_20120810.GetItem", body, extra=extra)


def stored(router: Router, key: str) -> dict | None:
    return get_raw(router, key).json().get("Item")


# --- compressed requests ---------------------------------------------------------


@pytest.mark.parametrize("coding, pack", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("gzip", lambda b: gzip.compress(b[:10]) + gzip.compress(b[10:])),  # two gzip members are one body
    ("gzip", lambda b: gzip.compress(b) + b"junk"),  # DynamoDB ignores what follows the last member
])
def test_compressed_request_bodies_are_accepted(router, coding, pack):
    key = f"packed-{coding}-{pack.__name__}-{id(pack)}"
    target, body = put_request(key, "hello")
    with Connection(router.endpoint) as conn:
        resp = conn.request(target, pack(body), extra={"Content-Encoding": coding})
    assert resp.status == 200, resp.body
    assert resp.json() == {}
    assert stored(router, key) == {"id": {"S": key}, "v": {"S": "hello"}}


@pytest.mark.parametrize("coding, mangle", [
    ("garbage", lambda b: b),  # an unknown coding
    ("gzip", lambda b: b),  # not gzip at all
    ("gzip", lambda b: gzip.compress(b)[:-1]),  # truncated
    ("gzip", lambda b: b""),  # empty
    ("deflate", lambda b: b"\x00\x01\x02"),
])
def test_broken_compressed_bodies_get_dynamodb_500(router, coding, mangle):
    key = f"broken-{coding}-{id(mangle)}"
    target, body = put_request(key)
    with Connection(router.endpoint) as conn:
        resp = conn.request(target, mangle(body), extra={"Content-Encoding": coding})
        assert resp.status == 500
        assert resp.headers["content-type"] == "application/x-amz-json-1.0"
        assert resp.json() == INTERNAL_ERROR
        # the connection stays usable
        assert conn.request(*put_request(key + "-after")).status == 200
    assert stored(router, key) is None


def test_decompression_bomb_stops_at_the_request_bound(router):
    key = "bomb"
    target, body = put_request(key)
    big = body[:-1] + b" " * (limits.HTTP_REQUEST_BYTES_MAX + 1) + body[-1:]
    packed = gzip.compress(big, compresslevel=9)
    assert len(packed) < 64 * 1024
    with Connection(router.endpoint) as conn:
        resp = conn.request(target, packed, extra={"Content-Encoding": "gzip"})
    assert resp.status == 413
    assert resp.body == b""
    assert stored(router, key) is None


def test_boto3_request_compression(router):
    """botocore compresses when the operation model asks for it (DynamoDB's does not: enabled here)."""
    from botocore.config import Config

    import boto3

    client = boto3.client(
        "dynamodb", endpoint_url=router.endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(request_min_compression_size_bytes=1, retries={"max_attempts": 1}),
    )
    model = client.meta.service_model._service_description["operations"]
    seen: list[str] = []
    client.meta.events.register("before-send", lambda request, **_: seen.append(request.headers.get("Content-Encoding")))
    saved = {name: op.get("requestcompression") for name, op in model.items()}
    try:
        for op in model.values():
            op["requestcompression"] = {"encodings": ["gzip"]}
        client.put_item(TableName=TABLE, Item={"id": {"S": "boto-gz"}, "v": {"S": "x" * 20000}})
        assert client.get_item(TableName=TABLE, Key={"id": {"S": "boto-gz"}})["Item"]["v"]["S"] == "x" * 20000
    finally:
        for name, value in saved.items():
            if value is None:
                model[name].pop("requestcompression", None)
            else:
                model[name]["requestcompression"] = value
    assert b"gzip" in seen  # botocore really sent gzip


# --- compressed answers -----------------------------------------------------------


def test_answers_from_4_kb_are_compressed_and_crc_is_of_the_compressed_bytes(router):
    ddb = make_client(router.endpoint)
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "big"}, "v": {"S": "x" * 6000}})
    for coding, unpack in (("gzip", gzip.decompress), ("deflate", zlib.decompress)):
        resp = get_raw(router, "big", {"Accept-Encoding": coding})
        assert resp.status == 200
        assert resp.headers["content-encoding"] == coding
        assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(resp.body)
        assert int(resp.headers["content-length"]) == len(resp.body)
        assert json.loads(unpack(resp.body))["Item"]["v"]["S"] == "x" * 6000
    plain = get_raw(router, "big", {"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert int(plain.headers["x-amz-crc32"]) == zlib.crc32(plain.body)
    # below the threshold: never compressed
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "small"}, "v": {"S": "x" * 100}})
    small = get_raw(router, "small", {"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers
    assert small.json()["Item"]["v"]["S"] == "x" * 100


def test_accept_encoding_negotiation(router):
    from meridian.router.content_coding import choose_coding

    # DynamoDB's observed answers (ScyllaDB Alternator's tests run against it)
    assert choose_coding("br, identity, deflate, gzip") == "deflate"
    assert choose_coding("*, gzip;q=0.5") == "deflate"
    assert choose_coding("*, deflate") == "deflate"
    assert choose_coding("*") == "gzip"
    assert choose_coding("gzip;q=0, gzip;q=1, gzip;q=0") == "gzip"
    assert choose_coding("deflate;q=0.5, gzip;q=31") == "gzip"
    assert choose_coding("deflate;q=-0.5,gzip;q=0.2") == "gzip"
    for refused in ("identity", "", "br", "x-gzip", "gzip ;q=0", "*;q=0", '"gzip"', "gzip br", "gzip:q=1"):
        assert choose_coding(refused) is None, refused


def test_boto3_accepting_gzip_validates_crc_on_large_scan_and_batch_get(router):
    """botocore checks x-amz-crc32 over the raw bytes it received, before anything decodes them.

    Only its legacy retry mode checks the CRC (the standard mode, the
    default, does not), so the client here uses it.
    """
    import boto3
    from botocore.config import Config

    ddb = boto3.client(
        "dynamodb", endpoint_url=router.endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"mode": "legacy", "max_attempts": 1}),
    )
    keys = [f"scan-{i}" for i in range(20)]
    for key in keys:
        ddb.put_item(TableName=TABLE, Item={"id": {"S": key}, "v": {"S": key * 300}})
    seen: list[tuple[str | None, int]] = []

    def accept_gzip(request, **_):
        request.headers["Accept-Encoding"] = "gzip"

    def gunzip(response_dict, **_):  # what an SDK that asks for gzip does after the CRC check
        coding = response_dict["headers"].get("Content-Encoding")
        seen.append((coding, len(response_dict["body"])))
        if coding == "gzip":
            response_dict["body"] = gzip.decompress(response_dict["body"])

    crc_checked: list[bool] = []
    from botocore import retryhandler

    original = retryhandler.CRC32Checker._check_response

    def spy(self, attempt_number, response):
        crc_checked.append(True)
        return original(self, attempt_number, response)

    ddb.meta.events.register("before-send", accept_gzip)
    ddb.meta.events.register("before-parse", gunzip)
    retryhandler.CRC32Checker._check_response = spy
    try:
        items = ddb.scan(TableName=TABLE)["Items"]
        assert set(keys) <= {item["id"]["S"] for item in items}
        got = ddb.batch_get_item(RequestItems={TABLE: {"Keys": [{"id": {"S": k}} for k in keys]}})
        assert sorted(item["id"]["S"] for item in got["Responses"][TABLE]) == sorted(keys)
    finally:
        retryhandler.CRC32Checker._check_response = original
    assert [c for c, _ in seen] == ["gzip", "gzip"]
    assert len(crc_checked) >= 2


# --- CORS ------------------------------------------------------------------------


def test_cors_preflight_as_a_browser_sends_it(router):
    preflight = (
        b"OPTIONS / HTTP/1.1\r\nHost: localhost:8000\r\nAccept: */*\r\n"
        b"Access-Control-Request-Method: POST\r\n"
        b"Access-Control-Request-Headers: amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,"
        b"x-amz-content-sha256,x-amz-date,x-amz-target,x-amz-user-agent\r\n"
        b"Origin: http://localhost:3000\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Site: same-site\r\n"
        b"Sec-Fetch-Dest: empty\r\nReferer: http://localhost:3000/\r\nUser-Agent: Mozilla/5.0\r\n\r\n"
    )
    resp = raw(router, preflight)
    assert resp is not None and resp.status == 200
    assert resp.body == b""
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["access-control-allow-methods"] == "POST"
    assert resp.headers["access-control-allow-headers"] == (
        "amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,"
        "x-amz-content-sha256,x-amz-date,x-amz-target,x-amz-user-agent"
    )
    assert int(resp.headers["access-control-max-age"]) > 0
    assert "x-amzn-RequestId" in resp.headers["access-control-expose-headers"]
    assert "x-amz-crc32" in resp.headers["access-control-expose-headers"]


def test_cors_headers_on_answers_to_requests_with_an_origin(router):
    origin = {"Origin": "http://example.com"}
    answer = get_raw(router, "none", origin)
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "x-amzn-RequestId" in answer.headers["access-control-expose-headers"]
    assert "access-control-max-age" not in answer.headers  # only preflight answers carry it
    with Connection(router.endpoint) as conn:
        error = conn.request("DynamoDB_20120810.Nope", b"{}", extra=origin)
    assert error.status == 400 and error.headers["access-control-allow-origin"] == "*"
    health = raw(router, b"GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n\r\n")
    assert health.headers["access-control-allow-origin"] == "*"
    # without an Origin: no CORS headers at all (OPTIONS included)
    plain = get_raw(router, "none")
    assert not [h for h in plain.headers if h.startswith("access-control-")]
    options = raw(router, b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not [h for h in options.headers if h.startswith("access-control-")]


def test_cors_allowed_origins_are_configurable(tmp_path):
    r = Router(str(tmp_path / "data"), cors_origins=["https://app.example.com"])
    try:
        good = raw(r, b"GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n\r\n")
        assert good.headers["access-control-allow-origin"] == "https://app.example.com"
        assert good.headers["vary"] == "Origin"
        other = raw(r, b"GET / HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example.com\r\n\r\n")
        assert "access-control-allow-origin" not in other.headers
    finally:
        r.close()


# --- health, Server ------------------------------------------------------------------


def test_get_root_is_dynamodb_health_check_with_the_addressed_host(router):
    resp = raw(router, b"GET / HTTP/1.1\r\nHost: dynamodb.us-east-1.amazonaws.com\r\n\r\n")
    assert resp.status == 200
    assert resp.body == b"healthy: dynamodb.us-east-1.amazonaws.com "
    assert resp.headers["server"] == "Server"
    host = router.endpoint.removeprefix("http://")
    with Connection(router.endpoint) as conn:
        conn.send(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert conn.read_response().body == f"healthy: {host} ".encode()
    own = raw(router, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert own.status == 200 and own.json()["status"] == "ok"


def test_every_answer_says_server_server(router):
    ddb = make_client(router.endpoint)
    meta = ddb.list_tables()["ResponseMetadata"]
    assert meta["HTTPHeaders"]["server"] == "Server"
    with Connection(router.endpoint) as conn:
        assert conn.request("DynamoDB_20120810.Nope", b"{}").headers["server"] == "Server"


# --- oversized request line and headers ---------------------------------------------


def test_headers_past_16_kb_get_400_and_the_connection_closes(router):
    target, body = put_request("hdr")
    fits = build_request(target, body, extra={"X-Pad": "p" * (limits.HTTP_HEADER_BYTES_MAX - 1024)})
    with Connection(router.endpoint) as conn:
        conn.send(fits)
        assert conn.read_response().status == 200
        conn.send(build_request(target, body, extra={"X-Pad": "p" * limits.HTTP_HEADER_BYTES_MAX}))
        resp = conn.read_response()
        assert resp is not None and resp.status == 400
        assert resp.headers.get("connection") == "close"
        assert conn.read_response() is None
    many = {f"X-Pad-{i}": "p" * 100 for i in range(200)}  # many small headers add up the same
    assert raw(router, build_request(target, body, extra=many)).status == 400


def test_headers_past_16_kb_sent_in_pieces_get_400(router):
    with Connection(router.endpoint) as conn:
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):
            conn.send(b"X-Pad: " + b"p" * 1000 + b"\r\n")
        conn.send(b"\r\n")
        resp = conn.read_response()
        assert resp is not None and resp.status == 400


def test_request_line_past_16_kb_gets_400(router):
    resp = raw(router, b"POST /" + b"x" * 17000 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert resp is not None and resp.status == 400
    assert b"InvalidSignatureException" not in resp.body
