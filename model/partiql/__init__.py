"""DynamoDB's PartiQL: lexer, parser, trees and literal values (no I/O).

    parse_statement(text) -> ast.Statement   (parser.py)
    to_value / insert_item                   literals and ``?`` as attribute values (values.py)

The router (``router/partiql_*.py``) turns a statement into the JSON API
request it stands for, so PartiQL has no evaluator of its own.
"""

from . import ast
from .errors import NOT_WELL_FORMED, PartiQLSyntaxError
from .parser import parse_statement
from .values import insert_item, is_value, to_value

__all__ = ["ast", "NOT_WELL_FORMED", "PartiQLSyntaxError", "parse_statement", "insert_item", "is_value", "to_value"]
