"""BatchGetItem and BatchWriteItem.

Both run in DynamoDB's order (mhart/dynalite's ``validations/batch*.js`` and
``actions/batch*.js`` record it):

1. request-only checks, for every table before any table is looked up:
   expression parameters, attribute values, item sizes, duplicate keys
   (BatchGetItem), the total count of keys (100) or of writes (25);
2. per table, in request order: the lookup (``ResourceNotFoundException``),
   then each key against the table's key schema, then duplicate keys
   (BatchWriteItem);
3. the work: every item operation of the request is issued at once, so the
   storage seam sends one message per node (the gRPC client batches the ops
   of one event-loop tick), and the router waits for all of them.

Nothing is written before every check of the whole request has passed, so a
rejected batch changes nothing.  What a node could not do (it is down, or
answered a retryable error) is not an error of the request: those keys come
back in ``UnprocessedKeys`` / ``UnprocessedItems``, in the shape of the
request, for the client to retry, as DynamoDB does under throttling.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from meridian.model import limits
from meridian.model.errors import (
    DynamoError,
    InternalServerError,
    ProvisionedThroughputExceededException,
    RequestLimitExceeded,
    ServiceUnavailable,
    ThrottlingException,
    ValidationException,
)
from meridian.model.expressions import compile_expressions
from meridian.model.expressions.legacy import check_not_mixed, translate_attributes_to_get
from meridian.model.ops import ItemOp, ItemResult, OpKind, ReturnValues
from meridian.model.index_keys import check_index_keys
from meridian.model.values import (
    ITEM_TOO_LARGE_MESSAGE,
    KEY_SCHEMA_MISMATCH_MESSAGE,
    MANY_TYPES_MESSAGE,
    extract_key,
    item_size,
    validate_item,
    validate_key,
)

from .. import capacity
from ..capacity import Consistency, Tally
from ..context import RouterContext
from ..contributors import Contributors
from ..table_record import Table
from ..throttle import READ, WRITE, Throttle
from .items import _route, check_projected_keys, collection_metrics, metering

DUPLICATE_KEYS_MESSAGE = "Provided list of item keys contains duplicates"
TOO_MANY_GETS_MESSAGE = "Too many items requested for the BatchGetItem call"
TOO_MANY_WRITES_MESSAGE = "Too many items requested for the BatchWriteItem call"

#: Failures a client retries: the op goes back to the client as unprocessed.
_RETRYABLE = (InternalServerError, ServiceUnavailable, ProvisionedThroughputExceededException,
              ThrottlingException, RequestLimitExceeded)


async def _execute(ctx: RouterContext, calls: list[tuple[str, ItemOp]]) -> list[ItemResult | None]:
    """Run every op at once; ``None`` for an op its node could not do.

    A storage-layer failure (``call`` raises a ``DynamoError``: node down,
    stream broken, timeout) or a retryable error in the result makes the op
    unprocessed; any other error of an op is the request's error.
    """
    storage = ctx.storage
    outcomes: list[Any] = await asyncio.gather(*[storage.call(node, op) for node, op in calls], return_exceptions=True)
    for i, outcome in enumerate(outcomes):
        if outcome.__class__ is ItemResult:
            error = outcome.error
            if error is None:
                continue
            if not isinstance(error, _RETRYABLE):
                raise error
        elif not isinstance(outcome, DynamoError):
            raise outcome
        outcomes[i] = None
    return outcomes


# --- BatchGetItem ------------------------------------------------------------------


class _GetTable:
    """One table's entry of a BatchGetItem: its settings and validated keys."""

    __slots__ = ("name", "entry", "projection", "names", "legacy", "keys", "compiled")

    def __init__(self, name: str, entry: dict[str, Any]) -> None:
        self.name = name
        self.entry = entry
        if entry.get("AttributesToGet") is not None:
            self.projection, self.names = translate_attributes_to_get(entry["AttributesToGet"])
            self.legacy = True
        else:
            self.projection, self.names = entry.get("ProjectionExpression"), entry.get("ExpressionAttributeNames")
            self.legacy = False
        self.compiled = None
        if self.projection is not None or self.names is not None:
            self.compiled = compile_expressions(projection=self.projection, names=self.names, legacy=self.legacy)
        self.keys: list[dict[str, Any]] = []

    def unprocessed(self, keys: list[dict[str, Any]]) -> dict[str, Any]:
        """This table's entry of ``UnprocessedKeys``: the request's settings, these keys."""
        out = {member: value for member, value in self.entry.items() if member != "Keys" and value is not None}
        out["Keys"] = keys
        return out


