"""DynamoDB Streams' vocabulary, shared by the nodes that store stream records
and the router that serves them (``router/actions/streams.py``).

A node keeps, for every table whose stream is enabled on it, a copy of each
change as a ``StreamRecord`` (``model/records.py`` has the byte layout), in
the same write batch as the item.  Its records of one stream are cut into
shards by time: one shard per node per *period* (``period_of``), chained
(the parent of period k is period k-1 of the same node).  A sequence number
names a record across the whole stream: its period, then the node's
change-log sequence (``format_sequence_number``), so numbers grow within a
shard as DynamoDB's do.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import dataclass
from enum import IntEnum

from meridian.model import limits

# A sequence number's node-sequence part: a u64 in decimal, zero-padded.
_SEQUENCE_DIGITS = 20
_LABEL_FORMAT = "%Y-%m-%dT%H:%M:%S"


class StreamEvent(IntEnum):
    """What a record says happened to its item (DynamoDB's ``eventName``)."""

    INSERT = 1
    MODIFY = 2
    REMOVE = 3


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One stored stream record.  Both images are always kept; the stream's
    view type is applied when it is read, so a record does not depend on the
    view type in force when it was written."""

    sequence: int  # the node's change-log sequence of the change
    event: StreamEvent
    created_ms: int  # when the node staged it (epoch ms)
    keys_json: bytes  # the key attributes, wire JSON
    old_json: bytes | None  # the item before (None for INSERT)
    new_json: bytes | None  # the item after (None for REMOVE)
    by_service: bool  # a Time to Live delete


@dataclass(frozen=True, slots=True)
class ShardState:
    """One node's shard of one stream: its period, whether it can still grow,
    and its newest record's sequence (0: none)."""

    period: int
    closed: bool
    last_sequence: int


@dataclass(frozen=True, slots=True)
class StreamShards:
    """A node's shards of one stream, ascending by period.
    ``latest_sequence``: the node's durable change-log sequence, where a
    LATEST iterator starts."""

    shards: tuple[ShardState, ...]
    latest_sequence: int


@dataclass(frozen=True, slots=True)
class StreamRead:
    """Read a shard's records after ``after_sequence``: at most
    ``records_max`` of them, stopping before ``bytes_max`` (the first record
    always comes)."""

    table_id: int
    stream_id: int
    period: int
    after_sequence: int
    records_max: int
    bytes_max: int


@dataclass(frozen=True, slots=True)
class StreamPage:
    """What a shard read found.  ``last_sequence``: where the next read
    continues (the last record returned, else the read's ``after_sequence``);
    ``end_of_shard``: the shard is closed and nothing is left after it."""

    records: tuple[StreamRecord, ...]
    last_sequence: int
    end_of_shard: bool


def stream_id_from_label(label: str) -> int:
    """A stream's id: its label ("2026-12-07T17:04:41.123", UTC, as the table
    record's ``stream_label`` and the ARN carry it) in epoch milliseconds."""
    whole, _, fraction = label.partition(".")
    seconds = calendar.timegm(time.strptime(whole, _LABEL_FORMAT))
    if len(fraction) != 3 or not fraction.isdigit():
        raise ValueError(f"not a stream label: {label!r}")
    return seconds * 1000 + int(fraction)


def period_of(now_ms: int, shard_period_ms: int) -> int:
    """The shard period a record staged at ``now_ms`` belongs to (>= 1 for any
    time after 1970 plus one period)."""
    return now_ms // shard_period_ms


def period_end_ms(period: int, shard_period_ms: int) -> int:
    """The first millisecond after ``period``."""
    return (period + 1) * shard_period_ms


def shard_period_ms(shard_period_s: float) -> int:
    """A shard period option (seconds, may be fractional in a lab) in whole ms."""
    return max(1, round(shard_period_s * 1000))


def format_sequence_number(period: int, sequence: int) -> str:
    """The stream-wide sequence number of a node's record: its period, then
    its change-log sequence in 20 digits (21..40 digits in all, no leading
    zero), so numbers sort by (period, sequence) within a node's chain."""
    if period < 1 or not 0 <= sequence < 1 << 64:
        raise ValueError(f"no sequence number for period {period}, sequence {sequence}")
    text = f"{period}{sequence:0{_SEQUENCE_DIGITS}d}"
    if len(text) > limits.STREAM_SEQUENCE_NUMBER_DIGITS_MAX:
        raise ValueError(f"period {period} too large for a sequence number")
    return text


def parse_sequence_number(text: str) -> tuple[int, int]:
    """``(period, sequence)`` of a sequence number; ValueError when it is not
    one (not ASCII digits, a leading zero, too short or too long)."""
    if not (
        limits.STREAM_SEQUENCE_NUMBER_DIGITS_MIN <= len(text) <= limits.STREAM_SEQUENCE_NUMBER_DIGITS_MAX
        and text.isascii()
        and text.isdigit()
        and text[0] != "0"
    ):
        raise ValueError(f"not a sequence number: {text!r}")
    sequence = int(text[-_SEQUENCE_DIGITS:])
    if sequence >= 1 << 64:
        raise ValueError(f"not a sequence number: {text!r}")
    return int(text[:-_SEQUENCE_DIGITS]), sequence


def node_tag(node_id: str) -> str:
    """A node's short, stable name in shard ids: 8 hex characters."""
    return hashlib.blake2b(node_id.encode(), digest_size=4).hexdigest()
