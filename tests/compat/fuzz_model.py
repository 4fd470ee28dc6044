"""Hypothesis strategies for DynamoDB requests, derived from botocore's service model.

``request_strategy(world)`` draws ``(action, body)``: a request for one of the
actions Meridian serves, shaped after the operation's input shape in
botocore's ``dynamodb`` model, with strings drawn from pools that fit the
tables the test created (``World``) so that many requests get past
validation into the actions; then one to three subtrees are mutated (null,
the wrong JSON type, empty, huge, deeply nested, unknown members).

The strategies only build JSON-ready Python values; sending them is the
test's job (``test_fuzz_structured.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import botocore.loaders
from hypothesis import strategies as st

#: Where DynamoDB's error types live (``__type`` is ``<namespace>#<name>``).
ERROR_NAMESPACES = ("com.amazonaws.dynamodb.v20120810", "com.amazon.coral.validate", "com.amazon.coral.service")

#: Errors of the service front (not in botocore's shapes) that DynamoDB answers with.
FRONT_ERRORS = frozenset({
    "SerializationException", "ValidationException", "UnknownOperationException",
    "MissingAuthenticationTokenException", "IncompleteSignatureException", "InvalidSignatureException",
    "UnrecognizedClientException", "AccessDeniedException", "ServiceUnavailable", "RequestLimitExceeded",
    "ThrottlingException",
})

#: Error types DynamoDB sends without a message.
MESSAGELESS = frozenset({"UnknownOperationException", "SerializationException"})


@lru_cache(maxsize=1)
def service_model() -> dict[str, Any]:
    return botocore.loaders.Loader().load_service_model("dynamodb", "service-2")


def dynamodb_error_types() -> frozenset[str]:
    shapes = service_model()["shapes"]
    return frozenset(n for n, s in shapes.items() if s.get("exception")) | FRONT_ERRORS


@dataclass(frozen=True)
class World:
    """What exists on the server: the tables requests should reach."""

    hash_table: str
    range_table: str  # hash "pk" (S) + range "sk" (N), LSI "lsi" on "l" (S), GSI "gsi" on "g" (S)
    spare_tables: tuple[str, ...]  # names CreateTable / UpdateTable / DeleteTable may use freely
    arns: tuple[str, ...] = ()

    @property
    def item_tables(self) -> list[str]:
        return [self.hash_table, self.range_table]


# --- pools -----------------------------------------------------------------------
ATTRIBUTE_NAMES = ["id", "pk", "sk", "g", "l", "a", "b", "n", "m", "ls", "ss", "#a", ":v", ""]
KEY_STRINGS = ["k1", "k2", "k3", "k4"]
NAME_REFS = {"#a": "a", "#b": "b", "#n": "n", "#pk": "pk", "#sk": "sk", "#g": "g"}
EXPRESSIONS = {
    "KeyConditionExpression": ["pk = :s", "#pk = :s AND sk > :n", "pk = :s AND sk BETWEEN :n AND :n",
                               "id = :s", "g = :s", "pk = :s AND begins_with(sk, :s)", "pk = :s OR sk = :n"],
    "FilterExpression": ["a = :s", "attribute_exists(#a)", "size(ls) > :n", "contains(ss, :s)",
                         "n BETWEEN :n AND :n", "NOT a IN (:s, :s)", "m.x[0] <> :s", "b"],
    "ConditionExpression": ["attribute_not_exists(id)", "attribute_exists(pk) AND n < :n",
                            "attribute_type(a, :s)", "a = :s OR #b = :s", "size(a) = :n", "n >"],
    "UpdateExpression": ["SET a = :s", "SET n = n + :n REMOVE b", "ADD ss :ss DELETE ss :ss",
                         "SET ls = list_append(ls, :l)", "SET #a = if_not_exists(#a, :s)",
                         "SET m.x = :s", "REMOVE ls[0], #b", "SET a = :s SET b = :s"],
    "ProjectionExpression": ["a", "#a, n", "m.x[0]", "ls[1], ss", "id, pk, sk"],
}
VALUE_REFS = {":s": {"S": "k1"}, ":n": {"N": "5"}, ":ss": {"SS": ["x", "y"]}, ":l": {"L": [{"S": "z"}]}}
HUGE_LENGTHS = [1025, 2049, 65536, 409_601]


def _text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["x", "abc", "é𝄞", " ", "a.b", "0"]), st.text(max_size=6))


def _numbers() -> st.SearchStrategy[str]:
    return st.sampled_from(["0", "1", "-5", "3.25", "1e10", "1E-130", "9.9999999999999999999999999999999999999E+125",
                            "1e126", " 1", "x", "", "-0", "1" * 39, ".5"])


def _blobs() -> st.SearchStrategy[str]:
    return st.sampled_from(["AAEC", "", "YQ==", "AA=A", "abc", "=" * 4])


@lru_cache(maxsize=None)
def attribute_values(max_leaves: int = 6) -> st.SearchStrategy[dict[str, Any]]:
    scalars = st.one_of(
        st.builds(lambda s: {"S": s}, st.one_of(st.sampled_from(KEY_STRINGS), _text())),
        st.builds(lambda n: {"N": n}, _numbers()),
        st.builds(lambda b: {"B": b}, _blobs()),
        st.builds(lambda b: {"BOOL": b}, st.booleans()),
        st.just({"NULL": True}),
        st.builds(lambda s: {"SS": s}, st.lists(_text(), max_size=3)),
        st.builds(lambda s: {"NS": s}, st.lists(_numbers(), max_size=3)),
        st.builds(lambda s: {"BS": s}, st.lists(_blobs(), max_size=2)),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda m: {"M": m}, st.dictionaries(st.sampled_from(ATTRIBUTE_NAMES), inner, max_size=3)),
    ), max_leaves=max_leaves)


@lru_cache(maxsize=None)
def keys(world: World) -> st.SearchStrategy[dict[str, Any]]:
    key_s = st.sampled_from(KEY_STRINGS)
    hash_key = st.builds(lambda k: {"id": {"S": k}}, key_s)
    range_key = st.builds(lambda k, n: {"pk": {"S": k}, "sk": {"N": n}}, key_s, st.sampled_from(["1", "2", "3"]))
    return st.one_of(hash_key, range_key)


@lru_cache(maxsize=None)
def items(world: World) -> st.SearchStrategy[dict[str, Any]]:
    extra = st.dictionaries(st.sampled_from(["a", "b", "n", "m", "ls", "ss", "g", "l"]), attribute_values(), max_size=4)
    return st.builds(lambda k, e: {**e, **k}, keys(world), extra)


# --- shape-driven generation ------------------------------------------------------
def _string_for(member: str, shape_name: str, shape: dict[str, Any], world: World) -> st.SearchStrategy[Any]:
    if "enum" in shape:
        return st.one_of(st.sampled_from(shape["enum"]), st.just("BOGUS"))
    if member in ("TableName", "GlobalTableName", "ExclusiveStartTableName", "ExclusiveStartGlobalTableName"):
        return st.sampled_from(world.item_tables + ["fz-missing"])
    if member == "ResourceArn":
        return st.sampled_from(list(world.arns) + ["arn:aws:dynamodb:us-east-1:000000000000:table/fz-missing", "arn:x"])
    if member == "IndexName":
        return st.sampled_from(["gsi", "lsi", "nope"])
    if member in ("AttributeName", "AttributeValueList"):
        return st.sampled_from(ATTRIBUTE_NAMES)
    if member in EXPRESSIONS:
        return st.sampled_from(EXPRESSIONS[member])
    if member == "RegionName":
        # An unknown region is a deliberate 500 in ListGlobalTables (DynamoDB's answer): keep it rare.
        return st.sampled_from(["us-east-1"] * 8 + ["eu-west-1", "nowhere"])
    return _text()


@lru_cache(maxsize=None)
def _shape_strategy_cached(shape_name: str, member: str, world: World, depth: int) -> st.SearchStrategy[Any]:
    shapes = service_model()["shapes"]
    shape = shapes[shape_name]
    kind = shape["type"]
    if shape_name == "AttributeValue":
        return attribute_values()
    if member in ("Key", "ExclusiveStartKey"):
        return keys(world)
    if member == "Item":
        return items(world)
    if member == "ExpressionAttributeNames":
        return st.dictionaries(st.sampled_from(list(NAME_REFS)), st.sampled_from(list(NAME_REFS.values())), max_size=4)
    if member == "ExpressionAttributeValues":
        return st.one_of(st.just(dict(VALUE_REFS)),
                         st.dictionaries(st.sampled_from(list(VALUE_REFS)), attribute_values(), max_size=3))
    if kind == "structure":
        if depth > 6:
            return st.just({})
        required = set(shape.get("required", ()))
        fixed = {}
        optional = {}
        for name, ref in shape["members"].items():
            strategy = shape_strategy(ref["shape"], name, world, depth + 1)
            (fixed if name in required else optional)[name] = strategy
        return st.fixed_dictionaries(fixed, optional=optional)
    if kind == "list":
        inner = shape_strategy(shape["member"]["shape"], member, world, depth + 1)
        return st.lists(inner, max_size=3)
    if kind == "map":
        key_shape = shape["key"]["shape"]
        if member == "RequestItems" or key_shape == "TableArn" or key_shape == "TableName":
            key_strategy = st.sampled_from(world.item_tables + ["fz-missing"])
        else:
            key_strategy = st.sampled_from(ATTRIBUTE_NAMES)
        return st.dictionaries(key_strategy, shape_strategy(shape["value"]["shape"], member, world, depth + 1), max_size=2)
    if kind == "string":
        return _string_for(member, shape_name, shape, world)
    if kind in ("integer", "long"):
        return st.one_of(st.integers(min_value=-1, max_value=30), st.sampled_from([0, 1, 2**31, 2**63]))
    if kind == "double":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "blob":
        return _blobs()
    if kind == "timestamp":
        return st.integers(min_value=0, max_value=2**33)
    raise ValueError(f"unhandled shape kind {kind!r}")


def shape_strategy(shape_name: str, member: str, world: World, depth: int = 0) -> st.SearchStrategy[Any]:
    return st.deferred(lambda: _shape_strategy_cached(shape_name, member, world, depth))


@lru_cache(maxsize=None)
def operation_body(action: str, world: World) -> st.SearchStrategy[dict[str, Any]]:
    input_shape = service_model()["operations"][action]["input"]["shape"]
    return _shape_strategy_cached(input_shape, "", world, 0)


# --- hand-made requests that pass validation (so mutations reach the actions) ----------
@lru_cache(maxsize=None)
def valid_bodies(world: World) -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    h, r = world.hash_table, world.range_table
    spare = st.sampled_from(world.spare_tables)
    range_items = st.builds(lambda k, n, a: {"pk": {"S": k}, "sk": {"N": n}, "g": {"S": k}, "l": {"S": "x"}, "a": a},
                            st.sampled_from(KEY_STRINGS), st.sampled_from(["1", "2", "3"]), attribute_values())
    hash_items = st.builds(lambda k, a: {"id": {"S": k}, "a": a, "ls": {"L": []}, "n": {"N": "1"}},
                           st.sampled_from(KEY_STRINGS), attribute_values())
    create = st.builds(lambda name: {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "N"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{"IndexName": "gi", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a"]}}],
    }, spare)
    return {
        "PutItem": st.builds(lambda t_item, c: {**t_item, "ConditionExpression": c, "ExpressionAttributeValues": dict(VALUE_REFS),
                                                "ReturnValues": "ALL_OLD"},
                             st.one_of(st.builds(lambda i: {"TableName": h, "Item": i}, hash_items),
                                       st.builds(lambda i: {"TableName": r, "Item": i}, range_items)),
                             st.sampled_from(["attribute_not_exists(id) OR n < :n", "size(ls) >= :n OR a <> :s"])),
        "UpdateItem": st.builds(lambda k, u: {"TableName": h, "Key": {"id": {"S": k}}, "UpdateExpression": u,
                                              "ExpressionAttributeValues": dict(VALUE_REFS), "ExpressionAttributeNames": {"#a": "a"},
                                              "ReturnValues": "UPDATED_NEW"},
                                st.sampled_from(KEY_STRINGS),
                                st.sampled_from(["SET #a = :s, n = if_not_exists(n, :n) + :n", "ADD ss :ss",
                                                 "SET ls = list_append(if_not_exists(ls, :l), :l)"])),
        "DeleteItem": st.builds(lambda k: {"TableName": r, "Key": {"pk": {"S": k}, "sk": {"N": "9"}},
                                           "Expected": {"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "k1"}]}},
                                           "ReturnValues": "ALL_OLD"}, st.sampled_from(KEY_STRINGS)),
        "GetItem": st.builds(lambda k: {"TableName": h, "Key": {"id": {"S": k}}, "ProjectionExpression": "a, ls[0], #n",
                                        "ExpressionAttributeNames": {"#n": "n"}, "ConsistentRead": True}, st.sampled_from(KEY_STRINGS)),
        "Query": st.builds(lambda k, idx: {"TableName": r, "KeyConditionExpression": "pk = :s AND sk > :n" if idx != "gsi" else "g = :s",
                                           "FilterExpression": "attribute_exists(a)", "ExpressionAttributeValues": {":s": {"S": k}, ":n": {"N": "0"}},
                                           "Limit": 5, "ScanIndexForward": False, **({"IndexName": idx} if idx else {})},
                           st.sampled_from(KEY_STRINGS), st.sampled_from([None, "lsi", "gsi"])),
        "Scan": st.builds(lambda t: {"TableName": t, "ScanFilter": {"a": {"ComparisonOperator": "NOT_NULL"}},
                                     "Segment": 0, "TotalSegments": 2, "Limit": 10, "Select": "ALL_ATTRIBUTES"},
                          st.sampled_from([h, r])),
        "BatchGetItem": st.builds(lambda k: {"RequestItems": {
            h: {"Keys": [{"id": {"S": k}}], "ProjectionExpression": "a"},
            r: {"Keys": [{"pk": {"S": k}, "sk": {"N": "1"}}], "ConsistentRead": True}}}, st.sampled_from(KEY_STRINGS)),
        "BatchWriteItem": st.builds(lambda i, k: {"RequestItems": {
            h: [{"PutRequest": {"Item": i}}],
            r: [{"DeleteRequest": {"Key": {"pk": {"S": k}, "sk": {"N": "2"}}}}]}}, hash_items, st.sampled_from(KEY_STRINGS)),
        "CreateTable": create,
        "UpdateTable": st.builds(lambda name: {"TableName": name, "BillingMode": "PROVISIONED",
                                               "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}, spare),
        "DeleteTable": st.builds(lambda name: {"TableName": name}, spare),
        "DescribeTable": st.builds(lambda t: {"TableName": t}, st.sampled_from([h, r])),
        "TagResource": st.builds(lambda arn: {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]},
                                 st.sampled_from(world.arns)),
        "UntagResource": st.builds(lambda arn: {"ResourceArn": arn, "TagKeys": ["k"]}, st.sampled_from(world.arns)),
        "ListTagsOfResource": st.builds(lambda arn: {"ResourceArn": arn}, st.sampled_from(world.arns)),
        "ListTables": st.just({"Limit": 2}),
    }


# Actions whose table-level effects would take the item tables away from the test.
TABLE_ACTIONS = frozenset({"CreateTable", "UpdateTable", "DeleteTable", "CreateGlobalTable", "UpdateGlobalTable"})
#: Actions that may change items.  A PartiQL call is counted whatever its
#: statement (a SELECT that succeeds only makes the check skip a run).
ITEM_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
                         "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})


def _retarget(action: str, body: Any, world: World) -> Any:
    """Table-level actions only ever name the spare tables, never the item tables."""
    if action in TABLE_ACTIONS and isinstance(body, dict):
        for member in ("TableName", "GlobalTableName"):
            if body.get(member) in world.item_tables:
                body[member] = world.spare_tables[0]
    return body


# --- mutations ----------------------------------------------------------------------
def _deep(depth: int, kind: str) -> Any:
    value: Any = {"S": "leaf"}
    for _ in range(depth):
        value = {"M": {"a": value}} if kind == "M" else ({"L": [value]} if kind == "L" else [value])
    return value


@lru_cache(maxsize=None)
def replacements() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.sampled_from(["x", "", 0, -1, 1.5, True, False, [], {}, [None], {"": None}, {"x": None}, {"S": None},
                         2**64, -(10**400), 1e308, "1e999", "NaN", {"NULL": False}, {"M": None}, {"L": [None]}]),
        st.builds(lambda n: "x" * n, st.sampled_from(HUGE_LENGTHS)),
        st.builds(lambda n: ["x"] * n, st.sampled_from([26, 101, 1001])),
        st.builds(_deep, st.sampled_from([33, 40, 200]), st.sampled_from(["M", "L", "json"])),
        attribute_values(),
    )


STRING_EDGES = ["", " ", "\u0000", "é𝄞", "#", ":", "a.b[0]", "#a", ":v", "S", "N", "a" * 256, "(", "a = :v AND",
                "SET", "size(", "attribute_exists()", "BETWEEN", "1e999", "-0", "0x10", "arn:aws:dynamodb:x:y:table/t"]


def same_type(value: Any) -> st.SearchStrategy[Any]:
    """A replacement of the same JSON type: these get past the type checks, into constraints and actions."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63) - 1, 10**40])
    if isinstance(value, float):
        return st.sampled_from([0.0, -0.0, 1e308, -1e308, 0.5, 1e-320])
    if isinstance(value, str):
        return st.one_of(st.sampled_from(STRING_EDGES), st.builds(lambda n: "x" * n, st.sampled_from(HUGE_LENGTHS)),
                         st.text(max_size=8))
    if isinstance(value, list):
        return st.one_of(st.just([]), st.just(value + value), st.just(value * 30), st.just(value[::-1]))
    if isinstance(value, dict):
        return st.one_of(st.just({}), attribute_values(), st.just({k: v for k, v in list(value.items())[1:]}))
    return replacements()


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
    else:
        out = list(value)
    out[head] = _replace(value[head], rest, new)
    return out


