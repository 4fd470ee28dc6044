"""DynamoDB attribute values, keys and items in DAX's binary forms.

The DAX layer works with items as DynamoDB JSON, exactly as the HTTP API
receives and returns them (``{"N": "1.5"}``, ``{"B": "<base64>"}``); this
module converts them to and from what DAX sends on the wire::

    S -> text        B -> bytes        BOOL -> bool        NULL -> null
    N -> int (bignum past 64 bits) or tag 4 [exponent, mantissa]
    M -> map, keys sorted              L -> array
    SS / NS / BS -> tag 3321 / 3322 / 3323 wrapping an array

Numbers are written so that both clients render them plainly, as DynamoDB
does: integers as CBOR integers (an integer past 64 bits but within 38 plain
digits as ``4([0, n])``, which the JS client prints without an exponent),
fractions as ``4([negative exponent, digits])``.  Read, a number may also be
a float64 (the JS client sends a decimal that way whenever it round-trips);
it is converted back through its shortest repr.

Key bytes (``encode_key``)::

    hash only:          S: UTF-8   B: the bytes   N: the CBOR number
    hash and range:     the hash as a CBOR item, then the range raw:
                        S: UTF-8   B: the bytes   N: LexDecimal (lexdecimal.py)

Values bytes (``encode_values``): the attribute-list id (attribute_lists.py)
of the sorted non-key names as a CBOR int, then each value's CBOR, simply
concatenated.  Malformed input from a client raises ``ValidationException``.
"""

from __future__ import annotations

import base64
from typing import Any, Iterable, Sequence

from meridian.model import limits
from meridian.model.errors import ValidationException
from meridian.model.numbers import OVERFLOW_MESSAGE, normalize_number, number_parts
from meridian.model.values import KEY_SCHEMA_MISMATCH_MESSAGE, decode_binary

from . import lexdecimal
from .attribute_lists import AttributeListRegistry
from .cbor import (
    TAG_BINARY_SET,
    TAG_DECIMAL,
    TAG_NEGATIVE_BIGNUM,
    TAG_NUMBER_SET,
    TAG_POSITIVE_BIGNUM,
    TAG_PATH_INDEX,
    TAG_STRING_SET,
    CborError,
    Encoder,
    NeedMore,
    Tagged,
    decode_item,
)

# An integer (mantissa) of more bits than this has more digits than any valid
# number (log2(10) < 4): it is an overflow, refused before str() must print it.
_INT_BITS_MAX = 4 * (limits.NUMBER_EXPONENT_MAX + 2)
_SET_TAGS = {TAG_STRING_SET: "SS", TAG_NUMBER_SET: "NS", TAG_BINARY_SET: "BS"}
_TAG_OF_SET = {name: tag for tag, name in _SET_TAGS.items()}

PathElement = Any  # str (map key / attribute name), int or Tagged(TAG_PATH_INDEX, int) (list index)


def _invalid(detail: str) -> ValidationException:
    return ValidationException(f"Invalid DAX request: {detail}")


# --- attribute values ------------------------------------------------------------


def av_to_cbor(av: dict, enc: Encoder) -> None:
    """Write one DynamoDB JSON attribute value in DAX's encoding."""
    ((kind, inner),) = av.items()
    if kind == "S":
        enc.text(inner)
    elif kind == "N":
        write_number(inner, enc)
    elif kind == "B":
        enc.bytes_(decode_binary(inner))
    elif kind == "BOOL":
        enc.bool_(inner)
    elif kind == "NULL":
        enc.null()
    elif kind == "M":
        enc.map_header(len(inner))
        for name in sorted(inner):
            enc.text(name)
            av_to_cbor(inner[name], enc)
    elif kind == "L":
        enc.array_header(len(inner))
        for element in inner:
            av_to_cbor(element, enc)
    elif kind in _TAG_OF_SET:
        enc.tag(_TAG_OF_SET[kind])
        enc.array_header(len(inner))
        for member in inner:
            av_to_cbor({kind[0]: member}, enc)
    else:
        raise ValueError(f"unknown attribute value type {kind!r}")


