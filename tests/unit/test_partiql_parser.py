"""model/partiql: the lexer, the parser and literal values, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.errors import ValidationException
from meridian.model.numbers import normalize_number
from meridian.model.partiql import ast as P
from meridian.model.partiql import insert_item, parse_statement, to_value
from meridian.model.partiql.errors import NOT_WELL_FORMED, PartiQLSyntaxError
from meridian.model.partiql.lexer import tokenize
from meridian.model.partiql.parser import parse


def test_tokens_carry_line_column_and_length():
    tokens = tokenize("SELECT *\n  FROM \"My Table\" -- note\nWHERE a <> 'it''s' /* c */ AND b >= .5e1")
    kinds = [(t.kind, t.text, t.line, t.column, t.length) for t in tokens]
    assert ("QIDENT", "My Table", 2, 8, 10) in kinds
    assert ("STRING", "it's", 3, 12, 7) in kinds
    assert ("OP", "<>", 3, 9, 2) in kinds
    assert ("NUMBER", ".5e1", 3, 37, 4) in kinds
    assert kinds[-1][0] == "EOF"


@pytest.mark.parametrize("text", ["SELECT * FROM t # x", "SELECT * FROM t /* open", "SELECT 'open FROM t"])
def test_unreadable_text_has_an_empty_detail(text):
    with pytest.raises(PartiQLSyntaxError) as info:
        parse_statement(text)
    assert info.value.message == NOT_WELL_FORMED


@pytest.mark.parametrize("text, detail", [
    ("SELECT * FROM t WHERE", "Unexpected term"),
    ("SELECT * FROM t WHERE a = 1 foo", "Unexpected token after expression"),
    ("SELECT * FROM t ORDER BY a WHERE a = 1", "Unexpected token after expression"),
    ("DELETE FROM t WHERE a = 1 ORDER BY a", "Unexpected token after expression"),
    ("INSERT INTO t x VALUE {'a': 1}", "Unexpected token after expression"),
    ("CREATE TABLE t", "Expected data manipulation"),
    ("SELECT * FROM t WHERE (a = 1", "Expected RIGHT_PAREN"),
    ("SELECT * FROM t WHERE m.inner = 1", "Invalid path dot component"),
    ("SELECT * FROM t WHERE a = 1e2147483648", ""),
])
def test_syntax_errors(text, detail):
    with pytest.raises(PartiQLSyntaxError) as info:
        to_value(_right(parse_statement(text)), []) if "1e2147" in text else parse_statement(text)
    assert info.value.message == NOT_WELL_FORMED + detail


def _right(statement):
    return statement.condition.right


@pytest.mark.parametrize("text, message", [
    ("SELECT * FROM t x WHERE a = 1", "Aliasing is not supported"),
    ("SELECT * FROM t AS x", "Aliasing is not supported"),
    ("UPDATE t x SET a = 1 WHERE k = 1", "Aliasing is not supported"),
    ("SELECT *, a FROM t", "Other attributes should not be present in the projection when '*' is used."),
    ("SELECT a FROM t.i.j", "A path may contain at most 2 components in the FROM clause"),
    ("SELECT size(a) FROM t", "Unexpected path component at 1:8:4"),
    ("INSERT INTO t VALUES {'a': 1}", 'Unsupported operation: Inserting multiple items in a single statement is '
                                      'not supported, use "INSERT INTO tableName VALUE item" instead'),
    ("UPDATE t SET a = 1 WHERE k = 1 RETURNING ALL OLD", "Expected '*' after ( MODIFIED | ALL ) ( NEW | OLD ) in "
                                                         "RETURNING clause"),
])
def test_refusals(text, message):
    with pytest.raises(ValidationException) as info:
        parse_statement(text)
    assert info.value.message == message


def test_select_tree():
    statement, count = parse('select a.b[2], "c" from "T"."I" where k = ? and (x > 1 or not y in [1, ?]) '
                             'order by k desc')
    assert count == 2
    assert isinstance(statement, P.Select)
    assert [p.steps for p in statement.projection] == [("a", "b", 2), ("c",)]
    assert (statement.source.table, statement.source.index) == ("T", "I")
    condition = statement.condition
    assert isinstance(condition, P.And) and isinstance(condition.items[1], P.Or)
    assert isinstance(condition.items[1].items[1], P.Not)
    assert statement.order_by[0].descending is True


def test_update_forms():
    first = parse_statement("UPDATE t SET a = 1, b = b + 2 SET c = set_add(c, <<'x'>>) REMOVE d WHERE k = 1 "
                            "RETURNING MODIFIED NEW *")
    second = parse_statement("FROM t WHERE k = 1 SET a = 1, b = b + 2 SET c = set_add(c, <<'x'>>) REMOVE d "
                             "RETURNING MODIFIED NEW *")
    assert first == second
    assert [type(a).__name__ for a in first.actions] == ["SetAction", "SetAction", "SetAction", "RemoveAction"]
    assert first.returning == "MODIFIED NEW"


def test_exists_and_delete():
    exists = parse_statement("EXISTS(SELECT * FROM t WHERE k = 1 AND a IS NOT MISSING)")
    assert isinstance(exists, P.Exists) and exists.select.condition.items[1].negated is True
    delete = parse_statement("delete from t where k = 1 returning all old *")
    assert isinstance(delete, P.Delete) and delete.returning == "ALL OLD"


def test_literal_values():
    statement = parse_statement("INSERT INTO t VALUE {'s': 'x', 'n': -007.50, 'b': TRUE, 'z': NULL, "
                                "'l': [1, 'a'], 'm': {'k': <<'p', 'q'>>}, 'ns': <<3, 1>>, 'p': ?}")
    item = insert_item(statement.value, [{"B": "AQ=="}])
    assert item == {"s": {"S": "x"}, "n": {"N": "-7.5"}, "b": {"BOOL": True}, "z": {"NULL": True},
                    "l": {"L": [{"N": "1"}, {"S": "a"}]}, "m": {"M": {"k": {"SS": ["p", "q"]}}},
                    "ns": {"NS": ["3", "1"]}, "p": {"B": "AQ=="}}


@pytest.mark.parametrize("text, message", [
    ("{'pk': 1, 'm': {'x': 1e126}}", "Number overflow. Attempting to store a number with magnitude larger than "
                                     "supported range under root.x"),
    ("{'pk': 1, 'l': [1, 1e-131]}", "Number underflow. Attempting to store a number with magnitude smaller than "
                                    "supported range under root[1]"),
    ("{'pk': <<>>}", "Empty bags are not supported"),
    ("{'pk': <<1, 'a'>>}", "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags"),
    ("{'pk': 1, 'pk': 2}", "Duplicate keys in tuple. Key: pk under root"),
    ("[1, 2]", "Unsupported format in item expression. Please use struct format {...} to express item values for "
               "insert statement."),
])
def test_literal_refusals(text, message):
    statement = parse_statement(f"INSERT INTO t VALUE {text}")
    with pytest.raises(ValidationException) as info:
        insert_item(statement.value, [])
    assert info.value.message == message


def test_set_add_in_an_insert_is_refused_at_its_position():
    text = "INSERT INTO t VALUE {'pk': 'a', 'ss': set_add(<<'a'>>, <<'b'>>)}"
    statement = parse_statement(text)
    with pytest.raises(ValidationException) as info:
        insert_item(statement.value, [])
    assert info.value.message == f"Unsupported data type: set_add under key root at 1:{text.index('set_add') + 1}:7"


_NAMES = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=12)


@settings(deadline=None)
@given(_NAMES, st.text(max_size=20))
def test_quoted_names_and_strings_round_trip(name, value):
    quoted_name = name.replace('"', '""')
    quoted_value = value.replace("'", "''")
    statement = parse_statement(f'SELECT * FROM "{quoted_name}" WHERE "{quoted_name}" = \'{quoted_value}\'')
    assert statement.source.table == name
    assert statement.condition.left.steps == (name,)
    assert to_value(statement.condition.right, []) == {"S": value}


@settings(deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**20, max_value=10**20, places=6))
def test_number_literals_denote_their_number(number):
    text = str(number)
    statement = parse_statement(f"SELECT * FROM t WHERE n = {text}")
    assert to_value(statement.condition.right, []) == {"N": normalize_number(text)}
