"""The replica-management API of Global Tables on two real regions
(``LocalCluster``: nodes, routers, one replicator each), through boto3.

* the legacy (2017.11.29) calls: CreateGlobalTable / DescribeGlobalTable /
  UpdateGlobalTable / ListGlobalTables, over existing tables in each region;
* UpdateTable ``ReplicaUpdates`` ``Update`` (per-replica settings) and the
  request checks of ``ReplicaUpdates``;
* the stream a table gets when it becomes global;
* adding a replica to a table of 100,000 items: the backfill reports its
  progress while CREATING, completes, then live changes flow.

Expected messages are DynamoDB's where live replies were recorded
(docs/compatibility.md, Global Tables).
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from meridian.cluster.control_client import ControlClient
from meridian.cluster.procs import LocalCluster
from tests.conftest import make_client, unique_table_name
from tests.waiting import wait_until

A, B = "region-a", "region-b"
TIMEOUT_S = 30.0
POLL_S = 0.05
NEW_AND_OLD = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
#: The big backfill: items, and the loaders writing them with BatchWriteItem.
BACKFILL_ITEMS = 100_000
LOADER_THREADS = 4
BATCH_ITEMS_MAX = 25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([A, B], 2, None, tmp_path_factory.mktemp("global-api"), sync=False) as c:
        yield c


@pytest.fixture(scope="module")
def ddb(cluster):
    return {region: make_client(cluster.endpoints[region]) for region in (A, B)}


@pytest.fixture(scope="module")
def control(cluster):
    with ControlClient(replicators=cluster.replicator_addresses) as client:
        yield client


def _create(client, name: str, *, stream: bool = True, billing: str = "PAY_PER_REQUEST") -> None:
    extra = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
    if billing == "PROVISIONED":
        extra["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode=billing,
        **extra,
    )


def _error(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(Exception) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error.get("Message")


def _wait(what: str, probe, timeout_s: float = TIMEOUT_S):
    """Poll ``probe()`` until it returns something true; return that."""
    return wait_until(probe, timeout_s, POLL_S, what)


def _global_status(client, name: str) -> str | None:
    """The global table's status as one region sees it (None: not a global table there, yet)."""
    try:
        return client.describe_global_table(GlobalTableName=name)["GlobalTableDescription"]["GlobalTableStatus"]
    except client.exceptions.GlobalTableNotFoundException:
        return None


def _group_active(ddb, name: str, regions: tuple[str, ...]) -> bool:
    """Every region's routers see the group ACTIVE (each region's catalog moves on its own)."""
    return all(_global_status(ddb[region], name) == "ACTIVE" for region in regions)


def _table(client, name: str) -> dict:
    return client.describe_table(TableName=name)["Table"]


def _replicated(ddb, source: str, target: str, name: str, pk: str) -> None:
    ddb[source].put_item(TableName=name, Item={"pk": {"S": pk}, "from": {"S": source}})
    _wait(f"{pk} in {target}", lambda: "Item" in ddb[target].get_item(TableName=name, Key={"pk": {"S": pk}}))


# --- the legacy API (2017.11.29) ---------------------------------------------------


def test_create_global_table_joins_the_existing_tables_of_each_region(ddb):
    name = unique_table_name("legacy")
    for region in (A, B):
        _create(ddb[region], name)
    described = ddb[A].create_global_table(GlobalTableName=name, ReplicationGroup=[{"RegionName": B}, {"RegionName": A}])
    description = described["GlobalTableDescription"]
    assert description["GlobalTableStatus"] == "CREATING"
    assert description["ReplicationGroup"] == [{"RegionName": B}, {"RegionName": A}]
    assert description["GlobalTableArn"] == f"arn:aws:dynamodb::000000000000:global-table/{name}"
    assert description["GlobalTableName"] == name and description["CreationDateTime"].timestamp() > 0
    _wait("the global table ACTIVE", lambda: _group_active(ddb, name, (A, B)))
    for region in (A, B):
        seen = ddb[region].describe_global_table(GlobalTableName=name)["GlobalTableDescription"]
        assert {r["RegionName"] for r in seen["ReplicationGroup"]} == {A, B}
        table = _table(ddb[region], name)  # legacy tables stay plain tables in DescribeTable
        assert table["TableStatus"] == "ACTIVE" and "Replicas" not in table and "GlobalTableVersion" not in table
        assert table["TableArn"].split(":")[3] == region
    _replicated(ddb, A, B, name, "from-a")
    _replicated(ddb, B, A, name, "from-b")
    assert _error(ddb[A].create_global_table, GlobalTableName=name, ReplicationGroup=[{"RegionName": A}]) == (
        "GlobalTableAlreadyExistsException", f"Global table with name: '{name}' already exists."
    )
    listed = ddb[B].list_global_tables(RegionName=A)["GlobalTables"]
    assert {"GlobalTableName": name, "ReplicationGroup": [{"RegionName": B}, {"RegionName": A}]} in listed


