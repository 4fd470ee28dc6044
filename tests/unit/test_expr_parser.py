"""The expression grammars: what parses, into what, and DynamoDB's syntax errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions
from meridian.model.expressions.ast import (
    AddAction,
    And,
    Arith,
    Between,
    Call,
    Clause,
    Compare,
    DeleteAction,
    In,
    Not,
    Or,
    Path,
    ProjectionExpr,
    RemoveAction,
    SetAction,
    UpdateExpr,
    ValueRef,
)
from meridian.model.expressions.parser import parse_condition, parse_projection, parse_update
from meridian.model.expressions.printer import to_text
from meridian.model.expressions.tokens import ExpressionError


def _error(parse, text: str) -> str:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    return caught.value.message


# --- conditions --------------------------------------------------------------

A, B, C = Path(("a",)), Path(("b",)), Path(("c",))
V, W = ValueRef(":v"), ValueRef(":w")


@pytest.mark.parametrize(
    "text, tree",
    [
        ("a = :v", Compare("=", A, V)),
        ("a<>:v", Compare("<>", A, V)),
        ("a.b[3].#c >= :v", Compare(">=", Path(("a", "b", 3, "#c")), V)),
        ("a BETWEEN :v AND :w", Between(A, V, W)),
        ("a between :v and :w", Between(A, V, W)),
        ("a IN (:v, :w, b)", In(A, (V, W, B))),
        ("attribute_exists(a)", Call("attribute_exists", (A,))),
        ("size(a) > :v", Compare(">", Call("size", (A,)), V)),
        ("a = :v AND b = :w OR c = :v", Or((And((Compare("=", A, V), Compare("=", B, W))), Compare("=", C, V)))),
        ("a = :v AND (b = :w OR c = :v)", And((Compare("=", A, V), Or((Compare("=", B, W), Compare("=", C, V)))))),
        ("NOT a = :v", Not(Compare("=", A, V))),
        ("not not a = :v", Not(Not(Compare("=", A, V)))),
        ("NOT a = :v AND b = :w", And((Not(Compare("=", A, V)), Compare("=", B, W)))),
        ("(a) = (:v)", Compare("=", A, V)),
        ("(a = :v)", Compare("=", A, V)),
        ("(a.b).c = :v", Compare("=", Path(("a", "b", "c")), V)),
        ("(attribute_exists(a))", Call("attribute_exists", (A,))),
        ("  a\t=\n:v\r", Compare("=", A, V)),
        ("Alpha_Numeric_123 = :_", Compare("=", Path(("Alpha_Numeric_123",)), ValueRef(":_"))),
    ],
)
def test_condition_trees(text, tree):
    assert parse_condition(text).tree == tree


@pytest.mark.parametrize(
    "text, message",
    [
        ("things are not gonna be ok", 'Syntax error; token: "are", near: "things are not"'),
        ("a > 4", 'Syntax error; token: "4", near: "> 4"'),
        ("a", 'Syntax error; token: "<EOF>", near: "a"'),
        ("a = ", 'Syntax error; token: "<EOF>", near: "= "'),
        ("(a = b", 'Syntax error; token: "<EOF>", near: "b"'),
        ("a in ()", 'Syntax error; token: ")", near: "()"'),
        ("a in b, c", 'Syntax error; token: "b", near: "in b,"'),
        ("a in (b,c,)", 'Syntax error; token: ")", near: ",)"'),
        ("a > between", 'Syntax error; token: "between", near: "> between"'),
        ("attribute_exists(Pictures-RearView)", 'Syntax error; token: "-", near: "Pictures-RearView"'),
        ('attribute_exists("Pictures.RearView")', 'Syntax error; token: """, near: "("Pictures"'),
        ("attribute_exists(Pictures..RearView)", 'Syntax error; token: ".", near: "..RearView"'),
        ("attribute_exists(asdf[a])", 'Syntax error; token: "a", near: "[a]"'),
        ("(a)between(b.(c.d))and(c)", 'Syntax error; token: "(", near: ".(c"'),
        ("#$.b > a", 'Syntax error; token: "#", near: "#$"'),
        ("a > :things.stuff", 'Syntax error; token: ".", near: ":things.stuff"'),
        ("b[:a] > a", 'Syntax error; token: ":a", near: "[:a]"'),
        ("b[#_] > a", 'Syntax error; token: "#_", near: "[#_]"'),
        ("ü > a", 'Syntax error; token: "ü", near: "ü >"'),
        ("(a)between(b.c[4.5].#d)and(:a)", 'Syntax error; token: ".", near: "4.5"'),
        ("size(a).b > a", 'Syntax error; token: ".", near: ").b"'),
        ("(size(a))[0] > a", 'Syntax error; token: "[", near: ")[0"'),
        ("_f(a)", 'Syntax error; token: "_", near: "_f"'),
        ("a = :", 'Syntax error; token: ":", near: "= :"'),
        ("a < > b", 'Syntax error; token: ">", near: "< > b"'),
        ("", 'Syntax error; token: "<EOF>", near: ""'),
    ],
)
def test_condition_syntax_errors(text, message):
    assert _error(parse_condition, text) == message