def write_number(text: str, enc: Encoder, *, in_key: bool = False) -> None:
    """A DynamoDB number string as DAX's CBOR number (see the module docstring).

    ``in_key``: write every integer as a CBOR integer or bignum, as the Python
    client does in key bytes, so that keys this server writes are the bytes
    that client writes for the same (canonical) number.
    """
    negative, digits, exponent = number_parts(text)
    if not digits:
        enc.int(0)
        return
    shift = exponent - len(digits) + 1  # the value is +-int(digits) * 10**shift
    mantissa = -int(digits) if negative else int(digits)
    if shift < 0:
        enc.tag(TAG_DECIMAL).array_header(2).int(shift).int(mantissa)
        return
    value = mantissa * 10**shift
    magnitude_bits = (value if value >= 0 else -1 - value).bit_length()
    if in_key or magnitude_bits <= 64 or exponent >= limits.NUMBER_PRECISION_DIGITS_MAX:
        enc.int(value)
    else:
        enc.tag(TAG_DECIMAL).array_header(2).int(0).int(value)


def av_from_cbor(obj: Any) -> dict:
    """The DynamoDB JSON attribute value of a decoded DAX value."""
    if obj is None:
        return {"NULL": True}
    if obj is True or obj is False:
        return {"BOOL": obj}
    if isinstance(obj, str):
        return {"S": obj}
    if isinstance(obj, bytes):
        return {"B": _base64(obj)}
    if isinstance(obj, list):
        return {"L": [av_from_cbor(element) for element in obj]}
    if isinstance(obj, dict):
        out = {}
        for name, element in obj.items():
            if not isinstance(name, str):
                raise _invalid(f"a map attribute name must be a string, not {type(name).__name__}")
            out[name] = av_from_cbor(element)
        return {"M": out}
    if isinstance(obj, Tagged) and obj.tag in _SET_TAGS:
        return _set_from_cbor(_SET_TAGS[obj.tag], obj.value)
    return {"N": number_text(obj)}


def _set_from_cbor(kind: str, members: Any) -> dict:
    if not isinstance(members, list):
        raise _invalid(f"a {kind} value must wrap an array")
    if kind == "SS":
        if not all(isinstance(member, str) for member in members):
            raise _invalid("a string set holds a value that is not a string")
        return {"SS": members}
    if kind == "BS":
        if not all(isinstance(member, bytes) for member in members):
            raise _invalid("a binary set holds a value that is not bytes")
        return {"BS": [_base64(member) for member in members]}
    return {"NS": [number_text(member) for member in members]}


def number_text(obj: Any) -> str:
    """A decoded DAX number (int, float, tag 4) as a DynamoDB number string.

    Valid numbers come back canonical; invalid ones as text the action layer
    then rejects with DynamoDB's own message.
    """
    if isinstance(obj, bool):
        raise _invalid("a boolean is not a number")
    if isinstance(obj, int):
        text = _int_text(obj)
    elif isinstance(obj, float):
        text = repr(obj)  # the shortest text that reads back as this double
    elif isinstance(obj, Tagged) and obj.tag in (TAG_POSITIVE_BIGNUM, TAG_NEGATIVE_BIGNUM):
        raise ValidationException(OVERFLOW_MESSAGE)  # a bignum too long for cbor.py to make an int
    elif isinstance(obj, Tagged) and obj.tag == TAG_DECIMAL:
        pair = obj.value
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_int(part) for part in pair)):
            raise _invalid("a decimal must be [exponent, mantissa] integers")
        # Past +-_INT_BITS_MAX the exponent's size no longer matters: clamp it
        # so that str() never meets a huge integer.
        exponent = max(-_INT_BITS_MAX - 1, min(_INT_BITS_MAX + 1, pair[0]))
        text = f"{_int_text(pair[1])}E{exponent}"
    else:
        raise _invalid(f"unsupported value of type {type(obj).__name__}")
    try:
        return normalize_number(text)
    except ValidationException:
        return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_text(value: int) -> str:
    if value.bit_length() > _INT_BITS_MAX:
        raise ValidationException(OVERFLOW_MESSAGE)
    return str(value)


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decoded(data: bytes, offset: int = 0) -> tuple[Any, int]:
    """``decode_item`` on data that must hold whole items."""
    try:
        return decode_item(data, offset)
    except (NeedMore, CborError) as exc:
        raise _invalid(f"malformed CBOR: {exc}") from None


