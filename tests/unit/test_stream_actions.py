"""The DynamoDB Streams actions over a scripted storage, with a clock the test moves.

The storage double (``FakeStreams``) answers ``stream_shards`` and
``read_stream`` as the nodes' seam does (``model/streams.py``): per node,
shards by period, records with node-wide sequences, closed shards, trimmed
periods.  So the actions' own rules (listing, paging, parents, iterator
positions, end of shard, expiry, every refusal and its message) are checked
without waiting out shard periods, retention or the iterator's 15 minutes;
tests/compat/test_streams.py runs the same API against real nodes.
"""

from __future__ import annotations

import orjson
import pytest

from meridian.model import limits
from meridian.model.errors import (
    ExpiredIteratorException,
    ResourceNotFoundException,
    TrimmedDataAccessException,
    ValidationException,
)
from meridian.model.ops import CatalogEntry, TableStats
from meridian.model.ring import Ring
from meridian.model.streams import (
    ShardState,
    StreamEvent,
    StreamPage,
    StreamRead,
    StreamRecord,
    StreamShards,
    format_sequence_number,
    node_tag,
    stream_id_from_label,
)
from meridian.router import stream_catalog
from meridian.router.actions import ACTIONS, STREAM_ACTIONS
from meridian.router.actions import streams as stream_actions
from meridian.router.actions import tables as table_actions
from meridian.router.catalog import Catalog
from meridian.router.context import RouterContext
from meridian.router.stream_ids import shard_id
from meridian.router.table_record import Table
from meridian.router.validation import validate_request, validate_stream_request

RETENTION_S = 3600.0
NODES = ["node-a", "node-b"]


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1_800_000_000.0

    def time(self) -> float:
        return self.now_s


class FakeNodeStream:
    """One node's records of one stream."""

    def __init__(self) -> None:
        self.periods: dict[int, list[StreamRecord]] = {}
        self.closed: set[int] = set()
        self.trimmed_through = 0


class FakeStreams:
    """The storage seam: an in-memory catalog, and scripted streams per node."""

    def __init__(self) -> None:
        self.node_ids = list(NODES)
        self.entries: dict[str, CatalogEntry] = {}
        self.streams: dict[tuple[str, int, int], FakeNodeStream] = {}
        self.sequence = {node: 0 for node in NODES}  # each node's change-log sequence (all tables)
        self.durable = {node: 0 for node in NODES}

    async def catalog_put(self, entry: CatalogEntry) -> None:
        self.entries[entry.name] = entry

    async def catalog_list(self) -> list[CatalogEntry]:
        return list(self.entries.values())

    async def table_stats(self, table_id: int) -> TableStats:
        return TableStats()

    def stream(self, node: str, table_id: int, stream_id: int) -> FakeNodeStream:
        return self.streams.setdefault((node, table_id, stream_id), FakeNodeStream())

    def add(self, node: str, table_id: int, stream_id: int, period: int, event: StreamEvent, key: str,
            old: dict | None = None, new: dict | None = None, created_ms: int = 1_800_000_000_000,
            by_service: bool = False) -> int:  # fmt: skip
        self.sequence[node] += 3  # other tables' changes share the node's log
        self.durable[node] = self.sequence[node]
        record = StreamRecord(self.sequence[node], event, created_ms, orjson.dumps({"id": {"S": key}}),
                              None if old is None else orjson.dumps(old), None if new is None else orjson.dumps(new),
                              by_service)  # fmt: skip
        self.stream(node, table_id, stream_id).periods.setdefault(period, []).append(record)
        return record.sequence

    async def stream_shards(self, node_id: str, table_id: int, stream_id: int) -> StreamShards:
        stream = self.stream(node_id, table_id, stream_id)
        shards = tuple(
            ShardState(period, period in stream.closed, records[-1].sequence if records else 0)
            for period, records in sorted(stream.periods.items())
            if period > stream.trimmed_through
        )
        return StreamShards(shards, self.durable[node_id])

    async def read_stream(self, node_id: str, read: StreamRead) -> StreamPage:
        stream = self.stream(node_id, read.table_id, read.stream_id)
        if read.period <= stream.trimmed_through:
            raise TrimmedDataAccessException()
        after = [r for r in stream.periods.get(read.period, []) if r.sequence > read.after_sequence]
        page = after[: read.records_max]
        last = page[-1].sequence if page else read.after_sequence
        return StreamPage(tuple(page), last, read.period in stream.closed and len(page) == len(after))


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    for module in (stream_catalog, stream_actions, table_actions):
        monkeypatch.setattr(module, "time", fake)
    return fake