def test_depth_and_in_limits():
    deep = "a" + ".b" * (limits.DOCUMENT_DEPTH_MAX - 1)
    assert parse_condition(f"{deep} = :v")
    assert (
        _error(parse_condition, f"{deep}.c = :v")
        == "The document path has too many nesting levels; nesting levels: 33"
    )
    options = ", ".join(f":v{i}" for i in range(limits.EXPRESSION_IN_OPERANDS_MAX - 1))
    assert parse_condition(f"a IN ({options})")
    assert (
        _error(parse_condition, f"a IN ({options}, :x)")
        == "The IN operator is provided with too many operands; number of operands: 101"
    )


def test_nesting_is_bounded_by_dynamodbs_300_operators():
    # DynamoDB has no nesting bound of its own: 300 operators (NOTs included) and no
    # redundant parentheses; a deeper nest of either is refused with those messages.
    most = limits.EXPRESSION_OPERATORS_MAX
    assert parse_condition("NOT " * (most - 1) + "a = :v").static_error is None
    assert _error(parse_condition, "NOT " * most + "a = :v") == (
        "The expression contains too many operators; operator count: 301")
    nested = "NOT (" * (most // 2) + "a = :v" + ")" * (most // 2)
    assert parse_condition(nested).static_error is None
    chain = "a < b " + "OR (a < b " * 149 + ")" * 149  # ScyllaDB's AWS-run case: 299 operators
    assert parse_condition(chain).static_error is None
    assert _error(parse_condition, "a < b " + "OR (a < b " * 454 + ")" * 454) == (
        "The expression contains too many operators; operator count: 301")
    assert _error(parse_condition, " AND ".join(["NOT a = :v"] * 200)).endswith("operator count: 301")
    assert parse_condition("a BETWEEN :x AND :y AND " * 99 + "a = :v").static_error is None  # BETWEEN's AND is its own
    depth = limits.CONDITION_NESTING_MAX + 1
    assert _error(parse_condition, "(" * depth + "a = :v" + ")" * depth) == "The expression has redundant parentheses;"
    assert _error(parse_condition, "(" * depth).startswith('Syntax error; token: "("')
    # Nested calls are parentheses too (functions are not counted as operators).
    assert _error(parse_condition, "size(" * depth + "a" + ")" * depth + " = :v").startswith(
        'Syntax error; token: "("'
    )


def test_deep_backtracking_stays_fast():
    # Each '(' is ambiguous (grouped condition, operand or path); memoised
    # parsing keeps this linear instead of quadratic.
    depth = limits.EXPRESSION_NESTING_MAX
    text = "(" * depth + "a.b" + ")" * depth + " = :v AND " * 1 + "c = :v"
    assert parse_condition(text).tree == And((Compare("=", Path(("a", "b")), V), Compare("=", C, V)))


@pytest.mark.parametrize(
    "text",
    [
        "((a = :v))",
        "a=a and a > ((views))",
        "(a)between(((b.c)).d)and(c)",
        "a > whatever((:things), ((a)))",
        "a=a AND ((a=a AND a=a)) AND a=a",
        "a=a OR ((a=a OR (a=a OR a=a)))",
        "NOT ((a = :v))",
    ],
)
def test_redundant_parentheses(text):
    assert parse_condition(text).static_error == "The expression has redundant parentheses;"


@pytest.mark.parametrize(
    "text",
    ["(a = :v)", "((a = :v) AND (b = :v))", "(NOT (a = :v))", "contains((a), :v)", "a IN ((b), c)", "(a) = :v"],
)
def test_parentheses_that_are_not_redundant(text):
    assert parse_condition(text).static_error is None


# --- updates -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, clauses",
    [
        ("SET a = :v", (Clause("SET", (SetAction(A, V),)),)),
        ("set a=:v , b = a", (Clause("SET", (SetAction(A, V), SetAction(B, A))),)),
        ("SET a = b + :v", (Clause("SET", (SetAction(A, Arith("+", B, V)),)),)),
        ("SET a = (b - :v)", (Clause("SET", (SetAction(A, Arith("-", B, V)),)),)),
        ("SET a = (b) - (:v)", (Clause("SET", (SetAction(A, Arith("-", B, V)),)),)),
        (
            "SET a = list_append(if_not_exists(a, :v), :w)",
            (Clause("SET", (SetAction(A, Call("list_append", (Call("if_not_exists", (A, V)), W))),)),),
        ),
        ("REMOVE a, b[2]", (Clause("REMOVE", (RemoveAction(A), RemoveAction(Path(("b", 2))))),)),
        ("ADD a :v DELETE b :w", (Clause("ADD", (AddAction(A, V),)), Clause("DELETE", (DeleteAction(B, W),)))),
        ("sEt a = :v REMOVE b", (Clause("SET", (SetAction(A, V),)), Clause("REMOVE", (RemoveAction(B),)))),
        ("SET a = :v SET b = :w", (Clause("SET", (SetAction(A, V),)), Clause("SET", (SetAction(B, W),)))),
    ],
)
def test_update_trees(text, clauses):
    assert parse_update(text).tree == UpdateExpr(clauses)


