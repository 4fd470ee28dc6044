"""SELECT: which reads a statement stands for, and its pages.

How DynamoDB runs a SELECT, and so how it is translated here:

* the full primary key fixed by equality (a table, not an index): one
  GetItem; the rest of the WHERE clause filters the item;
* the partition key fixed by equality or IN, in every OR branch: one Query
  per partition key value (the branches' other conditions as its filter;
  with one branch, a condition on the sort key becomes the key condition);
* anything else: a Scan whose filter is the whole WHERE clause.

A global index whose key has several HASH or several RANGE attributes is
not read at all: DynamoDB refuses the statement (``MULTI_ATTRIBUTE_REFUSED``).

A Query's FilterExpression may not name a key attribute (the JSON API's
rule), so a leftover condition on one (``sk <> 'x'``, ``NOT sk = 1``) is
evaluated by the router with the same compiled expressions, on whole items,
then projected.  A projected nested path (``a.b``) is answered under its
last name, as DynamoDB's PartiQL does.

Pages: ``Limit`` bounds the items read, summed over the reads; a read that
stops early (Limit or 1 MB) ends the page.  The NextToken names the read to
resume and its LastEvaluatedKey, and a digest of the statement and its
parameters: DynamoDB refuses a token for another request.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable, Sequence

import orjson

from meridian.model import limits
from meridian.model.errors import ValidationException
from meridian.model.expressions import Compiled, compile_expressions
from meridian.model.expressions import ast as E
from meridian.model.expressions.printer import path_to_text, to_text
from meridian.model.ops import PROJECTION_ALL
from meridian.model.partiql import ast as P
from meridian.model.partiql import is_value, to_value

from .partiql_expr import (
    Expressions,
    and_of,
    canonical,
    conjuncts,
    disjuncts,
    full_key,
    key_options,
    key_value,
    names_path,
    references,
)
from .table_record import Index, Table

Value = dict[str, Any]
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

INVALID_TOKEN = "Invalid NextToken"
TOKEN_MISMATCH = "NextToken does not match request"
TOO_MANY_READS = "Too many decomposed read operations for a given query."
ORDER_WITHOUT_WHERE = "Must have WHERE clause in the statement when using ORDER BY clause."
ORDER_WITHOUT_KEY = "Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause."
ORDER_NEEDS_HASH = ("Must have hash key in ORDER BY clause when more than one hash key condition specified in "
                    "WHERE clause.")
GSI_CONSISTENT = "Strongly consistent read is not supported on Global Secondary Indexes"
#: Live DynamoDB's refusal to read a GSI with a multi-attribute key (it names tables, but it follows
#: the index: the table, its other indexes and its writes run; paritysuite's conformance tests, 2026).
MULTI_ATTRIBUTE_REFUSED = ("PartiQL statements cannot be executed on tables with multi-attribute HASH keys or "
                           "multi-attribute RANGE keys.")

_SORT_OPS = frozenset({"=", "<", "<=", ">", ">="})
_FLIPPED = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass
class Read:
    """One GetItem, Query or Scan of a SELECT, and what the router does with its items."""

    action: str
    body: dict[str, Any]
    post: Compiled | None = None  # filter and projection the router applies


@dataclass
class SelectPlan:
    table: Table
    index: Index | None
    reads: list[Read]
    leaves: list[tuple[str | int, ...]] | None = None  # nested projection paths, answered by their last name
    full_key: dict[str, Value] | None = field(default=None)  # set when the plan is one GetItem


def plan_select(stmt: P.Select, table: Table, index: Index | None, params: Sequence[Value],
                consistent: bool, capacity: str | None) -> SelectPlan:
    schema = index.key_schema if index is not None else table.key_schema
    if index is not None and index.spec.multi_attribute:  # ahead of every check of the statement's keys
        raise ValidationException(MULTI_ATTRIBUTE_REFUSED)
    if index is not None and index.is_global and consistent:
        raise ValidationException(GSI_CONSISTENT)
    projection = stmt.projection
    if projection is not None and index is not None and index.is_global:
        _check_projected(projection, table, index)
    base: dict[str, Any] = {"TableName": table.name}
    if capacity is not None:
        base["ReturnConsumedCapacity"] = capacity
    if consistent:
        base["ConsistentRead"] = True
    leaves = None
    if projection is not None and any(len(path.steps) > 1 for path in projection):
        # Nested paths are answered by their last name: read their whole attributes, pick them out here.
        leaves = [path.steps for path in projection]
        heads = dict.fromkeys(path.head for path in projection)
        projection = tuple(P.Path((head,), stmt.projection[0].where) for head in heads)  # type: ignore[index]

    if index is None:
        found = full_key(stmt.condition, schema, params)
        if found is not None:
            _check_order(stmt, schema, 1)
            key, rest = found
            body = dict(base, Key=key)
            post = _post(and_of(rest), projection, params)
            if post is None and projection is not None:
                builder = Expressions(params)
                body["ProjectionExpression"] = _projection_text(builder, projection)
                builder.request(body)
            return SelectPlan(table, index, [Read("GetItem", body, post)], leaves, key)

    if index is not None:
        base["IndexName"] = index.name
        if projection is None and not index.is_global and index.spec.projection_type != PROJECTION_ALL:
            base["Select"] = "ALL_ATTRIBUTES"
    groups = _partitions(stmt.condition, schema, params)
    if groups is None:
        if stmt.order_by:
            raise ValidationException(ORDER_WITHOUT_WHERE if stmt.condition is None else ORDER_WITHOUT_KEY)
        return SelectPlan(table, index, [_scan(base, stmt.condition, projection, params)], leaves)
    if len(groups) > limits.PARTIQL_READS_PER_STATEMENT_MAX:
        raise ValidationException(TOO_MANY_READS)
    forward = _check_order(stmt, schema, len(groups))
    if stmt.order_by and names_path(stmt.order_by[0].path, schema[0][0]):
        groups.sort(key=lambda group: _order_key(group[0], schema[0][1]), reverse=stmt.order_by[0].descending)
    reads = [_query(base, schema, value, branches, projection, params, forward) for value, branches in groups]
    return SelectPlan(table, index, reads, leaves)


def _check_projected(projection: Sequence[P.Path], table: Table, index: Index) -> None:
    if index.spec.projection_type == PROJECTION_ALL:
        return
    kept = {*table.key_names, *index.key_names, *index.spec.non_key_attributes}
    missing = [path.head for path in projection if path.head not in kept]
    if missing:
        raise ValidationException("One or more parameter values were invalid: Global secondary index "
                                  f"{index.name} does not project [{', '.join(missing)}]")


def _check_order(stmt: P.Select, schema: Sequence[tuple[str, str]], partitions: int) -> bool | None:
    """ScanIndexForward for the ORDER BY (None: no order asked of the sort key)."""
    forward = None
    key_names = [name for name, _ in schema]
    for item in stmt.order_by:
        path = item.path
        if len(path.steps) != 1 or path.head not in key_names:
            raise ValidationException(f"Variable reference {path_to_text(E.Path(path.steps))} in ORDER BY clause "
                                      "must be part of the primary key")
        if len(schema) > 1 and path.head == schema[1][0]:
            forward = not item.descending
    if partitions > 1 and stmt.order_by and not names_path(stmt.order_by[0].path, schema[0][0]):
        raise ValidationException(ORDER_NEEDS_HASH)
    return forward


def _order_key(value: Value, key_type: str) -> Any:
    inner = value[key_type]
    if key_type == "N":
        return Decimal(inner)
    return inner


def _partitions(condition: Any, schema: Sequence[tuple[str, str]],
                params: Sequence[Value]) -> list[tuple[Value, list[list[Any]]]] | None:
    """(partition key value, the OR branches' other conditions) per partition, or None: a Scan."""
    if condition is None:
        return None
    pk_name, pk_type = schema[0]
    groups: dict[bytes, tuple[Value, list[list[Any]]]] = {}
    for branch in disjuncts(condition):
        parts = conjuncts(branch)
        for i, part in enumerate(parts):
            options = key_options(part, pk_name, params)
            if options is not None:
                break
        else:
            return None
        rest = parts[:i] + parts[i + 1:]
        for option in options:
            value = key_value(option, pk_name, pk_type, params)
            groups.setdefault(canonical(value), (value, []))[1].append(rest)
    return list(groups.values())


def _scan(base: dict[str, Any], condition: Any, projection: Sequence[P.Path] | None,
          params: Sequence[Value]) -> Read:
    body = dict(base)
    builder = Expressions(params)
    if condition is not None:
        body["FilterExpression"] = builder.condition_text(condition)
    if projection is not None:
        body["ProjectionExpression"] = _projection_text(builder, projection)
    return Read("Scan", builder.request(body))


def _query(base: dict[str, Any], schema: Sequence[tuple[str, str]], pk_value: Value, branches: list[list[Any]],
           projection: Sequence[P.Path] | None, params: Sequence[Value], forward: bool | None) -> Read:
    body = dict(base)
    if forward is not None:
        body["ScanIndexForward"] = forward
    builder = Expressions(params)
    key_tree: Any = E.Compare("=", E.Path((builder.name(schema[0][0]),)), builder.value(pk_value))
    if len(branches) == 1:
        rest = list(branches[0])
        if len(schema) > 1:
            for i, part in enumerate(rest):
                sort_tree = _sort_condition(part, schema[1], builder)
                if sort_tree is not None:
                    key_tree = E.And((key_tree, sort_tree))
                    del rest[i]
                    break
        filter_node = and_of(rest)
    elif any(not parts for parts in branches):
        filter_node = None
    else:
        filter_node = P.Or(tuple(and_of(parts) for parts in branches), branches[0][0].where)
    body["KeyConditionExpression"] = to_text(key_tree)
    post = None
    if filter_node is not None and references(filter_node, {name for name, _ in schema}):
        post = _post(filter_node, projection, params)
    else:
        if filter_node is not None:
            body["FilterExpression"] = builder.condition_text(filter_node)
        if projection is not None:
            body["ProjectionExpression"] = _projection_text(builder, projection)
    return Read("Query", builder.request(body), post)


def _sort_condition(node: Any, sort_key: tuple[str, str], builder: Expressions) -> Any | None:
    """``node`` as a key condition on the sort key, when it is one (and its values have the key's type)."""
    name, key_type = sort_key
    params = builder.params
    if isinstance(node, P.Compare) and node.op in _SORT_OPS:
        op, other = node.op, None
        if names_path(node.left, name):
            other = node.right
        elif names_path(node.right, name):
            op, other = _FLIPPED[node.op], node.left
        if other is not None and _typed(other, key_type, params):
            return E.Compare(op, E.Path((builder.name(name),)), builder.operand(other))
    elif isinstance(node, P.Between) and names_path(node.operand, name):
        if _typed(node.low, key_type, params) and _typed(node.high, key_type, params):
            return E.Between(E.Path((builder.name(name),)), builder.operand(node.low), builder.operand(node.high))
    elif isinstance(node, P.Call) and node.name == "begins_with" and len(node.args) == 2 and key_type != "N":
        target, prefix = node.args
        if names_path(target, name) and _typed(prefix, key_type, params):
            return E.Call("begins_with", (E.Path((builder.name(name),)), builder.operand(prefix)))
    return None


def _typed(node: Any, key_type: str, params: Sequence[Value]) -> bool:
    if not is_value(node):
        return False
    value = to_value(node, params)
    return len(value) == 1 and key_type in value


def _post(condition: Any | None, projection: Sequence[P.Path] | None, params: Sequence[Value]) -> Compiled | None:
    """The router-side filter and projection of a read that returns whole items."""
    if condition is None:
        return None
    builder = Expressions(params)
    text = builder.condition_text(condition)
    projection_text = _projection_text(builder, projection) if projection is not None else None
    return compile_expressions(filter=text, projection=projection_text, names=builder.names or None,
                               values=builder.values or None)


def _projection_text(builder: Expressions, projection: Sequence[P.Path]) -> str:
    return ", ".join(path_to_text(builder.path(path)) for path in projection)


# --- pages ---------------------------------------------------------------------------------


def request_digest(statement: str, params: Sequence[Value] | None) -> str:
    material = orjson.dumps([statement, params or []], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(material).hexdigest()[:32]


def encode_token(digest: str, read: int, last_key: Value | None) -> str:
    raw = orjson.dumps({"d": digest, "r": read, "k": last_key})
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str, digest: str) -> tuple[int, Value | None]:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        read, last_key, found = decoded["r"], decoded["k"], decoded["d"]
        if type(read) is not int or read < 0 or not (last_key is None or type(last_key) is dict):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError):
        raise ValidationException(INVALID_TOKEN) from None
    if found != digest:
        raise ValidationException(TOKEN_MISMATCH)
    return read, last_key


