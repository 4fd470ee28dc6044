"""Secondary index keys in an item: their types, empty values and sizes.

An index key attribute may be absent from an item (the item is then not in
that index), but when present it must have the type of its attribute
definition, hold a value (S and B), and fit the table's key limits.  The
router checks a new item before anything is written; the node checks an
updated item, which only it sees; a backfill skips an item that fails
(``node/indexes.py``).  Split from ``model/values.py`` (attribute values).
"""

from __future__ import annotations

from typing import Any, Iterable

from . import limits
from .errors import ValidationException
from .values import (
    HASH_KEY_TOO_LARGE_MESSAGE,
    RANGE_KEY_TOO_LARGE_MESSAGE,
    attribute_type,
    binary_length,
    text_size,
)

_INVALID = "One or more parameter values were invalid: "
_NOT_VALID = "One or more parameter values are not valid. "
_EMPTY_WORDS = {"S": "string", "B": "binary"}


def index_key_type_message(name: str, expected: str, actual: str, index_name: str) -> str:
    return f"{_INVALID}Type mismatch for Index Key {name} Expected: {expected} Actual: {actual} IndexName: {index_name}"


def empty_index_key_message(name: str, key_type: str, index_name: str, updating: bool) -> str:
    """DynamoDB's words for an empty S or B value of an index key attribute.

    UpdateItem's wording names neither the index nor the attribute.
    """
    kind = _EMPTY_WORDS[key_type]
    if updating:
        return (
            _NOT_VALID + "The update expression attempted to update a secondary index key to a value that is not "
            f"supported. The AttributeValue for a key attribute cannot contain an empty {kind} value."
        )
    return (
        _NOT_VALID + "A value specified for a secondary index key is not supported. The AttributeValue for a key "
        f"attribute cannot contain an empty {kind} value. IndexName: {index_name}, IndexKey: {name}"
    )


def check_index_keys(
    item: dict[str, Any],
    indexes: Iterable[tuple[Any, ...]],
    *,
    updating: bool,
) -> None:
    """Reject an item whose index key attributes break their declared types or key sizes.

    ``indexes``: (index name, its key schema[, its HASH attribute count, 1
    if absent]) for every secondary index of the table, global ones first,
    as DynamoDB reports them.  An attribute may be absent (the item is then
    not in that index), but if present it must have the type of the index's
    attribute definition, for S and B a value, and fit the table's key
    limits (2,048 bytes for a HASH attribute, 1,024 for a RANGE one, with
    the table key's messages).  The router runs this before anything is
    written (so a batch with one bad item writes nothing); the node runs it
    again for updates, whose new item only it knows.
    """
    for entry in indexes:
        index_name, key_schema = entry[0], entry[1]
        hash_count = entry[2] if len(entry) > 2 else 1
        for position, (name, key_type) in enumerate(key_schema):
            value = item.get(name)
            if value is None:
                continue
            inner = value.get(key_type)
            if inner is None:
                raise ValidationException(index_key_type_message(name, key_type, attribute_type(value), index_name))
            if inner == "":
                raise ValidationException(empty_index_key_message(name, key_type, index_name, updating))
            message = index_key_size_error(key_type, inner, position < hash_count)
            if message is not None:
                raise ValidationException(message)


def index_key_size_error(key_type: str, inner: Any, is_hash: bool) -> str | None:
    """The table key's size message when an index key value is past its limit, else None."""
    if key_type == "N" or len(inner) <= limits.SORT_KEY_BYTES_MAX // 4:
        return None  # numbers have no size limit; a short value cannot pass one
    size = text_size(inner) if key_type == "S" else binary_length(inner)
    if is_hash:
        return HASH_KEY_TOO_LARGE_MESSAGE if size > limits.PARTITION_KEY_BYTES_MAX else None
    return RANGE_KEY_TOO_LARGE_MESSAGE if size > limits.SORT_KEY_BYTES_MAX else None