# --- key bytes -------------------------------------------------------------------


def encode_key(key: dict, key_schema: Sequence[tuple[str, str]]) -> bytes:
    """The key bytes of a key (or of an item: non-key attributes are ignored)."""
    hash_name, hash_type = key_schema[0]
    hash_inner = _key_inner(key, hash_name, hash_type)
    if len(key_schema) == 1:
        if hash_type == "N":
            enc = Encoder()
            write_number(hash_inner, enc, in_key=True)
            return enc.getvalue()
        return _raw_key_part(hash_type, hash_inner)
    enc = Encoder()
    if hash_type == "S":
        enc.text(hash_inner)
    elif hash_type == "B":
        enc.bytes_(decode_binary(hash_inner))
    else:
        write_number(hash_inner, enc, in_key=True)
    range_name, range_type = key_schema[1]
    range_inner = _key_inner(key, range_name, range_type)
    if range_type == "N":
        return enc.getvalue() + lexdecimal.encode(range_inner)
    return enc.getvalue() + _raw_key_part(range_type, range_inner)


def _key_inner(key: dict, name: str, key_type: str) -> Any:
    av = key.get(name)
    if not isinstance(av, dict) or key_type not in av:
        raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)
    return av[key_type]


def _raw_key_part(key_type: str, inner: str) -> bytes:
    return inner.encode("utf-8") if key_type == "S" else decode_binary(inner)


def decode_key(data: bytes, key_schema: Sequence[tuple[str, str]]) -> dict:
    """The key (DynamoDB JSON) held by key bytes."""
    data = bytes(data)
    hash_name, hash_type = key_schema[0]
    if len(key_schema) == 1:
        if hash_type == "N":
            obj, end = _decoded(data)
            if end != len(data):
                raise _invalid("key bytes continue after the hash key")
            return {hash_name: {"N": _key_number(obj)}}
        return {hash_name: {hash_type: _raw_key_value(hash_type, data)}}
    obj, end = _decoded(data)
    if hash_type == "S" and isinstance(obj, str):
        hash_value = obj
    elif hash_type == "B" and isinstance(obj, bytes):
        hash_value = _base64(obj)
    elif hash_type == "N":
        hash_value = _key_number(obj)
    else:
        raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)
    range_name, range_type = key_schema[1]
    rest = data[end:]
    if range_type == "N":
        try:
            range_value, used = lexdecimal.decode(rest)
        except lexdecimal.LexDecimalError as exc:
            raise _invalid(f"malformed numeric range key: {exc}") from None
        if used != len(rest):
            raise _invalid("key bytes continue after the range key")
    else:
        range_value = _raw_key_value(range_type, rest)
    return {hash_name: {hash_type: hash_value}, range_name: {range_type: range_value}}


def _key_number(obj: Any) -> str:
    if isinstance(obj, (str, bytes, list, dict)) or obj is None:
        raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)
    return number_text(obj)