async def run_select(plan: SelectPlan, call: Call, limit: int | None, start: tuple[int, Value | None],
                     digest: str) -> dict[str, Any]:
    """Read one page of the plan: ``{"Items", "NextToken"?, "LastEvaluatedKey"?, "ConsumedCapacity"?}``."""
    first, start_key = start
    if first >= len(plan.reads):
        raise ValidationException(TOKEN_MISMATCH)
    items: list[Value] = []
    consumed: list[dict[str, Any]] = []
    read_count = 0
    size = 0
    answer: dict[str, Any] = {}
    for position in range(first, len(plan.reads)):
        read = plan.reads[position]
        body = dict(read.body)
        if limit is not None and read.action != "GetItem":
            body["Limit"] = limit - read_count
        if position == first and start_key is not None:
            body["ExclusiveStartKey"] = start_key
        result = await call(read.action, body)
        if "ConsumedCapacity" in result:
            consumed.append(result["ConsumedCapacity"])
        got = result.get("Items", [result["Item"]] if "Item" in result else [])
        read_count += result.get("ScannedCount", 1)
        for item in got:
            if read.post is not None:
                if not read.post.filter_matches(item):
                    continue
                item = read.post.project(item)
            items.append(by_leaf(item, plan.leaves) if plan.leaves is not None else item)
            size += len(orjson.dumps(item))
        last_key = result.get("LastEvaluatedKey")
        more = position + 1 < len(plan.reads)
        if last_key is not None:
            answer["NextToken"] = encode_token(digest, position, last_key)
            answer["LastEvaluatedKey"] = last_key
            break
        if more and ((limit is not None and read_count >= limit) or size >= limits.PAGE_BYTES_MAX):
            answer["NextToken"] = encode_token(digest, position + 1, None)
            break
    answer["Items"] = items
    if consumed:
        answer["ConsumedCapacity"] = merge_capacity(consumed)[0]
    return answer


