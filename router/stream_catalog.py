"""Which DynamoDB streams exist: a table's enabled stream and the disabled ones it keeps.

A table's record (``router/table_record.py``) holds its enabled stream
(``stream``, ``stream_label``) and, in ``past_streams``, each stream
disabled in the last ``stream_retention_s`` (DynamoDB's 24 hours): for that
long ListStreams still lists it, DescribeStream shows it DISABLED with
every shard closed, and its records stay readable (the nodes keep records
as long, ``--stream-retention-s``).  A past stream is never shown after
its retention, and dropped from the record when the table's stream is next
disabled.

Re-enabling a stream makes a new one, with a new label (so a new ARN); the
old one stays readable, as DynamoDB's does.  Labels are the enabling time to
the millisecond, made unique within a table (``new_stream_label``).

DeleteTable retires the table's stream the same way, and the deleted
table's record (kept by the catalog as a deleted entry) keeps listing its
streams for their retention, as DynamoDB keeps a deleted table's streams
24 hours.  A table created later under the same name inherits those past
streams; each past stream carries the table id and key schema it was
written under, so its records are still found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from meridian.model.errors import ResourceNotFoundException, ValidationException
from meridian.model.streams import stream_id_from_label

from .context import RouterContext
from .stream_ids import parse_stream_arn, stream_arn
from .table_record import ACCOUNT_ID, Table, stream_label

INVALID_STREAM_ARN = "Invalid StreamArn"  # DynamoDB's words (a live reply, logstash-input-dynamodb#18)


def stream_not_found(arn: str) -> ResourceNotFoundException:
    """DynamoDB's words for a well-formed ARN naming no stream."""
    return ResourceNotFoundException(f"Requested resource not found: Stream: {arn} not found")


@dataclass(frozen=True, slots=True)
class StreamRef:
    """One stream of a table, enabled or disabled."""

    table: Table
    label: str
    view_type: str
    enabled: bool
    table_id: int  # the table the records were written under (a deleted one's, for a stream it kept)
    key_schema: tuple[tuple[str, str], ...]

    @property
    def arn(self) -> str:
        return stream_arn(self.table.arn, self.label)

    @property
    def stream_id(self) -> int:
        return stream_id_from_label(self.label)

    @property
    def status(self) -> str:
        return "ENABLED" if self.enabled else "DISABLED"


def table_streams(table: Table, now_s: float, retention_s: float) -> list[StreamRef]:
    """The table's streams a reader may still use, oldest first."""
    own_schema = tuple(tuple(k) for k in table.key_schema)
    refs = [
        StreamRef(
            table, past["label"], past["view_type"], False, past.get("table_id", table.table_id),
            tuple(tuple(k) for k in past["key_schema"]) if "key_schema" in past else own_schema,
        )  # fmt: skip
        for past in table.past_streams
        if now_s - past["disabled_s"] < retention_s
    ]
    if table.stream is not None and table.stream_label is not None:
        refs.append(StreamRef(table, table.stream_label, table.stream["StreamViewType"], True, table.table_id, own_schema))
    refs.sort(key=lambda ref: ref.label)
    return refs


def retire_stream(table: Table, now_s: float, retention_s: float) -> None:
    """The table's stream is being disabled: keep it as a past stream; forget
    past streams whose retention is over."""
    kept: list[dict[str, Any]] = [p for p in table.past_streams if now_s - p["disabled_s"] < retention_s]
    if table.stream is not None and table.stream_label is not None:
        kept.append({
            "label": table.stream_label, "view_type": table.stream["StreamViewType"], "disabled_s": now_s,
            "table_id": table.table_id, "key_schema": [list(k) for k in table.key_schema],
        })  # fmt: skip
    table.past_streams = kept


def inherited_streams(deleted: Table | None, now_s: float, retention_s: float) -> list[dict[str, Any]]:
    """The past streams a table created now under a deleted table's name
    keeps listing: the deleted table's, while their retention lasts."""
    if deleted is None:
        return []
    return [past for past in deleted.past_streams if now_s - past["disabled_s"] < retention_s]


def new_stream_label(table: Table, now_s: float) -> str:
    """The label of a stream enabled now: its time, one millisecond later than
    any label the table used (a disable and re-enable within one millisecond
    still make two streams)."""
    used = [p["label"] for p in table.past_streams]
    if table.stream_label is not None:
        used.append(table.stream_label)
    label = stream_label(now_s)
    if used and label <= max(used):
        label = stream_label((stream_id_from_label(max(used)) + 1) / 1000)
    return label


async def find_stream(ctx: RouterContext, arn: str) -> StreamRef:
    """The stream ``arn`` names.  A malformed ARN is a ValidationException, an
    ARN of no stream (another region or account, no such table, a label the
    table never had or forgot) a ResourceNotFoundException, in that order."""
    name = parse_stream_arn(arn)
    if name is None:
        raise ValidationException(INVALID_STREAM_ARN)
    if name.region != ctx.region or name.account != ACCOUNT_ID:
        raise stream_not_found(arn)
    for table in (await ctx.catalog.get(name.table_name), ctx.catalog.deleted(name.table_name)):
        if table is not None:
            for ref in table_streams(table, time.time(), ctx.stream_retention_s):
                if ref.arn == arn:  # the label, and the partition too
                    return ref
    raise stream_not_found(arn)
