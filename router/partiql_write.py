"""INSERT, UPDATE, DELETE and EXISTS as the JSON API's single-item requests.

    INSERT INTO t VALUE {...}   PutItem,    ConditionExpression attribute_not_exists(<partition key>)
                                (a failed condition is DynamoDB's DuplicateItemException)
    UPDATE t SET/REMOVE ... WHERE <key> [AND cond]
                                UpdateItem, ConditionExpression attribute_exists(<partition key>) AND cond
    DELETE FROM t WHERE <key> [AND cond]
                                DeleteItem, ConditionExpression cond (a missing item is no error)
    EXISTS(SELECT * FROM t WHERE <key> AND cond)     (ExecuteTransaction only)
                                a ConditionCheck of cond

``SET a = set_add(a, <<...>>)`` is the update expression's ``ADD a :v``,
``set_delete`` its ``DELETE``; ``list_append``, ``+`` and ``-`` are kept.
RETURNING maps onto ReturnValues (ALL OLD -> ALL_OLD, MODIFIED OLD ->
UPDATED_OLD, ALL NEW -> ALL_NEW, MODIFIED NEW -> UPDATED_NEW).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from meridian.model.errors import ValidationException
from meridian.model.expressions import ast as E
from meridian.model.expressions.printer import to_text
from meridian.model.partiql import ast as P
from meridian.model.partiql import insert_item, is_value, to_value
from meridian.model.partiql.errors import refused

from .partiql_expr import INCOMPLETE_KEY, KEY_TYPE_MISMATCH, Expressions, and_of, full_key
from .table_record import Table

Value = dict[str, Any]

ON_INDEX = "This operation is not supported on an index"
KEY_ABSENT = "Key attribute should be present in the item: Key "
EXISTS_KEY = "EXISTS() must contain a single item read with additional condition"
EXISTS_INDEX = "Operations on indices are not supported in transactions"
_RETURN_VALUES = {"ALL OLD": "ALL_OLD", "MODIFIED OLD": "UPDATED_OLD", "ALL NEW": "ALL_NEW",
                  "MODIFIED NEW": "UPDATED_NEW"}
_SET_FUNCTIONS = {"set_add": "ADD", "set_delete": "DELETE"}
_KEPT_FUNCTIONS = frozenset({"list_append", "if_not_exists"})


@dataclass
class Write:
    """One statement's single-item request, and how it answers."""

    action: str  # PutItem, UpdateItem, DeleteItem or ConditionCheck
    body: dict[str, Any]
    key: dict[str, Value]
    returning: str | None = None

    @property
    def is_insert(self) -> bool:
        return self.action == "PutItem"

    def transact_item(self) -> dict[str, Any]:
        """The TransactWriteItems member for this write."""
        member = {name: value for name, value in self.body.items()
                  if name not in ("ReturnConsumedCapacity", "ReturnValues")}
        kind = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}.get(self.action, self.action)
        return {kind: member}


def _base(table: Table, capacity: str | None, on_failure: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"TableName": table.name}
    if capacity is not None:
        body["ReturnConsumedCapacity"] = capacity
    if on_failure is not None:
        body["ReturnValuesOnConditionCheckFailure"] = on_failure
    return body


def _no_index(source: P.Source) -> None:
    if source.index is not None:
        raise ValidationException(ON_INDEX)


def plan_insert(stmt: P.Insert, table: Table, params: Sequence[Value], capacity: str | None) -> Write:
    _no_index(stmt.source)
    item = insert_item(stmt.value, params)
    key: dict[str, Value] = {}
    for name, key_type in table.key_schema:
        value = item.get(name)
        if value is None:
            raise ValidationException(KEY_ABSENT + name)
        if len(value) != 1 or key_type not in value:
            raise ValidationException(KEY_TYPE_MISMATCH + name)
        key[name] = value
    body = _base(table, capacity, None)
    body.update(Item=item, ConditionExpression="attribute_not_exists(#n0)",
                ExpressionAttributeNames={"#n0": table.key_schema[0][0]})
    return Write("PutItem", body, key)


def _key_and_rest(condition: Any, table: Table, params: Sequence[Value]) -> tuple[dict[str, Value], Any | None]:
    found = full_key(condition, table.key_schema, params)
    if found is None:
        raise ValidationException(INCOMPLETE_KEY)
    key, rest = found
    return key, and_of(rest)