def by_leaf(item: Value, paths: list[tuple[str | int, ...]]) -> Value:
    out: Value = {}
    for steps in paths:
        value: Any = {"M": item}
        for step in steps:
            container = value.get("L" if isinstance(step, int) else "M") if type(value) is dict else None
            if container is None:
                value = None
                break
            if isinstance(step, int):
                value = container[step] if step < len(container) else None
            else:
                value = container.get(step)
            if value is None:
                break
        if value is not None:
            leaf = next(step for step in reversed(steps) if isinstance(step, str))
            out[leaf] = value  # type: ignore[index]
    return out


def merge_capacity(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """ConsumedCapacity entries summed per table, in first-seen order."""
    by_table: dict[str, dict[str, Any]] = {}
    for entry in entries:
        total = by_table.setdefault(entry["TableName"], {"TableName": entry["TableName"], "CapacityUnits": 0.0})
        total["CapacityUnits"] += entry.get("CapacityUnits", 0.0)
        if "Table" in entry:
            table = total.setdefault("Table", {"CapacityUnits": 0.0})
            table["CapacityUnits"] += entry["Table"].get("CapacityUnits", 0.0)
        for member in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for name, units in entry.get(member, {}).items():
                slot = total.setdefault(member, {}).setdefault(name, {"CapacityUnits": 0.0})
                slot["CapacityUnits"] += units.get("CapacityUnits", 0.0)
    return list(by_table.values())
