"""Bad input at the HTTP edge: exact DynamoDB errors, nothing changed, nothing crashed.

Raw sockets, because boto3 never sends most of this.  Each test ends by
checking that the data is as it was and that the endpoint still answers.
"""

from __future__ import annotations

import json
import socket
import zlib

import pytest

from helpers import create_table, unique_name
from rawhttp import Connection, address, build_request, call

SER = "com.amazon.coral.service#SerializationException"
VAL = "com.amazon.coral.validate#ValidationException"
UNKNOWN_OP = "com.amazon.coral.service#UnknownOperationException"
NOT_FOUND = "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"


@pytest.fixture(scope="module")
def tbl(ddb):
    name = create_table(ddb, unique_name("bad"))
    ddb.put_item(TableName=name, Item={"id": {"S": "keep"}, "v": {"N": "1"}})
    return name


def _unchanged(ddb, tbl):
    assert ddb.get_item(TableName=tbl, Key={"id": {"S": "keep"}}, ConsistentRead=True)["Item"] == {"id": {"S": "keep"}, "v": {"N": "1"}}
    assert ddb.describe_table(TableName=tbl)["Table"]["ItemCount"] == 1


def test_response_headers(endpoint, tbl):
    resp = call(endpoint, "GetItem", {"TableName": tbl, "Key": {"id": {"S": "keep"}}})
    assert resp.status == 200
    assert len(resp.headers["x-amzn-requestid"]) == 52
    assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(resp.body)
    assert resp.headers["content-type"] == "application/x-amz-json-1.0"
    assert resp.json() == {"Item": {"id": {"S": "keep"}, "v": {"N": "1"}}}


def test_malformed_json(endpoint, ddb, tbl):
    resp = call(endpoint, "PutItem", b'{"TableName": "' + tbl.encode() + b'", "Item": {')
    assert resp.status == 400
    assert resp.json() == {"__type": SER}
    _unchanged(ddb, tbl)


def test_wrong_json_types(endpoint, ddb, tbl):
    resp = call(endpoint, "PutItem", {"TableName": tbl, "Item": "not a map"})
    assert resp.status == 400
    assert resp.json()["__type"] == SER
    resp = call(endpoint, "PutItem", {"TableName": 5, "Item": {"id": {"S": "keep"}}})
    assert resp.json()["__type"] == SER
    resp = call(endpoint, "PutItem", {"TableName": tbl, "Item": {"id": {"S": 5}}})
    assert resp.json()["__type"] == SER
    _unchanged(ddb, tbl)


def test_missing_required_members(endpoint, ddb, tbl):
    resp = call(endpoint, "PutItem", {"TableName": tbl})
    assert resp.status == 400
    assert resp.json() == {
        "__type": VAL,
        "message": "1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null",
    }
    _unchanged(ddb, tbl)


def test_unknown_table_raw(endpoint):
    resp = call(endpoint, "GetItem", {"TableName": unique_name(), "Key": {"id": {"S": "x"}}})
    assert resp.status == 400
    assert resp.json() == {"__type": NOT_FOUND, "message": "Requested resource not found"}


def test_unknown_action(endpoint, ddb, tbl):
    resp = call(endpoint, "DropEverything", {"TableName": tbl})
    assert resp.status == 400
    assert resp.json() == {"__type": UNKNOWN_OP}
    _unchanged(ddb, tbl)


def test_missing_authorization(endpoint, tbl):
    resp = call(endpoint, "GetItem", {"TableName": tbl, "Key": {"id": {"S": "keep"}}}, signed=False)
    assert resp.status == 400
    assert resp.json() == {
        "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
        "message": "Request is missing Authentication Token",
    }


def test_wrong_content_type_and_method(endpoint):
    resp = call(endpoint, "ListTables", {}, content_type="text/plain")
    assert resp.status == 404
    assert resp.body == b"<UnknownOperationException/>\n"
    with Connection(endpoint) as conn:
        resp = conn.request(None, b"", method="PUT")
    assert resp.status == 404


def test_health_check_get(endpoint):
    with Connection(endpoint) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = conn.read_response()
    assert resp is not None and resp.status == 200
    assert resp.body.startswith(b"healthy: ")


def test_garbage_bytes_get_400_and_close(endpoint, ddb, tbl):
    with Connection(endpoint) as conn:
        conn.send(b"\x16\x03\x01\x02\x00garbage that is not http\r\n\r\n")
        resp = conn.read_response()
        assert resp is not None and resp.status == 400
        assert conn.read_response() is None  # closed
    _unchanged(ddb, tbl)


def test_truncated_request_then_close(endpoint, ddb, tbl):
    body = json.dumps({"TableName": tbl, "Item": {"id": {"S": "keep"}, "v": {"N": "999"}}}).encode()
    data = build_request("DynamoDB_20120810.PutItem", body)
    with Connection(endpoint) as conn:
        conn.send(data[:-10])
    _unchanged(ddb, tbl)


def test_oversized_body_gets_413(endpoint, ddb, tbl):
    head = (
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
        "X-Amz-Target: DynamoDB_20120810.PutItem\r\nContent-Length: %d\r\n\r\n" % (17 * 1024 * 1024)
    ).encode()
    with Connection(endpoint) as conn:
        conn.send(head)
        chunk = b"x" * 65536
        try:
            for _ in range(17 * 16 + 1):
                conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp = conn.read_response()
        except (ConnectionResetError, ConnectionError):
            resp = None
    if resp is not None:
        assert resp.status == 413
    _unchanged(ddb, tbl)


def test_pipelined_requests_answer_in_order(endpoint, tbl):
    names = [f"pipe-{i}" for i in range(20)]
    data = b"".join(
        build_request("DynamoDB_20120810.PutItem", json.dumps({"TableName": tbl, "Item": {"id": {"S": n}, "i": {"N": str(i)}}}).encode())
        for i, n in enumerate(names)
    )
    data += b"".join(
        build_request("DynamoDB_20120810.GetItem", json.dumps({"TableName": tbl, "Key": {"id": {"S": n}}}).encode()) for n in names
    )
    with Connection(endpoint) as conn:
        conn.send(data)
        puts = [conn.read_response() for _ in names]
        gets = [conn.read_response() for _ in names]
    assert all(r is not None and r.status == 200 for r in puts)
    assert [r.json()["Item"]["i"]["N"] for r in gets] == [str(i) for i in range(len(names))]


def test_connection_close_honoured(endpoint, tbl):
    with Connection(endpoint) as conn:
        resp = conn.request("DynamoDB_20120810.ListTables", b"{}", extra={"Connection": "close"})
        assert resp.status == 200
        assert conn.read_response() is None


def test_half_open_connections_do_not_block_others(endpoint, tbl):
    socks = []
    try:
        for _ in range(20):
            s = socket.create_connection(address(endpoint))
            s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            socks.append(s)
        resp = call(endpoint, "GetItem", {"TableName": tbl, "Key": {"id": {"S": "keep"}}})
        assert resp.status == 200
    finally:
        for s in socks:
            s.close()