def _check_get_request(body: dict[str, Any]) -> list[_GetTable]:
    """BatchGetItem's request-only checks, table by table, key by key."""
    tables = []
    count = 0
    for name, entry in body["RequestItems"].items():
        check_not_mixed(entry, "BatchGetItem")
        table = _GetTable(name, entry)
        seen: set[bytes] = set()
        for key in entry["Keys"]:
            key = validate_item(key, context="key")
            canonical = orjson.dumps(key, option=orjson.OPT_SORT_KEYS)
            if canonical in seen:
                raise ValidationException(DUPLICATE_KEYS_MESSAGE)
            seen.add(canonical)
            table.keys.append(key)
            count += 1
            if count > limits.BATCH_GET_KEYS_MAX:
                raise ValidationException(TOO_MANY_GETS_MESSAGE)
        tables.append(table)
    return tables


async def batch_get_item(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    requested = _check_get_request(body)
    calls: list[tuple[str, ItemOp]] = []
    owners: list[tuple[_GetTable, dict[str, Any]]] = []  # (table, key) of each call
    tables: list[Table] = []  # the table of each call
    insights = False  # some table ranks its keys (Contributor Insights)
    for request in requested:
        table = await ctx.catalog.require(request.name)
        insights = insights or bool(table.contributor_insights)
        for key_in in request.keys:
            key = validate_key(key_in, table.key_schema)
            key_bytes, node = _route(ctx, table, key)
            calls.append((node, ItemOp(OpKind.GET, table.table_id, key_bytes, key,
                                       projection=request.projection, names=request.names, legacy=request.legacy)))
            owners.append((request, key))
            tables.append(table)
        check_projected_keys(request.compiled, table)  # after the keys, as GetItem's (a guess for the batch)
    throttle = metering(ctx)
    hashes, admitted = await _admitted(throttle, READ, [(t, key) for t, (_r, key) in zip(tables, owners)],
                                       ctx.contributors if insights else None)
    results = await _execute_admitted(ctx, calls, admitted)

    mode = body.get("ReturnConsumedCapacity")
    counting = mode in capacity.CAPACITY_MODES
    found: dict[str, list[bytes]] = {request.name: [] for request in requested}
    tally = Tally(found)
    unprocessed: dict[_GetTable, list[dict[str, Any]]] = {}
    json_bytes = sum(len(r.item_json) for r in results if r is not None and r.item_json is not None)
    # JSON text is never smaller than DynamoDB's item size, so exact sizes
    # are needed only when the JSON alone passes the response cap.
    capped = json_bytes > limits.BATCH_GET_RESPONSE_BYTES_MAX
    response_bytes = 0
    for position, ((request, key), result) in enumerate(zip(owners, results)):
        if result is None:
            unprocessed.setdefault(request, []).append(key)
            continue
        item_json = result.item_json
        size = max(result.size_bytes, 0)  # the whole stored item, as DynamoDB charges
        if capped and item_json is not None:
            if response_bytes + size > limits.BATCH_GET_RESPONSE_BYTES_MAX:
                unprocessed.setdefault(request, []).append(key)
                continue
            response_bytes += size
        if item_json is not None:
            found[request.name].append(item_json)
        if counting or throttle is not None or insights:  # each key is its own GetItem
            usage = capacity.item_read(size, Consistency.of(request.entry.get("ConsistentRead")))
            tally.add(request.name, usage)
            if throttle is not None:
                throttle.spend_usage(tables[position], READ, usage, key_hash=hashes[position])
            if tables[position].contributor_insights:  # weighed by its read units
                ctx.contributors.accessed(tables[position], key, units=usage.table.read)

    parts = [
        b'{"Responses":{',
        b",".join(orjson.dumps(name) + b":[" + b",".join(items) + b"]" for name, items in found.items()),
        b'},"UnprocessedKeys":',
        orjson.dumps({request.name: request.unprocessed(keys) for request, keys in unprocessed.items()}),
    ]
    if counting:
        parts += (b',"ConsumedCapacity":', orjson.dumps(tally.consumed(mode)))
    parts.append(b"}")
    return b"".join(parts)


# --- BatchWriteItem ----------------------------------------------------------------


async def _admitted(throttle: Throttle | None, meter, entries: list[tuple[Table, dict[str, Any]]],
                    contributors: Contributors | None, items: list[dict[str, Any] | None] | None = None) -> tuple[
        list[int | None], list[bool]]:
    """Throttling a batch key by key: each key's partition hash (None when
    nothing is metered) and whether it may run now.  A throttled key comes
    back unprocessed; a batch none of whose keys may run is the throttling
    error itself, as DynamoDB answers it.  ``items``: each put's item (None
    for a delete), whose global index partitions' ceilings apply too.
    ``contributors`` (None when no table of the batch has Contributor
    Insights on) counts each throttled key (the callers count the others
    once their units are known)."""
    if throttle is None:
        return [None] * len(entries), [True] * len(entries)
    hashes: list[int | None] = []
    admitted = []
    refusal: DynamoError | None = None
    for position, (table, key) in enumerate(entries):
        key_hash = throttle.key_hash(table, key)
        hashes.append(key_hash)
        try:
            await throttle.admit(table, meter, key_hash=key_hash, item=items[position] if items else None)
        except (ProvisionedThroughputExceededException, ThrottlingException) as err:
            if contributors is not None:
                contributors.throttled(table, key, item=items[position] if items else None)
            refusal = err
            admitted.append(False)
            continue
        admitted.append(True)
    if refusal is not None and not any(admitted):
        raise refusal
    return hashes, admitted


async def _execute_admitted(ctx: RouterContext, calls: list[tuple[str, ItemOp]],
                            admitted: list[bool]) -> list[ItemResult | None]:
    """``_execute`` of the admitted calls; None (unprocessed) for the others."""
    if all(admitted):
        return await _execute(ctx, calls)
    ran = iter(await _execute(ctx, [call for call, ok in zip(calls, admitted) if ok]))
    return [next(ran) if ok else None for ok in admitted]


class _Write:
    """One validated write request: a put (``item``) or a delete (``key_in``)."""

    __slots__ = ("item", "key_in", "size")

    def __init__(self, item: dict[str, Any] | None, key_in: dict[str, Any] | None, size: int) -> None:
        self.item = item
        self.key_in = key_in
        self.size = size

    def as_request(self) -> dict[str, Any]:
        """The request as the client sent it, values normalised (``UnprocessedItems``)."""
        if self.item is not None:
            return {"PutRequest": {"Item": self.item}}
        return {"DeleteRequest": {"Key": self.key_in}}


def _check_write_request(body: dict[str, Any]) -> dict[str, list[_Write]]:
    """BatchWriteItem's request-only checks, table by table, request by request.

    ``router/validation.py`` has already rejected a request with neither
    PutRequest nor DeleteRequest; one with both fails the same way.
    """
    request_items = body["RequestItems"]
    for requests in request_items.values():
        for request in requests:
            if request.get("PutRequest") is not None and request.get("DeleteRequest") is not None:
                raise ValidationException(MANY_TYPES_MESSAGE)
    writes: dict[str, list[_Write]] = {}
    count = 0
    for name, requests in request_items.items():
        table_writes = writes[name] = []
        for request in requests:
            put = request.get("PutRequest")
            if put is not None:
                item = validate_item(put["Item"])
                size = item_size(item)
                if size > limits.ITEM_SIZE_BYTES_MAX:
                    raise ValidationException(ITEM_TOO_LARGE_MESSAGE)
                table_writes.append(_Write(item, None, size))
            else:
                key_in = validate_item(request["DeleteRequest"]["Key"], context="key")
                table_writes.append(_Write(None, key_in, 0))
            count += 1
            if count > limits.BATCH_WRITE_ITEMS_MAX:
                raise ValidationException(TOO_MANY_WRITES_MESSAGE)
    return writes


def _put_key(item: dict[str, Any], table: Table) -> dict[str, Any]:
    """The key of a put's item.  BatchWriteItem words a missing or mistyped
    key attribute as a schema mismatch, where PutItem names the attribute."""
    for name, key_type in table.key_schema:
        value = item.get(name)
        if value is None or key_type not in value:
            raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)
    return extract_key(item, table.key_schema)


