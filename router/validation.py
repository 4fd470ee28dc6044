"""Request shape validation, in DynamoDB's order.

DynamoDB checks a request in three steps, and so does ``validate_request``:

1. **JSON types** (``SerializationException``): a string where a map is
   expected, a number where a string is, malformed base64.  The first
   mismatch in document order is reported, with DynamoDB's (Java
   deserializer's) wording.  Inside items and keys only the JSON types of
   ``AttributeValue`` members are checked here; empty sets, numbers and the
   like are ``meridian.model.values``'s business.  The body is left as
   DynamoDB reads it: null structure members removed, integer members
   rounded down.
2. **Constraints** (``ValidationException``): required members, lengths,
   ranges, enums, patterns, map keys and values, collected in DynamoDB's
   member order and reported together, at most ten of them:
   ``2 validation errors detected: Value 'x' at 'tableName' failed to
   satisfy constraint: ...; Value null at 'key' failed to satisfy ...``.
3. **Request-only rules** of an action that DynamoDB runs with its shape
   checks and before anything that needs the attribute values, expressions
   or a table (CreateTable's key schema rules, UpdateTable's "At least one
   of ...", the tag actions' ARN and tag checks, ...).  The item actions'
   rules start with expression and attribute-value checks, so they live with
   those actions.

What each request may hold is data, ``router/schema/dynamodb.json`` (and
``dynamodbstreams.json`` for the DynamoDB Streams actions, checked by
``validate_stream_request`` with the same three steps, the third being the
actions' own), made by ``router/schema/generate.py`` from botocore's model
and DynamoDB's observed behaviour.  It is compiled once, at import, into
one closure tree per action so that checking a typical GetItem costs a few
microseconds.

One module per step; this one runs them in order:

* ``router/validation_types.py``        step 1, JSON types
* ``router/validation_constraints.py``  step 2, the schema's constraints
* ``router/validation_rules.py``        step 3, each action's request-only rules
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Callable

from meridian.model import limits
from meridian.model.errors import ValidationException

from .validation_constraints import (
    ConstraintCheck,
    Enough,
    Errors,
    compile_constraints,
    compile_fast,
    java_length,
    lower_first,
)
from .validation_rules import RULES, Rule
from .validation_types import JAVA_PACKAGE, compile_types, container_error

__all__ = ["validate_request", "validate_stream_request", "VALIDATED_ACTIONS", "VALIDATED_STREAM_ACTIONS"]


# --- one action's validator ------------------------------------------------------
def _compile_action(node: dict[str, Any], custom: Rule | None) -> Callable[[Any], None]:
    types = compile_types(node, False)
    fast = compile_fast(node)
    input_class = JAVA_PACKAGE + node["class"]
    first_pass: list[tuple[str, bool, bool]] = []  # (member, required, tableName)
    members: list[tuple[str, str, ConstraintCheck]] = []
    for name, child in node["members"]:
        kinds = {c[0] for c in child.get("checks", ())}
        if "required" in kinds or "tableName" in kinds:
            first_pass.append((name, "required" in kinds, "tableName" in kinds))
        check = compile_constraints(child)
        if check is not None:
            members.append((name, lower_first(name), check))

    def validate(body: Any) -> None:
        if type(body) is not dict:
            raise container_error(body, "structure", True, input_class)
        types(body)
        for name, required, table_name in first_pass:
            v = body.get(name)
            if v is None:
                if required:
                    raise ValidationException(f"The parameter '{name}' is required but was not present in the request")
            elif table_name and not limits.TABLE_NAME_LENGTH_MIN <= java_length(v) <= limits.TABLE_NAME_LENGTH_MAX:
                raise ValidationException(
                    f"{name} must be at least {limits.TABLE_NAME_LENGTH_MIN} characters long "
                    f"and at most {limits.TABLE_NAME_LENGTH_MAX} characters long"
                )
        if fast is not None and not fast(body):
            errors: Errors = []
            try:
                for name, lower, check in members:
                    check(body.get(name), lower, errors)
            except Enough:
                pass
            if errors:
                n = len(errors)
                raise ValidationException(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))
        if custom is not None:
            custom(body)
    return validate


# --- the schema, compiled once -------------------------------------------------------
#: Table-management actions whose bad name length DynamoDB now reports as
#: constraint failures ("Value 'ab' at 'tableName' failed to satisfy
#: constraint: Member must have length greater than or equal to 3"), not as
#: "TableName must be at least 3 characters long ...".  DeleteTable,
#: DescribeTable, UpdateTable and the TTL actions keep the older sentence.
_TABLE_NAME_AS_CONSTRAINTS = frozenset({"CreateTable"})
#: Members whose lower bound DynamoDB now reports without echoing the value,
#: under the member's own name ("Value at 'Limit' failed to satisfy
#: constraint: ..."); a 2026 capture of live Scan replies, where regions are
#: split (the older cohort answers "Value '0' at 'limit'").  Query's is a
#: guess from the same capture's wording for Scan.
_BARE_MIN_MEMBERS = {("Query", "Limit"), ("Scan", "Limit")}


def _adjust(action: str, node: dict[str, Any]) -> dict[str, Any]:
    """The schema's node for ``action`` with today's DynamoDB wording where it moved on."""
    for name, child in node["members"]:
        checks = child.get("checks")
        if not checks:
            continue
        if name == "TableName" and ["tableName"] in checks and action in _TABLE_NAME_AS_CONSTRAINTS:
            # The order of the length and pattern failures for one name is a
            # guess (seen on a data-plane reply: length first, then pattern).
            child["checks"] = [c for c in checks if c[0] == "required"] + [
                ["minLength", limits.TABLE_NAME_LENGTH_MIN], ["maxLength", limits.TABLE_NAME_LENGTH_MAX]
            ] + [c for c in checks if c[0] == "pattern"]
        elif name == "TableName" and ["minLength", limits.TABLE_NAME_LENGTH_MIN] in checks:
            # Item operations: an empty name is one failure, "length >= 1"
            # (table ARNs are accepted there), without the pattern's.
            child["checks"] = checks + [["notEmpty"]]
        elif (action, name) in _BARE_MIN_MEMBERS:
            child["checks"] = [["bareMin", c[1], name] if c[0] == "min" else c for c in checks]
    return node


def _load_schema(file_name: str = "dynamodb.json") -> dict[str, Any]:
    text = resources.files("meridian.router").joinpath("schema", file_name).read_text(encoding="utf-8")
    operations = json.loads(text)["operations"]
    if file_name != "dynamodb.json":
        return operations  # the DynamoDB Streams API: botocore's shapes, with no later rewording on record
    return {action: _adjust(action, node) for action, node in operations.items()}


_VALIDATORS: dict[str, Callable[[Any], None]] = {
    action: _compile_action(node, RULES.get(action)) for action, node in _load_schema().items()
}
VALIDATED_ACTIONS = frozenset(_VALIDATORS)
_STREAM_VALIDATORS: dict[str, Callable[[Any], None]] = {
    action: _compile_action(node, None) for action, node in _load_schema("dynamodbstreams.json").items()
}
VALIDATED_STREAM_ACTIONS = frozenset(_STREAM_VALIDATORS)


def validate_request(action: str, body: object) -> None:
    """Check ``body`` (parsed JSON) of a DynamoDB_20120810 ``action`` as DynamoDB does.

    Raises ``SerializationException`` for JSON types, ``ValidationException``
    for constraints and request-only rules; returns None when the action's
    own code may trust the request's shape.  The body is left as DynamoDB
    reads it, in place: structure members that are JSON null are removed,
    and integer members given with a fraction are rounded down.  Actions
    outside the schema (DynamoDB Streams) are not checked here.
    """
    validator = _VALIDATORS.get(action)
    if validator is not None:
        validator(body)


def validate_stream_request(action: str, body: object) -> None:
    """``validate_request`` for a DynamoDBStreams_20120810 ``action``: JSON
    types, then constraints; the rules that need no stream (an ARN's form, an
    iterator type's sequence number) are the actions' own
    (``router/actions/streams.py``)."""
    validator = _STREAM_VALIDATORS.get(action)
    if validator is not None:
        validator(body)
