"""TransactWriteItems and TransactGetItems.

Both run DynamoDB's checks in DynamoDB's order, as captures of live replies
record it (paritysuite/dynamodb-conformance: tier3 ``transactWriteItems``,
``transactGetItems``, ``validation-ordering/transactions`` and
``limits/itemSizeBySurface``; moto's aws_verified transaction tests):

1. shapes and constraints, then one action per entry
   (``router/validation.py``, ``validation_rules.py``);
2. every action in request order, before any table is looked up: attribute
   values, a Put's item size (it is known from the request), expressions
   and their placeholders, exactly as the single-item actions check them;
3. every action in order: its table (``ResourceNotFoundException``), then
   its key against the table's schema.  An empty or oversized key value is
   the request's ``ValidationException``; a key that does not fit the schema
   (wrong type, missing, an update of a key attribute, a Put's index key of
   the wrong type) is the action's ``ValidationError`` cancellation reason;
4. one action per item ("Transaction request cannot include multiple
   operations on one item"), then the aggregate size (4 MB);
5. reasons from step 3: ``TransactionCanceledException`` before anything runs
   (the other actions' reasons read None: they were never judged);
6. ``ClientRequestToken`` (``router/transact_tokens.py``);
7. the coordinator (``router/transactions.py``): what only the items can tell
   (conditions, conflicts, an update's operands, the updated item's size)
   comes back as the actions' reasons.

Answers (cancellation reasons, capacity and its sources) are shaped by
``router/transact_answers.py``.  Transactions take expressions only: the
legacy parameters are not in their shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from meridian.model import limits
from meridian.model.errors import ProvisionedThroughputExceededException, ThrottlingException, ValidationException
from meridian.model.expressions import Compiled, compile_expressions
from meridian.model.ops import ItemOp, ItemResult, OpKind, ReturnValues
from meridian.model.index_keys import check_index_keys
from meridian.model.values import (
    ITEM_TOO_LARGE_MESSAGE,
    KEY_SCHEMA_MISMATCH_MESSAGE,
    attribute_value_size,
    extract_key,
    item_size,
    validate_item,
    validate_key,
)

from .. import capacity
from .. import transact_answers as answers
from .. import transact_tokens as tokens
from .. import transactions as coordinator
from ..context import RouterContext
from ..table_record import Table
from ..throttle import READ, WRITE, Meter, Throttle
from .items import _route, collection_metrics, metering

DUPLICATE_ITEM_MESSAGE = "Transaction request cannot include multiple operations on one item"
#: Not on record from a live reply; nubo-db/dynoxide's wording.
AGGREGATE_TOO_LARGE_MESSAGE = (
    "Collection size of items exceeded, which can also be caused by the aggregate size of the items in the "
    "transaction exceeding the 4MB limit"
)

_KINDS = {"ConditionCheck": OpKind.CHECK, "Put": OpKind.PUT, "Delete": OpKind.DELETE, "Update": OpKind.UPDATE}
_SIZE = {"ReturnItemCollectionMetrics": "SIZE"}  # collection_metrics' question, asked always


def _schema_mismatch(error: ValidationException) -> bool:
    """Whether a key check's failure is the action's cancellation reason (a
    key that does not fit the table) rather than the request's error (an
    empty or oversized value, checked before the transaction runs)."""
    message = error.message or ""
    return (message == KEY_SCHEMA_MISMATCH_MESSAGE or "Type mismatch for" in message
            or "Missing the key" in message or "This attribute is part of the key" in message)


@dataclass(slots=True)
class _Action:
    """One TransactItems entry: what step 2 validated, then (step 3) where it goes."""

    kind: OpKind
    table_name: str
    key_in: dict[str, Any]  # Put: the whole item
    aggregate_bytes: int  # its share of the 4 MB (a Put: its item's size)
    condition: str | None = None
    update: str | None = None
    names: dict[str, str] | None = None
    values: dict[str, Any] | None = None
    compiled: Compiled | None = None  # Update: the update, to charge indexes
    return_old: bool = False
    table: Table | None = None
    key: dict[str, Any] | None = None
    node: str = ""
    op: ItemOp | None = None


def _check_action(entry: dict[str, Any]) -> _Action:
    """Step 2 for one entry (validation_rules made sure it names one action)."""
    member = next(m for m in _KINDS if entry.get(m) is not None)
    kind = _KINDS[member]
    spec = entry[member]
    condition = spec.get("ConditionExpression")
    names, values = spec.get("ExpressionAttributeNames"), spec.get("ExpressionAttributeValues")
    if kind is OpKind.PUT:
        key_in = validate_item(spec["Item"])
        aggregate = item_size(key_in)
        if aggregate > limits.ITEM_SIZE_BYTES_MAX:
            raise ValidationException(ITEM_TOO_LARGE_MESSAGE)
    else:
        key_in = validate_item(spec["Key"], context="key")
        aggregate = item_size(key_in)
    action = _Action(kind, spec["TableName"], key_in, aggregate, condition, spec.get("UpdateExpression"), names,
                     values, return_old=spec.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD")
    if kind is OpKind.UPDATE:
        action.compiled = compile_expressions(condition=condition, update=action.update, names=names, values=values)
        action.aggregate_bytes += sum(attribute_value_size(value) for value in (values or {}).values())
    elif condition is not None or names or values:
        compile_expressions(condition=condition, names=names, values=values)
    return action


async def _bind(ctx: RouterContext, action: _Action, indexed_capacity: bool) -> dict[str, Any] | None:
    """Step 3 for one action: its table, its key, its node and op; or the
    reason it cannot run."""
    table = action.table = await ctx.catalog.require(action.table_name)
    try:
        if action.kind is OpKind.PUT:
            key = extract_key(action.key_in, table.key_schema)
            if table.indexes:
                check_index_keys(action.key_in, table.index_key_schemas, updating=False)
        else:
            key = validate_key(action.key_in, table.key_schema)
            if action.compiled is not None:
                action.compiled.check_key_attributes(table.key_names)
    except ValidationException as error:
        if not _schema_mismatch(error):
            raise
        return answers.validation_reason(error)
    key_bytes, action.node = _route(ctx, table, key)
    action.key = key
    op = ItemOp(action.kind, table.table_id, key_bytes, key, condition=action.condition, update=action.update,
                names=action.names, values=action.values, return_old_on_condition_failure=action.return_old)
    if action.kind is OpKind.PUT:
        op.item = action.key_in
        op.item_size_bytes = action.aggregate_bytes
    if indexed_capacity and table.indexes and action.kind is not OpKind.CHECK:
        op.return_values = ReturnValues.ALL_OLD  # the old item, to charge each index
    action.op = op
    return None


def _check_distinct(ops: list[ItemOp | None]) -> None:
    seen: set[bytes] = set()
    for op in ops:
        if op is None:
            continue
        if op.key in seen:  # the storage key starts with the table id
            raise ValidationException(DUPLICATE_ITEM_MESSAGE)
        seen.add(op.key)


async def _prepare_write(ctx: RouterContext, body: dict[str, Any]) -> list[_Action]:
    """Steps 2 to 5: the actions, bound, or the request's error."""
    actions = [_check_action(entry) for entry in body["TransactItems"]]
    throttle = metering(ctx)
    reasons = []
    for action in actions:
        table = await ctx.catalog.require(action.table_name)
        indexed_capacity = body.get("ReturnConsumedCapacity") in capacity.CAPACITY_MODES or (
            throttle is not None and throttle.metered_indexes(table))
        reasons.append(await _bind(ctx, action, indexed_capacity))
    _check_distinct([action.op for action in actions])
    if sum(action.aggregate_bytes for action in actions) > limits.TRANSACT_AGGREGATE_BYTES_MAX:
        raise ValidationException(AGGREGATE_TOO_LARGE_MESSAGE)
    if any(reason is not None for reason in reasons):
        raise answers.cancellation(reasons)
    return actions


def _new_item(action: _Action, old: dict[str, Any] | None) -> dict[str, Any] | None:
    """The item an action left (to charge the indexes), from the old one."""
    if action.kind is OpKind.PUT:
        return action.key_in
    if action.kind is OpKind.DELETE:
        return None
    assert action.compiled is not None and action.key is not None
    try:
        return action.compiled.apply_update(old, action.key)[0]
    except ValidationException:  # the node applied it: cannot happen, but capacity never fails a write
        return old


async def _admit(throttle: Throttle | None, meter: Meter, bound: list[tuple[Table, dict[str, Any]]]) -> list[
        int | None]:
    """Throttling a transaction item by item: each item's partition hash
    (None when nothing is metered); an item that may not run now cancels the
    transaction with its throttling reason at its place."""
    if throttle is None:
        return [None] * len(bound)
    hashes: list[int | None] = []
    reasons: list[dict[str, Any] | None] = []
    for table, key in bound:
        key_hash = throttle.key_hash(table, key)
        hashes.append(key_hash)
        try:
            await throttle.admit(table, meter, key_hash=key_hash)
        except (ProvisionedThroughputExceededException, ThrottlingException) as err:
            reasons.append(answers.reason_for(err))
            continue
        reasons.append(None)
    if any(reason is not None for reason in reasons):
        raise answers.cancellation(reasons)
    return hashes


def _committed(actions: list[_Action], results: list[ItemResult], digest: bytes,
               throttle: Throttle | None = None, hashes: list[int | None] | None = None) -> tuple[
        capacity.Tally, tokens.Committed]:
    """What a committed transaction consumed (charged to ``throttle`` too),
    and what its replays need."""
    tally = capacity.Tally()
    record = tokens.Committed(digest)
    for position, (action, result) in enumerate(zip(actions, results)):
        table, op = action.table, action.op
        assert table is not None and action.key is not None and op is not None
        size = result.size_bytes if result.size_bytes >= 0 else (
            action.aggregate_bytes if action.kind is OpKind.PUT else 0)
        record.read_sizes.append((table.name, size))
        indexed = op.return_values is ReturnValues.ALL_OLD
        old = orjson.loads(result.item_json) if indexed and result.item_json is not None else None
        new = _new_item(action, old) if indexed else None
        usage = answers.action_usage(table, action.kind, size, old, new, indexed)
        tally.add(table.name, usage)
        if throttle is not None and hashes is not None:
            throttle.spend_usage(table, WRITE, usage, key_hash=hashes[position], old=old, new=new)
        if action.kind is not OpKind.CHECK:
            metrics = collection_metrics(_SIZE, table, action.key, result.collection_size_bytes)
            if metrics is not None:
                record.metrics.setdefault(table.name, []).append(metrics)
    return tally, record


def _write_answer(body: dict[str, Any], tally: capacity.Tally, metrics: dict[str, list[dict[str, Any]]]) -> bytes:
    answer: dict[str, Any] = {}
    consumed = tally.consumed(body.get("ReturnConsumedCapacity"), split=True)
    if consumed is not None:
        answer["ConsumedCapacity"] = consumed
    if metrics and body.get("ReturnItemCollectionMetrics") == "SIZE":
        answer["ItemCollectionMetrics"] = metrics
    return orjson.dumps(answer)


async def transact_write_items(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    actions = await _prepare_write(ctx, body)
    throttle = metering(ctx)
    hashes = await _admit(throttle, WRITE, [(action.table, action.key) for action in actions])
    token = body.get("ClientRequestToken")
    store = tokens.store_for(ctx) if token is not None else None
    digest = b""
    if store is not None:
        digest = tokens.request_digest(body["TransactItems"])
        replayed = store.begin(token, digest)
        if replayed is not None:
            return _write_answer(body, answers.read_tally(replayed.read_sizes), replayed.metrics)
    record = None
    try:
        results = await coordinator.execute_write(ctx, [(action.node, action.op) for action in actions])
        answers.raise_for_results(results)
        tally, record = _committed(actions, results, digest, throttle, hashes)
    finally:
        if store is not None:
            if record is not None:
                store.commit(token, record)
            else:
                store.abandon(token)
    return _write_answer(body, tally, record.metrics)


# --- TransactGetItems ------------------------------------------------------------------


@dataclass(slots=True)
class _Get:
    table_name: str
    key_in: dict[str, Any]
    projection: str | None
    names: dict[str, str] | None
    table: Table | None = None
    node: str = ""
    op: ItemOp | None = None


def _check_get(entry: dict[str, Any]) -> _Get:
    spec = entry["Get"]
    key_in = validate_item(spec["Key"], context="key")
    projection, names = spec.get("ProjectionExpression"), spec.get("ExpressionAttributeNames")
    if projection is not None or names:
        compile_expressions(projection=projection, names=names)
    return _Get(spec["TableName"], key_in, projection, names)


async def _bind_get(ctx: RouterContext, get: _Get) -> dict[str, Any] | None:
    table = get.table = await ctx.catalog.require(get.table_name)
    try:
        key = validate_key(get.key_in, table.key_schema)
    except ValidationException as error:
        if not _schema_mismatch(error):
            raise
        return answers.validation_reason(error)
    key_bytes, get.node = _route(ctx, table, key)
    get.op = ItemOp(OpKind.GET, table.table_id, key_bytes, key, projection=get.projection, names=get.names)
    return None


async def transact_get_items(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    gets = [_check_get(entry) for entry in body["TransactItems"]]
    reasons = [await _bind_get(ctx, get) for get in gets]
    _check_distinct([get.op for get in gets])
    if any(reason is not None for reason in reasons):
        raise answers.cancellation(reasons)
    throttle = metering(ctx)
    hashes = await _admit(throttle, READ, [(get.table, get.op.key_item) for get in gets])
    results = await coordinator.execute_read(ctx, [(get.node, get.op) for get in gets])
    answers.raise_for_results(results)
    if throttle is not None:
        for get, result, key_hash in zip(gets, results, hashes):
            usage = capacity.item_read(max(result.size_bytes, 0), capacity.Consistency.TRANSACTIONAL)
            throttle.spend_usage(get.table, READ, usage, key_hash=key_hash)
    # No item, or none of the projected attributes: an empty ItemResponse (botocore's TransactGetItemsOutput doc).
    responses = b",".join(b'{"Item":' + r.item_json + b"}" if r.item_json not in (None, b"{}") else b"{}"
                          for r in results)
    mode = body.get("ReturnConsumedCapacity")
    consumed = None
    if mode in capacity.CAPACITY_MODES:  # each item's whole size, whatever the projection
        sizes = [(get.table.name, r.size_bytes) for get, r in zip(gets, results) if get.table is not None]
        consumed = answers.read_tally(sizes).consumed(mode, split=True)
    if consumed is None:
        return b'{"Responses":[' + responses + b"]}"
    return b'{"Responses":[' + responses + b'],"ConsumedCapacity":' + orjson.dumps(consumed) + b"}"


ACTIONS = {
    "TransactWriteItems": transact_write_items,
    "TransactGetItems": transact_get_items,
}
