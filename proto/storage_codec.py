"""Conversions between the seam's records (``model/ops.py``) and ``meridian.v1``
protobuf messages, used by both ends of the router -> node stream.

Items and placeholder maps travel as orjson bytes; an empty bytes field means
"absent".  An operation's error travels in its result, encoded by
``proto/errors.py``.  A result's item bytes are passed through untouched, so a GetItem
answer goes from RocksDB to the HTTP response without being parsed.
"""

from __future__ import annotations

import orjson

from meridian.model.backups import CheckpointInfo, RestoreRequest, RestoreResult
from meridian.model.ops import (
    CatalogEntry,
    IndexEntry,
    IndexStats,
    ItemOp,
    ItemResult,
    OpKind,
    RangeKind,
    RangeRead,
    RangeResult,
    ReturnValues,
    TableStats,
)
from meridian.model.transactions import TxnRequest
from meridian.model.throughput import LeaseRequest, Limit, Meter
from meridian.model.streams import ShardState, StreamEvent, StreamPage, StreamRead, StreamRecord, StreamShards
from meridian.proto import storage_pb2 as pb
from meridian.proto.errors import error_from_fields, error_to_fields

_dumps = orjson.dumps
_loads = orjson.loads
_OP_KINDS = tuple(OpKind)
_RETURN_VALUES = tuple(ReturnValues)
_RANGE_KINDS = tuple(RangeKind)
_FIXED_OP_BYTES = 48  # ids, enums, tags and lengths of one encoded ItemOp, generously


def op_to_pb(op_id: int, op: ItemOp) -> tuple[pb.ItemOp, int]:
    """The message for ``op`` and an upper estimate of its encoded size."""
    key_item = _dumps(op.key_item)
    item = b"" if op.item is None else _dumps(op.item)
    names = b"" if op.names is None else _dumps(op.names)
    values = b"" if op.values is None else _dumps(op.values)
    m = pb.ItemOp(
        id=op_id,
        kind=op.kind,
        table_id=op.table_id,
        key=op.key,
        key_item=key_item,
        item=item,
        condition=op.condition,
        update=op.update,
        projection=op.projection,
        names=names,
        values=values,
        return_values=op.return_values,
        return_old_on_condition_failure=op.return_old_on_condition_failure,
        legacy=op.legacy,
        item_size_bytes=op.item_size_bytes,
    )
    size = _FIXED_OP_BYTES + len(op.key) + len(key_item) + len(item) + len(names) + len(values)
    for text in (op.condition, op.update, op.projection):
        if text is not None:
            size += 4 * len(text)  # UTF-8 upper bound
    return m, size


def op_from_pb(m: pb.ItemOp) -> ItemOp:
    item = m.item
    names = m.names
    values = m.values
    return ItemOp(
        kind=_OP_KINDS[m.kind],
        table_id=m.table_id,
        key=m.key,
        key_item=_loads(m.key_item),
        item=_loads(item) if item else None,
        condition=m.condition if m.HasField("condition") else None,
        update=m.update if m.HasField("update") else None,
        projection=m.projection if m.HasField("projection") else None,
        names=_loads(names) if names else None,
        values=_loads(values) if values else None,
        return_values=_RETURN_VALUES[m.return_values],
        return_old_on_condition_failure=m.return_old_on_condition_failure,
        legacy=m.legacy,
        item_size_bytes=m.item_size_bytes,
    )


def result_to_pb(op_id: int, result: ItemResult) -> pb.OpResult:
    err = result.error
    if err is None:
        item_json = result.item_json
        if item_json is None:
            return pb.OpResult(
                id=op_id, size_bytes=result.size_bytes, collection_size_bytes=result.collection_size_bytes,
                version=result.version,
            )
        return pb.OpResult(
            id=op_id, has_item=True, item=item_json, size_bytes=result.size_bytes,
            collection_size_bytes=result.collection_size_bytes, version=result.version,
        )
    error_type, error_message, error_item = error_to_fields(err)
    return pb.OpResult(id=op_id, error_type=error_type, error_message=error_message, error_item=error_item)


def result_from_pb(m: pb.OpResult) -> ItemResult:
    error_type = m.error_type
    if not error_type:
        return ItemResult(
            m.item if m.has_item else None, size_bytes=m.size_bytes, collection_size_bytes=m.collection_size_bytes,
            version=m.version,
        )
    return ItemResult(None, error_from_fields(error_type, m.error_message, m.error_item))


def catalog_to_pb(entry: CatalogEntry) -> pb.CatalogEntry:
    return pb.CatalogEntry(
        name=entry.name,
        revision=entry.revision,
        description=_dumps(entry.description),
        deleted=entry.deleted,
    )


