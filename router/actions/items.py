"""GetItem, PutItem, DeleteItem, UpdateItem.

Each action runs DynamoDB's checks in DynamoDB's order: the request-only
checks first (attribute values, ReturnValues, item size, expressions and
their placeholders; none of them needs the table), then the table lookup
(``ResourceNotFoundException``), then the checks against the table's key
schema, and finally one ``ItemOp`` to the node that owns the key, which
evaluates the condition and writes atomically.

Legacy parameters (``Expected``, ``AttributeUpdates``, ``AttributesToGet``)
are translated into expression text here, so the node sees one form.
"""

from __future__ import annotations

from typing import Any

import orjson

from meridian.model import limits
from meridian.model.errors import ConditionalCheckFailedException, ValidationException
from meridian.model.expressions import Compiled, compile_expressions, updated_attributes
from meridian.model.expressions.legacy import (
    check_not_mixed,
    translate_attribute_updates,
    translate_attributes_to_get,
    translate_expected,
)
from meridian.model.keycodec import encode_item_key, partition_hash
from meridian.model.ops import ItemOp, ItemResult, OpKind, ReturnValues
from meridian.model.index_keys import check_index_keys
from meridian.model.values import extract_key, item_size, validate_item, validate_key

from .. import capacity
from ..capacity import Consistency, Units, Usage
from ..capacity import index_write_units as index_write_units  # the rule's old home: transact.py imports it here
from ..context import RouterContext
from ..contributors import THROTTLED, Contributors
from ..table_record import Table
from ..throttle import READ, WRITE, Throttle

_RETURN_VALUES = {
    None: ReturnValues.NONE,
    "NONE": ReturnValues.NONE,
    "ALL_OLD": ReturnValues.ALL_OLD,
    "UPDATED_OLD": ReturnValues.UPDATED_OLD,
    "ALL_NEW": ReturnValues.ALL_NEW,
    "UPDATED_NEW": ReturnValues.UPDATED_NEW,
}

Expr = tuple[str | None, dict[str, str] | None, dict[str, Any] | None]

NOT_SCALAR_KEY = "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: "
NOT_SCALAR_INDEX_KEY = (
    "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: IndexKey: "
)


def check_projected_keys(compiled: Compiled | None, table: Table) -> None:
    """A projection may not look into a table or index key attribute (``k[0]``, ``k.a``):
    DynamoDB refuses it once the table is known (GetItem, BatchGetItem, Query, Scan;
    dynalite records these messages)."""
    paths = compiled.projection_paths if compiled is not None else None
    if not paths:
        return
    key_names = table.key_names
    for path in paths:
        if len(path) > 1 and path[0] in key_names:
            raise ValidationException(NOT_SCALAR_KEY + str(path[0]))
    for index in table.indexes:
        for path in paths:
            if len(path) > 1 and path[0] in index.key_names:
                raise ValidationException(NOT_SCALAR_INDEX_KEY + str(path[0]))


def _projection(body: dict[str, Any]) -> tuple[str | None, dict[str, str] | None]:
    if "ProjectionExpression" in body:
        return body["ProjectionExpression"], body.get("ExpressionAttributeNames")
    if body.get("AttributesToGet"):
        return translate_attributes_to_get(body["AttributesToGet"])
    return None, body.get("ExpressionAttributeNames")


def _condition(body: dict[str, Any]) -> Expr:
    if "ConditionExpression" in body:
        return body["ConditionExpression"], body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
    if body.get("Expected"):
        text, names, values = translate_expected(body["Expected"], body.get("ConditionalOperator"))
        return text, names or None, values or None
    return None, body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")


def _merge(a: dict | None, b: dict | None) -> dict | None:
    if not a:
        return b or None
    if not b:
        return a
    merged = dict(a)
    merged.update(b)
    return merged


def _route(ctx: RouterContext, table: Table, key: dict[str, Any]) -> tuple[bytes, str]:
    key_bytes = encode_item_key(table.table_id, table.key_schema, key)
    ring = ctx.ring
    if ring.single is not None:  # one node (embedded): no hashing needed
        return key_bytes, ring.single
    pk_name, pk_type = table.key_schema[0]
    return key_bytes, ring.owner(partition_hash(pk_type, key[pk_name]))