def test_update_global_table_adds_and_removes_a_region(ddb):
    name = unique_table_name("legacy-grow")
    for region in (A, B):
        _create(ddb[region], name)
    created = ddb[A].create_global_table(GlobalTableName=name, ReplicationGroup=[{"RegionName": A}])
    assert created["GlobalTableDescription"]["GlobalTableStatus"] == "ACTIVE"
    assert _error(ddb[A].update_global_table, GlobalTableName=name, ReplicaUpdates=[{"Delete": {"RegionName": B}}]) == (
        "ReplicaNotFoundException", f"Replica not found in region: '{B}'."
    )
    ddb[A].put_item(TableName=name, Item={"pk": {"S": "before"}})  # written before B joins: backfilled
    updated = ddb[A].update_global_table(GlobalTableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])
    assert updated["GlobalTableDescription"]["GlobalTableStatus"] == "UPDATING"
    _wait("B in the group", lambda: _group_active(ddb, name, (A, B)))
    assert "Item" in ddb[B].get_item(TableName=name, Key={"pk": {"S": "before"}})
    assert _error(ddb[A].update_global_table, GlobalTableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}]) == (
        "ReplicaAlreadyExistsException", f"Replica already exists in region: '{B}'."
    )
    ddb[A].update_global_table(GlobalTableName=name, ReplicaUpdates=[{"Delete": {"RegionName": B}}])

    def b_left() -> bool:
        group = ddb[A].describe_global_table(GlobalTableName=name)["GlobalTableDescription"]["ReplicationGroup"]
        return group == [{"RegionName": A}] and _global_status(ddb[A], name) == "ACTIVE"

    _wait("B out of the group", b_left)
    # Legacy removal leaves B's table in place, as a table of its own.
    assert _table(ddb[B], name)["TableStatus"] == "ACTIVE"
    _wait("B on its own", lambda: _global_status(ddb[B], name) is None)
    ddb[A].put_item(TableName=name, Item={"pk": {"S": "after"}})
    time.sleep(1.0)  # the point: a second in which A's write may not reach B (no longer a replica)
    assert "Item" not in ddb[B].get_item(TableName=name, Key={"pk": {"S": "after"}})
    assert "Item" in ddb[B].get_item(TableName=name, Key={"pk": {"S": "before"}})


