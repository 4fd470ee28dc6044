"""DAX S-expressions back to expression text (router/dax/sexpr.py).

The bytes come from the real Python DAX client's own compiler
(``amazondax.CborSExprGenerator``) wherever it can produce them; hand-built
ones (cbor2) cover what only the JS client sends and malformed input.  Each
translation is parsed by Meridian's own parser and compared with the
original expression after resolving placeholders, and run through the
evaluator against sample items.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import cbor2
import pytest
from amazondax import CborSExprGenerator as client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.expressions import compile_expressions
from meridian.model.expressions.ast import And, Between, Call, Compare, In, Not, Or, Path, ValueRef
from meridian.model.expressions.parser import parse_condition, parse_projection, parse_update
from meridian.model.expressions.printer import to_text
from meridian.model.values import validate_attribute_value
from meridian.router.dax.sexpr import Code, to_condition, to_projection, to_update

# --- helpers --------------------------------------------------------------------


def _client_value(av: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON as the HTTP API has it (B base64) -> boto3's form (B bytes)."""
    (kind, value), = av.items()
    if kind == "B":
        return {"B": base64.b64decode(value)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in value]}
    if kind == "M":
        return {"M": {k: _client_value(v) for k, v in value.items()}}
    if kind == "L":
        return {"L": [_client_value(v) for v in value]}
    return dict(av)


def _compiled(kind: str, text: str, names: dict, values: dict) -> bytes:
    encode = {
        "condition": client.encode_condition_expression,
        "key": client.encode_key_condition_expression,
        "filter": client.encode_filter_expression,
        "update": client.encode_update_expression,
        "projection": client.encode_projection_expression,
    }[kind]
    return encode(text, names or None, {k: _client_value(v) for k, v in values.items()} or None)


def _translate(kind: str, text: str, names: dict, values: dict, data: bytes | None = None) -> tuple[str, dict, dict]:
    if data is None:
        data = _compiled(kind, text, names, values)
    out_names: dict[str, str] = {}
    out_values: dict[str, dict] = {}
    if kind == "update":
        out = to_update(data, out_names, out_values)
    elif kind == "projection":
        out = to_projection(data, out_names)
    else:
        out = to_condition(data, out_names, out_values)
    return out, out_names, out_values


def _resolved(node: Any, names: dict, values: dict) -> Any:
    """A parsed tree with placeholders replaced by what they stand for (And/Or chains flattened)."""
    if isinstance(node, Path):
        return ("path",) + tuple(names.get(e, e) if isinstance(e, str) else e for e in node.elements)
    if isinstance(node, ValueRef):
        return ("value", _canonical(values[node.name]))
    if isinstance(node, (And, Or)):
        items: list[Any] = []
        for item in node.items:
            resolved = _resolved(item, names, values)
            items.extend(resolved[1] if resolved[0] is type(node) else [resolved])
        return (type(node), items)
    if dataclasses.is_dataclass(node):
        return (type(node),) + tuple(_resolved(getattr(node, f.name), names, values) for f in dataclasses.fields(node))
    if isinstance(node, (tuple, list)):
        return tuple(_resolved(item, names, values) for item in node)
    return node


def _canonical(value: dict) -> str:
    """Numbers normalised, map keys sorted (the client sends maps sorted)."""
    return json.dumps(validate_attribute_value(value), sort_keys=True)


_PARSE = {"update": parse_update, "projection": parse_projection}


def _assert_same_meaning(kind: str, text: str, names: dict, values: dict, data: bytes | None = None) -> str:
    out, out_names, out_values = _translate(kind, text, names, values, data)
    parse = _PARSE.get(kind, parse_condition)
    expected = _resolved(parse(text).tree, names, values)
    assert _resolved(parse(out).tree, out_names, out_values) == expected, out
    assert all(key.startswith("#n") for key in out_names) and all(key.startswith(":v") for key in out_values)
    return out


# --- conditions -----------------------------------------------------------------