@pytest.mark.parametrize(
    "text, message",
    [
        ("whatever", 'Syntax error; token: "whatever", near: "whatever"'),
        ("set a", 'Syntax error; token: "<EOF>", near: "a"'),
        ("add a", 'Syntax error; token: "<EOF>", near: "a"'),
        ("set a=set", 'Syntax error; token: "set", near: "=set"'),
        ("remove a = b", 'Syntax error; token: "=", near: "a = b"'),
        ("delete a b", 'Syntax error; token: "b", near: "a b"'),
        ("add abort b", 'Syntax error; token: "b", near: "abort b"'),
        ("set :a = b", 'Syntax error; token: ":a", near: "set :a ="'),
        ("remove :a", 'Syntax error; token: ":a", near: "remove :a"'),
        ("set a = b / c", 'Syntax error; token: "/", near: "b / c"'),
        ('set a[1] = "eight"', 'Syntax error; token: """, near: "= "eight"'),
        ("set a[1] = 1", 'Syntax error; token: "1", near: "= 1"'),
        ("SET if_not_exist(a, b) = a", 'Syntax error; token: "(", near: "if_not_exist(a"'),
        ("set (a = (b + c))", 'Syntax error; token: "(", near: "set (a"'),
        ("set a = (b.c).d + e", 'Syntax error; token: ".", near: ").d"'),
        ("set a = b + c + d", 'Syntax error; token: "+", near: "c + d"'),
        ("SET a = if_not_exists(c, :v+:w)", 'Syntax error; token: "+", near: ":v+:w"'),
        ("SET _123 = :v", 'Syntax error; token: "_", near: "SET _123"'),
        ("SET 123a = :v", 'Syntax error; token: "123", near: "SET 123a"'),
        ("SET hi-there = :v", 'Syntax error; token: "-", near: "hi-there"'),
        ("SET #hi-there = :v", 'Syntax error; token: "-", near: "#hi-there"'),
        ("SET # = :v", 'Syntax error; token: "#", near: "SET # ="'),
        ("SET a[:x] = :v", 'Syntax error; token: ":x", near: "[:x]"'),
        ("SET a = :v,", 'Syntax error; token: "<EOF>", near: ","'),
        ("SET a = _f(b)", 'Syntax error; token: "_", near: "= _f"'),
    ],
)
def test_update_syntax_errors(text, message):
    assert _error(parse_update, text) == message


def test_update_counts_operators():
    assert parse_update("SET a = b + :v, c = list_append(if_not_exists(c, :v), :w)").operator_count == 3


# --- projections ----------------------------------------------------------------


def test_projection_tree():
    assert parse_projection("a, b.c[2], #d").tree == ProjectionExpr((A, Path(("b", "c", 2)), Path(("#d",))))


@pytest.mark.parametrize(
    "text, message",
    [
        ("a b", 'Syntax error; token: "b", near: "a b"'),
        ("a,", 'Syntax error; token: "<EOF>", near: ","'),
        ("(a)", 'Syntax error; token: "(", near: "(a"'),
        ("a[-1]", 'Syntax error; token: "-", near: "[-1"'),
        ("a.1", 'Syntax error; token: "1", near: ".1"'),
    ],
)
def test_projection_syntax_errors(text, message):
    assert _error(parse_projection, text) == message


