"""The DynamoDB Streams API: ListStreams, DescribeStream, GetShardIterator, GetRecords.

Served on the DynamoDB endpoint under ``X-Amz-Target:
DynamoDBStreams_20120810.<Action>`` (``router/app.py``), after the shape
checks of ``router/schema/dynamodbstreams.json`` (``validate_stream_request``).
Which streams exist is the table records' business (``router/stream_catalog.py``),
which shards they have the nodes' (``router/stream_shards.py``); iterators
are self-contained strings (``router/stream_iterators.py``) and records are
formatted by ``router/stream_records.py``.

Checks, in the order made here: the request's own rules (an ARN's form, a
sequence number or timestamp that goes with the iterator type), then the
stream (ResourceNotFoundException), then the shard, then the position.

Messages.  DynamoDB's own, from live replies: "Invalid StreamArn",
"Requested resource not found: Stream: <arn> not found", "Requested
resource not found: Shard does not exist" (GetShardIterator of a shard the
stream has not, logstash-input-dynamodb#4, node-dynamodb-stream#16); the expired
iterator's and trimmed data's are the API reference's (``model/errors.py``);
ListStreams' unknown table borrows DescribeTable's.  The rest are guesses
(no capture of DynamoDB's wording is on record), written in its style; each
is marked where it is defined.  Their error types are DynamoDB's, as tests
that pass against it show (ScyllaDB Alternator's test_streams.py): a garbled
iterator, a SequenceNumber missing for or given to an iterator type, and an
ARN that is no ARN are ValidationExceptions, an unknown shard id a
ResourceNotFoundException.
"""

from __future__ import annotations

import math
import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import ExpiredIteratorException, ResourceNotFoundException, ValidationException
from meridian.model.streams import StreamPage, StreamRead, format_sequence_number, parse_sequence_number

from ..context import RouterContext
from ..stream_catalog import INVALID_STREAM_ARN, StreamRef, find_stream, table_streams
from ..stream_ids import parse_shard_id, parse_stream_arn, shard_id
from ..stream_iterators import ShardIterator, decode_iterator, encode_iterator
from ..stream_records import stream_record
from ..stream_shards import ShardView, chain, list_shards, node_shards, node_tags
from .descriptions import table_not_found

_SHARD_NOT_FOUND = "Requested resource not found: Shard does not exist"  # DynamoDB's (module docstring)
# Guesses (see the module docstring).
_INVALID_ITERATOR = "Invalid ShardIterator"
_FILTER_INCOMPLETE = "ShardFilter requires both Type and ShardId"

_SEQUENCE_TYPES = ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")


def _needs(member: str, iterator_type: str) -> ValidationException:
    return ValidationException(f"{member} must be specified for ShardIteratorType {iterator_type}")  # guess


def _refuses(member: str, iterator_type: str) -> ValidationException:
    return ValidationException(f"{member} must not be specified for ShardIteratorType {iterator_type}")  # guess


def _bad_sequence(sequence_number: str, shard: str) -> ValidationException:
    return ValidationException(f"Invalid SequenceNumber {sequence_number} for shard {shard}")  # guess


def _key_schema(ref: StreamRef) -> list[dict[str, str]]:
    kinds = ("HASH", "RANGE")
    return [{"AttributeName": name, "KeyType": kind} for (name, _), kind in zip(ref.key_schema, kinds)]


