"""``meridian streams tail`` against ``meridian serve`` and a two-node local
cluster (two shards: the tail follows both): real processes, real streams.

The servers sweep Time to Live every 0.5 s, so a TTL deletion shows up in the
tail marked as the service's.  Records of one item come out in order; those
of items on different nodes (shards) may interleave in any order.  Each tail runs as its own process (output to
a log file, unbuffered) and is stopped by PID when its test ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from meridian.cluster.procs import ManagedProcess
from tests.conftest import make_client, unique_table_name
from tests.ttl_servers import ttl_endpoint
from tests.waiting import wait_until

TTL_INTERVAL_S = 0.5
TIMEOUT_S = 20.0


@pytest.fixture(scope="module", params=["embedded", "cluster"])
def endpoint(request, tmp_path_factory) -> str:
    return ttl_endpoint(request, tmp_path_factory, TTL_INTERVAL_S)


@pytest.fixture
def tail(request, tmp_path, endpoint):
    """Start ``meridian streams tail`` on a table; returns a function reading its lines so far."""

    def start(table: str, *extra: str):
        log = tmp_path / f"tail-{table}.log"
        process = ManagedProcess(["streams", "tail", "--endpoint", endpoint, "--table", table, *extra],
                                 log_path=log, name="tail")  # fmt: skip
        request.addfinalizer(process.terminate)
        return lambda: _lines(log), process

    return start


def _lines(log: Path) -> list[str]:
    """The tail's output lines (the log's first line is ManagedProcess's header)."""
    return [line for line in log.read_text().splitlines() if not line.startswith("--- ")]


def _create(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def test_the_tail_prints_every_record_with_folded_images_and_marks_ttl_deletions(endpoint, tail):
    ddb = make_client(endpoint)
    name = unique_table_name("tail")
    _create(ddb, name)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "n": {"N": "1"}, "tags": {"SS": ["x"]}})
    lines, process = tail(name)
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "n": {"N": "2"}, "tags": {"SS": ["x"]}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}})
    expires = int(time.time()) - 60
    ddb.put_item(TableName=name, Item={"pk": {"S": "old"}, "expires": {"N": str(expires)}})
    wait_until(lambda: len(lines()) >= 5, TIMEOUT_S, 0.1, "five lines from the tail")
    got = [line.split("  ", 1)[1] for line in lines()]  # without the time
    assert len(got) == 5
    assert [line for line in got if '{pk: "a"}' in line] == [
        'INSERT  {pk: "a"}  new {pk: "a", n: 1, tags: <<"x">>}',
        'MODIFY  {pk: "a"}  old {pk: "a", n: 1, tags: <<"x">>}  new {pk: "a", n: 2, tags: <<"x">>}',
        'REMOVE  {pk: "a"}  old {pk: "a", n: 2, tags: <<"x">>}',
    ]
    assert [line for line in got if '{pk: "old"}' in line] == [
        f'INSERT  {{pk: "old"}}  new {{pk: "old", expires: {expires}}}',
        f'REMOVE  {{pk: "old"}}  old {{pk: "old", expires: {expires}}}  TTL: dynamodb.amazonaws.com',
    ]
    assert process.alive


def test_from_latest_prints_only_what_comes_after_it_started(endpoint, tail):
    ddb = make_client(endpoint)
    name = unique_table_name("tail-latest")
    _create(ddb, name)
    ddb.put_item(TableName=name, Item={"pk": {"S": "before"}})
    lines, _ = tail(name, "--from", "latest")
    # The tail positions itself at LATEST once started: wait for its first
    # iterator by waiting for a record written afterwards, repeated until seen.
    marker = 0

    def seen() -> bool:
        nonlocal marker
        marker += 1
        ddb.put_item(TableName=name, Item={"pk": {"S": f"after-{marker}"}})
        return any("after-" in line for line in lines())

    wait_until(seen, TIMEOUT_S, 0.5, "a record written after the tail started")
    assert not any('"before"' in line for line in lines())


def test_a_table_without_a_stream_ends_the_tail_with_a_hint(endpoint, tail):
    ddb = make_client(endpoint)
    name = unique_table_name("tail-none")
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    lines, process = tail(name)
    assert process.wait(TIMEOUT_S) == 2
    assert any("has no stream" in line for line in lines())
