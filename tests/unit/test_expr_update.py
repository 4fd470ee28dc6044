"""UpdateExpression: DynamoDB's checks and how an update changes an item."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions, updated_attributes

KEY = {"pk": {"S": "k"}}
_PREFIX = "Invalid UpdateExpression: "


def _error(update: str, names=None, values=None, **request) -> str:
    with pytest.raises(ValidationException) as caught:
        compile_expressions(update=update, names=names, values=values, **request)
    return caught.value.message


def _apply(update: str, item, names=None, values=None):
    compiled = compile_expressions(update=update, names=names, values=values, key_attributes=("pk",))
    before = copy.deepcopy(item)
    new_item, touched = compiled.apply_update(item, KEY)
    assert item == before, "the old item must never be modified"
    return new_item, touched


def _apply_error(update: str, item, names=None, values=None) -> str:
    compiled = compile_expressions(update=update, names=names, values=values)
    with pytest.raises(ValidationException) as caught:
        compiled.apply_update(item, KEY)
    return caught.value.message


# --- checks -------------------------------------------------------------------------


def test_empty_and_oversized():
    assert _error("") == f"{_PREFIX}The expression can not be empty;"
    assert _error("SET a = :v" + ", b = :v" * 600).startswith(
        f"{_PREFIX}Expression size has exceeded the maximum allowed size; expression size: "
    )


@pytest.mark.parametrize(
    "expression, word", [(" set #c = :c set abOrt = true ", "abOrt"), (" remove Absolute ", "Absolute")]
)
def test_reserved_words_come_first(expression, word):
    assert _error(expression) == f"{_PREFIX}Attribute name is a reserved keyword; reserved keyword: {word}"


def test_function_names():
    assert _error("set #c = if_not_exist(:c) set c = d") == f"{_PREFIX}Invalid function name; function: if_not_exist"
    assert _error("SET a = size(b)") == f"{_PREFIX}The function is not allowed in an update expression; function: size"
    assert _error("SET a = list_append(list_append(:l, :l), :l)", values={":l": {"L": []}}) == (
        f"{_PREFIX}The function is not allowed to be used this way in an expression; function: list_append"
    )


@pytest.mark.parametrize(
    "expression, section",
    [
        ("set a = #c set c = :d", "SET"),
        ("remove #d set a = b remove e", "REMOVE"),
        ("add #d :e set a = b add e :f", "ADD"),
        ("delete #d :e set a = b delete #e :f", "DELETE"),
    ],
)
def test_each_section_once(expression, section):
    assert _error(expression) == f'{_PREFIX}The "{section}" section can only be used once in an update expression;'


def test_undefined_names_before_values():
    assert _error("SET #a = if_not_exists(:c, :d), #c = :x", names={"#a": "a"}) == (
        f"{_PREFIX}An expression attribute name used in the document path is not defined; attribute name: #c"
    )
    assert _error("SET #a = if_not_exists(:c)", names={"#a": "a"}, values={":a": {"S": "a"}}) == (
        f"{_PREFIX}An expression attribute value used in expression is not defined; attribute value: :c"
    )


@pytest.mark.parametrize(
    "expression, one, two",
    [
        ("set d[1] = a, d.b = a, c[1].a = a, #c = if_not_exists(a)", "[c, [1], a]", "[c]"),
        ("set c.b.#c = a, c = a, #d = a", "[c, b, c]", "[c]"),
        ("set a = b remove a, #c, #d", "[a]", "[a]"),
        ("set #c[3].#d = a, #c[3] = a", "[c, [3], [3]]", "[c, [3]]"),
        ("remove c, #c.a, #d", "[c]", "[c, a]"),
        ("remove a, #c, a, #d", "[a]", "[a]"),
        ("SET a[1][1] = :v, a[1] = :v", "[a, [1], [1]]", "[a, [1]]"),
    ],
)
def test_overlapping_paths(expression, one, two):
    assert _error(expression, names={"#c": "c", "#d": "[3]"}, values={":v": {"N": "1"}}) == (
        f"{_PREFIX}Two document paths overlap with each other; must remove or rewrite one of these paths; "
        f"path one: {one}, path two: {two}"
    )


@pytest.mark.parametrize(
    "expression, one, two",
    [
        ("set #c[3].#d = a, #c.#d[3] = if_not_exists(a, b)", "[c, [3], [3]]", "[c, [3], [3]]"),
        ("remove a.#c set a[1] = #d", "[a, c]", "[a, [1]]"),
    ],
)
def test_conflicting_paths(expression, one, two):
    assert _error(expression, names={"#c": "c", "#d": "[3]"}) == (
        f"{_PREFIX}Two document paths conflict with each other; must remove or rewrite one of these paths; "
        f"path one: {one}, path two: {two}"
    )


@pytest.mark.parametrize(
    "expression, value, operator, operand_type",
    [
        ("set b = list_append(:a, a), c = if_not_exists(a) add a.b :a", {"S": "a"}, "ADD", "STRING"),
        ("delete a.b :a", {"S": "a"}, "DELETE", "STRING"),
        ("add a.b :a", {"NULL": True}, "ADD", "NULL"),
        ("add a.b :a", {"BOOL": False}, "ADD", "BOOLEAN"),
        ("delete a.b :a", {"B": "YQ=="}, "DELETE", "BINARY"),
        ("add a.b :a", {"M": {"a": {"L": [{"N": "1"}]}}}, "ADD", "MAP"),
        ("add a.b :a", {"L": [{"N": "1"}]}, "ADD", "LIST"),
        ("delete a.b :a", {"N": "1"}, "DELETE", "NUMBER"),
    ],
)
def test_add_and_delete_operand_types(expression, value, operator, operand_type):
    assert _error(expression, values={":a": value}) == (
        f"{_PREFIX}Incorrect operand type for operator or function; operator: {operator}, operand type: {operand_type}"
    )


_COUNT = "Incorrect number of operands for operator or function; operator or function: "
_PATH = "Operator or function requires a document path; operator or function: "
_TYPE = "Incorrect operand type for operator or function; operator or function: "


@pytest.mark.parametrize(
    "expression, problem",
    [
        ("set a = if_not_exists(c)", _COUNT + "if_not_exists, number of operands: 1"),
        ("set a = list_append(c)", _COUNT + "list_append, number of operands: 1"),
        ("set a = if_not_exists(:a, c)", _PATH + "if_not_exists"),
        ("set a = if_not_exists(if_not_exists(a, b), c)", _PATH + "if_not_exists"),
        ("set a = list_append(:a, a)", _TYPE + "list_append, operand type: S"),
        ("set a = list_append(a, :g)", _TYPE + "list_append, operand type: NS"),
        ("set a = a + :a", _TYPE + "+, operand type: S"),
        ("set a = :c - a", _TYPE + "-, operand type: B"),
        ("set a = a - :j", _TYPE + "-, operand type: L"),
    ],
)
def test_function_checks(expression, problem):
    values = {":a": {"S": "a"}, ":c": {"B": "YQ=="}, ":g": {"NS": ["1"]}, ":j": {"L": []}}
    used = {key: value for key, value in values.items() if key in expression}
    assert _error(expression, values=used or None) == _PREFIX + problem


def test_unused_placeholders_across_expressions():
    assert _error(
        "remove a set b = list_append(b, if_not_exists(a, :a))",
        condition="a = :b",
        names={"#a": "a", "#b": "b"},
        values={":a": {"L": []}, ":b": {"S": "a"}},
    ) == "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
    assert _error(
        "remove a", condition="a = :b", values={":a": {"S": "a"}, ":b": {"S": "a"}, ":c": {"S": "a"}}
    ) == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:a, :c}"


@pytest.mark.parametrize(
    "expression, values",
    [
        ("add pk.b :a", {":a": {"N": "1"}}),
        ("delete pk :a", {":a": {"NS": ["1"]}}),
        ("remove d set b = :a, pk = :a", {":a": {"N": "1"}}),
        ("set pk = pk.b + pk[1]", None),
    ],
)
def test_key_attributes_cannot_be_updated(expression, values):
    message = "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    assert _error(expression, values=values, key_attributes=("pk",)) == message
    compiled = compile_expressions(update=expression, values=values)
    with pytest.raises(ValidationException) as caught:
        compiled.check_key_attributes(("pk", "sk"))
    assert caught.value.message == message


def test_operator_limit():
    short = ", ".join(f"a{i}=:v+:v" for i in range(301))
    assert _error(f"SET {short}", values={":v": {"N": "1"}}) == (
        f"{_PREFIX}The expression contains too many operators; operator count: 301"
    )


# --- applying ---------------------------------------------------------------------------


def test_set_reads_the_old_item():
    item = {"pk": {"S": "k"}, "a": {"S": "hello"}}
    new, _ = _apply("REMOVE a SET b = a", item)
    assert new == {"pk": {"S": "k"}, "b": {"S": "hello"}}
    assert _apply_error("SET x = :v, y = x", item, values={":v": {"N": "4"}}) == (
        "The provided expression refers to an attribute that does not exist in the item"
    )


def test_arithmetic_and_functions():
    item = {"pk": {"S": "k"}, "n": {"N": "2"}, "l": {"L": [{"N": "1"}]}, "s": {"S": "x"}}
    values = {":one": {"N": "1"}, ":l": {"L": [{"S": "z"}]}, ":d": {"N": "5"}}
    new, _ = _apply(
        "SET n = n + :one, m = :d - n, l = list_append(l, :l), f = list_append(:l, l), g = if_not_exists(n, :d), "
        "h = if_not_exists(gone, :d), i = list_append(if_not_exists(gone, :l), :l)",
        item,
        values=values,
    )
    assert new["n"] == {"N": "3"} and new["m"] == {"N": "3"}
    assert new["l"] == {"L": [{"N": "1"}, {"S": "z"}]} and new["f"] == {"L": [{"S": "z"}, {"N": "1"}]}
    assert new["g"] == {"N": "2"} and new["h"] == {"N": "5"}
    assert new["i"] == {"L": [{"S": "z"}, {"S": "z"}]}
    assert _apply_error("SET x = s + :one", item, values={":one": {"N": "1"}}) == (
        "An operand in the update expression has an incorrect data type"
    )
    assert _apply_error("SET x = list_append(s, :l)", item, values={":l": {"L": []}}) == (
        "An operand in the update expression has an incorrect data type"
    )
    assert _apply_error("SET x = list_append(gone, :l)", item, values={":l": {"L": []}}) == (
        "The provided expression refers to an attribute that does not exist in the item"
    )
    big = {":big": {"N": "9" * 38 + "E+87"}}
    assert _apply_error("SET x = :big + :big", item, values=big) == (
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )


def test_add_and_delete():
    item = {
        "pk": {"S": "k"},
        "n": {"N": "3"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "s": {"S": "x"},
    }
    new, _ = _apply(
        "ADD n :two, ss :ss, ns :ns, fresh :two, fresh_set :ss DELETE gone :ss",
        item,
        values={":two": {"N": "2"}, ":ss": {"SS": ["b", "c"]}, ":ns": {"NS": ["2", "3"]}},
    )
    assert new["n"] == {"N": "5"}
    assert new["ss"] == {"SS": ["a", "b", "c"]}
    assert new["ns"] == {"NS": ["1", "2", "3"]}
    assert new["fresh"] == {"N": "2"} and new["fresh_set"] == {"SS": ["b", "c"]}
    new, _ = _apply("DELETE ss :x, ns :y", item, values={":x": {"SS": ["a", "b"]}, ":y": {"NS": ["1", "9"]}})
    assert "ss" not in new and new["ns"] == {"NS": ["2"]}
    for expression, values in [
        ("ADD s :two", {":two": {"N": "2"}}),
        ("ADD ss :n", {":n": {"NS": ["1"]}}),
        ("DELETE ns :x", {":x": {"SS": ["1"]}}),
        ("DELETE n :x", {":x": {"NS": ["3"]}}),
    ]:
        assert _apply_error(expression, item, values=values) == (
            "An operand in the update expression has an incorrect data type"
        )


def test_nested_updates():
    y = {"L": [{"N": "3"}, {"N": "5"}, {"N": "7"}]}
    item = {"pk": {"S": "k"}, "a": {"M": {"b": {"N": "3"}, "c": {"L": [{"S": "hi"}, {"M": {"x": {"M": {"y": y}}}}]}}}}
    new, _ = _apply("SET a.c[1].#name.y[1] = :v, a.z = a.b", item, names={"#name": "x"}, values={":v": {"N": "9"}})
    assert new["a"]["M"]["c"]["L"][1]["M"]["x"]["M"]["y"]["L"][1] == {"N": "9"}
    assert new["a"]["M"]["z"] == {"N": "3"}
    new, _ = _apply("REMOVE a.c[1].x.y[1], a.b", item)
    assert new["a"]["M"] == {"c": {"L": [{"S": "hi"}, {"M": {"x": {"M": {"y": {"L": [{"N": "3"}, {"N": "7"}]}}}}}]}}


def test_list_indexes_refer_to_the_old_list():
    item = {"pk": {"S": "k"}, "a": {"L": [{"N": str(n)} for n in (2, 3, 4, 5, 6, 7)]}}
    for expression in ("REMOVE a[1] SET a[3] = :v", "SET a[3] = :v REMOVE a[1]"):
        new, _ = _apply(expression, item, values={":v": {"N": "17"}})
        assert new["a"] == {"L": [{"N": n} for n in ("2", "4", "17", "6", "7")]}
    new, _ = _apply("REMOVE a[1], a[3], a[17]", item)
    assert new["a"] == {"L": [{"N": n} for n in ("2", "4", "6", "7")]}
    values = {":a": {"S": "a1"}, ":b": {"S": "a2"}, ":c": {"S": "a3"}, ":d": {"S": "a4"}}
    new, _ = _apply("SET a[84] = :a, a[37] = :b, a[17] = :c, a[50] = :d", item, values=values)
    assert new["a"]["L"][6:] == [{"S": "a3"}, {"S": "a2"}, {"S": "a4"}, {"S": "a1"}]
    new, _ = _apply("REMOVE a[0], a[1], a[2], a[3], a[4], a[5]", item)
    assert new["a"] == {"L": []}


def test_invalid_document_paths():
    item = {"pk": {"S": "k"}, "b": {"S": "a"}, "c": {"M": {"1": {"S": "a"}}}, "d": {"L": [{"S": "a"}, {"S": "b"}]}}
    names = {"#1": "1"}
    values = {":a": {"SS": ["a"]}}
    for expression in [
        "set b.a = :a", "set b[1] = :a", "set y.a = :a", "set y[1] = :a", "set c[1] = :a", "set d.#1 = :a",
        "remove b.a", "remove b[1]", "remove y.a", "remove y[1]", "remove c[1]", "remove d.#1",
        "delete b.a :a", "delete y[1] :a", "delete c[1] :a", "delete d.#1 :a",
        "add b.a :a", "add y.a :a", "add c[1] :a", "add d.#1 :a",
    ]:
        used = names if "#1" in expression else None
        used_values = values if ":a" in expression else None
        assert _apply_error(expression, item, names=used, values=used_values) == (
            "The document path provided in the update expression is invalid for update"
        ), expression


def test_missing_item():
    new, touched = _apply("SET a = pk, n = :v", None, values={":v": {"N": "1"}})
    assert new == {"pk": {"S": "k"}, "a": {"S": "k"}, "n": {"N": "1"}}
    assert sorted(touched) == ["a", "n"]
    new, _ = _apply("REMOVE x.y, w[0], z", None)  # ignored on a missing item
    assert new == KEY
    assert _apply_error("SET c.c = :v", None, values={":v": {"N": "1"}}) == (
        "The document path provided in the update expression is invalid for update"
    )
    assert _apply_error("SET c = z", None) == "The provided expression refers to an attribute that does not exist in the item"


def test_removing_the_last_member_leaves_an_empty_container():
    new, _ = _apply("REMOVE a.b, l[0]", {"pk": {"S": "k"}, "a": {"M": {"b": {"N": "1"}}}, "l": {"L": [{"N": "1"}]}})
    assert new["a"] == {"M": {}} and new["l"] == {"L": []}


def test_updated_attributes_follow_dynamodb():
    item = {"pk": {"S": "k"}, "a": {"M": {"b": {"S": "dog"}, "c": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}}}, "d": {"S": "cat"}}
    new, touched = _apply("SET a.c[1] = :v, a.b = :w", item, values={":v": {"N": "8"}, ":w": {"S": "yo"}})
    assert set(touched) == {"a"}
    assert updated_attributes(item, touched) == {"a": {"M": {"b": {"S": "dog"}, "c": {"L": [{"N": "2"}]}}}}
    assert updated_attributes(new, touched) == {"a": {"M": {"b": {"S": "yo"}, "c": {"L": [{"N": "8"}]}}}}
    _, touched = _apply("REMOVE a.c[1], a.c[3]", item)
    assert updated_attributes(item, touched) == {"a": {"M": {"c": {"L": [{"N": "2"}]}}}}
    new, touched = _apply("SET a.c[100] = :v", item, values={":v": {"N": "70"}})
    assert updated_attributes(new, touched) == {}
    new, touched = _apply("REMOVE a.c[1]", item)
    assert updated_attributes(new, touched) == {"a": {"M": {"c": {"L": [{"N": "3"}]}}}}
    assert updated_attributes(item, frozenset({"d", "gone"})) == {"d": {"S": "cat"}}


def test_no_update_expression_keeps_the_item():
    compiled = compile_expressions(condition="attribute_exists(pk)")
    new, touched = compiled.apply_update(None, KEY)
    assert new == KEY and not touched


# --- a model of top-level SET/REMOVE/ADD on random items -----------------------------

_numbers = st.integers(-1000, 1000).map(lambda n: {"N": str(n)})
_attrs = st.sampled_from(["a", "b", "c", "d"])


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(_attrs, st.one_of(_numbers, st.just({"S": "x"})), max_size=4),
    st.lists(st.tuples(st.sampled_from(["SET", "REMOVE", "ADD"]), _attrs, st.integers(-50, 50)), max_size=4, unique_by=lambda t: t[1]),
)
def test_top_level_actions_match_a_model(item, actions):
    item = {"pk": {"S": "k"}, **item}
    values, clauses = {}, {"SET": [], "REMOVE": [], "ADD": []}
    expected = dict(item)
    failure = None
    for index, (keyword, name, number) in enumerate(actions):
        if keyword == "REMOVE":
            clauses["REMOVE"].append(name)
            expected.pop(name, None)
            continue
        values[f":v{index}"] = {"N": str(number)}
        if keyword == "SET":
            clauses["SET"].append(f"{name} = :v{index}")
            expected[name] = {"N": str(number)}
        else:
            clauses["ADD"].append(f"{name} :v{index}")
            old = item.get(name)
            if old is None:
                expected[name] = {"N": str(number)}
            elif "N" in old:
                expected[name] = {"N": str(int(old["N"]) + number)}
            else:
                failure = "An operand in the update expression has an incorrect data type"
    text = " ".join(f"{k} {', '.join(v)}" for k, v in clauses.items() if v)
    if not text:
        return
    compiled = compile_expressions(update=text, values=values or None)
    if failure:
        with pytest.raises(ValidationException, match=failure):
            compiled.apply_update(item, KEY)
    else:
        assert compiled.apply_update(item, KEY)[0] == expected