@pytest.fixture
async def ctx(clock):
    storage = FakeStreams()
    catalog = Catalog(storage, "us-east-1", shared=False)
    await catalog.start()
    context = RouterContext(storage=storage, catalog=catalog, ring=Ring(storage.node_ids), region="us-east-1",
                            address="127.0.0.1:0", stream_retention_s=RETENTION_S)  # fmt: skip
    yield context
    await catalog.stop()


async def call(ctx: RouterContext, action: str, body: dict) -> dict:
    if action in STREAM_ACTIONS:
        validate_stream_request(action, body)
        return orjson.loads(orjson.dumps(await STREAM_ACTIONS[action](ctx, body)))
    validate_request(action, body)
    return await ACTIONS[action](ctx, body)


async def create(ctx: RouterContext, name: str, view_type: str | None = "NEW_AND_OLD_IMAGES") -> dict:
    body = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }
    if view_type is not None:
        body["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    return (await call(ctx, "CreateTable", body))["TableDescription"]


async def set_stream(ctx: RouterContext, name: str, view_type: str | None) -> dict:
    spec = {"StreamEnabled": False} if view_type is None else {"StreamEnabled": True, "StreamViewType": view_type}
    return (await call(ctx, "UpdateTable", {"TableName": name, "StreamSpecification": spec}))["TableDescription"]


async def expect(error: type, message: str | None, ctx: RouterContext, action: str, body: dict) -> None:
    with pytest.raises(error) as info:
        await call(ctx, action, body)
    if message is not None:
        assert info.value.message == message


def ids(ctx: RouterContext, arn: str) -> tuple[int, int]:
    table = ctx.catalog.get_cached(arn.split("table/")[1].split("/")[0])
    return table.table_id, stream_id_from_label(arn.rsplit("/", 1)[1])


# --- ListStreams, stream lifecycle ------------------------------------------------------
async def test_a_table_without_a_stream_lists_none(ctx):
    await create(ctx, "plain", None)
    assert await call(ctx, "ListStreams", {"TableName": "plain"}) == {"Streams": []}
    await expect(ResourceNotFoundException, "Requested resource not found: Table: nope not found",
                 ctx, "ListStreams", {"TableName": "nope"})


async def test_disable_and_reenable_make_a_new_stream(ctx, clock):
    first = (await create(ctx, "music"))["LatestStreamArn"]
    listed = await call(ctx, "ListStreams", {"TableName": "music"})
    assert listed == {"Streams": [{"StreamArn": first, "TableName": "music", "StreamLabel": first.rsplit("/", 1)[1]}]}

    clock.now_s += 1
    disabled = await set_stream(ctx, "music", None)
    assert "StreamSpecification" not in disabled and disabled["LatestStreamArn"] == first
    described = (await call(ctx, "DescribeStream", {"StreamArn": first}))["StreamDescription"]
    assert described["StreamStatus"] == "DISABLED" and described["StreamViewType"] == "NEW_AND_OLD_IMAGES"

    clock.now_s += 1
    second = (await set_stream(ctx, "music", "KEYS_ONLY"))["LatestStreamArn"]
    assert second != first
    arns = [s["StreamArn"] for s in (await call(ctx, "ListStreams", {"TableName": "music"}))["Streams"]]
    assert arns == [first, second]
    statuses = [(await call(ctx, "DescribeStream", {"StreamArn": arn}))["StreamDescription"]["StreamStatus"]
                for arn in arns]  # fmt: skip
    assert statuses == ["DISABLED", "ENABLED"]
    # The past stream lives in the stored record (what every router of the region reads).
    stored = ctx.storage.entries["music"].description
    table_id = stored["table_id"]
    assert stored["past_streams"] == [{"label": first.rsplit("/", 1)[1], "view_type": "NEW_AND_OLD_IMAGES",
                                       "disabled_s": clock.now_s - 1, "table_id": table_id,
                                       "key_schema": stored["key_schema"]}]  # fmt: skip
    assert Table.from_record(stored, 1).past_streams == stored["past_streams"]
    assert stored["stream_label"] == second.rsplit("/", 1)[1]

    # After the retention period the disabled stream is gone; the enabled one stays.
    clock.now_s += RETENTION_S
    assert [s["StreamArn"] for s in (await call(ctx, "ListStreams", {}))["Streams"]] == [second]
    await expect(ResourceNotFoundException, f"Requested resource not found: Stream: {first} not found",
                 ctx, "DescribeStream", {"StreamArn": first})
    # ... and is forgotten at the table's next stream change
    await set_stream(ctx, "music", None)
    assert [p["label"] for p in ctx.catalog.get_cached("music").past_streams] == [second.rsplit("/", 1)[1]]


async def test_a_quick_reenable_still_gets_a_new_label(ctx):
    first = (await create(ctx, "quick"))["LatestStreamArn"]
    await set_stream(ctx, "quick", None)
    second = (await set_stream(ctx, "quick", "NEW_IMAGE"))["LatestStreamArn"]  # same clock reading
    assert second > first


async def test_list_streams_pages(ctx):
    arns = sorted([(await create(ctx, name))["LatestStreamArn"] for name in ("t-b", "t-a", "t-c")])
    seen, start = [], None
    while True:
        body = {"Limit": 1} | ({"ExclusiveStartStreamArn": start} if start else {})
        page = await call(ctx, "ListStreams", body)
        seen += [s["StreamArn"] for s in page["Streams"]]
        start = page.get("LastEvaluatedStreamArn")
        if start is None:
            break
        assert start == seen[-1]
    assert seen == arns
    assert (await call(ctx, "ListStreams", {"Limit": 3}))["Streams"] != [] and \
        "LastEvaluatedStreamArn" not in await call(ctx, "ListStreams", {"Limit": 3})
    await expect(ValidationException, "Invalid StreamArn", ctx, "ListStreams",
                 {"ExclusiveStartStreamArn": "kossaapaaasdafsdaasdasdasdasasdasfadfadfasdasdas"})


# --- DescribeStream -----------------------------------------------------------------------
async def _two_nodes_two_periods(ctx) -> tuple[str, FakeStreams]:
    arn = (await create(ctx, "shards"))["LatestStreamArn"]
    storage: FakeStreams = ctx.storage
    table_id, stream_id = ids(ctx, arn)
    for node in NODES:
        storage.add(node, table_id, stream_id, 100, StreamEvent.INSERT, f"{node}-1", new={"id": {"S": f"{node}-1"}})
        storage.stream(node, table_id, stream_id).closed.add(100)
        storage.stream(node, table_id, stream_id).periods.setdefault(101, [])
    return arn, storage


async def test_shards_in_id_order_with_parents(ctx):
    arn, storage = await _two_nodes_two_periods(ctx)
    described = (await call(ctx, "DescribeStream", {"StreamArn": arn}))["StreamDescription"]
    assert list(described) == ["StreamArn", "StreamLabel", "StreamStatus", "StreamViewType",
                               "CreationRequestDateTime", "TableName", "KeySchema", "Shards"]
    assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert described["CreationRequestDateTime"] == stream_id_from_label(described["StreamLabel"]) / 1000
    tags = sorted(node_tag(node) for node in NODES)
    shards = described["Shards"]
    assert [s["ShardId"] for s in shards] == [shard_id(p, t) for p in (100, 101) for t in tags]
    closed, open_ = shards[:2], shards[2:]
    for shard in closed:
        node = next(n for n in NODES if node_tag(n) == shard["ShardId"][-8:])
        last = storage.stream(node, *ids(ctx, arn)).periods[100][-1].sequence
        assert shard["SequenceNumberRange"] == {"StartingSequenceNumber": format_sequence_number(100, 0),
                                                "EndingSequenceNumber": format_sequence_number(100, last)}
        assert "ParentShardId" not in shard
    for shard in open_:
        assert shard["SequenceNumberRange"] == {"StartingSequenceNumber": format_sequence_number(101, 0)}
        assert shard["ParentShardId"] == shard_id(100, shard["ShardId"][-8:])


async def test_describe_stream_pages_and_filters(ctx):
    arn, _ = await _two_nodes_two_periods(ctx)
    every = [s["ShardId"] for s in (await call(ctx, "DescribeStream", {"StreamArn": arn}))["StreamDescription"]["Shards"]]
    seen, start = [], None
    while True:
        body = {"StreamArn": arn, "Limit": 3} | ({"ExclusiveStartShardId": start} if start else {})
        page = (await call(ctx, "DescribeStream", body))["StreamDescription"]
        seen += [s["ShardId"] for s in page["Shards"]]
        start = page.get("LastEvaluatedShardId")
        if start is None:
            break
    assert seen == every
    last = {"StreamArn": arn, "ExclusiveStartShardId": "zzzzzzzzzzzzzzzzzzzzzzzzsfasdgagadfadfgagkjsdfsfsdjfjks"}
    assert (await call(ctx, "DescribeStream", last))["StreamDescription"]["Shards"] == []
    children = await call(ctx, "DescribeStream", {"StreamArn": arn,
                                                  "ShardFilter": {"Type": "CHILD_SHARDS", "ShardId": every[0]}})
    assert [s["ShardId"] for s in children["StreamDescription"]["Shards"]] == [shard_id(101, every[0][-8:])]


async def test_describe_stream_refusals(ctx):
    arn = (await create(ctx, "refusals"))["LatestStreamArn"]
    await expect(ValidationException, "Invalid StreamArn", ctx, "DescribeStream",
                 {"StreamArn": "sdfadfsdfnlfkajakfgjalksfgklasjklasdjfklasdfasdfgasf"})
    for other in (arn.replace("refusals", "missing"), arn.replace("us-east-1", "eu-west-1"),
                  arn.replace("000000000000", "123456789012"), arn[:-3] + "999"):
        await expect(ResourceNotFoundException, f"Requested resource not found: Stream: {other} not found",
                     ctx, "DescribeStream", {"StreamArn": other})
    await expect(ValidationException, None, ctx, "DescribeStream",
                 {"StreamArn": arn, "ShardFilter": {"Type": "CHILD_SHARDS"}})


# --- GetShardIterator and GetRecords ---------------------------------------------------------
async def _one_shard(ctx, view_type: str = "NEW_AND_OLD_IMAGES", closed: bool = False):
    arn = (await create(ctx, "reads", view_type))["LatestStreamArn"]
    storage: FakeStreams = ctx.storage
    table_id, stream_id = ids(ctx, arn)
    node = NODES[0]
    sequences = [
        storage.add(node, table_id, stream_id, 7, StreamEvent.INSERT, "a", new={"id": {"S": "a"}, "v": {"N": "1"}}),
        storage.add(node, table_id, stream_id, 7, StreamEvent.MODIFY, "a", old={"id": {"S": "a"}, "v": {"N": "1"}},
                    new={"id": {"S": "a"}, "v": {"N": "2"}}),
        storage.add(node, table_id, stream_id, 7, StreamEvent.REMOVE, "a", old={"id": {"S": "a"}, "v": {"N": "2"}},
                    by_service=True),
    ]
    if closed:
        storage.stream(node, table_id, stream_id).closed.add(7)
    return arn, shard_id(7, node_tag(node)), sequences


async def iterator(ctx, arn: str, shard: str, kind: str, **extra) -> str:
    body = {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": kind, **extra}
    return (await call(ctx, "GetShardIterator", body))["ShardIterator"]


async def read_all(ctx, text: str, limit: int | None = None) -> tuple[list[dict], str | None]:
    records = []
    while True:
        page = await call(ctx, "GetRecords", {"ShardIterator": text} | ({"Limit": limit} if limit else {}))
        records += page["Records"]
        if not page["Records"] or "NextShardIterator" not in page:
            return records, page.get("NextShardIterator")
        text = page["NextShardIterator"]


async def test_iterator_positions(ctx, clock):
    arn, shard, (s1, s2, s3) = await _one_shard(ctx)
    number = [format_sequence_number(7, s) for s in (s1, s2, s3)]

    async def numbers(kind: str, **extra) -> list[str]:
        records, _ = await read_all(ctx, await iterator(ctx, arn, shard, kind, **extra))
        return [r["dynamodb"]["SequenceNumber"] for r in records]

    assert await numbers("TRIM_HORIZON") == number
    assert await numbers("LATEST") == []
    assert await numbers("AT_SEQUENCE_NUMBER", SequenceNumber=number[1]) == number[1:]
    assert await numbers("AFTER_SEQUENCE_NUMBER", SequenceNumber=number[1]) == number[2:]
    assert await numbers("AT_SEQUENCE_NUMBER", SequenceNumber=format_sequence_number(7, 0)) == number
    assert await numbers("AT_TIMESTAMP", Timestamp=1_700_000_000) == number  # older than the shard
    clock.now_s += 10
    assert await numbers("AT_TIMESTAMP", Timestamp=1_800_000_000.0) == number  # the records' millisecond
    assert await numbers("AT_TIMESTAMP", Timestamp=1_800_000_000.001) == []


async def test_records_follow_the_view_type_and_time_to_live(ctx):
    arn, shard, _ = await _one_shard(ctx, "NEW_IMAGE")
    records, _ = await read_all(ctx, await iterator(ctx, arn, shard, "TRIM_HORIZON"))
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert [r["dynamodb"].get("NewImage") for r in records] == [
        {"id": {"S": "a"}, "v": {"N": "1"}}, {"id": {"S": "a"}, "v": {"N": "2"}}, None]
    assert all("OldImage" not in r["dynamodb"] for r in records)
    assert [r.get("userIdentity") for r in records] == [None, None, {"PrincipalId": "dynamodb.amazonaws.com",
                                                                     "Type": "Service"}]
    assert {r["awsRegion"] for r in records} == {"us-east-1"}
    assert len({r["eventID"] for r in records}) == 3


async def test_paging_an_open_and_a_closed_shard(ctx):
    arn, shard, _ = await _one_shard(ctx)
    text = await iterator(ctx, arn, shard, "TRIM_HORIZON")
    page = await call(ctx, "GetRecords", {"ShardIterator": text, "Limit": 2})
    assert len(page["Records"]) == 2 and "NextShardIterator" in page
    page = await call(ctx, "GetRecords", {"ShardIterator": page["NextShardIterator"], "Limit": 2})
    assert len(page["Records"]) == 1 and "NextShardIterator" in page  # open: more may come
    page = await call(ctx, "GetRecords", {"ShardIterator": page["NextShardIterator"]})
    assert page["Records"] == [] and "NextShardIterator" in page
    ctx.storage.stream(NODES[0], *ids(ctx, arn)).closed.add(7)
    page = await call(ctx, "GetRecords", {"ShardIterator": page["NextShardIterator"]})
    assert page == {"Records": []}  # closed and read to its end: no NextShardIterator
    records, following = await read_all(ctx, await iterator(ctx, arn, shard, "TRIM_HORIZON"), limit=3)
    assert len(records) == 3 and following is None


async def test_get_shard_iterator_refusals(ctx):
    arn, shard, (s1, _, s3) = await _one_shard(ctx, closed=True)
    base = {"StreamArn": arn, "ShardId": shard}
    start = format_sequence_number(7, 0)
    cases = [
        ({"ShardIteratorType": "AT_SEQUENCE_NUMBER"},
         "SequenceNumber must be specified for ShardIteratorType AT_SEQUENCE_NUMBER"),
        ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER"},
         "SequenceNumber must be specified for ShardIteratorType AFTER_SEQUENCE_NUMBER"),
        ({"ShardIteratorType": "LATEST", "SequenceNumber": start},
         "SequenceNumber must not be specified for ShardIteratorType LATEST"),
        ({"ShardIteratorType": "TRIM_HORIZON", "SequenceNumber": start},
         "SequenceNumber must not be specified for ShardIteratorType TRIM_HORIZON"),
        ({"ShardIteratorType": "AT_TIMESTAMP"}, "Timestamp must be specified for ShardIteratorType AT_TIMESTAMP"),
        ({"ShardIteratorType": "LATEST", "Timestamp": 1}, "Timestamp must not be specified for ShardIteratorType LATEST"),
        ({"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": format_sequence_number(8, s1)},
         f"Invalid SequenceNumber {format_sequence_number(8, s1)} for shard {shard}"),
        ({"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": format_sequence_number(7, s3 + 1)},
         f"Invalid SequenceNumber {format_sequence_number(7, s3 + 1)} for shard {shard}"),
        ({"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": "0" + format_sequence_number(7, s1)[1:]},
         None),
        ({"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1_800_000_100}, None),
    ]
    for extra, message in cases:
        await expect(ValidationException, message, ctx, "GetShardIterator", base | extra)
    await expect(ValidationException, "Invalid StreamArn", ctx, "GetShardIterator",
                 base | {"StreamArn": "sdfadfsddafgdafsgjnadflkgnalngalsdfnlkasnlkasdfasdfasf",
                         "ShardIteratorType": "LATEST"})
    for other in ("adfasdasdasdasdasdasdasdasdasasdasd", shard_id(7, "00000000"), shard_id(8, shard[-8:])):
        await expect(ResourceNotFoundException, "Requested resource not found: Shard does not exist",
                     ctx, "GetShardIterator", base | {"ShardId": other, "ShardIteratorType": "LATEST"})
    missing = arn.replace("reads", "gone")
    await expect(ResourceNotFoundException, f"Requested resource not found: Stream: {missing} not found",
                 ctx, "GetShardIterator", base | {"StreamArn": missing, "ShardIteratorType": "LATEST"})


async def test_trimmed_shards(ctx):
    arn, shard, _ = await _one_shard(ctx)
    storage: FakeStreams = ctx.storage
    text = await iterator(ctx, arn, shard, "TRIM_HORIZON")
    stream = storage.stream(NODES[0], *ids(ctx, arn))
    stream.periods.setdefault(8, [])
    stream.trimmed_through = 7  # the node trims period 7 after the iterator was issued
    await expect(TrimmedDataAccessException, None, ctx, "GetRecords", {"ShardIterator": text})
    await expect(TrimmedDataAccessException, None, ctx, "GetShardIterator",
                 {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
    described = (await call(ctx, "DescribeStream", {"StreamArn": arn}))["StreamDescription"]
    assert [s["ShardId"] for s in described["Shards"]] == [shard_id(8, shard[-8:])]
    assert "ParentShardId" not in described["Shards"][0]  # its parent is gone


async def test_iterators_expire_and_garbage_is_refused(ctx, clock):
    arn, shard, _ = await _one_shard(ctx)
    text = await iterator(ctx, arn, shard, "TRIM_HORIZON")
    clock.now_s += limits.STREAM_ITERATOR_AGE_S_MAX
    page = await call(ctx, "GetRecords", {"ShardIterator": text, "Limit": 1})  # at the limit: still good
    clock.now_s += limits.STREAM_ITERATOR_AGE_S_MAX
    await call(ctx, "GetRecords", {"ShardIterator": page["NextShardIterator"]})  # a fresh one, issued then
    await expect(ExpiredIteratorException, "The provided iterator exceeds the maximum age allowed.",
                 ctx, "GetRecords", {"ShardIterator": text})
    for garbage in ("sdfsdfsgagaddafgagasgasgasdfasdfasdfasdfasdgasdasdgasdg", text[:-2], text.replace("|1|", "|2|")):
        await expect(ValidationException, "Invalid ShardIterator", ctx, "GetRecords", {"ShardIterator": garbage})


async def test_a_disabled_stream_stays_readable(ctx):
    arn, shard, _ = await _one_shard(ctx)
    text = await iterator(ctx, arn, shard, "TRIM_HORIZON")
    await set_stream(ctx, "reads", None)
    ctx.storage.stream(NODES[0], *ids(ctx, arn)).closed.add(7)  # the node closes it
    records, following = await read_all(ctx, text)
    assert len(records) == 3 and following is None
    assert len((await read_all(ctx, await iterator(ctx, arn, shard, "TRIM_HORIZON")))[0]) == 3


# --- validation (the shapes of dynamodbstreams.json) -------------------------------------------
@pytest.mark.parametrize("action, body, message", [
    ("ListStreams", {"Limit": 0},
     "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
    ("ListStreams", {"Limit": 101},
     "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
     "Member must have value less than or equal to 100"),
    ("ListStreams", {"TableName": "a$"},
     "2 validation errors detected: Value 'a$' at 'tableName' failed to satisfy constraint: "
     "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value 'a$' at 'tableName' failed to "
     "satisfy constraint: Member must have length greater than or equal to 3"),
    ("DescribeStream", {},
     "1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null"),
    ("DescribeStream", {"StreamArn": "arn", "Limit": 101},
     "2 validation errors detected: Value 'arn' at 'streamArn' failed to satisfy constraint: Member must have "
     "length greater than or equal to 37; Value '101' at 'limit' failed to satisfy constraint: Member must have "
     "value less than or equal to 100"),
    ("GetShardIterator", {},
     "3 validation errors detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be "
     "null; Value null at 'shardId' failed to satisfy constraint: Member must not be null; Value null at "
     "'shardIteratorType' failed to satisfy constraint: Member must not be null"),
    ("GetShardIterator", {"StreamArn": "a" * 40, "ShardId": "s" * 30, "ShardIteratorType": "bulle"},
     "1 validation error detected: Value 'bulle' at 'shardIteratorType' failed to satisfy constraint: Member must "
     "satisfy enum value set: [TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP]"),
    ("GetShardIterator", {"StreamArn": "a" * 40, "ShardId": "s" * 30, "ShardIteratorType": "LATEST",
                          "SequenceNumber": "1" * 41},
     f"1 validation error detected: Value '{'1' * 41}' at 'sequenceNumber' failed to satisfy constraint: "
     "Member must have length less than or equal to 40"),
    ("GetRecords", {"ShardIterator": "", "Limit": 1001},
     "2 validation errors detected: Value '' at 'shardIterator' failed to satisfy constraint: Member must have "
     "length greater than or equal to 1; Value '1001' at 'limit' failed to satisfy constraint: Member must have "
     "value less than or equal to 1000"),
])
async def test_shape_validation(ctx, action, body, message):
    await expect(ValidationException, message, ctx, action, body)


def test_every_streams_action_is_served_and_checked():
    import botocore.loaders

    from meridian.router.validation import VALIDATED_STREAM_ACTIONS

    model = botocore.loaders.Loader().load_service_model("dynamodbstreams", "service-2")
    assert set(STREAM_ACTIONS) == VALIDATED_STREAM_ACTIONS == set(model["operations"])
    assert not set(STREAM_ACTIONS) & set(ACTIONS)  # the two APIs never share a name