def test_create_global_table_checks_every_regions_table(ddb):
    missing = unique_table_name("legacy-missing")
    _create(ddb[A], missing)
    assert _error(ddb[A].create_global_table, GlobalTableName=missing,
                  ReplicationGroup=[{"RegionName": A}, {"RegionName": B}]) == (
        "TableNotFoundException", f"Table not found: Table: '{missing}' not found in region: '{B}'."
    )  # fmt: skip
    assert _error(ddb[B].create_global_table, GlobalTableName=missing, ReplicationGroup=[{"RegionName": B}]) == (
        "TableNotFoundException", f"Table not found: Table: '{missing}' not found in region: '{B}'."
    )
    no_stream = unique_table_name("legacy-no-stream")
    _create(ddb[A], no_stream)
    _create(ddb[B], no_stream, stream=False)
    code, message = _error(ddb[A].create_global_table, GlobalTableName=no_stream,
                           ReplicationGroup=[{"RegionName": A}, {"RegionName": B}])  # fmt: skip
    assert code == "ValidationException" and "NEW_AND_OLD_IMAGES" in message and B in message
    not_empty = unique_table_name("legacy-not-empty")
    for region in (A, B):
        _create(ddb[region], not_empty)
    ddb[B].put_item(TableName=not_empty, Item={"pk": {"S": "x"}})
    code, message = _error(ddb[A].create_global_table, GlobalTableName=not_empty,
                           ReplicationGroup=[{"RegionName": A}, {"RegionName": B}])  # fmt: skip
    assert code == "ValidationException" and "not empty" in message
    code, message = _error(ddb[A].create_global_table, GlobalTableName=not_empty,
                           ReplicationGroup=[{"RegionName": A}, {"RegionName": "us-fake-1"}])  # fmt: skip
    assert (code, message) == ("ValidationException", (
        "Region us-fake-1 is not supported. The latest version of global tables are only supported in the "
        f"following regions: [{A}, {B}]"
    ))  # fmt: skip
    for name in (missing, no_stream, not_empty):  # nothing was changed
        assert _error(ddb[A].describe_global_table, GlobalTableName=name)[0] == "GlobalTableNotFoundException"


def test_legacy_calls_on_tables_that_are_not_legacy_global_tables(ddb):
    name = unique_table_name("current")
    _create(ddb[A], name, stream=False)
    ddb[A].update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])  # a 2019.11.21 one
    for table in (name, "no-such-table"):
        assert _error(ddb[A].describe_global_table, GlobalTableName=table) == (
            "GlobalTableNotFoundException", f"Global table not found: Global table with name: '{table}' does not exist."
        )
        code, _ = _error(ddb[A].update_global_table, GlobalTableName=table, ReplicaUpdates=[{"Delete": {"RegionName": B}}])
        assert code == "GlobalTableNotFoundException"
    assert name not in {t["GlobalTableName"] for t in ddb[A].list_global_tables()["GlobalTables"]}
    assert _error(ddb[A].update_global_table, GlobalTableName=name, ReplicaUpdates=[]) == (
        "ValidationException", "One or more parameter values were invalid"
    )
    assert _error(ddb[A].list_global_tables, RegionName="us-fake-9") == ("InternalServerError", "Internal server error")


def test_list_global_tables_pages_by_name(ddb):
    prefix = unique_table_name("list")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        _create(ddb[A], name)
        ddb[A].create_global_table(GlobalTableName=name, ReplicationGroup=[{"RegionName": A}])
    first = ddb[A].list_global_tables(ExclusiveStartGlobalTableName=f"{prefix}-", Limit=2)
    assert [t["GlobalTableName"] for t in first["GlobalTables"]] == names[:2]
    assert first["LastEvaluatedGlobalTableName"] == names[1]
    rest = ddb[A].list_global_tables(ExclusiveStartGlobalTableName=names[1], Limit=2)
    assert rest["GlobalTables"][0] == {"GlobalTableName": names[2], "ReplicationGroup": [{"RegionName": A}]}
    assert names[0] not in {t["GlobalTableName"] for t in ddb[A].list_global_tables(RegionName=B)["GlobalTables"]}


# --- UpdateTable ReplicaUpdates ------------------------------------------------------


def _make_global(ddb, name: str, billing: str = "PAY_PER_REQUEST") -> dict:
    _create(ddb[A], name, stream=False, billing=billing)
    answer = ddb[A].update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])["TableDescription"]
    _wait(f"{name} ACTIVE", lambda: _table(ddb[A], name)["TableStatus"] == "ACTIVE")
    return answer