def _raw_key_value(key_type: str, raw: bytes) -> str:
    if key_type == "B":
        return _base64(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("a string key is not valid UTF-8") from None


# --- values bytes and other item forms ----------------------------------------------


def encode_values(item: dict, key_names: Iterable[str], registry: AttributeListRegistry) -> bytes:
    """The values bytes of an item: its non-key attributes, sorted by name."""
    keys = set(key_names)
    names = tuple(sorted(name for name in item if name not in keys))
    enc = Encoder().int(registry.id_for(names))
    for name in names:
        av_to_cbor(item[name], enc)
    return enc.getvalue()


def decode_values(data: bytes, registry: AttributeListRegistry) -> dict:
    """The non-key attributes held by values bytes.

    ``ValidationException`` if the attribute-list id is unknown to ``registry``.
    """
    data = bytes(data)
    list_id, pos = _decoded(data)
    if not _is_int(list_id):
        raise _invalid("values bytes must start with an attribute list id")
    try:
        names = registry.names_for(list_id)
    except KeyError:
        raise _invalid(f"unknown attribute list id {list_id}") from None
    item = {}
    for name in names:
        if pos >= len(data):
            raise _invalid(f"values bytes hold fewer values than attribute list {list_id} names")
        obj, pos = _decoded(data, pos)
        item[name] = av_from_cbor(obj)
    if pos != len(data):
        raise _invalid(f"values bytes hold more values than attribute list {list_id} names")
    return item


def encode_updated(attributes: dict, registry: AttributeListRegistry) -> bytes:
    """UPDATED_OLD / UPDATED_NEW Attributes: the list id of the sorted names,
    then a map from each name's position in that list to its value."""
    names = tuple(sorted(attributes))
    enc = Encoder().int(registry.id_for(names))
    enc.map_header(len(names))
    for position, name in enumerate(names):
        enc.int(position)
        av_to_cbor(attributes[name], enc)
    return enc.getvalue()


def encode_projected(item: dict, projection_paths: Sequence[Sequence[PathElement]]) -> bytes:
    """A projected item: a CBOR map ``{ordinal: value at that path}``.

    ``projection_paths`` are the request's projection paths in order (the
    clients number them from 0 in the order of the ProjectionExpression);
    each is a sequence of names and list indexes.  Paths the item lacks are
    left out; the client rebuilds the nested item from the paths it kept.
    The answer carries the map itself, not bytes holding it.
    """
    found = []
    for ordinal, path in enumerate(projection_paths):
        value = _value_at(item, path)
        if value is not None:
            found.append((ordinal, value))
    enc = Encoder().map_header(len(found))
    for ordinal, value in found:
        enc.int(ordinal)
        av_to_cbor(value, enc)
    return enc.getvalue()


def _value_at(item: dict, path: Sequence[PathElement]) -> dict | None:
    if not path or not isinstance(path[0], str):
        return None
    current = item.get(path[0])
    for element in path[1:]:
        if current is None:
            return None
        if isinstance(element, Tagged) and element.tag == TAG_PATH_INDEX:
            element = element.value
        if isinstance(element, str):
            current = current["M"].get(element) if "M" in current else None
        elif _is_int(element) and "L" in current:
            elements = current["L"]
            current = elements[element] if 0 <= element < len(elements) else None
        else:
            return None
    return current


def encode_index_key(key: dict) -> bytes:
    """An index's LastEvaluatedKey: a CBOR map from attribute name to value.

    Written as an indefinite-length map, as the clients write ExclusiveStartKey.
    """
    enc = Encoder().map_stream_header()
    for name in sorted(key):
        enc.text(name)
        av_to_cbor(key[name], enc)
    return enc.break_().getvalue()


def decode_index_key(data: bytes) -> dict:
    """An index's ExclusiveStartKey from the bytes the client sends."""
    data = bytes(data)
    obj, end = _decoded(data)
    if not isinstance(obj, dict) or end != len(data):
        raise _invalid("an index ExclusiveStartKey must be one map")
    return av_from_cbor(obj)["M"]


__all__ = [
    "av_to_cbor",
    "av_from_cbor",
    "number_text",
    "write_number",
    "encode_key",
    "decode_key",
    "encode_values",
    "decode_values",
    "encode_updated",
    "encode_projected",
    "encode_index_key",
    "decode_index_key",
]