def test_syntax_errors_carry_the_parameter_name():
    with pytest.raises(ValidationException) as caught:
        compile_expressions(filter="a > 4")
    assert caught.value.message == 'Invalid FilterExpression: Syntax error; token: "4", near: "> 4"'
    with pytest.raises(ValidationException) as caught:
        compile_expressions(key_condition="a = ")
    assert caught.value.message == 'Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "= "'


# --- printing: parse(print(tree)) == tree -------------------------------------

_KEYWORDS = {"and", "or", "not", "between", "in", "set", "remove", "add", "delete"}
_names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda name: name not in _KEYWORDS)
_element = st.one_of(_names, _names.map(lambda n: "#" + n), st.integers(0, 99))
_paths = st.builds(
    lambda first, rest: Path((first, *rest)),
    st.one_of(_names, _names.map(lambda n: "#" + n)),
    st.lists(_element, max_size=4),
)
_values = _names.map(lambda n: ValueRef(":" + n))
_operands = st.one_of(_paths, _values, st.builds(lambda p: Call("size", (p,)), _paths))
_leaves = st.one_of(
    st.builds(Compare, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), _operands, _operands),
    st.builds(Between, _operands, _operands, _operands),
    st.builds(lambda a, options: In(a, tuple(options)), _operands, st.lists(_operands, min_size=1, max_size=4)),
    st.builds(lambda p: Call("attribute_exists", (p,)), _paths),
    st.builds(lambda p, v: Call("begins_with", (p, v)), _paths, _values),
)
_conditions = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.builds(lambda items: And(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda items: Or(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(Not, inner),
    ),
    max_leaves=8,
)
_terms = st.one_of(
    _paths,
    _values,
    st.builds(lambda p, v: Call("if_not_exists", (p, v)), _paths, _values),
    st.builds(lambda a, b: Call("list_append", (a, b)), _paths, _values),
)
_set_values = st.one_of(_terms, st.builds(Arith, st.sampled_from(["+", "-"]), _terms, _terms))
_actions = {
    "SET": st.builds(SetAction, _paths, _set_values),
    "REMOVE": st.builds(RemoveAction, _paths),
    "ADD": st.builds(AddAction, _paths, _values),
    "DELETE": st.builds(DeleteAction, _paths, _values),
}
_clauses = st.sampled_from(sorted(_actions)).flatmap(
    lambda keyword: st.lists(_actions[keyword], min_size=1, max_size=3).map(
        lambda actions: Clause(keyword, tuple(actions))
    )
)
_updates = st.lists(_clauses, min_size=1, max_size=4).map(lambda clauses: UpdateExpr(tuple(clauses)))
_projections = st.lists(_paths, min_size=1, max_size=5).map(lambda paths: ProjectionExpr(tuple(paths)))


@settings(max_examples=300, deadline=None)
@given(_conditions)
def test_condition_round_trip(tree):
    parsed = parse_condition(to_text(tree))
    assert parsed.tree == tree
    assert parsed.static_error != "The expression has redundant parentheses;"


@settings(max_examples=200, deadline=None)
@given(_updates)
def test_update_round_trip(tree):
    assert parse_update(to_text(tree)).tree == tree


@settings(max_examples=100, deadline=None)
@given(_projections)
def test_projection_round_trip(tree):
    assert parse_projection(to_text(tree)).tree == tree


# --- any text: a DynamoDB error or a result, never a crash -------------------------

_fragments = st.sampled_from(
    [
        "a", "b", "#n", ":v", ":l", "size", "contains", "begins_with", "attribute_exists", "if_not_exists",
        "list_append", "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN", "(", ")", "[", "]",
        "0", "3", ".", ",", "=", "<>", "<", ">=", "+", "-", " ", "_", "ü", "name",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_fragments, max_size=14).map("".join))
def test_any_text_fails_cleanly(text):
    names = {"#n": "n"} if "#n" in text else None
    values = {key: value for key, value in {":v": {"N": "1"}, ":l": {"L": []}}.items() if key in text} or None
    item = {"a": {"N": "1"}, "b": {"L": [{"S": "x"}]}, "n": {"M": {}}}
    for request in (dict(condition=text), dict(update=text), dict(projection=text), dict(key_condition=text)):
        try:
            compiled = compile_expressions(**request, names=names, values=values)
        except ValidationException:
            continue
        compiled.condition_matches(item)
        compiled.project(item)
        try:
            compiled.apply_update(item, {"k": {"S": "k"}})
        except ValidationException:
            pass