# --- ListStreams ---------------------------------------------------------------------
async def list_streams(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    start = body.get("ExclusiveStartStreamArn")
    if start is not None and parse_stream_arn(start) is None:
        raise ValidationException(INVALID_STREAM_ARN)
    name = body.get("TableName")
    if name is not None:
        table = await ctx.catalog.get(name) or ctx.catalog.deleted(name)
        if table is None:
            raise table_not_found(name)  # guess: DescribeTable's wording
        tables = [table]
    else:
        tables = ctx.catalog.tables() + ctx.catalog.deleted_tables()
    now_s = time.time()
    refs = sorted((ref for table in tables for ref in table_streams(table, now_s, ctx.stream_retention_s)),
                  key=lambda ref: ref.arn)  # fmt: skip
    if start is not None:
        refs = [ref for ref in refs if ref.arn > start]
    limit = body.get("Limit", limits.STREAM_LIST_STREAMS_LIMIT_MAX)
    page = refs[:limit]
    out: dict[str, Any] = {
        "Streams": [{"StreamArn": ref.arn, "TableName": ref.table.name, "StreamLabel": ref.label} for ref in page]
    }
    if len(refs) > limit:
        out["LastEvaluatedStreamArn"] = page[-1].arn
    return out


# --- DescribeStream ------------------------------------------------------------------
async def describe_stream(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    shard_filter = body.get("ShardFilter")
    if shard_filter is not None and (shard_filter.get("Type") is None or shard_filter.get("ShardId") is None):
        raise ValidationException(_FILTER_INCOMPLETE)
    ref = await find_stream(ctx, body["StreamArn"])
    shards = await list_shards(ctx, ref)
    if shard_filter is not None:  # CHILD_SHARDS, the only type
        shards = [shard for shard in shards if shard.parent_id == shard_filter["ShardId"]]
    start = body.get("ExclusiveStartShardId")
    if start is not None:
        shards = [shard for shard in shards if shard.shard_id > start]
    limit = body.get("Limit", limits.STREAM_DESCRIBE_SHARDS_LIMIT_MAX)
    page = shards[:limit]
    description: dict[str, Any] = {
        "StreamArn": ref.arn,
        "StreamLabel": ref.label,
        "StreamStatus": ref.status,
        "StreamViewType": ref.view_type,
        "CreationRequestDateTime": ref.stream_id / 1000,
        "TableName": ref.table.name,
        "KeySchema": _key_schema(ref),
        "Shards": [shard.description() for shard in page],
    }
    if len(shards) > limit:
        description["LastEvaluatedShardId"] = page[-1].shard_id
    return {"StreamDescription": description}


# --- GetShardIterator ----------------------------------------------------------------
def _check_position_members(body: dict[str, Any]) -> str:
    """The iterator type's own members, present exactly when it needs them."""
    kind = body["ShardIteratorType"]
    has_sequence, has_timestamp = body.get("SequenceNumber") is not None, body.get("Timestamp") is not None
    if kind in _SEQUENCE_TYPES and not has_sequence:
        raise _needs("SequenceNumber", kind)
    if kind not in _SEQUENCE_TYPES and has_sequence:
        raise _refuses("SequenceNumber", kind)
    if kind == "AT_TIMESTAMP" and not has_timestamp:
        raise _needs("Timestamp", kind)
    if kind != "AT_TIMESTAMP" and has_timestamp:
        raise _refuses("Timestamp", kind)
    return kind


async def _find_shard(ctx: RouterContext, ref: StreamRef, text: str) -> tuple[ShardView, int]:
    """The shard ``text`` names and its node's durable sequence (where LATEST starts).

    A shard of a period the node no longer lists, below its oldest one, was
    trimmed when the node says so (TrimmedDataAccessException); any other
    unknown shard is not found.
    """
    parsed = parse_shard_id(text)
    node_id = node_tags(ctx).get(parsed[1]) if parsed is not None else None
    if parsed is None or node_id is None:
        raise ResourceNotFoundException(_SHARD_NOT_FOUND)
    period = parsed[0]
    listing = await node_shards(ctx, ref, node_id)
    for shard in chain(node_id, listing):
        if shard.period == period:
            return shard, listing.latest_sequence
    if listing.shards and period < listing.shards[0].period:
        await _read(ctx, node_id, ref, period, 0, 1)  # raises TrimmedDataAccessException when trimmed
    raise ResourceNotFoundException(_SHARD_NOT_FOUND)


async def _read(
    ctx: RouterContext, node_id: str, ref: StreamRef, period: int, after: int, records_max: int
) -> StreamPage:
    bytes_max = limits.STREAM_GET_RECORDS_BYTES_MAX
    read = StreamRead(ref.table_id, ref.stream_id, period, after, records_max, bytes_max)
    return await ctx.storage.read_stream(node_id, read)


def _sequence_position(shard: ShardView, latest_sequence: int, kind: str, text: str) -> int:
    """Where an AT/AFTER_SEQUENCE_NUMBER iterator starts: a sequence number of
    this shard, no further than its last record (its node's newest, while open)."""
    try:
        period, sequence = parse_sequence_number(text)
    except ValueError:
        raise _bad_sequence(text, shard.shard_id) from None
    last = shard.state.last_sequence if shard.state.closed else max(latest_sequence, shard.state.last_sequence)
    if period != shard.period or sequence > last:
        raise _bad_sequence(text, shard.shard_id)
    return max(sequence - 1, 0) if kind == "AT_SEQUENCE_NUMBER" else sequence


async def _timestamp_position(ctx: RouterContext, ref: StreamRef, shard: ShardView, timestamp_s: float) -> int:
    """Where an AT_TIMESTAMP iterator starts: before the shard's first record
    made at or after the timestamp (after its last one when none is)."""
    now_ms = int(time.time() * 1000)
    at_ms = math.floor(timestamp_s * 1000)
    if at_ms > now_ms:
        raise ValidationException(f"The timestamp {timestamp_s} is in the future")  # guess
    after = 0
    while True:
        page = await _read(ctx, shard.node_id, ref, shard.period, after, limits.STREAM_SEEK_RECORDS_PER_READ)
        for record in page.records:
            if record.created_ms >= at_ms:
                return record.sequence - 1
        if not page.records:
            return page.last_sequence
        after = page.last_sequence


async def get_shard_iterator(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = body["StreamArn"]
    if parse_stream_arn(arn) is None:
        raise ValidationException(INVALID_STREAM_ARN)
    kind = _check_position_members(body)
    ref = await find_stream(ctx, arn)
    shard, latest_sequence = await _find_shard(ctx, ref, body["ShardId"])
    if kind == "TRIM_HORIZON":
        after = 0
    elif kind == "LATEST":
        after = max(latest_sequence, shard.state.last_sequence)
    elif kind == "AT_TIMESTAMP":
        after = await _timestamp_position(ctx, ref, shard, body["Timestamp"])
    else:
        after = _sequence_position(shard, latest_sequence, kind, body["SequenceNumber"])
    iterator = ShardIterator(ref.arn, shard.tag, shard.period, after, int(time.time() * 1000))
    return {"ShardIterator": encode_iterator(iterator)}


# --- GetRecords ----------------------------------------------------------------------
async def get_records(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    try:
        iterator = decode_iterator(body["ShardIterator"])
    except ValueError:
        raise ValidationException(_INVALID_ITERATOR) from None
    now_ms = int(time.time() * 1000)
    if iterator.expired(now_ms):
        raise ExpiredIteratorException()
    ref = await find_stream(ctx, iterator.stream_arn)
    node_id = node_tags(ctx).get(iterator.tag)
    if node_id is None:
        raise ResourceNotFoundException(_SHARD_NOT_FOUND)
    limit = body.get("Limit", limits.STREAM_GET_RECORDS_LIMIT_MAX)
    page = await _read(ctx, node_id, ref, iterator.period, iterator.after_sequence, limit)
    shard = shard_id(iterator.period, iterator.tag)
    records = []
    for record in page.records:
        number = format_sequence_number(iterator.period, record.sequence)
        records.append(stream_record(record, stream_arn=ref.arn, shard_id=shard, sequence_number=number,
                                     view_type=ref.view_type, region=ctx.region))  # fmt: skip
    out: dict[str, Any] = {"Records": records}
    if not page.end_of_shard:
        out["NextShardIterator"] = encode_iterator(iterator.moved(page.last_sequence, now_ms))
    return out


ACTIONS = {
    "ListStreams": list_streams,
    "DescribeStream": describe_stream,
    "GetShardIterator": get_shard_iterator,
    "GetRecords": get_records,
}
