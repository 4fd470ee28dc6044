"""HTTP the way DynamoDB speaks it, against each mode's endpoint.

``tests/unit/test_http_fidelity.py`` covers the same front in depth, in
process; this runs the behaviours a client sees through ``meridian serve``
and through a cluster's router: compressed request bodies, compressed
answers with their CRC, CORS, ``GET /`` and the ``Server`` header, and the
4xx for request lines and headers past 16 KB.
"""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from helpers import unique_name
from meridian.model import limits
from rawhttp import Connection, RawResponse, build_request

INTERNAL = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"}


@pytest.fixture(scope="module")
def tbl(ddb):
    from helpers import create_table

    name = create_table(ddb, unique_name("http"))
    yield name
    ddb.delete_table(TableName=name)


def _raw(endpoint: str, data: bytes) -> RawResponse | None:
    with Connection(endpoint) as conn:
        conn.send(data)
        return conn.read_response()


def _put(tbl: str, key: str, value: str = "v") -> bytes:
    return json.dumps({"TableName": tbl, "Item": {"id": {"S": key}, "v": {"S": value}}}).encode()


def _get(endpoint: str, tbl: str, key: str, extra: dict[str, str] | None = None) -> RawResponse:
    body = json.dumps({"TableName": tbl, "Key": {"id": {"S": key}}, "ConsistentRead": True}).encode()
    with Connection(endpoint) as conn:
        return conn.request("DynamoDB_20120810.GetItem", body, extra=extra)


@pytest.mark.parametrize("coding,pack", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_compressed_request_bodies(endpoint, tbl, coding, pack):
    with Connection(endpoint) as conn:
        resp = conn.request("DynamoDB_20120810.PutItem", pack(_put(tbl, coding)), extra={"Content-Encoding": coding})
        assert resp.status == 200, resp.body
        broken = conn.request("DynamoDB_20120810.PutItem", b"not " + coding.encode(),
                              extra={"Content-Encoding": coding})
    assert broken.status == 500 and broken.json() == INTERNAL
    assert _get(endpoint, tbl, coding).json()["Item"]["v"] == {"S": "v"}


def test_large_answers_are_compressed_with_the_crc_of_what_is_sent(endpoint, ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"id": {"S": "big"}, "v": {"S": "x" * 6000}})
    resp = _get(endpoint, tbl, "big", {"Accept-Encoding": "gzip"})
    assert resp.status == 200 and resp.headers["content-encoding"] == "gzip"
    assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(resp.body)
    assert json.loads(gzip.decompress(resp.body))["Item"]["v"]["S"] == "x" * 6000
    plain = _get(endpoint, tbl, "big")
    assert "content-encoding" not in plain.headers and int(plain.headers["x-amz-crc32"]) == zlib.crc32(plain.body)


def test_cors(endpoint, tbl):
    preflight = _raw(endpoint, b"OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\n"
                               b"Access-Control-Request-Method: POST\r\n"
                               b"Access-Control-Request-Headers: authorization,content-type,x-amz-target\r\n\r\n")
    assert preflight.status == 200 and preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    answer = _get(endpoint, tbl, "none", {"Origin": "http://localhost:3000"})
    assert answer.status == 200 and answer.headers["access-control-allow-origin"] == "*"
    assert "x-amzn-RequestId" in answer.headers["access-control-expose-headers"]
    assert not [h for h in _get(endpoint, tbl, "none").headers if h.startswith("access-control-")]


def test_health_answer_and_server_header(endpoint, ddb):
    resp = _raw(endpoint, b"GET / HTTP/1.1\r\nHost: dynamodb.us-east-1.amazonaws.com\r\n\r\n")
    assert resp.status == 200 and resp.body == b"healthy: dynamodb.us-east-1.amazonaws.com "
    assert resp.headers["server"] == "Server"
    assert ddb.list_tables()["ResponseMetadata"]["HTTPHeaders"]["server"] == "Server"


def test_oversized_request_line_and_headers_get_400(endpoint, tbl):
    target, body = "DynamoDB_20120810.PutItem", _put(tbl, "hdr")
    too_big = build_request(target, body, extra={"X-Pad": "p" * limits.HTTP_HEADER_BYTES_MAX})
    resp = _raw(endpoint, too_big)
    assert resp is not None and resp.status == 400 and resp.headers.get("connection") == "close"
    line = _raw(endpoint, b"POST /" + b"x" * 17000 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert line is not None and line.status == 400
    fits = build_request(target, body, extra={"X-Pad": "p" * (limits.HTTP_HEADER_BYTES_MAX - 1024)})
    assert _raw(endpoint, fits).status == 200


def test_tag_resource_and_untag_resource_answer_an_empty_body(endpoint, ddb, tbl):
    arn = ddb.describe_table(TableName=tbl)["Table"]["TableArn"]
    with Connection(endpoint) as conn:
        tagged = conn.request("DynamoDB_20120810.TagResource",
                              json.dumps({"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]}).encode())
        untagged = conn.request("DynamoDB_20120810.UntagResource",
                                json.dumps({"ResourceArn": arn, "TagKeys": ["k"]}).encode())
    for resp in (tagged, untagged):
        assert resp.status == 200 and resp.body == b"" and resp.headers["content-length"] == "0"
        assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(b"")
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []
