"""PartiQL: ExecuteStatement, BatchExecuteStatement, ExecuteTransaction.

A statement is parsed (``model/partiql``), translated into the JSON API
request it stands for (``router/partiql_select.py``, ``partiql_write.py``)
and run by that action's own function (items.py, query_scan.py,
transact.py), so there is one set of checks and one evaluator.  What comes
back is shaped into PartiQL's answers, and the JSON API's errors into
PartiQL's words (its expression messages lose their ``Invalid
XExpression:`` prefix; an INSERT's failed condition is DuplicateItem).

Checks in DynamoDB's order: the statement's syntax, its parameters, the
statement against the table, then the work.  BatchExecuteStatement reports
each statement's problem in its ``Responses`` (the whole call fails only for
a mix of reads and writes, or two statements on one item);
ExecuteTransaction fails whole, naming the statement
(``Validation failed in TransactStatements[i]: ...``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from meridian.model.errors import (
    ConditionalCheckFailedException,
    DuplicateItemException,
    DynamoError,
    InternalServerError,
    TransactionCanceledException,
    ValidationException,
)
from meridian.model.partiql import ast as P
from meridian.model.partiql.parser import parse
from meridian.model.partiql.values import check_parameter
from meridian.model.values import validate_attribute_value

from ..context import RouterContext
from ..partiql_expr import canonical
from ..partiql_select import SelectPlan, by_leaf, decode_token, merge_capacity, plan_select, request_digest, run_select
from ..partiql_write import Write, plan_delete, plan_exists, plan_insert, plan_update
from . import items, query_scan

PARAMETER_COUNT = "Number of parameters in request and statement don't match."
EXISTS_OUTSIDE = "EXISTS can only be used in ExecuteTransaction write requests."
BATCH_MIXED = "Read and write requests together in the same batch is not supported."
BATCH_DUPLICATES = "Provided list of item keys contains duplicates"
BATCH_SELECT_KEY = "Select statements within BatchExecuteStatement must specify the primary key in the where clause."
TXN_MIXED = "ExecuteTransaction API does not support both read and write operations in the same request."
TXN_RETURNING = "RETURNING clause is not supported in ExecuteTransaction."
TXN_SELECT_KEY = "Select statements within ExecuteTransaction must specify the primary key in the where clause."
TXN_SELECT_INDEX = "Reads on indices are not supported within transactions."
DUPLICATE_MESSAGE = "Duplicate primary key exists in table"

_EXPRESSION_PREFIXES = tuple(f"Invalid {kind}Expression: " for kind in
                             ("Condition", "Update", "Filter", "KeyCondition", "Projection"))
_CAPACITY_MODES = ("TOTAL", "INDEXES")
_BATCH_CODES = {
    "ValidationException": "ValidationError",
    "ConditionalCheckFailedException": "ConditionalCheckFailed",
    "DuplicateItemException": "DuplicateItem",
    "ResourceNotFoundException": "ResourceNotFound",
    "TransactionConflictException": "TransactionConflict",
    "ProvisionedThroughputExceededException": "ProvisionedThroughputExceeded",
    "ItemCollectionSizeLimitExceededException": "ItemCollectionSizeLimitExceeded",
    "RequestLimitExceeded": "RequestLimitExceeded",
    "ThrottlingException": "ThrottlingError",
    "AccessDeniedException": "AccessDenied",
}

Value = dict[str, Any]


# --- running the JSON API's actions ----------------------------------------------------------


def _restated(error: ValidationException) -> ValidationException:
    """A JSON API expression error in PartiQL's words (no ``Invalid XExpression:`` prefix)."""
    message = error.message or ""
    for prefix in _EXPRESSION_PREFIXES:
        if message.startswith(prefix):
            return ValidationException(message[len(prefix):])
    return error