@st.composite
def mutated(draw, body: dict[str, Any]) -> Any:
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(body)))
        if not path:
            continue  # the whole body: the old fuzz test's business
        target = body
        for step in path:
            target = target[step]
        how = draw(st.integers(min_value=0, max_value=11))
        if how == 0 and isinstance(target, dict):  # an unknown member
            new = {**target, draw(st.sampled_from(["Bogus", "", "S", "TableName", "x" * 300])): draw(replacements())}
        elif how == 1 and isinstance(target, dict) and target:  # a key renamed
            old = draw(st.sampled_from(sorted(target, key=str)))
            new = {(draw(st.sampled_from(["", "X", "x" * 256, "a.b", "#zz", ":zz"])) if k == old else k): v
                   for k, v in target.items()}
        elif how == 2 and isinstance(target, list):  # an element appended
            new = target + [draw(replacements())]
        elif 3 <= how <= 6:  # the same JSON type, an awkward value
            new = draw(same_type(target))
        else:
            new = draw(replacements())
        body = _replace(body, path, new)
    return body


@st.composite
def requests(draw, world: World, actions: list[str]) -> tuple[str, Any]:
    """``(action, body)``: a valid or shape-derived request for ``action``, then mutated."""
    seeds = valid_bodies(world)
    action = draw(st.sampled_from(actions))
    if action in seeds and draw(st.booleans()):
        body = draw(seeds[action])
    else:
        body = draw(operation_body(action, world))
    body = _retarget(action, body, world)
    if draw(st.integers(min_value=0, max_value=9)) > 0:
        body = _retarget(action, draw(mutated(body)), world)
    return action, body
