"""A data folder from the previous release, opened by today's ``meridian serve`` (issue 21).

``tests/fixtures/format1`` was written by commit 7e82490's own ``meridian
serve`` (``tests/fixtures/make_format1.py``).  Today's server, started on a
copy, migrates it in place, says so on stderr, and then every table, item
and index reads back through the DynamoDB API exactly as it was written;
deleted items stay deleted.  A folder from a newer Meridian is refused in
one line with its exit code.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess, free_port, wait_for_http_ok
from meridian.cluster.startup_errors import FailureKind
from meridian.model.records import pack_u64
from meridian.node import data_format
from meridian.node.database import open_database
from tests.conftest import make_client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((FIXTURES / "format1.json").read_text())
READY_TIMEOUT_S = 60


def _wire(value: object) -> object:
    """boto3's attribute value as DynamoDB JSON (binary as base64), sets sorted."""
    (tag, inner), = value.items()  # type: ignore[union-attr]
    if tag == "B":
        return {tag: base64.b64encode(inner).decode()}
    if tag == "BS":
        return {tag: sorted(base64.b64encode(b).decode() for b in inner)}
    if tag in ("SS", "NS"):
        return {tag: sorted(inner)}
    if tag == "L":
        return {tag: [_wire(v) for v in inner]}
    if tag == "M":
        return {tag: {k: _wire(v) for k, v in inner.items()}}
    return value


def _same(item: dict) -> str:
    return json.dumps({name: _wire(value) for name, value in item.items()}, sort_keys=True)


def _expected(item: dict) -> str:
    def sort_sets(value: dict) -> dict:
        (tag, inner), = value.items()
        if tag in ("SS", "NS", "BS"):
            return {tag: sorted(inner)}
        if tag == "L":
            return {tag: [sort_sets(v) for v in inner]}
        if tag == "M":
            return {tag: {k: sort_sets(v) for k, v in inner.items()}}
        return value

    return json.dumps({name: sort_sets(value) for name, value in item.items()}, sort_keys=True)


def _binary(item: dict) -> dict:
    """An expected item as boto3 takes it (binary as bytes)."""
    return {k: ({"B": base64.b64decode(v["B"])} if "B" in v else v) for k, v in item.items()}


@pytest.fixture
def served_format1(tmp_path):
    data = tmp_path / "format1"
    shutil.copytree(FIXTURES / "format1", data)
    port = free_port()
    proc = ManagedProcess(["serve", "--port", str(port), "--data-dir", str(data)], log_path=tmp_path / "serve.log")
    try:
        wait_for_http_ok(f"http://127.0.0.1:{port}/health", READY_TIMEOUT_S, process=proc)
        yield proc, make_client(f"http://127.0.0.1:{port}"), data
    finally:
        proc.terminate()


def test_a_format_1_folder_is_migrated_and_reads_back_item_for_item(served_format1):
    proc, ddb, data = served_format1
    log = proc.log_tail(20)
    assert f"meridian serve: migrating data folder {data} from format 1 to {data_format.FORMAT_CURRENT}" in log
    assert sorted(ddb.list_tables()["TableNames"]) == sorted(EXPECTED["tables"])
    for table, items in EXPECTED["tables"].items():
        scanned = [item for page in ddb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
        assert sorted(map(_same, scanned)) == sorted(map(_expected, items)), table
        keys = [a["AttributeName"] for a in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
        for item in items:
            got = ddb.get_item(TableName=table, Key={k: _binary(item)[k] for k in keys}, ConsistentRead=True)
            assert _same(got["Item"]) == _expected(item)
        assert ddb.describe_table(TableName=table)["Table"]["ItemCount"] == len(items)
    for table, key in EXPECTED["deleted"]:
        assert "Item" not in ddb.get_item(TableName=table, Key=key)
    # The global secondary index format 1 maintained still answers.
    year = EXPECTED["tables"]["Music"][0]["year"]
    answer = ddb.query(TableName="Music", IndexName="by-year", KeyConditionExpression="#y = :y",
                       ExpressionAttributeNames={"#y": "year"}, ExpressionAttributeValues={":y": year})  # fmt: skip
    expected = [item for item in EXPECTED["tables"]["Music"] if item["year"] == year]
    assert sorted(map(_same, answer["Items"])) == sorted(map(_expected, expected))
    # The migrated folder takes writes, and a restart finds it already current.
    ddb.put_item(TableName="Counters", Item={"id": {"N": "100"}, "value": {"N": "1"}})
    proc.restart()
    wait_for_http_ok(f"{ddb.meta.endpoint_url}/health", READY_TIMEOUT_S, process=proc)
    assert ddb.get_item(TableName="Counters", Key={"id": {"N": "100"}})["Item"]["value"] == {"N": "1"}
    second_start = proc.log_tail(20).rsplit("\n--- ", 1)[1]  # the log is appended to, one header per start
    assert "listening on" in second_start and "migrating" not in second_start


def test_a_folder_from_a_newer_meridian_is_refused_in_one_line(tmp_path):
    data = tmp_path / "future"
    db = open_database(str(data))
    db.get_column_family("meta").put(data_format.META_FORMAT, pack_u64(data_format.FORMAT_CURRENT + 1))
    db.close()
    del db
    done = subprocess.run([*MERIDIAN_COMMAND, "serve", "--port", str(free_port()), "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == FailureKind.FORMAT_TOO_NEW.exit_code, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"meridian serve: data folder {data} was written by a newer Meridian "
                           f"(format {data_format.FORMAT_CURRENT + 1}; Meridian ")  # fmt: skip
    assert "upgrade Meridian" in line
