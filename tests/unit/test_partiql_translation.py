"""router/partiql_*: statements translated into the JSON API's requests (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions
from meridian.model.partiql import parse_statement
from meridian.model.partiql.parser import parse
from meridian.router.partiql_expr import Expressions
from meridian.router.partiql_select import (
    by_leaf,
    decode_token,
    encode_token,
    merge_capacity,
    plan_select,
    request_digest,
)
from meridian.router.partiql_write import plan_delete, plan_exists, plan_insert, plan_update
from meridian.router.table_record import Table


def _table(sk: bool = True) -> Table:
    schema = [("pk", "S"), ("sk", "N")] if sk else [("pk", "S")]
    return Table(name="T", table_id=7, uuid="u", key_schema=schema, attribute_definitions=[], created_s=0.0,
                 region="us-east-1")


def _select(text: str, params=(), sk: bool = True, **kwargs):
    return plan_select(parse_statement(text), _table(sk), None, list(params), kwargs.get("consistent", False),
                       kwargs.get("capacity"))


def _compiles(body: dict) -> None:
    """The generated expressions are valid JSON API expressions, every placeholder used."""
    compile_expressions(condition=body.get("ConditionExpression"), update=body.get("UpdateExpression"),
                        key_condition=body.get("KeyConditionExpression"), filter=body.get("FilterExpression"),
                        projection=body.get("ProjectionExpression"), names=body.get("ExpressionAttributeNames"),
                        values=body.get("ExpressionAttributeValues"))


def test_full_key_is_a_get_item():
    plan = _select("SELECT a FROM T WHERE sk = 2 AND pk = ?", [{"S": "x"}], consistent=True, capacity="TOTAL")
    [read] = plan.reads
    assert read.action == "GetItem" and read.post is None
    assert read.body == {"TableName": "T", "Key": {"pk": {"S": "x"}, "sk": {"N": "2"}}, "ConsistentRead": True,
                         "ReturnConsumedCapacity": "TOTAL", "ProjectionExpression": "#n0",
                         "ExpressionAttributeNames": {"#n0": "a"}}
    assert plan.full_key == {"pk": {"S": "x"}, "sk": {"N": "2"}}


def test_full_key_with_more_conditions_filters_in_the_router():
    plan = _select("SELECT a FROM T WHERE pk = 'x' AND sk = 2 AND b > 1")
    [read] = plan.reads
    assert "ProjectionExpression" not in read.body
    assert read.post.filter_matches({"b": {"N": "2"}}) and not read.post.filter_matches({"b": {"N": "0"}})
    assert read.post.project({"a": {"S": "1"}, "b": {"N": "2"}}) == {"a": {"S": "1"}}


def test_partition_equality_is_a_query_with_a_sort_key_condition():
    plan = _select("SELECT * FROM T WHERE pk = 'x' AND begins_with(v, 'a') AND sk BETWEEN 1 AND 5 "
                   "ORDER BY sk DESC")
    [read] = plan.reads
    assert read.action == "Query"
    assert read.body["KeyConditionExpression"] == "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2"
    assert read.body["FilterExpression"] == "begins_with(#n2, :v3)"
    assert read.body["ScanIndexForward"] is False
    _compiles(read.body)


def test_a_key_attribute_left_in_the_filter_is_evaluated_by_the_router():
    [read] = _select("SELECT a FROM T WHERE pk = 'x' AND sk <> 3").reads
    assert read.action == "Query" and "FilterExpression" not in read.body
    assert read.post.filter_matches({"sk": {"N": "2"}}) and not read.post.filter_matches({"sk": {"N": "3"}})


def test_in_and_or_on_the_partition_key_are_one_query_each():
    plan = _select("SELECT * FROM T WHERE pk IN ['a', 'b'] AND v = 1 OR pk = 'a' AND w = 2 ORDER BY pk DESC")
    assert [read.body["ExpressionAttributeValues"][":v0"] for read in plan.reads] == [{"S": "b"}, {"S": "a"}]
    assert plan.reads[1].body["FilterExpression"] == "#n1 = :v1 OR #n2 = :v2"
    for read in plan.reads:
        _compiles(read.body)


def test_anything_else_is_a_scan():
    for text in ("SELECT * FROM T", "SELECT * FROM T WHERE pk > 'a'", "SELECT * FROM T WHERE pk = 'a' OR v = 1"):
        [read] = _select(text).reads
        assert read.action == "Scan"
        _compiles(read.body)


@pytest.mark.parametrize("text, message", [
    ("SELECT * FROM T ORDER BY sk", "Must have WHERE clause in the statement when using ORDER BY clause."),
    ("SELECT * FROM T WHERE v = 1 ORDER BY sk",
     "Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause."),
    ("SELECT * FROM T WHERE pk IN ['a', 'b'] ORDER BY sk",
     "Must have hash key in ORDER BY clause when more than one hash key condition specified in WHERE clause."),
    ("SELECT * FROM T WHERE pk = 1", "Key attribute's data type should match its data type in table's schema: "
                                     "Key pk"),
])
def test_select_refusals(text, message):
    with pytest.raises(ValidationException) as info:
        _select(text)
    assert info.value.message == message


def test_insert_is_a_conditional_put():
    write = plan_insert(parse_statement("INSERT INTO T VALUE {'pk': 'a', 'sk': 1, 'x': [1]}"), _table(), [], None)
    assert write.action == "PutItem" and write.key == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert write.body["ConditionExpression"] == "attribute_not_exists(#n0)"
    assert write.transact_item()["Put"]["Item"]["x"] == {"L": [{"N": "1"}]}
    with pytest.raises(ValidationException, match="Key attribute should be present in the item: Key sk"):
        plan_insert(parse_statement("INSERT INTO T VALUE {'pk': 'a'}"), _table(), [], None)


def test_update_is_a_conditional_update_item():
    statement = parse_statement("UPDATE T SET a = a + 1, s = set_add(s, <<'x'>>) SET l = list_append(l, [1]) "
                                "REMOVE r SET d = set_delete(d, ?) WHERE pk = 'p' AND sk = 1 AND a < 10 "
                                "RETURNING MODIFIED OLD *")
    write = plan_update(statement, _table(), [{"NS": ["1"]}], "TOTAL", "ALL_OLD")
    body = write.body
    assert body["UpdateExpression"] == ("SET #n0 = #n0 + :v0, #n2 = list_append(#n2, :v2) REMOVE #n3 "
                                        "ADD #n1 :v1 DELETE #n4 :v3")
    assert body["ConditionExpression"] == "attribute_exists(#n5) AND #n0 < :v4"
    assert body["ReturnValues"] == "UPDATED_OLD" and body["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    _compiles(body)
    assert set(write.transact_item()["Update"]) == set(body) - {"ReturnConsumedCapacity", "ReturnValues"}


@pytest.mark.parametrize("set_clause, message", [
    ("t = set_add(s, <<'x'>>)", "The first argument to SET_ADD must equal the assignment value at 1:18:7"),
    ("s = set_add(s)", "SET_ADD must have exactly two arguments at 1:18:7"),
    ("s = set_delete(s, 'x')", "The second argument to SET_DELETE must be a value with type SET at 1:29:1"),
    ("s = upper(s)", "Unrecognized function: upper at 1:18:5"),
])
def test_update_refusals(set_clause, message):
    statement = parse_statement(f"UPDATE T SET {set_clause} WHERE pk = 'p' AND sk = 1")
    with pytest.raises(ValidationException) as info:
        plan_update(statement, _table(), [], None, None)
    assert info.value.message == message


def test_delete_and_exists():
    write = plan_delete(parse_statement("DELETE FROM T WHERE pk = 'p' AND sk = 1 AND attribute_exists(a) "
                                        "RETURNING ALL OLD *"), _table(), [], None, None)
    assert write.body["ConditionExpression"] == "attribute_exists(#n0)" and write.body["ReturnValues"] == "ALL_OLD"
    with pytest.raises(ValidationException, match="mandatory equality on all key attributes"):
        plan_delete(parse_statement("DELETE FROM T WHERE pk = 'p'"), _table(), [], None, None)
    check = plan_exists(parse_statement("EXISTS(SELECT * FROM T WHERE pk = 'p' AND sk = 1 AND a IS MISSING)"),
                        _table(), [], None)
    assert check.transact_item() == {"ConditionCheck": {
        "TableName": "T", "Key": {"pk": {"S": "p"}, "sk": {"N": "1"}},
        "ConditionExpression": "attribute_not_exists(#n0)", "ExpressionAttributeNames": {"#n0": "a"}}}


def test_next_tokens_are_bound_to_the_request():
    digest = request_digest("SELECT * FROM T", [{"S": "a"}])
    token = encode_token(digest, 2, {"pk": {"S": "x"}})
    assert decode_token(token, digest) == (2, {"pk": {"S": "x"}})
    with pytest.raises(ValidationException, match="NextToken does not match request"):
        decode_token(token, request_digest("SELECT * FROM T", [{"S": "b"}]))
    with pytest.raises(ValidationException, match="Invalid NextToken"):
        decode_token("%%%", digest)


def test_nested_projections_and_capacity_sums():
    item = {"a": {"M": {"b": {"L": [{"S": "x"}, {"M": {"c": {"N": "1"}}}]}}}, "d": {"S": "y"}}
    assert by_leaf(item, [("a", "b", 1, "c"), ("d",), ("a", "b", 0), ("zz", "q")]) == {
        "c": {"N": "1"}, "d": {"S": "y"}, "b": {"S": "x"}}
    assert merge_capacity([{"TableName": "T", "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}},
                           {"TableName": "T", "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.5}}]) == [
        {"TableName": "T", "CapacityUnits": 1.5, "Table": {"CapacityUnits": 1.5}}]


# --- the translated WHERE clause means what the statement says ------------------------------

_ATTRS = ("a", "b")
_comparison = st.tuples(st.sampled_from(_ATTRS), st.sampled_from(["=", "<>", "<", "<=", ">", ">="]),
                        st.integers(-3, 3)).map(lambda t: (f"{t[0]} {t[1]} {t[2]}", t))
_condition = st.recursive(
    _comparison,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: (f"({p[0][0]} AND {p[1][0]})", ("and", p[0][1], p[1][1]))),
        st.tuples(inner, inner).map(lambda p: (f"({p[0][0]} OR {p[1][0]})", ("or", p[0][1], p[1][1]))),
        inner.map(lambda c: (f"NOT ({c[0]})", ("not", c[1]))),
    ),
    max_leaves=6,
)
_OPS = {"=": int.__eq__, "<>": int.__ne__, "<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}


def _holds(tree, item) -> bool:
    if tree[0] == "and":
        return _holds(tree[1], item) and _holds(tree[2], item)
    if tree[0] == "or":
        return _holds(tree[1], item) or _holds(tree[2], item)
    if tree[0] == "not":
        return not _holds(tree[1], item)
    name, op, value = tree
    if name not in item:  # DynamoDB: a missing attribute compares unequal, and unordered
        return op == "<>"
    return _OPS[op](item[name], value)


@settings(deadline=None, max_examples=150)
@given(_condition, st.dictionaries(st.sampled_from(_ATTRS), st.integers(-3, 3)))
def test_where_clauses_evaluate_as_written(condition, item):
    text, tree = condition
    statement, _ = parse(f"SELECT * FROM T WHERE {text}")
    builder = Expressions([])
    compiled = compile_expressions(filter=builder.condition_text(statement.condition), names=builder.names,
                                   values=builder.values)
    wire = {name: {"N": str(value)} for name, value in item.items()}
    assert compiled.filter_matches(wire) == _holds(tree, item)