def test_a_table_becoming_global_streams_new_and_old_images_everywhere(ddb):
    name = unique_table_name("stream")
    answer = _make_global(ddb, name)
    assert answer["StreamSpecification"] == NEW_AND_OLD and answer["LatestStreamArn"].startswith(answer["TableArn"])
    for region in (A, B):
        table = _table(ddb[region], name)
        assert table["StreamSpecification"] == NEW_AND_OLD and table["GlobalTableVersion"] == "2019.11.21"
        assert _error(ddb[region].update_table, TableName=name, StreamSpecification={"StreamEnabled": False}) == (
            "ValidationException",
            "One or more parameter values were invalid: Disabling Stream is not allowed for a Global Table replica.",
        )


def test_replica_update_sets_per_replica_throughput_and_table_class(ddb):
    name = unique_table_name("overrides")
    _make_global(ddb, name, billing="PROVISIONED")
    answer = ddb[A].update_table(TableName=name, ReplicaUpdates=[{"Update": {
        "RegionName": B, "ProvisionedThroughputOverride": {"ReadCapacityUnits": 10},
        "TableClassOverride": "STANDARD_INFREQUENT_ACCESS",
    }}])["TableDescription"]  # fmt: skip
    assert answer["TableStatus"] == "UPDATING"
    _wait("the update done", lambda: _table(ddb[A], name)["TableStatus"] == "ACTIVE")
    replica = _table(ddb[A], name)["Replicas"][0]
    assert replica["RegionName"] == B and replica["ReplicaStatus"] == "ACTIVE"
    assert replica["ProvisionedThroughputOverride"] == {"ReadCapacityUnits": 10}
    assert replica["ReplicaTableClassSummary"]["TableClass"] == "STANDARD_INFREQUENT_ACCESS"
    _wait("B's own view", lambda: _table(ddb[B], name)["ProvisionedThroughput"]["ReadCapacityUnits"] == 10)
    in_b = _table(ddb[B], name)
    assert in_b["ProvisionedThroughput"]["WriteCapacityUnits"] == 5
    assert in_b["TableClassSummary"]["TableClass"] == "STANDARD_INFREQUENT_ACCESS"
    assert _table(ddb[A], name)["ProvisionedThroughput"]["ReadCapacityUnits"] == 5  # A keeps the table's
    # The table's own value clears the override.
    ddb[A].update_table(TableName=name, ReplicaUpdates=[{"Update": {
        "RegionName": B, "ProvisionedThroughputOverride": {"ReadCapacityUnits": 5}}}])  # fmt: skip
    _wait("the override cleared", lambda: "ProvisionedThroughputOverride" not in _table(ddb[A], name)["Replicas"][0])
    _wait("B back to 5", lambda: _table(ddb[B], name)["ProvisionedThroughput"]["ReadCapacityUnits"] == 5)


def test_replica_updates_are_checked_as_dynamodb_does(ddb):
    name = unique_table_name("checks")
    _make_global(ddb, name)
    plain = unique_table_name("plain")
    _create(ddb[A], plain, stream=False)

    def replica_error(table: str, *updates, **extra) -> tuple[str, str]:
        return _error(ddb[A].update_table, TableName=table, ReplicaUpdates=list(updates), **extra)

    assert replica_error(name, {"Update": {"RegionName": "eu-fake-1", "TableClassOverride": "STANDARD"}}) == (
        "ValidationException",
        "Region eu-fake-1 is not supported. The latest version of global tables are only supported in the "
        f"following regions: [{A}, {B}]",
    )
    assert replica_error(name, {"Update": {"RegionName": B}}) == (
        "ValidationException", "There are no actions specified in the Replica Update Action of the request."
    )
    assert replica_error(name, {"Create": {"RegionName": B}, "Delete": {"RegionName": B}}) == (
        "ValidationException", "Update table operation with more than one type of replica actions not allowed."
    )
    assert replica_error(name, {"Create": {"RegionName": B}}, {"Delete": {"RegionName": B}}) == (
        "ValidationException", "Update table operation with more than one create or delete replica actions not allowed"
    )
    assert replica_error(name, {"Delete": {"RegionName": B}}, DeletionProtectionEnabled=True) == (
        "ValidationException",
        "One or more parameter values were invalid: Replica modification must be the only operation in the request",
    )
    assert replica_error(name, {"Create": {"RegionName": B}}) == (
        "ValidationException",
        f"Failed to create a the new replica of table with name: \u2018{name}\u2019 because one or more replicas "
        "already existed as tables.",
    )
    assert replica_error(plain, {"Update": {"RegionName": B, "TableClassOverride": "STANDARD"}}) == (
        "ValidationException",
        "Update global table operation failed because one or more replicas were not part of the global table. "
        f"Please retry the request without these replicas: [{B}].",
    )
    throughput_on_ppr = {"RegionName": B, "ProvisionedThroughputOverride": {"ReadCapacityUnits": 9}}
    assert replica_error(name, {"Update": throughput_on_ppr}) == (
        "ValidationException",
        "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
    )
    # B already holds a table of that name (its own): no replica over it.
    taken = unique_table_name("taken")
    for region in (A, B):
        _create(ddb[region], taken, stream=False)
    assert replica_error(taken, {"Create": {"RegionName": B}})[1].startswith("Failed to create a the new replica")