N1, N2, N3 = {"N": "1"}, {"N": "2.5"}, {"N": "-3E+2"}
CONDITIONS = [
    ("a = :x", {}, {":x": N1}),
    ("#r = :x", {"#r": "name"}, {":x": {"S": "ann"}}),  # a reserved word
    ("#d.#s[1] <> :x", {"#d": "a.b", "#s": "x y[0]"}, {":x": N2}),  # dots, spaces, brackets
    ("#u[0][12].k = :x", {"#u": "ünï #:"}, {":x": {"B": "AAE="}}),
    ("a < :x AND b >= :y OR NOT c > :x", {}, {":x": N1, ":y": N3}),
    ("a <= :x AND (b = :y OR c = :x) AND d = :y", {}, {":x": N1, ":y": N2}),
    ("NOT (a = :x AND b = :y)", {}, {":x": N1, ":y": N2}),
    ("NOT NOT a = :x", {}, {":x": N1}),
    ("a BETWEEN :lo AND :hi", {}, {":lo": N1, ":hi": N2}),
    ("a IN (:x, :y, :z) OR b IN (:x)", {}, {":x": N1, ":y": N2, ":z": {"S": "s"}}),
    ("attribute_exists(a) AND attribute_not_exists(#r.b)", {"#r": "size"}, {}),
    ("attribute_type(a, :t)", {}, {":t": {"S": "N"}}),
    ("begins_with(s, :p) OR contains(l, :x) OR contains(#s, :p)", {"#s": "ss"}, {":p": {"S": "ab"}, ":x": N1}),
    ("size(s) <= :n AND size(m.k[1]) > :n", {}, {":n": N2}),
    ("a = b AND m.k <> l[0]", {}, {}),
    ("a = :m AND b <> :l AND c = :ns AND d = :bs AND e = :ss AND f = :t AND g = :z",
     {}, {":m": {"M": {"z": N1, "a": {"NULL": True}}}, ":l": {"L": [N1, {"S": "x"}]}, ":ns": {"NS": ["1", "2.5"]},
          ":bs": {"BS": ["AA==", "AQ=="]}, ":ss": {"SS": ["x", "y"]}, ":t": {"BOOL": True}, ":z": {"NULL": True}}),
]