async def _call(ctx: RouterContext, action: str, body: dict[str, Any]) -> dict[str, Any]:
    function = items.ACTIONS.get(action) or query_scan.ACTIONS.get(action)
    if function is None:
        from . import transact  # the transactions' module, beside this one
        function = transact.ACTIONS.get(action)
    if function is None:
        raise InternalServerError(f"{action} is not available")
    try:
        return orjson.loads(await function(ctx, body))
    except ValidationException as error:
        raise _restated(error) from None


# --- one statement, prepared -----------------------------------------------------------------


@dataclass
class _Prepared:
    statement: Any
    table_name: str
    select: SelectPlan | None = None
    write: Write | None = None

    @property
    def is_read(self) -> bool:
        return isinstance(self.statement, P.Select)


def _parameters(raw: Sequence[Any] | None) -> list[Value]:
    out = []
    for value in raw or ():
        check_parameter(value)
        out.append(validate_attribute_value(value))
    return out


def _parse(text: str, params: Sequence[Value]) -> Any:
    statement, count = parse(text)
    if count != len(params):
        raise ValidationException(PARAMETER_COUNT)
    return statement


def _source(statement: Any) -> P.Source:
    return statement.select.source if isinstance(statement, P.Exists) else statement.source


async def _prepare(ctx: RouterContext, statement: Any, params: Sequence[Value], *, consistent: bool = False,
                   capacity: str | None = None, on_failure: str | None = None) -> _Prepared:
    """The statement against its table: the reads or the write it stands for."""
    source = _source(statement)
    table = await ctx.catalog.require(source.table)
    prepared = _Prepared(statement, table.name)
    if isinstance(statement, P.Select):
        index = None
        if source.index is not None:
            index = table.index(source.index)
            if index is None:
                raise ValidationException(f"The table does not have the specified index: {source.index}")
        prepared.select = plan_select(statement, table, index, params, consistent, capacity)
    elif isinstance(statement, P.Insert):
        prepared.write = plan_insert(statement, table, params, capacity)
    elif isinstance(statement, P.Update):
        prepared.write = plan_update(statement, table, params, capacity, on_failure)
    elif isinstance(statement, P.Delete):
        prepared.write = plan_delete(statement, table, params, capacity, on_failure)
    else:
        prepared.write = plan_exists(statement, table, params, on_failure)
    return prepared


def _capacity(body: dict[str, Any]) -> str | None:
    mode = body.get("ReturnConsumedCapacity")
    return mode if mode in _CAPACITY_MODES else None


async def _run_write(ctx: RouterContext, write: Write) -> dict[str, Any]:
    """A write's answer: ``Items`` (the RETURNING item, if any) and ConsumedCapacity."""
    try:
        answer = await _call(ctx, write.action, write.body)
    except ConditionalCheckFailedException:
        if write.is_insert:
            raise DuplicateItemException(DUPLICATE_MESSAGE) from None
        raise
    out: dict[str, Any] = {"Items": [answer["Attributes"]] if answer.get("Attributes") else []}
    if "ConsumedCapacity" in answer:
        out["ConsumedCapacity"] = answer["ConsumedCapacity"]
    return out


# --- ExecuteStatement ------------------------------------------------------------------------