async def batch_write_item(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    writes = _check_write_request(body)
    mode = body.get("ReturnConsumedCapacity")
    counting = mode in capacity.CAPACITY_MODES
    throttle = metering(ctx)
    # A write's cost is the larger of the old and new item: the node reports
    # it.  Its indexes' costs need the old item: the node returns it.
    calls: list[tuple[str, ItemOp]] = []
    owners: list[tuple[str, _Write]] = []
    keys: list[tuple[Table, dict[str, Any]]] = []
    indexed_tables: set[str] = set()  # the node returns the old item, for the indexes' units
    insights = False  # some table ranks its keys (Contributor Insights)
    for name, table_writes in writes.items():
        table = await ctx.catalog.require(name)
        insights = insights or bool(table.contributor_insights)
        indexed = bool(table.indexes) and (counting or (throttle is not None and throttle.metered_indexes(table)))
        if indexed:
            indexed_tables.add(name)
        return_values = ReturnValues.ALL_OLD if indexed else ReturnValues.NONE
        seen: set[bytes] = set()
        for write in table_writes:
            if write.item is not None:
                key = _put_key(write.item, table)
                if table.indexes:
                    check_index_keys(write.item, table.index_key_schemas, updating=False)
                key_bytes, node = _route(ctx, table, key)
                op = ItemOp(OpKind.PUT, table.table_id, key_bytes, key, item=write.item, return_values=return_values,
                             item_size_bytes=write.size)
            else:
                key = validate_key(write.key_in, table.key_schema)
                key_bytes, node = _route(ctx, table, key)
                op = ItemOp(OpKind.DELETE, table.table_id, key_bytes, key, return_values=return_values)
            if key_bytes in seen:
                raise ValidationException(DUPLICATE_KEYS_MESSAGE)
            seen.add(key_bytes)
            calls.append((node, op))
            owners.append((name, write))
            keys.append((table, key))
    hashes, admitted = await _admitted(throttle, WRITE, keys, ctx.contributors if insights else None,
                                       [write.item for _name, write in owners])
    results = await _execute_admitted(ctx, calls, admitted)

    tally = Tally(writes)
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    metrics: dict[str, list[dict[str, Any]]] = {}
    for (name, write), (table, key), result, key_hash in zip(owners, keys, results, hashes):
        if result is None:
            unprocessed.setdefault(name, []).append(write.as_request())
            continue
        if counting or throttle is not None or insights:
            indexed = name in indexed_tables
            old = orjson.loads(result.item_json) if indexed and result.item_json is not None else None
            size = max(result.size_bytes, write.size)
            usage = capacity.item_write(table, size, old, write.item, indexed)
            tally.add(name, usage)
            if throttle is not None:  # its index entries charged to their index partitions
                throttle.spend_usage(table, WRITE, usage, key_hash=key_hash, old=old, new=write.item)
            if table.contributor_insights:  # weighed by its write units
                ctx.contributors.accessed(
                    table, key, item=write.item,
                    units=usage.table.write + sum(u.write for u in usage.local_indexes.values()),
                    index_units={n: u.write for n, u in usage.global_indexes.items()} or None)
        item_metrics = collection_metrics(body, table, key, result.collection_size_bytes)
        if item_metrics is not None:
            metrics.setdefault(name, []).append(item_metrics)
    answer: dict[str, Any] = {"UnprocessedItems": unprocessed}
    if counting:
        answer["ConsumedCapacity"] = tally.consumed(mode)
    if metrics:
        answer["ItemCollectionMetrics"] = metrics
    return orjson.dumps(answer)


ACTIONS = {
    "BatchGetItem": batch_get_item,
    "BatchWriteItem": batch_write_item,
}
