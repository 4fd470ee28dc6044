"""The names of the DynamoDB Streams API: stream ARNs and shard ids.

A stream is named by its table's ARN and its label (the UTC time it was
enabled, to the millisecond), as DynamoDB names it::

    arn:aws:dynamodb:us-east-1:000000000000:table/Music/stream/2026-12-07T17:04:41.123

A shard is one storage node's records of one stream for one shard period
(``model/streams.py``); its id carries both, the period zero-padded so that
shard ids sort as (period, node) do::

    shardId-00000000000000123456-1a2b3c4d      (period 123456, node tag 1a2b3c4d)

Both are parsed strictly: anything else is not a name Meridian ever gave,
and the actions answer it as DynamoDB answers a malformed or unknown one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meridian.model.streams import stream_id_from_label

# A shard id: "shardId-", the period in 20 digits (a u64's), "-", the node tag (8 hex characters).
_SHARD_ID = re.compile(r"shardId-(\d{20})-([0-9a-f]{8})")
_ARN = re.compile(
    r"arn:(aws[a-z-]*):dynamodb:([a-z0-9-]+):(\d{12}):table/([a-zA-Z0-9_.-]{3,255})"
    r"/stream/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})"
)


@dataclass(frozen=True, slots=True)
class StreamName:
    """A parsed stream ARN."""

    region: str
    account: str
    table_name: str
    label: str


def stream_arn(table_arn: str, label: str) -> str:
    return f"{table_arn}/stream/{label}"


def parse_stream_arn(text: str) -> StreamName | None:
    """The parts of a stream ARN; None when ``text`` is not one (a label that
    is no real UTC time included)."""
    match = _ARN.fullmatch(text)
    if match is None:
        return None
    _, region, account, table_name, label = match.groups()
    try:
        stream_id_from_label(label)
    except ValueError:
        return None
    return StreamName(region, account, table_name, label)


def shard_id(period: int, tag: str) -> str:
    return f"shardId-{period:020d}-{tag}"


def parse_shard_id(text: str) -> tuple[int, str] | None:
    """``(period, node tag)`` of a shard id; None when ``text`` is not one."""
    match = _SHARD_ID.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)
