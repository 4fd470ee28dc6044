"""Conversions between the seam's records (``model/ops.py``) and ``meridian.v1``
protobuf messages, used by both ends of the router -> node stream.

Items and placeholder maps travel as orjson bytes; an empty bytes field means
"absent".  A result's item bytes are passed through untouched, so a GetItem
answer goes from RocksDB to the HTTP response without being parsed.
"""

from __future__ import annotations

import orjson

from meridian.model.errors import ConditionalCheckFailedException, DynamoError, error_from_type
from meridian.model.ops import CatalogEntry, ItemOp, ItemResult, OpKind, ReturnValues, TableStats
from meridian.proto import storage_pb2 as pb

_dumps = orjson.dumps
_loads = orjson.loads
_OP_KINDS = tuple(OpKind)
_RETURN_VALUES = tuple(ReturnValues)
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
            return pb.OpResult(id=op_id)
        return pb.OpResult(id=op_id, has_item=True, item=item_json)
    error_item = b""
    if isinstance(err, ConditionalCheckFailedException) and err.item is not None:
        error_item = _dumps(err.item)
    return pb.OpResult(
        id=op_id,
        error_type=err.type_name,
        error_message=err.message or "",
        error_item=error_item,
    )


def result_from_pb(m: pb.OpResult) -> ItemResult:
    error_type = m.error_type
    if not error_type:
        return ItemResult(m.item if m.has_item else None)
    error_item = m.error_item
    err: DynamoError = error_from_type(
        error_type, m.error_message or None, _loads(error_item) if error_item else None
    )
    return ItemResult(None, err)


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
    return pb.TableStats(item_count=stats.item_count, size_bytes=stats.size_bytes)


def stats_from_pb(m: pb.TableStats) -> TableStats:
    return TableStats(item_count=m.item_count, size_bytes=m.size_bytes)
