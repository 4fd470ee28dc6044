"""The run directory's files (meridian.lab.load.history) and the workload's request signing (client)."""

from __future__ import annotations

import datetime

import botocore.auth
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meridian.lab.load import history
from meridian.lab.load.client import SigV4Signer, error_name
from meridian.lab.load.history import RunWriter, read_jsonl, write_run_json, writes_from_history


def _put(t, region, key, version, ok, latency_ms=1.0):
    return {"t": t, "region": region, "op": "put", "key": key, "ok": ok, "error": None if ok else "Timeout",
            "latency_ms": latency_ms, "version": version}  # fmt: skip


def test_every_line_written_is_read_back_in_order(tmp_path, monkeypatch):
    # Many hand-offs to the writer thread through a tiny queue: some find it
    # full and wait for room (a stall), none is lost or reordered.
    monkeypatch.setattr(history, "BUFFER_BYTES_MAX", 512)
    monkeypatch.setattr(history, "WRITE_QUEUE_BUFFERS_MAX", 2)
    writer = RunWriter(tmp_path / "run")
    records = [_put(1000.0 + i, "a", f"a#{i % 7}", i, i % 3 != 0) for i in range(2000)]
    for record in records:
        writer.history.append(record)
    writer.visibility.append({"t": 1.0, "source": "a", "target": "b", "key": "a#1", "version": 3, "visible_ms": 12.5})
    writer.close()
    assert list(read_jsonl(tmp_path / "run" / "history.jsonl")) == records
    assert list(read_jsonl(tmp_path / "run" / "visibility.jsonl"))[0]["visible_ms"] == 12.5
    assert (tmp_path / "run" / "lag.jsonl").read_bytes() == b""
    assert writer.history.lines == 2000


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(orjson.dumps(_put(1.0, "a", "a#1", 1, True)) + b"\n" + b'{"t": 2.0, "regi')
    assert len(list(read_jsonl(path))) == 1


def test_run_json_has_the_run_directory_format(tmp_path):
    write_run_json(
        tmp_path, kind="load", scenario=None, seed=7, started_at=1.5, ended_at=9.5,
        regions={"a": "http://127.0.0.1:8000"}, target="embedded", table="t", args={"rate": 10},
    )  # fmt: skip
    document = orjson.loads((tmp_path / "run.json").read_bytes())
    assert document == {
        "kind": "load", "scenario": None, "seed": 7, "started_at": 1.5, "ended_at": 9.5,
        "regions": {"a": "http://127.0.0.1:8000"}, "target": "embedded", "table": "t", "args": {"rate": 10},
    }  # fmt: skip
    assert not list(tmp_path.glob("*.partial"))


def test_writes_are_rebuilt_from_the_history(tmp_path):
    records = [
        _put(10.0, "a", "a#1", 101, True),
        _put(10.1, "a", "a#1", 102, False),  # sent, never acknowledged
        _put(10.0, "b", "conflict#0", 101, True, latency_ms=500.0),  # answered at 10.5
        _put(10.2, "a", "conflict#0", 101, True),  # answered at 10.201: before b's
        {"t": 10.3, "region": "b", "op": "get", "key": "a#1", "ok": True, "error": None, "latency_ms": 1.0, "version": 101},
    ]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    acknowledged, attempted = writes_from_history(path)
    assert acknowledged == {"a#1": (101, "a"), "conflict#0": (101, "b")}
    assert attempted == {"a#1": {"a": 102}, "conflict#0": {"b": 101, "a": 101}}


def test_requests_are_signed_exactly_as_botocore_signs_them(monkeypatch):
    body = b'{"TableName":"t","Key":{"pk":{"S":"a#1"}}}'
    now_s = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
    ours = SigV4Signer("eu-west-1", "AKIDEXAMPLE", "secret").headers("127.0.0.1:8001", "DynamoDB_20120810.GetItem", body, now_s)
    assert ours["X-Amz-Date"] == "20261118T110640Z"
    request = AWSRequest(method="POST", url="http://127.0.0.1:8001/", data=body, headers={
        "Content-Type": ours["Content-Type"], "X-Amz-Target": ours["X-Amz-Target"],
    })  # fmt: skip
    # botocore reads the clock through this function: give it the same instant.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2026, 11, 18, 11, 6, 40))
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "dynamodb", "eu-west-1").add_auth(request)
    assert request.headers["X-Amz-Date"] == ours["X-Amz-Date"]
    assert request.headers["Authorization"] == ours["Authorization"]


def test_error_names_are_the_short_type():
    assert error_name("com.amazonaws.dynamodb.v20120810#ResourceNotFoundException") == "ResourceNotFoundException"
    assert error_name("InternalServerError") == "InternalServerError"