def catalog_from_pb(m: pb.CatalogEntry) -> CatalogEntry:
    return CatalogEntry(
        name=m.name,
        revision=m.revision,
        description=_loads(m.description) if m.description else {},
        deleted=m.deleted,
    )


def stats_to_pb(stats: TableStats) -> pb.TableStats:
    return pb.TableStats(
        item_count=stats.item_count,
        size_bytes=stats.size_bytes,
        indexes=[
            pb.IndexStats(index_id=index_id, item_count=s.item_count, size_bytes=s.size_bytes,
                          backfilling=s.backfilling)
            for index_id, s in stats.indexes.items()
        ],
        ttl_deleted_count=stats.ttl_deleted_count,
    )


def stats_from_pb(m: pb.TableStats) -> TableStats:
    return TableStats(
        item_count=m.item_count,
        size_bytes=m.size_bytes,
        indexes={i.index_id: IndexStats(i.item_count, i.size_bytes, i.backfilling) for i in m.indexes},
        ttl_deleted_count=m.ttl_deleted_count,
    )


def index_entries_to_pb(entries: list[IndexEntry]) -> pb.IndexEntries:
    return pb.IndexEntries(entries=[
        pb.IndexEntry(index_id=e.index_id, key=e.key, stamp=e.stamp, has_item=e.item_json is not None,
                      item=e.item_json or b"", size_bytes=e.size_bytes)
        for e in entries
    ])


def index_entries_from_pb(m: pb.IndexEntries) -> list[IndexEntry]:
    return [
        IndexEntry(e.index_id, e.key, e.stamp, e.item if e.has_item else None, e.size_bytes)
        for e in m.entries
    ]


def range_read_to_pb(read: RangeRead) -> pb.RangeRead:
    return pb.RangeRead(
        kind=read.kind,
        table_id=read.table_id,
        lower=read.lower,
        upper=read.upper,
        reverse=read.reverse,
        items_max=read.items_max,
        bytes_max=read.bytes_max,
        key_condition=read.key_condition,
        filter=read.filter,
        projection=read.projection,
        names=b"" if read.names is None else _dumps(read.names),
        values=b"" if read.values is None else _dumps(read.values),
        legacy=read.legacy,
        count_only=read.count_only,
        detail=read.detail,
        fetch=read.fetch,
        whole_items=read.whole_items,
    )


def range_read_from_pb(m: pb.RangeRead) -> RangeRead:
    names = m.names
    values = m.values
    return RangeRead(
        kind=_RANGE_KINDS[m.kind],
        table_id=m.table_id,
        lower=m.lower,
        upper=m.upper,
        reverse=m.reverse,
        items_max=m.items_max,
        bytes_max=m.bytes_max,
        key_condition=m.key_condition if m.HasField("key_condition") else None,
        filter=m.filter if m.HasField("filter") else None,
        projection=m.projection if m.HasField("projection") else None,
        names=_loads(names) if names else None,
        values=_loads(values) if values else None,
        legacy=m.legacy,
        count_only=m.count_only,
        detail=m.detail,
        fetch=m.fetch,
        whole_items=m.whole_items,
    )


def range_result_to_pb(result: RangeResult) -> pb.RangeReply:
    last = result.last_position
    return pb.RangeReply(
        items=result.items,
        count=result.count,
        scanned=result.scanned,
        bytes_read=result.bytes_read,
        has_last=last is not None,
        last_position=b"" if last is None else last,
        more=result.more,
        positions=result.positions,
        sizes=result.sizes,
        hits=result.hits,
        fetched_sizes=result.fetched_sizes,
    )


def range_result_from_pb(m: pb.RangeReply) -> RangeResult:
    return RangeResult(
        items=list(m.items),
        count=m.count,
        scanned=m.scanned,
        bytes_read=m.bytes_read,
        last_position=m.last_position if m.has_last else None,
        more=m.more,
        positions=list(m.positions),
        sizes=list(m.sizes),
        hits=m.hits,
        fetched_sizes=list(m.fetched_sizes),
    )


# --- DynamoDB Streams (node/streams.py) -------------------------------------------


def stream_shards_to_pb(shards: StreamShards) -> pb.StreamShardsReply:
    return pb.StreamShardsReply(
        shards=[pb.ShardState(period=s.period, closed=s.closed, last_sequence=s.last_sequence) for s in shards.shards],
        latest_sequence=shards.latest_sequence,
    )


def stream_shards_from_pb(m: pb.StreamShardsReply) -> StreamShards:
    return StreamShards(
        tuple(ShardState(s.period, s.closed, s.last_sequence) for s in m.shards), m.latest_sequence
    )


def stream_read_to_pb(read: StreamRead) -> pb.StreamRead:
    return pb.StreamRead(
        table_id=read.table_id,
        stream_id=read.stream_id,
        period=read.period,
        after_sequence=read.after_sequence,
        records_max=read.records_max,
        bytes_max=read.bytes_max,
    )


