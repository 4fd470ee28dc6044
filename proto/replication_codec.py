"""Replication's records as protobuf messages (``proto/replication.proto``) and back."""

from __future__ import annotations

from collections.abc import Iterable

from meridian.model.stamps import VersionStamp
from meridian.model.changes import Change
from meridian.proto import replication_pb2 as rpb
from meridian.model.changes import Ack, LogPosition, ReplicationBatch

_unpack_stamp = VersionStamp.unpack


def change_to_pb(change: Change) -> rpb.Change:
    return rpb.Change(
        sequence=change.sequence,
        table_id=change.table_id,
        key=change.key,
        stamp=change.stamp.pack(),
        tombstone=change.tombstone,
        item=change.item_json or b"",
        size_bytes=change.size_bytes,
        by_service=change.by_service,
    )


def change_from_pb(m: rpb.Change) -> Change:
    return Change(
        sequence=m.sequence,
        table_id=m.table_id,
        key=m.key,
        stamp=_unpack_stamp(m.stamp)[0],
        tombstone=m.tombstone,
        item_json=None if m.tombstone else m.item,
        size_bytes=m.size_bytes,
        by_service=m.by_service,
    )


def changes_to_pb(changes: Iterable[Change]) -> rpb.Changes:
    return rpb.Changes(changes=[change_to_pb(c) for c in changes])


def changes_from_pb(m: rpb.Changes) -> list[Change]:
    return [change_from_pb(c) for c in m.changes]


def position_to_pb(position: LogPosition) -> rpb.LogPosition:
    return rpb.LogPosition(last_sequence=position.last_sequence, stamp_floor_hlc=position.stamp_floor_hlc)


def position_from_pb(m: rpb.LogPosition) -> LogPosition:
    return LogPosition(m.last_sequence, m.stamp_floor_hlc)


def batch_to_pb(batch: ReplicationBatch) -> rpb.Batch:
    return rpb.Batch(
        origin=batch.origin,
        node_id=batch.node_id,
        after_sequence=batch.after_sequence,
        last_sequence=batch.last_sequence,
        changes=[change_to_pb(c) for c in batch.changes],
        size_bytes=batch.size_bytes,
        stamp_floor_hlc=batch.stamp_floor_hlc,
    )


def batch_from_pb(m: rpb.Batch) -> ReplicationBatch:
    return ReplicationBatch(
        origin=m.origin,
        node_id=m.node_id,
        after_sequence=m.after_sequence,
        last_sequence=m.last_sequence,
        changes=tuple(change_from_pb(c) for c in m.changes),
        size_bytes=m.size_bytes,
        stamp_floor_hlc=m.stamp_floor_hlc,
    )


def ack_to_pb(ack: Ack) -> rpb.BatchAck:
    return rpb.BatchAck(receiver=ack.receiver, applied=ack.applied)


def ack_from_pb(m: rpb.BatchAck) -> Ack:
    return Ack(receiver=m.receiver, applied=m.applied)