async def execute_statement(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    text = body["Statement"]
    params = _parameters(body.get("Parameters"))
    statement = _parse(text, params)
    if isinstance(statement, P.Exists):
        raise ValidationException(EXISTS_OUTSIDE)
    capacity = _capacity(body)
    prepared = await _prepare(ctx, statement, params, consistent=bool(body.get("ConsistentRead")),
                              capacity=capacity, on_failure=body.get("ReturnValuesOnConditionCheckFailure"))
    if prepared.write is not None:
        return orjson.dumps(await _run_write(ctx, prepared.write))
    plan = prepared.select
    assert plan is not None
    digest = request_digest(text, body.get("Parameters"))
    start = decode_token(body["NextToken"], digest) if body.get("NextToken") else (0, None)

    async def call(action: str, request: dict[str, Any]) -> dict[str, Any]:
        return await _call(ctx, action, request)

    return orjson.dumps(await run_select(plan, call, body.get("Limit"), start, digest))


# --- BatchExecuteStatement -------------------------------------------------------------------


def _batch_error(error: DynamoError) -> dict[str, Any]:
    if isinstance(error, ValidationException):
        error = _restated(error)
    out: dict[str, Any] = {"Code": _BATCH_CODES.get(error.type_name, "InternalServerError"),
                           "Message": error.message or ""}
    item = getattr(error, "item", None)
    if item is not None:
        out["Item"] = item
    return {"Error": out}


async def _batch_prepare(ctx: RouterContext, request: dict[str, Any], statement: Any, params: list[Value],
                         capacity: str | None) -> _Prepared:
    if isinstance(statement, P.Exists):
        raise ValidationException(EXISTS_OUTSIDE)
    prepared = await _prepare(ctx, statement, params, consistent=bool(request.get("ConsistentRead")),
                              capacity=capacity, on_failure=request.get("ReturnValuesOnConditionCheckFailure"))
    plan = prepared.select
    if plan is not None and (plan.full_key is None or plan.index is not None):
        raise ValidationException(BATCH_SELECT_KEY)
    return prepared


async def _batch_run(ctx: RouterContext, prepared: _Prepared) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One statement's response, and its ConsumedCapacity."""
    out: dict[str, Any] = {"TableName": prepared.table_name}
    if prepared.write is not None:
        answer = await _run_write(ctx, prepared.write)
        if answer["Items"]:
            out["Item"] = answer["Items"][0]
        return out, answer.get("ConsumedCapacity")
    plan = prepared.select
    assert plan is not None

    async def call(action: str, request: dict[str, Any]) -> dict[str, Any]:
        return await _call(ctx, action, request)

    answer = await run_select(plan, call, None, (0, None), "")
    if answer["Items"]:
        out["Item"] = answer["Items"][0]
    return out, answer.get("ConsumedCapacity")


async def batch_execute_statement(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    requests = body["Statements"]
    capacity = _capacity(body)
    parsed: list[tuple[Any, list[Value]] | DynamoError] = []
    for request in requests:
        try:
            params = _parameters(request.get("Parameters"))
            parsed.append((_parse(request["Statement"], params), params))
        except ValidationException as error:
            parsed.append(error)
    kinds = {isinstance(entry[0], P.Select) for entry in parsed if not isinstance(entry, DynamoError)}
    if len(kinds) > 1:
        raise ValidationException(BATCH_MIXED)
    slots: list[_Prepared | DynamoError] = []
    for request, entry in zip(requests, parsed):
        if isinstance(entry, DynamoError):
            slots.append(entry)
            continue
        try:
            slots.append(await _batch_prepare(ctx, request, entry[0], entry[1], capacity))
        except DynamoError as error:
            slots.append(error)
    seen: set[tuple[str, bytes]] = set()
    for slot in slots:
        if isinstance(slot, _Prepared):
            key = slot.write.key if slot.write is not None else slot.select.full_key  # type: ignore[union-attr]
            target = (slot.table_name, canonical(key or {}))
            if target in seen:
                raise ValidationException(BATCH_DUPLICATES)
            seen.add(target)

    async def run(slot: _Prepared | DynamoError) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if isinstance(slot, DynamoError):
            return _batch_error(slot), None
        try:
            return await _batch_run(ctx, slot)
        except DynamoError as error:
            return _batch_error(error), None

    results = await asyncio.gather(*(run(slot) for slot in slots))
    answer: dict[str, Any] = {"Responses": [response for response, _ in results]}
    consumed = [units for _, units in results if units is not None]
    if capacity is not None and consumed:
        answer["ConsumedCapacity"] = merge_capacity(consumed)
    return orjson.dumps(answer)


# --- ExecuteTransaction ----------------------------------------------------------------------


def _in_statement(index: int, error: ValidationException) -> ValidationException:
    return ValidationException(f"Validation failed in TransactStatements[{index}]: {_restated(error).message}")


async def execute_transaction(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    requests = body["TransactStatements"]
    capacity = _capacity(body)
    all_params = [_parameters(request.get("Parameters")) for request in requests]
    statements = []
    for index, (request, params) in enumerate(zip(requests, all_params)):
        try:
            statement = _parse(request["Statement"], params)
        except ValidationException as error:
            raise _in_statement(index, error) from None
        if getattr(statement, "returning", None) is not None:
            raise _in_statement(index, ValidationException(TXN_RETURNING))
        statements.append(statement)
    reads = [isinstance(statement, P.Select) for statement in statements]
    if any(reads) and not all(reads):
        raise ValidationException(TXN_MIXED)
    prepared: list[_Prepared] = []
    for index, (request, statement, params) in enumerate(zip(requests, statements, all_params)):
        try:
            if isinstance(statement, P.Select) and statement.source.index is not None:
                raise ValidationException(TXN_SELECT_INDEX)
            one = await _prepare(ctx, statement, params, on_failure=request.get("ReturnValuesOnConditionCheckFailure"))
            plan = one.select
            if plan is not None and (plan.full_key is None or plan.reads[0].post is not None):
                raise ValidationException(TXN_SELECT_KEY)
        except ValidationException as error:
            raise _in_statement(index, error) from None
        prepared.append(one)
    if all(reads):
        return await _transact_get(ctx, prepared, capacity)
    return await _transact_write(ctx, prepared, body, capacity)


async def _transact_get(ctx: RouterContext, prepared: list[_Prepared], capacity: str | None) -> bytes:
    gets = []
    for one in prepared:
        read = one.select.reads[0]  # type: ignore[union-attr]
        gets.append({"Get": {name: value for name, value in read.body.items()
                             if name not in ("ReturnConsumedCapacity", "ConsistentRead")}})
    request: dict[str, Any] = {"TransactItems": gets}
    if capacity is not None:
        request["ReturnConsumedCapacity"] = capacity
    answer = await _call(ctx, "TransactGetItems", request)
    responses = []
    for one, response in zip(prepared, answer.get("Responses", [])):
        item = response.get("Item")
        plan = one.select
        if item is not None and plan is not None and plan.leaves is not None:
            item = by_leaf(item, plan.leaves)
        responses.append({"Item": item} if item is not None else {})
    out: dict[str, Any] = {"Responses": responses}
    if "ConsumedCapacity" in answer:
        out["ConsumedCapacity"] = answer["ConsumedCapacity"]
    return orjson.dumps(out)


async def _transact_write(ctx: RouterContext, prepared: list[_Prepared], body: dict[str, Any],
                          capacity: str | None) -> bytes:
    writes = [one.write for one in prepared]
    request: dict[str, Any] = {"TransactItems": [write.transact_item() for write in writes]}  # type: ignore[union-attr]
    if body.get("ClientRequestToken") is not None:
        request["ClientRequestToken"] = body["ClientRequestToken"]
    if capacity is not None:
        request["ReturnConsumedCapacity"] = capacity
    try:
        answer = await _call(ctx, "TransactWriteItems", request)
    except TransactionCanceledException as error:
        raise _duplicates_named(error, writes) from None  # type: ignore[arg-type]
    out: dict[str, Any] = {"Responses": []}
    if "ConsumedCapacity" in answer:
        out["ConsumedCapacity"] = answer["ConsumedCapacity"]
    return orjson.dumps(out)


def _duplicates_named(error: TransactionCanceledException, writes: list[Write]) -> TransactionCanceledException:
    """An INSERT's failed condition is a DuplicateItem reason in PartiQL."""
    reasons = error.reasons
    if not reasons:
        return error
    renamed = []
    for write, reason in zip(writes, reasons):
        if write.is_insert and reason.get("Code") == "ConditionalCheckFailed":
            reason = {"Code": "DuplicateItem", "Message": DUPLICATE_MESSAGE}
        renamed.append(reason)
    return TransactionCanceledException(renamed)


ACTIONS = {
    "ExecuteStatement": execute_statement,
    "BatchExecuteStatement": batch_execute_statement,
    "ExecuteTransaction": execute_transaction,
}