# --- a replica of a big table ----------------------------------------------------------


def _load(client, name: str, start: int, stop: int) -> None:
    for first in range(start, stop, BATCH_ITEMS_MAX):
        requests = [
            {"PutRequest": {"Item": {"pk": {"S": f"item-{i:06d}"}, "n": {"N": str(i)}, "pad": {"S": "x" * 40}}}}
            for i in range(first, min(stop, first + BATCH_ITEMS_MAX))
        ]
        while requests:
            left = client.batch_write_item(RequestItems={name: requests}).get("UnprocessedItems", {})
            requests = left.get(name, [])


def _count(client, name: str) -> int:
    """Items in a table: every page of a COUNT scan."""
    pages = client.get_paginator("scan").paginate(TableName=name, Select="COUNT", ConsistentRead=True)
    return sum(page["Count"] for page in pages)


@pytest.mark.slow
def test_a_replica_of_100k_items_is_backfilled_then_live_changes_flow(cluster, ddb, control, capsys):
    name = unique_table_name("big")
    _create(ddb[A], name, stream=False)
    started = time.monotonic()
    loaders = [make_client(cluster.endpoints[A]) for _ in range(LOADER_THREADS)]
    share = BACKFILL_ITEMS // LOADER_THREADS
    with concurrent.futures.ThreadPoolExecutor(LOADER_THREADS) as pool:
        for done in [pool.submit(_load, loaders[i], name, i * share, (i + 1) * share) for i in range(LOADER_THREADS)]:
            done.result()
    loaded = time.monotonic()
    ddb[A].update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": B}}])
    progress: list[str] = []

    def active() -> bool:
        replica = _table(ddb[A], name)["Replicas"][0]
        if "ReplicaStatusPercentProgress" in replica:
            assert replica["ReplicaStatus"] == "CREATING"
            if not progress or progress[-1] != replica["ReplicaStatusPercentProgress"]:
                progress.append(replica["ReplicaStatusPercentProgress"])
        return replica["ReplicaStatus"] == "ACTIVE"

    _wait("the replica ACTIVE", active, timeout_s=120)
    backfilled = time.monotonic()
    assert progress, "ReplicaStatusPercentProgress never seen while CREATING"
    assert [int(p) for p in progress] == sorted(int(p) for p in progress) and 0 < int(progress[-1]) < 100
    assert _count(ddb[B], name) == BACKFILL_ITEMS
    assert control.verify(name, timeout_s=30) == (True, [])
    ddb[A].put_item(TableName=name, Item={"pk": {"S": "item-000001"}, "n": {"N": "-1"}})
    _replicated(ddb, B, A, name, "after-backfill")
    _wait("the update in B", lambda: ddb[B].get_item(TableName=name, Key={"pk": {"S": "item-000001"}})["Item"]["n"]
          == {"N": "-1"})  # fmt: skip
    with capsys.disabled():
        print(f"\n100k backfill: load {loaded - started:.1f} s ({BACKFILL_ITEMS / (loaded - started):.0f} items/s), "
              f"replica ACTIVE after {backfilled - loaded:.1f} s, progress seen {progress}")  # fmt: skip