@pytest.mark.parametrize("text,names,values", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition_round_trip_through_the_python_client(text, names, values) -> None:
    _assert_same_meaning("condition", text, names, values)
    _assert_same_meaning("filter", text, names, values)


def test_condition_text_is_what_the_parser_expects() -> None:
    out, names, values = _translate("condition", "#r.#r[3] = :x AND NOT #r = :y", {"#r": "name"}, {":x": N1, ":y": N2})
    assert out == "#n0.#n0[3] = :v0 AND NOT #n0 = :v1"
    assert names == {"#n0": "name"} and values == {":v0": N1, ":v1": N2}
    out, _, _ = _translate("condition", "(a = :x OR b = :x) AND NOT (c = :x OR d = :x)", {}, {":x": N1})
    assert out == "(#n0 = :v0 OR #n1 = :v0) AND NOT (#n2 = :v0 OR #n3 = :v0)"


SAMPLE_ITEMS = [
    {},
    {"a": N1, "b": N3, "c": N1, "d": N2, "s": {"S": "abc"}, "l": {"L": [N1, {"S": "x"}]}},
    {"a": N2, "b": N2, "name": {"S": "ann"}, "m": {"M": {"k": {"L": [N1, {"S": "abc"}]}}}, "ss": {"SS": ["ab"]}},
    {"a": {"S": "N"}, "a.b": {"M": {"x y[0]": {"L": [N1, N2]}}}, "size": {"M": {"b": N1}}},
    {"s": {"S": "ab"}, "m": {"M": {"k": {"L": [N1, {"S": "abcd"}]}}},
     "ünï #:": {"L": [{"L": [N1] * 12 + [{"M": {"k": {"B": "AAE="}}}]}]}},
    {"a": {"M": {"a": {"NULL": True}, "z": N1}}, "b": N1, "c": {"NS": ["2.5", "1"]}, "d": {"BS": ["AQ==", "AA=="]},
     "e": {"SS": ["y", "x"]}, "f": {"BOOL": True}, "g": {"NULL": True}},
]


@pytest.mark.parametrize("text,names,values", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_condition_evaluates_like_the_original(text, names, values) -> None:
    out, out_names, out_values = _translate("condition", text, names, values)
    original = compile_expressions(condition=text, names=names or None, values=values or None)
    translated = compile_expressions(condition=out, names=out_names or None, values=out_values or None)
    for item in SAMPLE_ITEMS:
        assert translated.condition_matches(item) == original.condition_matches(item), item


KEY_SCHEMA = [("pk", "S"), ("sk", "N")]
KEY_CONDITIONS = [
    ("pk = :p", {}, {":p": {"S": "x"}}),
    ("pk = :p AND sk BETWEEN :a AND :b", {}, {":p": {"S": "x"}, ":a": N1, ":b": N2}),
    ("#p = :p AND #s >= :a", {"#p": "pk", "#s": "sk"}, {":p": {"S": "x"}, ":a": N1}),
    ("sk < :a AND pk = :p", {}, {":p": {"S": "x"}, ":a": N1}),
]


@pytest.mark.parametrize("text,names,values", KEY_CONDITIONS, ids=[c[0] for c in KEY_CONDITIONS])
def test_key_condition_binds_like_the_original(text, names, values) -> None:
    out, out_names, out_values = _translate("key", text, names, values)
    original = compile_expressions(key_condition=text, names=names or None, values=values)
    translated = compile_expressions(key_condition=out, names=out_names, values=out_values)
    assert translated.bind_key_condition(KEY_SCHEMA) == original.bind_key_condition(KEY_SCHEMA)


def test_begins_with_key_condition() -> None:
    out, names, values = _translate("key", "pk = :p AND begins_with(sk, :b)", {}, {":p": N1, ":b": {"S": "a"}})
    assert out == "#n0 = :v0 AND begins_with(#n1, :v1)"


# --- updates and projections ---------------------------------------------------

UPDATES = [
    ("SET a = :x, b = b + :one, c = if_not_exists(c, :zero) - :one REMOVE d, l[1] ADD n :one, ss :set "
     "DELETE ds :set", {}, {":x": N2, ":one": N1, ":zero": {"N": "0"}, ":set": {"SS": ["p"]}}),
    ("SET l = list_append(l, :lst), #r = list_append(:lst, if_not_exists(#r, :lst))",
     {"#r": "name"}, {":lst": {"L": [N1]}}),
    ("SET m.#k[2].z = :x", {"#k": "a.b c"}, {":x": {"S": "v"}}),
    ("REMOVE a SET b = :x", {}, {":x": N1}),
    ("SET a = (b - c)", {}, {}),
]


@pytest.mark.parametrize("text,names,values", UPDATES, ids=[u[0] for u in UPDATES])
def test_update_round_trip_through_the_python_client(text, names, values) -> None:
    _assert_same_meaning("update", text, names, values)


def test_update_applies_like_the_original() -> None:
    text, names, values = UPDATES[0]
    out, out_names, out_values = _translate("update", text, names, values)
    assert out == (
        "SET #n0 = :v0, #n1 = #n1 + :v1, #n2 = if_not_exists(#n2, :v2) - :v1 REMOVE #n3, #n4[1] "
        "ADD #n5 :v1, #n6 :v3 DELETE #n7 :v3"
    )
    original = compile_expressions(update=text, values=values)
    translated = compile_expressions(update=out, names=out_names, values=out_values)
    item = {"pk": {"S": "k"}, "b": N2, "d": N1, "l": {"L": [N1, N2, N3]}, "ds": {"SS": ["p", "q"]}}
    assert translated.apply_update(item, {"pk": {"S": "k"}})[0] == original.apply_update(item, {"pk": {"S": "k"}})[0]


def test_projection_keeps_the_clients_path_order() -> None:
    out = _assert_same_meaning("projection", "m.k[2].z, #r, a, #d", {"#r": "name", "#d": "a.b"}, {})
    assert out == "#n0.#n1[2].#n2, #n3, #n4, #n5"


def test_expressions_of_one_request_share_the_maps_without_clashing() -> None:
    names: dict[str, str] = {}
    values: dict[str, dict] = {}
    update = to_update(_compiled("update", "SET a = :x", {}, {":x": N1}), names, values)
    condition = to_condition(_compiled("condition", "a = :x", {}, {":x": N2}), names, values)
    projection = to_projection(_compiled("projection", "a", {}, {}), names)
    assert (update, condition, projection) == ("SET #n0 = :v0", "#n1 = :v1", "#n2")
    assert values == {":v0": N1, ":v1": N2}
    compiled = compile_expressions(update=update, condition=condition, projection=projection, names=names, values=values)
    assert compiled.condition_matches({"a": N2}) and not compiled.condition_matches({"a": N1})


def test_placeholders_already_in_the_maps_are_skipped() -> None:
    names = {"#n1": "taken"}
    values = {":v1": N3}
    out = to_condition(_compiled("condition", "a = :x AND b = :y", {}, {":x": N1, ":y": N2}), names, values)
    assert out == "#n2 = :v2 AND #n3 = :v3"
    assert names["#n1"] == "taken" and values[":v1"] == N3


# --- what the JS client (3.1.0) sends -------------------------------------------
# Its compiler run on the cases above (node, antlr4 4.8), where its bytes differ
# from the Python client's: decimals as float64, map keys unsorted, AND chains
# nested to the left, and a value listed again when its first use is reused
# (its variable id 0 is falsy).

JS_BYTES = {
    ('condition', '#d.#s[1] <> :x'): (
        "83018301841263612e62667820795b305dd90cfc0182110081fb4004000000000000"
    ),
    ('condition', 'a < :x AND b >= :y OR NOT c > :x'): (
        "83018307830683028212616182110083038212616282110182088304821261638211028301c482022201"
    ),
    ('condition', 'a <= :x AND (b = :y OR c = :x) AND d = :y'): (
        "83018306830683058212616182110083078300821261628211018300821261638211028300821261648211018301fb40"
        "0400000000000001"
    ),
    ('condition', 'NOT (a = :x AND b = :y)'): (
        "8301820883068300821261618211008300821261628211018201fb4004000000000000"
    ),
    ('condition', 'a BETWEEN :lo AND :hi'): (
        "83018409821261618211008211018201fb4004000000000000"
    ),
    ('condition', 'a IN (:x, :y, :z) OR b IN (:x)'): (
        "83018307830a8212616183821100821101821102830a82126162818211038401fb4004000000000000617301"
    ),
    ('condition', 'begins_with(s, :p) OR contains(l, :x) OR contains(#s, :p)'): (
        "830183078307830e82126173821100830f8212616c821101830f82126273738211028362616201626162"
    ),
    ('condition', 'size(s) <= :n AND size(m.k[1]) > :n'): (
        "830183068305821082126173821100830482108412616d616bd90cfc0182110182fb4004000000000000fb4004000000"
        "000000"
    ),
    ('condition', 'a = :m AND b <> :l AND c = :ns AND d = :bs AND e = :ss AND f = :t AND g = :z'): (
        "830183068306830683068306830683008212616182110083018212616282110183008212616382110283008212616482"
        "110383008212616582110483008212616682110583008212616782110687a2617a016161f682016178d90cfa8201fb40"
        "04000000000000d90cfb8241004101d90cf98261786179f5f6"
    ),
    ('key', 'pk = :p AND sk BETWEEN :a AND :b'): (
        "830183068300821262706b8211008409821262736b82110182110283617801fb4004000000000000"
    ),
    ('update', 'SET a = :x, b = b + :one, c = if_not_exists(c, :zero) - :one REMOVE d, l[1] ADD n :one, ss :set DELETE ds :set'): (
        "8301888313821261618211008313821261628318198212616282110183138212616383181a8317821261638211028211"
        "0182168212616482168312616cd90cfc0183148212616e821101831482126273738211038315821262647382110384fb"
        "40040000000000000100d90cf9816170"
    ),
    ('update', 'SET l = list_append(l, :lst), #r = list_append(:lst, if_not_exists(#r, :lst))'): (
        "83018283138212616c8318188212616c82110083138212646e616d6583181882110183178212646e616d658211018281"
        "018101"
    ),
}


_ALL_CASES = {(kind, case[0]): case for kind, cases in (
    ("condition", CONDITIONS), ("key", KEY_CONDITIONS), ("update", UPDATES)) for case in cases}


@pytest.mark.parametrize("kind,text", sorted(JS_BYTES), ids=[f"{k}: {t}" for k, t in sorted(JS_BYTES)])
def test_the_js_clients_bytes_mean_the_same(kind: str, text: str) -> None:
    _, names, values = _ALL_CASES[(kind, text)]
    _assert_same_meaning(kind, text, names, values, bytes.fromhex(JS_BYTES[(kind, text)]))


# --- what only hand-built bytes reach ------------------------------------------


def _path(*elements: Any) -> list:
    return [Code.DOCUMENT_PATH, *(cbor2.CBORTag(3324, e) if isinstance(e, int) else e for e in elements)]


def _var(index: int) -> list:
    return [Code.VARIABLE, index]


def test_a_value_listed_twice_as_the_js_client_does() -> None:
    # JS: `a = :x OR b = :x` reuses id 0 as falsy, so :x is listed (and referenced) twice
    spec = [Code.OR, [Code.EQUAL, _path("a"), _var(0)], [Code.EQUAL, _path("b"), _var(1)]]
    values: dict[str, dict] = {}
    out = to_condition(cbor2.dumps([1, spec, ["x", "x"]]), {}, values)
    assert out == "#n0 = :v0 OR #n1 = :v1" and values == {":v0": {"S": "x"}, ":v1": {"S": "x"}}


def test_unreferenced_values_are_not_added() -> None:
    values: dict[str, dict] = {}
    assert to_condition(cbor2.dumps([1, [Code.ATTRIBUTE_EXISTS, _path("a")], [7, 8]]), {}, values) == (
        "attribute_exists(#n0)"
    )
    assert values == {}


def test_n_ary_and_is_flattened() -> None:
    spec = [Code.AND, [Code.EQUAL, _path("a"), _path("b")], [Code.AND, [Code.NOT, [Code.EQUAL, _path("c"), _path("d")]],
                                                              [Code.OR, [Code.LESS, _path("a"), _path("b")],
                                                               [Code.GREATER, _path("a"), _path("b")]]]]
    out = to_condition(cbor2.dumps([1, spec, []]), {}, {})
    assert out == "#n0 = #n1 AND NOT #n2 = #n3 AND (#n0 < #n1 OR #n0 > #n1)"
    assert isinstance(parse_condition(out).tree, And) and parse_condition(out).static_error is None


MALFORMED = [
    (b"", "truncated"),
    (cbor2.dumps([1, [0, _path("a"), _var(0)], [1]])[:-1], "truncated"),
    (cbor2.dumps([1, [0, _path("a"), _var(0)], [1]]) + b"\x00", "trailing bytes"),
    (b"\xff", "bad CBOR"),
    (cbor2.dumps({"a": 1}), "envelope"),
    (cbor2.dumps([2, [0, _path("a"), _var(0)], [1]]), "format"),
    (cbor2.dumps([1, [0, _path("a"), _var(0)], {}]), "values"),
    (cbor2.dumps([1, [99, _path("a")], []]), "unknown function code 99"),
    (cbor2.dumps([1, [0, [Code.AND, _path("a"), _path("b")], _path("c")], []]), "AND is not an operand"),
    (cbor2.dumps([1, _path("a"), []]), "DOCUMENT_PATH is not a condition"),
    (cbor2.dumps([1, [0, _path("a"), _var(1)], [1]]), "no value 1"),
    (cbor2.dumps([1, [0, _path("a"), _var(-1)], [1]]), "no value -1"),
    (cbor2.dumps([1, [0, _path("a", -1), _var(0)], [1]]), "bad list index"),
    (cbor2.dumps([1, [0, _path(3), _var(0)], [1]]), "starts with an attribute name"),
    (cbor2.dumps([1, [0, [18, "a", b"x"], _var(0)], [1]]), "bad document path element"),
    (cbor2.dumps([1, [0, _path("a")], [1]]), "EQUAL takes 2"),
    (cbor2.dumps([1, [Code.IN, _path("a"), []], [1]]), "non-empty array"),
    (cbor2.dumps([1, [Code.AND, [0, _path("a"), _path("b")]], [1]]), "two or more"),
    (cbor2.dumps([1, "a", []]), "expected [function code"),
]


@pytest.mark.parametrize("data,detail", MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_conditions_are_validation_errors(data: bytes, detail: str) -> None:
    with pytest.raises(ValidationException) as raised:
        to_condition(data, {}, {}, label="FilterExpression")
    assert raised.value.message.startswith("Invalid FilterExpression: ") and detail in raised.value.message


MALFORMED_UPDATES = [
    (cbor2.dumps([1, [], []]), "non-empty array of actions"),
    (cbor2.dumps([1, [[0, _path("a"), _path("b")]], []]), "EQUAL is not an update action"),
    (cbor2.dumps([1, [[Code.ADD, _path("a"), _path("b")]], []]), "ADD takes a value"),
    (cbor2.dumps([1, [[Code.SET, _var(0), _var(0)]], [1]]), "target is a path"),
    (cbor2.dumps([1, [[Code.REMOVE, _path("a"), _path("b")]], []]), "REMOVE takes 1"),
    (cbor2.dumps([1, [[Code.SET, _path("a"), [Code.PLUS, _path("b")]]], []]), "PLUS takes 2"),
    (cbor2.dumps([1, [[Code.SET, _path("a"), [Code.PLUS, [Code.PLUS, _path("b"), _path("c")], _path("d")]]], []]),
     "PLUS is not an operand"),
]


@pytest.mark.parametrize("data,detail", MALFORMED_UPDATES, ids=[m[1] for m in MALFORMED_UPDATES])
def test_malformed_updates_are_validation_errors(data: bytes, detail: str) -> None:
    with pytest.raises(ValidationException) as raised:
        to_update(data, {}, {})
    assert raised.value.message.startswith("Invalid UpdateExpression: ") and detail in raised.value.message


def test_malformed_projection() -> None:
    for data in (cbor2.dumps([1, []]), cbor2.dumps([1, [_var(0)]]), cbor2.dumps([1, [_path("a")], []])):
        with pytest.raises(ValidationException, match="^Invalid ProjectionExpression: "):
            to_projection(data, {})


def test_a_repeated_section_stays_repeated_so_the_compiler_rejects_it() -> None:
    spec = [[Code.SET, _path("a"), _var(0)], [Code.REMOVE, _path("b")], [Code.SET, _path("c"), _var(0)]]
    out = to_update(cbor2.dumps([1, spec, [1]]), {}, {})
    assert out == "SET #n0 = :v0 REMOVE #n1 SET #n2 = :v0"


def test_misused_functions_are_left_to_the_compiler() -> None:
    # size() at the top of a condition: DynamoDB's own message comes from the compiler
    names: dict[str, str] = {}
    out = to_condition(cbor2.dumps([1, [Code.SIZE, _path("a")], []]), names, {})
    assert out == "size(#n0)"
    with pytest.raises(ValidationException, match="not allowed to be used this way"):
        compile_expressions(condition=out, names=names)


# --- random conditions ----------------------------------------------------------

_NAMES = {"#a": "a", "#b": "name", "#c": "x.y", "#d": "[0] z"}
_VALUES = {":p": N1, ":q": {"S": "s"}, ":r": N2}
_paths = st.builds(
    lambda first, rest: Path((first, *rest)),
    st.sampled_from(sorted(_NAMES)),
    st.lists(st.one_of(st.sampled_from(sorted(_NAMES)), st.integers(0, 3)), max_size=2),
)
_values = st.builds(ValueRef, st.sampled_from(sorted(_VALUES)))
_operands = st.one_of(_paths, _values, st.builds(lambda p: Call("size", (p,)), _paths))
_leaves = st.one_of(
    st.builds(Compare, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), _operands, _operands),
    st.builds(Between, _operands, _operands, _operands),
    st.builds(lambda o, opts: In(o, tuple(opts)), _operands, st.lists(_operands, min_size=1, max_size=3)),
    st.builds(lambda p: Call("attribute_exists", (p,)), _paths),
    st.builds(lambda p, v: Call("begins_with", (p, v)), _paths, _values),
)
_conditions = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(lambda items: And(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda items: Or(tuple(items)), st.lists(inner, min_size=2, max_size=3)),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_conditions)
def test_random_conditions_survive_the_round_trip(tree) -> None:
    text = to_text(tree)
    used_names = {k: v for k, v in _NAMES.items() if k in text}
    used_values = {k: v for k, v in _VALUES.items() if k in text}
    _assert_same_meaning("condition", text, used_names, used_values)