def _read_units(size_bytes: int, consistent: bool) -> float:
    """Read units of one item read (``capacity.read_units``)."""
    return capacity.read_units(size_bytes, Consistency.of(consistent))


def _write_units(size_bytes: int) -> float:
    """Write units of one plain write (``capacity.write_units``)."""
    return capacity.write_units(size_bytes)


def _consumed(body: dict[str, Any], table: Table, units: float) -> dict[str, Any] | None:
    """``ConsumedCapacity`` of ``units`` read or written on the table alone."""
    return capacity.consumed(body.get("ReturnConsumedCapacity"), table.name, Usage(Units(read=units)))


def _write_consumed(body: dict[str, Any], table: Table, table_units: float,
                    index_units: dict[str, float]) -> dict[str, Any] | None:
    """A write's ``ConsumedCapacity``: the table's units plus each affected
    index's (by name), totalled under TOTAL and listed per index under INDEXES."""
    usage = Usage(Units(write=table_units))
    for index in table.indexes:
        units = index_units.get(index.name)
        if units:
            usage.index(index).write += units
    return capacity.consumed(body.get("ReturnConsumedCapacity"), table.name, usage)


def collection_metrics(body: dict[str, Any], table: Table, key: dict[str, Any], size_bytes: int) -> dict[str, Any] | None:
    """``ItemCollectionMetrics`` for a write, when asked for and the table has LSIs.

    The node reports the item collection's size (``collection_size_bytes``,
    -1 for tables without local indexes); DynamoDB answers with an estimate
    range in whole gigabytes around it.
    """
    if body.get("ReturnItemCollectionMetrics") != "SIZE" or size_bytes < 0:
        return None
    pk_name = table.key_schema[0][0]
    low = float(size_bytes // limits.ITEM_COLLECTION_ESTIMATE_STEP_BYTES)
    return {"ItemCollectionKey": {pk_name: key[pk_name]}, "SizeEstimateRangeGB": [low, low + 1.0]}


def _answer(attr: str, item_json: bytes | None, consumed: dict[str, Any] | None,
            metrics: dict[str, Any] | None = None) -> bytes:
    """Splice the node's JSON bytes into the answer without re-serialising them."""
    parts = []
    if item_json is not None:
        parts.append(b'"' + attr.encode() + b'":' + item_json)
    if consumed is not None:
        parts.append(b'"ConsumedCapacity":' + orjson.dumps(consumed))
    if metrics is not None:
        parts.append(b'"ItemCollectionMetrics":' + orjson.dumps(metrics))
    return b"{" + b",".join(parts) + b"}"


def _is_legacy(body: dict[str, Any]) -> bool:
    """Legacy parameters in use (``check_not_mixed`` has ruled out mixing)."""
    return bool(body.get("Expected") or body.get("AttributeUpdates") or body.get("AttributesToGet"))


def _check_return_values_put_delete(body: dict[str, Any]) -> None:
    rv = body.get("ReturnValues")
    if rv is not None and rv not in ("ALL_OLD", "NONE"):
        raise ValidationException("ReturnValues can only be ALL_OLD or NONE")


def _write_options(body: dict[str, Any], legacy: bool) -> dict[str, Any]:
    """The ItemOp fields every write takes from the request the same way."""
    return {
        "return_values": _RETURN_VALUES[body.get("ReturnValues")],
        "return_old_on_condition_failure": body.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD",
        "legacy": legacy,
    }


def _counts_indexes(body: dict[str, Any], table: Table) -> bool:
    """Whether the write's answer reports capacity that its indexes share."""
    return bool(table.indexes) and body.get("ReturnConsumedCapacity") in capacity.CAPACITY_MODES


def metering(ctx: RouterContext) -> Throttle | None:
    """The router's throttle when it meters anything (``router/throttle.py``)."""
    throttle = ctx.throttle
    return throttle if throttle is not None and throttle.enabled else None


def prepare_write(body: dict[str, Any], table: Table, op: ItemOp,
                  throttle: Throttle | None = None) -> tuple[bool, ReturnValues]:
    """Whether the write's capacity is charged to indexes, and the ReturnValues asked for.

    When capacity is asked of a table with indexes, the old item is needed to
    charge each index (``capacity.index_writes``): the write is then asked
    for ALL_OLD, which the node answers from the very item it changed, and
    ``write_answer`` shapes what the request asked for from it.  So is it
    when ``throttle`` meters a global index of the table on its own: its
    share of the write is charged against it.
    """
    indexed = _counts_indexes(body, table) or (throttle is not None and throttle.metered_indexes(table))
    requested = op.return_values
    if indexed:
        op.return_values = ReturnValues.ALL_OLD
    return indexed, requested


async def _write(ctx: RouterContext, body: dict[str, Any], table: Table, key: dict[str, Any], node: str, op: ItemOp,
                 new_item: Any = None) -> bytes:
    """Send one write to its node and shape DynamoDB's answer from the result.

    ``new_item`` is the new item (PutItem), None (DeleteItem) or a function
    of the old item (UpdateItem, see ``write_answer``).
    """
    throttle = metering(ctx)
    indexed, requested = prepare_write(body, table, op, throttle)
    key_hash = None
    if throttle is not None:
        key_hash = throttle.key_hash(table, key)
        try:  # a put's item: its global index partitions' ceilings apply too
            await throttle.admit(table, WRITE, key_hash=key_hash, item=new_item)
        except THROTTLED:
            ctx.contributors.throttled(table, key, item=new_item)
            raise
    result = await ctx.storage.call(node, op)
    return write_answer(body, table, key, result, new_item, indexed, requested, None, throttle, key_hash,
                        ctx.contributors if table.contributor_insights else None)


def _json_or_none(item: dict[str, Any] | None) -> bytes | None:
    return orjson.dumps(item) if item else None


def _update_answer(requested: ReturnValues, old: dict[str, Any] | None, new: dict[str, Any] | None,
                   touched: frozenset[str]) -> bytes | None:
    """An UpdateItem's ``Attributes`` from its old and new item, as the node
    shapes them (``node/write_path.py``) when asked for ``requested``."""
    if requested == ReturnValues.ALL_OLD:
        return _json_or_none(old)
    if requested == ReturnValues.ALL_NEW:
        return _json_or_none(new)
    if requested == ReturnValues.UPDATED_NEW:
        return _json_or_none(updated_attributes(new, touched)) if new is not None else None
    if requested == ReturnValues.UPDATED_OLD:
        return _json_or_none(updated_attributes(old, touched)) if old is not None else None
    return None


def write_answer(body: dict[str, Any], table: Table, key: dict[str, Any], result: ItemResult, new_item: Any,
                 indexed: bool, requested: ReturnValues, old: dict[str, Any] | None,
                 throttle: Throttle | None = None, key_hash: int | None = None,
                 insights: Contributors | None = None) -> bytes:
    """DynamoDB's answer to a write from the node's result; raises the write's error.

    ``prepare_write`` said ``indexed`` and ``requested``.  When ``indexed``,
    the node answered ALL_OLD: the old item (which supersedes ``old``), and
    the new one is ``new_item``, or ``new_item(old)`` for an update, which
    returns it with the attribute names it touched (None: the update of a
    missing item created nothing).  ``throttle`` (admitted with
    ``key_hash``) is charged what the write consumed; a failed condition
    still costs a write unit, as in DynamoDB.  ``insights`` (Contributor
    Insights, when the table has it on) counts the key with the write's units.
    """
    if result.error is not None:
        if isinstance(result.error, ConditionalCheckFailedException):
            if throttle is not None:
                throttle.spend(table, WRITE, capacity.write_units(0), key_hash=key_hash)
            if insights is not None:
                insights.accessed(table, key, item=new_item, units=capacity.write_units(0))
        raise result.error
    consumed = None
    mode = body.get("ReturnConsumedCapacity")
    if not indexed and mode not in capacity.CAPACITY_MODES:
        # the common case, with no index to charge: the write's own units only
        if throttle is not None:
            throttle.spend(table, WRITE, capacity.write_units(result.size_bytes), key_hash=key_hash)
        if insights is not None:
            insights.accessed(table, key, item=new_item, units=capacity.write_units(result.size_bytes))
    else:
        new = None
        if indexed:
            old = orjson.loads(result.item_json) if result.item_json is not None else None
            if callable(new_item):
                new, touched = new_item(old)
                if requested != ReturnValues.ALL_OLD:
                    result.item_json = _update_answer(requested, old, new, touched)
            else:
                new = new_item
                if requested == ReturnValues.NONE:
                    result.item_json = None
        usage = capacity.item_write(table, result.size_bytes, old, new, indexed)
        consumed = capacity.consumed(mode, table.name, usage)
        if throttle is not None:  # its index entries charged to their index partitions
            throttle.spend_usage(table, WRITE, usage, key_hash=key_hash, old=old, new=new)
        if insights is not None:
            insights.accessed(table, key, item=new_item,
                              units=usage.table.write + sum(u.write for u in usage.local_indexes.values()),
                              index_units={name: u.write for name, u in usage.global_indexes.items()} or None)
    metrics = collection_metrics(body, table, key, result.collection_size_bytes)
    if result.item_json is None and consumed is None and metrics is None:
        return b"{}"
    return _answer("Attributes", result.item_json, consumed, metrics)


async def get_item(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    check_not_mixed(body, "GetItem")
    key_in = validate_item(body["Key"], context="key")
    projection, names = _projection(body)
    legacy = _is_legacy(body)
    compiled = None
    if projection is not None or names:
        compiled = compile_expressions(projection=projection, names=names, legacy=legacy)
    table = await ctx.catalog.require(body["TableName"])
    node, op = get_op(ctx, table, key_in, projection, names, legacy)
    check_projected_keys(compiled, table)
    throttle = metering(ctx)
    key_hash = None
    if throttle is not None:
        key_hash = throttle.key_hash(table, op.key_item)
        try:
            await throttle.admit(table, READ, key_hash=key_hash)
        except THROTTLED:
            ctx.contributors.throttled(table, op.key_item)
            raise
    return get_answer(body, table, await ctx.storage.call(node, op), throttle, key_hash,
                      ctx.contributors if table.contributor_insights else None, op.key_item)


def get_op(ctx: RouterContext, table: Table, key_in: dict[str, Any], projection: str | None,
           names: dict[str, str] | None, legacy: bool) -> tuple[str, ItemOp]:
    """GetItem's checks against the table, then its node and op."""
    key = validate_key(key_in, table.key_schema)
    key_bytes, node = _route(ctx, table, key)
    return node, ItemOp(OpKind.GET, table.table_id, key_bytes, key, projection=projection, names=names, legacy=legacy)


def get_answer(body: dict[str, Any], table: Table, result: ItemResult,
               throttle: Throttle | None = None, key_hash: int | None = None,
               insights: Contributors | None = None, key: dict[str, Any] | None = None) -> bytes:
    """DynamoDB's answer to a GetItem from the node's result; raises the read's
    error.  ``throttle`` (admitted with ``key_hash``) is charged the read;
    ``insights`` (Contributor Insights, when the table has it on) counts
    ``key`` with the read's units."""
    if result.error is not None:
        raise result.error
    if throttle is not None or insights is not None:
        units = capacity.read_blocks(result.size_bytes) * (1.0 if body.get("ConsistentRead") else 0.5)
        if throttle is not None:
            throttle.spend(table, READ, units, key_hash=key_hash)
        if insights is not None and key is not None:
            insights.accessed(table, key, units=units)
    consumed = None
    mode = body.get("ReturnConsumedCapacity")
    if mode in capacity.CAPACITY_MODES:
        usage = capacity.item_read(result.size_bytes, Consistency.of(body.get("ConsistentRead")))
        consumed = capacity.consumed(mode, table.name, usage)
    if consumed is None:
        return b'{"Item":' + result.item_json + b"}" if result.item_json is not None else b"{}"
    return _answer("Item", result.item_json, consumed)


async def put_item(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    check_not_mixed(body, "PutItem")
    item = validate_item(body["Item"])
    _check_return_values_put_delete(body)
    size = item_size(item)
    if size > limits.ITEM_SIZE_BYTES_MAX:
        raise ValidationException("Item size has exceeded the maximum allowed size")
    condition, names, values = _condition(body)
    legacy = _is_legacy(body)
    if condition is not None or names or values:
        compile_expressions(condition=condition, names=names, values=values, legacy=legacy)
    table = await ctx.catalog.require(body["TableName"])
    key, node, op = put_op(ctx, body, table, item, size, (condition, names, values), legacy)
    return await _write(ctx, body, table, key, node, op, item)


def put_op(ctx: RouterContext, body: dict[str, Any], table: Table, item: dict[str, Any], size: int,
           condition: Expr, legacy: bool) -> tuple[dict[str, Any], str, ItemOp]:
    """PutItem's checks against the table, then its key, node and op
    (``condition``: the condition's text, names and values)."""
    key = extract_key(item, table.key_schema)
    if table.indexes:
        check_index_keys(item, table.index_key_schemas, updating=False)
    key_bytes, node = _route(ctx, table, key)
    text, names, values = condition
    op = ItemOp(
        OpKind.PUT, table.table_id, key_bytes, key, item=item, condition=text, names=names, values=values,
        item_size_bytes=size,
        **_write_options(body, legacy),
    )
    return key, node, op


async def delete_item(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    check_not_mixed(body, "DeleteItem")
    key_in = validate_item(body["Key"], context="key")
    _check_return_values_put_delete(body)
    condition, names, values = _condition(body)
    legacy = _is_legacy(body)
    if condition is not None or names or values:
        compile_expressions(condition=condition, names=names, values=values, legacy=legacy)
    table = await ctx.catalog.require(body["TableName"])
    key = validate_key(key_in, table.key_schema)
    key_bytes, node = _route(ctx, table, key)
    op = ItemOp(
        OpKind.DELETE, table.table_id, key_bytes, key, condition=condition, names=names, values=values,
        **_write_options(body, legacy),
    )
    return await _write(ctx, body, table, key, node, op)


async def update_item(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    check_not_mixed(body, "UpdateItem")
    key_in = validate_item(body["Key"], context="key")
    if "UpdateExpression" in body:
        update: str | None = body["UpdateExpression"]
        u_names, u_values = body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
    elif body.get("AttributeUpdates"):
        update, u_names, u_values = translate_attribute_updates(body["AttributeUpdates"])
        u_names, u_values = u_names or None, u_values or None
    else:
        update, u_names, u_values = None, body.get("ExpressionAttributeNames"), body.get("ExpressionAttributeValues")
    if "ConditionExpression" in body or "UpdateExpression" in body:
        condition = body.get("ConditionExpression")
        names, values = u_names, u_values
    else:
        condition, c_names, c_values = _condition(body)
        names, values = _merge(u_names, c_names), _merge(u_values, c_values)
    legacy = _is_legacy(body)
    compiled = None
    if condition is not None or update is not None or names or values:
        compiled = compile_expressions(condition=condition, update=update, names=names, values=values, legacy=legacy)
    table = await ctx.catalog.require(body["TableName"])
    key = validate_key(key_in, table.key_schema)
    if compiled is not None and update is not None:
        compiled.check_key_attributes(table.key_names)
    key_bytes, node = _route(ctx, table, key)
    op = ItemOp(
        OpKind.UPDATE, table.table_id, key_bytes, key, condition=condition, update=update, names=names, values=values,
        **_write_options(body, legacy),
    )

    def updated(old: dict[str, Any] | None) -> tuple[dict[str, Any] | None, frozenset[str]]:
        """The item the node made of ``old`` and the names it touched, by the
        node's rules (``node/write_path.py``); None when it created nothing."""
        if compiled is None or update is None:  # an UpdateItem without an update makes sure the item exists
            return (old if old is not None else dict(key)), frozenset()
        try:
            new, touched = compiled.apply_update(old, key)
        except ValidationException:  # the node applied it: cannot happen, but capacity never fails a write
            return old, frozenset()
        if old is None and len(new) == len(key):  # only removals on a missing item: nothing is created
            return None, touched
        return new, touched

    return await _write(ctx, body, table, key, node, op, updated)


ACTIONS = {
    "GetItem": get_item,
    "PutItem": put_item,
    "DeleteItem": delete_item,
    "UpdateItem": update_item,
}