def stream_read_from_pb(m: pb.StreamRead) -> StreamRead:
    return StreamRead(m.table_id, m.stream_id, m.period, m.after_sequence, m.records_max, m.bytes_max)


def stream_page_to_pb(page: StreamPage) -> pb.StreamPage:
    return pb.StreamPage(
        records=[
            pb.StreamRecord(
                sequence=r.sequence,
                event=r.event,
                created_ms=r.created_ms,
                keys=r.keys_json,
                has_old=r.old_json is not None,
                old_item=r.old_json or b"",
                has_new=r.new_json is not None,
                new_item=r.new_json or b"",
                by_service=r.by_service,
            )
            for r in page.records
        ],
        last_sequence=page.last_sequence,
        end_of_shard=page.end_of_shard,
    )


def stream_page_from_pb(m: pb.StreamPage) -> StreamPage:
    return StreamPage(
        tuple(
            StreamRecord(
                sequence=r.sequence,
                event=StreamEvent(r.event),
                created_ms=r.created_ms,
                keys_json=r.keys,
                old_json=r.old_item if r.has_old else None,
                new_json=r.new_item if r.has_new else None,
                by_service=r.by_service,
            )
            for r in m.records
        ),
        m.last_sequence,
        m.end_of_shard,
    )


# --- backups and point-in-time recovery (model/backups.py) -----------------------------


def checkpoint_info_to_pb(info: CheckpointInfo) -> pb.CheckpointInfo:
    return pb.CheckpointInfo(
        name=info.name, sequence=info.sequence, created_ms=info.created_ms, size_bytes=info.size_bytes
    )


def checkpoint_info_from_pb(m: pb.CheckpointInfo) -> CheckpointInfo:
    return CheckpointInfo(m.name, m.sequence, m.created_ms, m.size_bytes)


def restore_request_to_pb(request: RestoreRequest) -> pb.RestoreRequest:
    return pb.RestoreRequest(
        source_table_id=request.source_table_id,
        target_table_id=request.target_table_id,
        checkpoint=request.checkpoint,
        at_ms=request.at_ms,
    )


def restore_request_from_pb(m: pb.RestoreRequest) -> RestoreRequest:
    return RestoreRequest(
        m.source_table_id,
        m.target_table_id,
        checkpoint=m.checkpoint if m.HasField("checkpoint") else None,
        at_ms=m.at_ms if m.HasField("at_ms") else None,
    )


def restore_result_to_pb(result: RestoreResult) -> pb.RestoreResult:
    return pb.RestoreResult(item_count=result.item_count, size_bytes=result.size_bytes)


def restore_result_from_pb(m: pb.RestoreResult) -> RestoreResult:
    return RestoreResult(m.item_count, m.size_bytes)


# --- transactions (model/transactions.py) ---------------------------------------------


def txn_request_to_pb(request: TxnRequest) -> pb.TxnRequest:
    return pb.TxnRequest(
        txn_id=request.txn_id,
        ops=[op_to_pb(i, op)[0] for i, op in enumerate(request.ops)],
        prepare=request.prepare,
        coordinator=request.coordinator,
    )


def txn_request_from_pb(m: pb.TxnRequest) -> TxnRequest:
    return TxnRequest(m.txn_id, [op_from_pb(op) for op in m.ops], m.prepare, m.coordinator)


def txn_reply_to_pb(results: list[ItemResult]) -> pb.TxnReply:
    return pb.TxnReply(results=[result_to_pb(i, r) for i, r in enumerate(results)])


def txn_reply_from_pb(m: pb.TxnReply) -> list[ItemResult]:
    return [result_from_pb(r) for r in m.results]


def txn_read_to_pb(ops: list[ItemOp]) -> pb.TxnRead:
    return pb.TxnRead(ops=[op_to_pb(i, op)[0] for i, op in enumerate(ops)])


def txn_read_from_pb(m: pb.TxnRead) -> list[ItemOp]:
    return [op_from_pb(op) for op in m.ops]


# --- throughput leases (node/budget.py) ------------------------------------------------


def lease_to_pb(request: LeaseRequest) -> pb.CapacityLease:
    return pb.CapacityLease(
        table_id=request.table_id, index_name=request.index_name, meter=request.meter,
        rate_per_s=request.limit.rate_per_s, burst_s=request.limit.burst_s, wanted=request.wanted,
    )


def lease_from_pb(m: pb.CapacityLease) -> LeaseRequest:
    return LeaseRequest(
        m.table_id, m.index_name, Meter(m.meter), Limit(m.rate_per_s, m.burst_s), m.wanted
    )
