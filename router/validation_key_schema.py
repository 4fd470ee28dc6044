"""The rules of a key schema, a table's or a secondary index's, in DynamoDB's order.

Run by CreateTable's request rules (``validation_rules.py``) for the table
and each index, and by UpdateTable for an index it adds
(``actions/table_indexes.py``), with the same messages.  A table's key and
a local index's hold one HASH attribute and at most one RANGE attribute
(the shape check's length of 2 already says so); a global index's may hold
up to four HASH attributes followed by up to four RANGE ones (DynamoDB's
multi-attribute keys, 2025), whose messages are those of the 2026 parity
catalog of live DynamoDB behaviour (DDB-TABLE-442).
"""

from __future__ import annotations

from typing import Any, Iterable

from meridian.model import limits
from meridian.model.errors import ValidationException

from .validation_constraints import render

_PARAM = "One or more parameter values were invalid: "


def check_key_schema(
    key_schema: list[dict[str, Any]], definitions: list[str], known: Iterable[str] | None = None,
    *, multi_attribute: bool = False,
) -> None:
    """The rules a table's and every secondary index's key schema obey, in DynamoDB's order.

    ``definitions``: the request's attribute definitions (named in the
    message); ``known``: every attribute a key may use, when more than those
    (UpdateTable: the table's own definitions too).  ``multi_attribute``: a
    global index's, whose key may hold up to four HASH attributes, then up
    to four RANGE ones (the shape check lets any number through).
    """
    keys = [render(e.get("AttributeName")) for e in key_schema]
    usable = set(definitions if known is None else known)
    if any(k not in usable for k in keys):
        raise ValidationException(
            f"{_PARAM}Some index key attributes are not defined in AttributeDefinitions. "
            f"Keys: [{', '.join(keys)}], AttributeDefinitions: [{', '.join(definitions)}]"
        )
    if len(keys) == 2 and keys[0] == keys[1] and not (multi_attribute and key_schema[1].get("KeyType") == "HASH"):
        raise ValidationException("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    if multi_attribute and len(set(keys)) < len(keys):  # DDB-TABLE-442's catalogue
        raise ValidationException("The KeySchema contains multiple key attributes with the same name")
    if key_schema[0].get("KeyType") != "HASH":
        raise ValidationException("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if multi_attribute:
        _check_multi_attribute_key(key_schema)
    elif len(key_schema) == 2 and key_schema[1].get("KeyType") != "RANGE":
        raise ValidationException("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def _check_multi_attribute_key(key_schema: list[dict[str, Any]]) -> None:
    """A global index's HASH attributes, then its RANGE ones, at most four of each
    (DDB-TABLE-442's catalogue has the messages; their order after the first
    element's is a guess)."""
    types = [element.get("KeyType") for element in key_schema]
    if any(key_type not in ("HASH", "RANGE") for key_type in types):
        # The shape check leaves an index's KeyType to these rules (dynalite); recorded for the second element.
        raise ValidationException("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
    first_range = types.index("RANGE") if "RANGE" in types else len(types)
    if "HASH" in types[first_range:]:
        raise ValidationException(f"{_PARAM}All HASH key attributes must precede RANGE key attributes in the KeySchema")
    for key_type, most in (("HASH", limits.GSI_HASH_KEY_ATTRIBUTES_MAX), ("RANGE", limits.GSI_RANGE_KEY_ATTRIBUTES_MAX)):
        if types.count(key_type) > most:
            raise ValidationException(
                f"{_PARAM}The KeySchema exceeds the maximum allowed number of {key_type} key attributes"
            )