def plan_update(stmt: P.Update, table: Table, params: Sequence[Value], capacity: str | None,
                on_failure: str | None) -> Write:
    _no_index(stmt.source)
    key, rest = _key_and_rest(stmt.condition, table, params)
    builder = Expressions(params)
    clauses: dict[str, list[Any]] = {"SET": [], "REMOVE": [], "ADD": [], "DELETE": []}
    for action in stmt.actions:
        if isinstance(action, P.RemoveAction):
            clauses["REMOVE"].append(E.RemoveAction(builder.path(action.path)))
            continue
        keyword, tree = _assignment(action, builder)
        clauses[keyword].append(tree)
    update = E.UpdateExpr(tuple(E.Clause(keyword, tuple(actions)) for keyword, actions in clauses.items() if actions))
    exists: Any = E.Call("attribute_exists", (E.Path((builder.name(table.key_schema[0][0]),)),))
    condition = exists if rest is None else E.And((exists, *_and_items(builder.condition(rest))))
    body = _base(table, capacity, on_failure)
    body.update(Key=key, UpdateExpression=to_text(update), ConditionExpression=to_text(condition))
    if stmt.returning is not None:
        body["ReturnValues"] = _RETURN_VALUES[stmt.returning]
    return Write("UpdateItem", builder.request(body), key, stmt.returning)


def _and_items(tree: Any) -> tuple[Any, ...]:
    return tree.items if isinstance(tree, E.And) else (tree,)


def _assignment(action: P.SetAction, builder: Expressions) -> tuple[str, Any]:
    target = builder.path(action.path)
    value = action.value
    if isinstance(value, P.Call) and value.name in _SET_FUNCTIONS:
        keyword = _SET_FUNCTIONS[value.name]
        upper = value.name.upper()
        if len(value.args) != 2:
            raise refused(f"{upper} must have exactly two arguments", value.where)
        first, second = value.args
        if not isinstance(first, P.Path) or first.steps != action.path.steps:
            raise refused(f"The first argument to {upper} must equal the assignment value", value.where)
        operand = to_value(second, builder.params) if is_value(second) else None
        if operand is None or not ({"SS", "NS", "BS"} & operand.keys()):
            raise refused(f"The second argument to {upper} must be a value with type SET", first.where)
        node = E.AddAction if keyword == "ADD" else E.DeleteAction
        return keyword, node(target, builder.value(operand))
    if isinstance(value, P.Call):
        if value.name not in _KEPT_FUNCTIONS:
            raise refused(f"Unrecognized function: {value.name}", value.where)
        return "SET", E.SetAction(target, E.Call(value.name, tuple(builder.operand(arg) for arg in value.args)))
    return "SET", E.SetAction(target, builder.operand(value))


def plan_delete(stmt: P.Delete, table: Table, params: Sequence[Value], capacity: str | None,
                on_failure: str | None) -> Write:
    _no_index(stmt.source)
    if stmt.returning is not None and stmt.returning != "ALL OLD":
        raise ValidationException(f"Invalid returning clause: RETURNING {stmt.returning} *. "
                                  "Only RETURNING ALL OLD * is allowed in DELETE statements.")
    key, rest = _key_and_rest(stmt.condition, table, params)
    builder = Expressions(params)
    body = _base(table, capacity, on_failure)
    body["Key"] = key
    if rest is not None:
        body["ConditionExpression"] = builder.condition_text(rest)
    if stmt.returning is not None:
        body["ReturnValues"] = "ALL_OLD"
    return Write("DeleteItem", builder.request(body), key, stmt.returning)


def plan_exists(stmt: P.Exists, table: Table, params: Sequence[Value], on_failure: str | None) -> Write:
    select = stmt.select
    if select.source.index is not None:
        raise ValidationException(EXISTS_INDEX)
    found = full_key(select.condition, table.key_schema, params)
    if found is None or not found[1]:
        raise ValidationException(EXISTS_KEY)
    key, rest = found
    builder = Expressions(params)
    body = _base(table, None, on_failure)
    body.update(Key=key, ConditionExpression=builder.condition_text(and_of(rest)))
    return Write("ConditionCheck", builder.request(body), key)
