"""A structure-aware fuzzer of the DAX port, in process: no input may crash it or get a 500.

Valid requests of every DAX method are drawn with hypothesis as boto3-style
arguments and framed by the real Python client's own code (``DaxClient`` and
its generated ``Stubs`` writers, over a ``Tube`` that writes into memory).
The data request is then decoded into a tree (descending into the byte
strings that hold CBOR: expressions, values, key parts) and one to three
subtrees are replaced by null, a wrong type, an empty or huge value, a random
integer or tag, or a head declaring an oversized length; or the stream is cut
short, or replaced by garbage.

Each case goes to the DAX node of a real embedded router (``start_router``
with ``dax_port``: the production handler table over ``InProcessUpstream``),
through ``DaxProtocol`` with a fake transport.  Properties (issue 16's "bad
input", issue 17's "no input gets a 500"):

* the connection gets well-formed DAX answers (a success the client's
  assembler reads, or an error the client maps to a named exception, never
  InternalServerError), or is closed, or waits for the rest of an
  incomplete item;
* nothing raises out of the protocol and nothing is logged at ERROR;
* a write answered with an error changed no table (consistent scans before
  and after);
* the server serves the next connection.

``DAX_FUZZ_EXAMPLES`` raises the example count (default: a quick run).
``tests/integration/test_dax_fuzz.py`` sends the same cases to a real
``meridian serve --dax-port`` process.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import pytest

amazondax = pytest.importorskip("amazondax")
from amazondax import Assemblers  # noqa: E402
from amazondax.CborDecoder import NoMoreData  # noqa: E402
from amazondax.DaxClient import DaxClient  # noqa: E402
from amazondax.DaxCborDecoder import DaxCborDecoder  # noqa: E402
from amazondax.DaxError import DaxServiceError  # noqa: E402
from amazondax.generated import Stubs  # noqa: E402
from amazondax.Tube import Tube  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from meridian.router.dax.attribute_lists import derive_id  # noqa: E402
from meridian.router.dax.cbor import CborError, Encoder, NeedMore, Tagged, decode_item  # noqa: E402
from meridian.router.dax.server import MethodId  # noqa: E402

REGION = "us-east-1"
WAIT_S = 20.0
EXAMPLES = int(os.environ.get("DAX_FUZZ_EXAMPLES", "150"))

# --- the tables every case runs against ----------------------------------------------------------

#: table -> [(name, type, HASH|RANGE)]
TABLES: dict[str, list[tuple[str, str, str]]] = {
    "fuzz_h": [("pk", "S", "HASH")],
    "fuzz_hr": [("pk", "S", "HASH"), ("sk", "N", "RANGE")],
    "fuzz_b": [("bk", "B", "HASH"), ("rs", "S", "RANGE")],
    "fuzz_n": [("nk", "N", "HASH")],
}
INDEX = ("fuzz_hr", "by_g", "g")  # a GSI on fuzz_hr, hash key g (S)


def create_table_bodies() -> list[dict[str, Any]]:
    bodies = []
    for name, keys in TABLES.items():
        body: dict[str, Any] = {
            "TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": a, "KeyType": k} for a, _t, k in keys],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t, _k in keys],
        }
        if name == INDEX[0]:
            body["AttributeDefinitions"].append({"AttributeName": INDEX[2], "AttributeType": "S"})
            body["GlobalSecondaryIndexes"] = [{
                "IndexName": INDEX[1], "KeySchema": [{"AttributeName": INDEX[2], "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }]
        bodies.append(body)
    return bodies


# --- client bytes, made by the client's own code ---------------------------------------------------


class _Sink:
    """The socket a Tube writes into."""

    family = 2  # AF_INET: what the client records as its ip_version

    def __init__(self) -> None:
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self.sent)
        self.sent.clear()
        return data


class _Sent(Exception):
    """Raised where the client would read its answer: the request is written."""


class _Pool:
    def __init__(self, tube: Tube) -> None:
        self.tube = tube

    def get(self):
        tube = self.tube

        class _Lease:
            def __enter__(self_inner):
                return tube

            def __exit__(self_inner, *exc):
                return False

        return _Lease()


class _KeySchemas:
    def get(self, table: str, _tube) -> list[dict[str, str]]:
        keys = TABLES.get(table, TABLES["fuzz_h"])
        return [{"AttributeName": a, "AttributeType": t} for a, t, _k in keys]


class _ListIds:
    """Attribute-list ids as the server derives them, each announced by a defineAttributeListId first."""

    def __init__(self, tube: Tube) -> None:
        self.tube = tube
        self.defines = 0

    def get(self, names, _tube) -> int:
        if not names:
            return 1
        Stubs.write_defineAttributeListId_N1230579644_1(list(names), self.tube)
        self.defines += 1
        return derive_id(tuple(names))


@dataclass
class Framed:
    """One case's bytes: the handshake and defineAttributeListId requests, then the data request."""

    method: str
    prefix: bytes  # handshake + defines (never mutated)
    request: bytes  # the request under test
    defines: int  # how many answers come before the request's own
    client_request: Any = None  # the client's Request object, for its assembler


def handshake_bytes() -> bytes:
    sink = _Sink()
    Tube(sink, None, lambda: SimpleNamespace(access_key="fuzz", secret_key="fuzz", token=None), REGION)
    return sink.take()


_HANDSHAKE = handshake_bytes()


def frame(method: str, kwargs: dict[str, Any]) -> Framed | None:
    """The bytes the real client sends for ``method(**kwargs)``; None if the client refuses them."""
    sink = _Sink()
    tube = Tube(sink, None, lambda: SimpleNamespace(access_key="fuzz", secret_key="fuzz", token=None), REGION)
    tube.reauth = lambda: None  # authorizeConnection is a case of its own
    sink.take()
    client = DaxClient(_Pool(tube))
    client._key_cache = _KeySchemas()
    ids = _ListIds(tube)
    client._attr_list_id_cache = ids
    captured: dict[str, Any] = {}

    def sent(_name, request, _assembler, _tube):
        captured["request"] = request
        raise _Sent()

    client._decode_result = sent
    try:
        if method == "endpoints":
            Stubs.write_endpoints_455855874_1(tube)
        elif method == "defineKeySchema":
            Stubs.write_defineKeySchema_N742646399_1(kwargs["TableName"].encode(), tube)
        elif method == "defineAttributeListId":
            Stubs.write_defineAttributeListId_N1230579644_1(kwargs["Names"], tube)
        elif method == "defineAttributeList":
            Stubs.write_defineAttributeList_670678385_1(kwargs["Id"], tube)
        elif method == "authorizeConnection":
            Stubs.write_authorizeConnection_1489122155_1(
                kwargs["AccessKey"], kwargs["Signature"], kwargs["StringToSign"], kwargs["Token"], kwargs["Agent"], tube)
        else:
            getattr(client, method)(**kwargs)
    except _Sent:
        pass
    except Exception:  # noqa: BLE001 - the client's own validation refused the request
        return None
    data = sink.take()
    # The defines were flushed first: split them off by decoding the stream's items.
    offset = 0
    for _ in range(ids.defines):
        for _item in range(3):  # 1, method id, names
            _value, offset = decode_item(data, offset)
    return Framed(method, _HANDSHAKE + data[:offset], data[offset:], ids.defines, captured.get("request"))


# --- valid requests ----------------------------------------------------------------------------------

NAMES = ["a", "b", "n", "l", "m", "ss", "ns", "bs", "x y", "g"]
_numbers = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.tuples(st.integers(-999, 999), st.integers(1, 999)).map(lambda p: f"{p[0]}.{p[1]}"),
    st.sampled_from(["0", "1e3", "-0.000001", "99999999999999999999999999999999999999"]),
)
_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=6)
_scalars = st.one_of(
    _texts.map(lambda s: {"S": s}),
    _numbers.map(lambda n: {"N": n}),
    st.binary(max_size=6).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(_texts, min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v}),
    st.lists(st.integers(-50, 50).map(str), min_size=1, max_size=3, unique=True).map(lambda v: {"NS": v}),
    st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=3, unique=True).map(lambda v: {"BS": v}),
)
attribute_values = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.sampled_from(NAMES), kids, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=5,
)
_key_values = {
    "pk": st.sampled_from(["a", "b", "c", "ü"]).map(lambda s: {"S": s}),
    "sk": st.sampled_from(["1", "-2.5", "0", "10", "1000000"]).map(lambda s: {"N": s}),
    "bk": st.sampled_from([b"\x00", b"k"]).map(lambda b: {"B": b}),
    "rs": st.sampled_from(["r", "s"]).map(lambda s: {"S": s}),
    "nk": st.sampled_from(["1", "-7.25", "12345678901234567890123", "1E+100"]).map(lambda s: {"N": s}),
}
tables = st.sampled_from(sorted(TABLES))


@st.composite
def keys(draw, table: str) -> dict[str, dict]:
    return {name: draw(_key_values[name]) for name, _t, _k in TABLES[table]}


@st.composite
def items(draw, table: str) -> dict[str, dict]:
    item = draw(st.dictionaries(st.sampled_from(NAMES), attribute_values, max_size=4))
    if table == INDEX[0] and draw(st.booleans()):
        item[INDEX[2]] = {"S": draw(st.sampled_from(["g1", "g2"]))}
    item.update(draw(keys(table)))
    return item


class Placeholders:
    """ExpressionAttributeNames/Values for one request, filled as expressions are drawn."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict] = {}

    def name(self, name: str) -> str:
        for key, known in self.names.items():
            if known == name:
                return key
        key = f"#k{len(self.names)}"
        self.names[key] = name
        return key

    def value(self, value: dict) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = value
        return key

    def apply(self, request: dict[str, Any], values: bool = True) -> dict[str, Any]:
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values and values:
            request["ExpressionAttributeValues"] = self.values
        return request


@st.composite
def paths(draw, ph: Placeholders) -> str:
    path = ph.name(draw(st.sampled_from(NAMES)))
    for _ in range(draw(st.integers(0, 2))):
        path += draw(st.one_of(st.integers(0, 3).map(lambda i: f"[{i}]"),
                               st.sampled_from(NAMES).map(lambda n: "." + ph.name(n))))
    return path


@st.composite
def conditions(draw, ph: Placeholders, depth: int = 0) -> str:
    kinds = ["cmp", "exists", "not_exists", "type", "begins", "contains", "size", "between", "in"]
    if depth < 2:
        kinds += ["not", "and", "or"]
    kind = draw(st.sampled_from(kinds))
    value = lambda: ph.value(draw(attribute_values))  # noqa: E731
    if kind == "cmp":
        return f"{draw(paths(ph))} {draw(st.sampled_from(['=', '<>', '<', '<=', '>', '>=']))} {value()}"
    if kind == "exists":
        return f"attribute_exists({draw(paths(ph))})"
    if kind == "not_exists":
        return f"attribute_not_exists({draw(paths(ph))})"
    if kind == "type":
        return f"attribute_type({draw(paths(ph))}, {ph.value({'S': draw(st.sampled_from(['S', 'N', 'M', 'L']))})})"
    if kind == "begins":
        return f"begins_with({draw(paths(ph))}, {value()})"
    if kind == "contains":
        return f"contains({draw(paths(ph))}, {value()})"
    if kind == "size":
        return f"size({draw(paths(ph))}) > {ph.value({'N': str(draw(st.integers(0, 5)))})}"
    if kind == "between":
        return f"{draw(paths(ph))} BETWEEN {value()} AND {value()}"
    if kind == "in":
        return f"{draw(paths(ph))} IN ({value()}, {value()})"
    if kind == "not":
        return f"NOT ({draw(conditions(ph, depth + 1))})"
    joiner = " AND " if kind == "and" else " OR "
    return joiner.join(f"({draw(conditions(ph, depth + 1))})" for _ in range(2))


@st.composite
def updates(draw, ph: Placeholders) -> str:
    sections: dict[str, list[str]] = {}
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "plus", "ifne", "append", "remove", "add", "delete"]))
        path = draw(paths(ph))
        if kind == "set":
            sections.setdefault("SET", []).append(f"{path} = {ph.value(draw(attribute_values))}")
        elif kind == "plus":
            sections.setdefault("SET", []).append(f"{path} = {path} + {ph.value({'N': draw(_numbers)})}")
        elif kind == "ifne":
            sections.setdefault("SET", []).append(f"{path} = if_not_exists({path}, {ph.value(draw(attribute_values))})")
        elif kind == "append":
            sections.setdefault("SET", []).append(
                f"{path} = list_append({path}, {ph.value({'L': [draw(attribute_values)]})})")
        elif kind == "remove":
            sections.setdefault("REMOVE", []).append(path)
        elif kind == "add":
            sections.setdefault("ADD", []).append(f"{path} {ph.value({'N': draw(_numbers)})}")
        else:
            sections.setdefault("DELETE", []).append(f"{path} {ph.value({'SS': ['x']})}")
    return " ".join(f"{kind} {', '.join(actions)}" for kind, actions in sections.items())


@st.composite
def projections(draw, ph: Placeholders) -> str:
    return ", ".join(draw(st.lists(paths(ph), min_size=1, max_size=3)))


def _maybe(draw, request: dict[str, Any], name: str, strategy) -> None:
    if draw(st.booleans()):
        request[name] = draw(strategy)


_RCC = st.sampled_from(["NONE", "TOTAL", "INDEXES"])
_RICM = st.sampled_from(["NONE", "SIZE"])


@st.composite
def get_item(draw) -> dict[str, Any]:
    table = draw(tables)
    request: dict[str, Any] = {"TableName": table, "Key": draw(keys(table))}
    ph = Placeholders()
    _maybe(draw, request, "ConsistentRead", st.booleans())
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    if draw(st.booleans()):
        request["ProjectionExpression"] = draw(projections(ph))
    return ph.apply(request)


@st.composite
def put_item(draw) -> dict[str, Any]:
    table = draw(tables)
    request: dict[str, Any] = {"TableName": table, "Item": draw(items(table))}
    ph = Placeholders()
    if draw(st.booleans()):
        request["ConditionExpression"] = draw(conditions(ph))
    _maybe(draw, request, "ReturnValues", st.sampled_from(["NONE", "ALL_OLD"]))
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    _maybe(draw, request, "ReturnItemCollectionMetrics", _RICM)
    return ph.apply(request)


@st.composite
def update_item(draw) -> dict[str, Any]:
    table = draw(tables)
    request: dict[str, Any] = {"TableName": table, "Key": draw(keys(table))}
    ph = Placeholders()
    if draw(st.booleans()):
        request["UpdateExpression"] = draw(updates(ph))
    if draw(st.booleans()):
        request["ConditionExpression"] = draw(conditions(ph))
    _maybe(draw, request, "ReturnValues", st.sampled_from(["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]))
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    return ph.apply(request)


@st.composite
def delete_item(draw) -> dict[str, Any]:
    table = draw(tables)
    request: dict[str, Any] = {"TableName": table, "Key": draw(keys(table))}
    ph = Placeholders()
    if draw(st.booleans()):
        request["ConditionExpression"] = draw(conditions(ph))
    _maybe(draw, request, "ReturnValues", st.sampled_from(["NONE", "ALL_OLD"]))
    _maybe(draw, request, "ReturnItemCollectionMetrics", _RICM)
    return ph.apply(request)


def _range_options(draw, request: dict[str, Any], ph: Placeholders, table: str) -> None:
    if draw(st.booleans()):
        request["FilterExpression"] = draw(conditions(ph))
    if draw(st.booleans()):
        request["ProjectionExpression"] = draw(projections(ph))
    _maybe(draw, request, "Limit", st.integers(1, 5))
    _maybe(draw, request, "ConsistentRead", st.booleans())
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    _maybe(draw, request, "Select", st.sampled_from(["ALL_ATTRIBUTES", "COUNT"]))
    if draw(st.booleans()) and "IndexName" not in request:
        request["ExclusiveStartKey"] = draw(keys(table))


@st.composite
def query(draw) -> dict[str, Any]:
    table = draw(tables)
    ph = Placeholders()
    request: dict[str, Any] = {"TableName": table}
    if table == INDEX[0] and draw(st.booleans()):
        request["IndexName"] = INDEX[1]
        request["KeyConditionExpression"] = f"{ph.name(INDEX[2])} = {ph.value({'S': 'g1'})}"
    else:
        (hash_name, _t, _k), *rest = TABLES[table]
        condition = f"{ph.name(hash_name)} = {ph.value(draw(_key_values[hash_name]))}"
        if rest and draw(st.booleans()):
            range_name = rest[0][0]
            op = draw(st.sampled_from(["<", ">=", "between", "begins"]))
            bound = lambda: ph.value(draw(_key_values[range_name]))  # noqa: E731
            if op == "between":
                condition += f" AND {ph.name(range_name)} BETWEEN {bound()} AND {bound()}"
            elif op == "begins":
                condition += f" AND begins_with({ph.name(range_name)}, {bound()})"
            else:
                condition += f" AND {ph.name(range_name)} {op} {bound()}"
        request["KeyConditionExpression"] = condition
    _maybe(draw, request, "ScanIndexForward", st.booleans())
    _range_options(draw, request, ph, table)
    return ph.apply(request)


@st.composite
def scan(draw) -> dict[str, Any]:
    table = draw(tables)
    ph = Placeholders()
    request: dict[str, Any] = {"TableName": table}
    if draw(st.booleans()):
        request["TotalSegments"] = draw(st.integers(1, 4))
        request["Segment"] = draw(st.integers(0, request["TotalSegments"] - 1))
    _range_options(draw, request, ph, table)
    return ph.apply(request)


@st.composite
def batch_get_item(draw) -> dict[str, Any]:
    request_items = {}
    for table in draw(st.lists(tables, min_size=1, max_size=3, unique=True)):
        entry: dict[str, Any] = {"Keys": draw(st.lists(keys(table), min_size=1, max_size=3,
                                                        unique_by=lambda k: repr(sorted(k.items()))))}
        _maybe(draw, entry, "ConsistentRead", st.booleans())
        if draw(st.booleans()):
            ph = Placeholders()
            entry["ProjectionExpression"] = draw(projections(ph))
            ph.apply(entry)
        request_items[table] = entry
    request: dict[str, Any] = {"RequestItems": request_items}
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    return request


@st.composite
def batch_write_item(draw) -> dict[str, Any]:
    request_items = {}
    for table in draw(st.lists(tables, min_size=1, max_size=3, unique=True)):
        writes, seen = [], set()
        for _ in range(draw(st.integers(1, 3))):
            key = draw(keys(table))
            if repr(sorted(key.items())) in seen:
                continue
            seen.add(repr(sorted(key.items())))
            if draw(st.booleans()):
                writes.append({"DeleteRequest": {"Key": key}})
            else:
                item = draw(items(table))
                item.update(key)
                writes.append({"PutRequest": {"Item": item}})
        request_items[table] = writes
    request: dict[str, Any] = {"RequestItems": request_items}
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    _maybe(draw, request, "ReturnItemCollectionMetrics", _RICM)
    return request


def _distinct_targets(draw, count: int) -> list[tuple[str, dict]]:
    out, seen = [], set()
    for _ in range(count):
        table = draw(tables)
        key = draw(keys(table))
        marker = (table, repr(sorted(key.items())))
        if marker not in seen:
            seen.add(marker)
            out.append((table, key))
    return out


@st.composite
def transact_get_items(draw) -> dict[str, Any]:
    gets = []
    for table, key in _distinct_targets(draw, draw(st.integers(1, 3))):
        get: dict[str, Any] = {"TableName": table, "Key": key}
        if draw(st.booleans()):
            ph = Placeholders()
            get["ProjectionExpression"] = draw(projections(ph))
            ph.apply(get)
        gets.append({"Get": get})
    request: dict[str, Any] = {"TransactItems": gets}
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    return request


@st.composite
def transact_write_items(draw) -> dict[str, Any]:
    writes = []
    for table, key in _distinct_targets(draw, draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]))
        ph = Placeholders()
        entry: dict[str, Any] = {"TableName": table}
        if kind == "Put":
            item = draw(items(table))
            item.update(key)
            entry["Item"] = item
        else:
            entry["Key"] = key
        if kind == "Update":
            entry["UpdateExpression"] = draw(updates(ph))
        if kind == "ConditionCheck" or draw(st.booleans()):
            entry["ConditionExpression"] = draw(conditions(ph))
        _maybe(draw, entry, "ReturnValuesOnConditionCheckFailure", st.sampled_from(["NONE", "ALL_OLD"]))
        writes.append({kind: ph.apply(entry)})
    request: dict[str, Any] = {"TransactItems": writes}
    _maybe(draw, request, "ReturnConsumedCapacity", _RCC)
    _maybe(draw, request, "ClientRequestToken", st.text("abcdef0123", min_size=1, max_size=36))
    return request


_metadata = {
    "endpoints": st.just({}),
    "defineKeySchema": st.fixed_dictionaries({"TableName": st.one_of(tables, _texts)}),
    "defineAttributeListId": st.fixed_dictionaries({"Names": st.lists(st.sampled_from(NAMES), min_size=1, max_size=4)}),
    "defineAttributeList": st.fixed_dictionaries(
        {"Id": st.one_of(st.just(1), st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(
            lambda names: derive_id(tuple(names))), st.integers(0, 2**53))}),
    "authorizeConnection": st.fixed_dictionaries({
        "AccessKey": _texts, "Signature": _texts, "StringToSign": st.binary(max_size=40),
        "Token": st.one_of(st.none(), _texts), "Agent": st.one_of(st.none(), _texts),
    }),
}
#: method -> strategy of its boto3-style arguments
REQUESTS: dict[str, st.SearchStrategy] = {
    "get_item": get_item(), "put_item": put_item(), "update_item": update_item(), "delete_item": delete_item(),
    "query": query(), "scan": scan(), "batch_get_item": batch_get_item(), "batch_write_item": batch_write_item(),
    "transact_get_items": transact_get_items(), "transact_write_items": transact_write_items(), **_metadata,
}
WRITES = {"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"}


@st.composite
def framed_requests(draw, methods: list[str] | None = None) -> Framed:
    """A valid request of a drawn method, framed by the client (redrawn while the client refuses it)."""
    method = draw(st.sampled_from(methods or sorted(REQUESTS)))
    for _ in range(20):
        framed = frame(method, draw(REQUESTS[method]))
        if framed is not None:
            return framed
    return frame("endpoints", {})  # type: ignore[return-value]


# --- mutations ----------------------------------------------------------------------------------------


@dataclass
class Embedded:
    """Bytes that hold CBOR items (expressions, values, key parts), then maybe raw bytes."""

    original: bytes
    items: list
    tail: bytes
    dirty: bool = False


@dataclass(frozen=True)
class Raw:
    """Bytes written as they are: heads declaring oversized lengths, deep nesting."""

    data: bytes


def lift(obj: Any) -> Any:
    """A decoded request with every CBOR-holding byte string opened up."""
    if isinstance(obj, bytes):
        found, offset = [], 0
        while offset < len(obj):
            try:
                value, offset_after = decode_item(obj, offset)
            except (NeedMore, CborError):
                break
            found.append(lift(value))
            offset = offset_after
        return Embedded(obj, found, obj[offset:]) if found else obj
    if isinstance(obj, list):
        return [lift(x) for x in obj]
    if isinstance(obj, dict):
        return {k: lift(v) for k, v in obj.items()}
    if isinstance(obj, Tagged):
        return Tagged(obj.tag, lift(obj.value))
    return obj


def lower(obj: Any, enc: Encoder) -> None:
    """Writes a lifted tree back (untouched embedded bytes exactly as they were)."""
    if isinstance(obj, Embedded):
        if not obj.dirty:
            enc.bytes_(obj.original)
            return
        inner = Encoder()
        for item in obj.items:
            lower(item, inner)
        enc.bytes_(inner.getvalue() + obj.tail)
    elif isinstance(obj, Raw):
        enc.raw(obj.data)
    elif isinstance(obj, list):
        enc.array_header(len(obj))
        for x in obj:
            lower(x, enc)
    elif isinstance(obj, dict):
        enc.map_header(len(obj))
        for k, v in obj.items():
            lower(k, enc)
            lower(v, enc)
    elif isinstance(obj, Tagged):
        enc.tag(obj.tag)
        lower(obj.value, enc)
    else:
        enc.value(obj)


def subtree_paths(obj: Any, path: tuple = ()) -> list[tuple]:
    """Every replaceable position under ``obj``: list indexes, map values, map keys (as ("key", k))."""
    out = []
    if isinstance(obj, (list, Embedded)):
        children = obj if isinstance(obj, list) else obj.items
        for i, child in enumerate(children):
            out.append(path + (i,))
            out += subtree_paths(child, path + (i,))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.append(path + (("key", k),))
            out.append(path + (("value", k),))
            out += subtree_paths(v, path + (("value", k),))
    elif isinstance(obj, Tagged):
        out.append(path + ("tagged",))
        out += subtree_paths(obj.value, path + ("tagged",))
    return out


def _child(node: Any, step: Any) -> Any:
    if isinstance(node, Embedded):
        node.dirty = True
        return node.items[step]
    if isinstance(node, list):
        return node[step]
    if step == "tagged":
        return node.value
    return node[step[1]]


def replace(tree: list, path: tuple, new: Any) -> list:
    """``tree`` with the subtree at ``path`` replaced (in place; Tagged is rebuilt, being frozen)."""
    *parents, last = path
    chain = [tree]
    for step in parents:
        chain.append(_child(chain[-1], step))
    parent = chain[-1]
    if isinstance(parent, Embedded):
        parent.dirty = True
        parent.items[last] = new
    elif isinstance(parent, list):
        parent[last] = new
    elif last == "tagged":
        rebuilt = Tagged(parent.tag, new)
        return replace(tree, tuple(parents), rebuilt) if parents else [rebuilt]
    elif last[0] == "value":
        parent[last[1]] = new
    else:
        value = parent.pop(last[1])
        try:
            parent[new] = value
        except TypeError:  # an unhashable key cannot be a Python dict key: write the map raw
            parent[Raw(_encoded(new))] = value
    return tree


def _encoded(obj: Any) -> bytes:
    enc = Encoder()
    lower(obj, enc)
    return enc.getvalue()


_SMALL = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.binary(max_size=3))
_HUGE = [b"x" * 70_000, "y" * 70_000, b"z" * 410_000, [0] * 5_000, {i: i for i in range(2_000)},
         Raw(b"\x9f" + b"\x80" * 20_000 + b"\xff")]
_OVERSIZED = [
    Raw(b"\x5b" + (1 << 63).to_bytes(8, "big")),  # a byte string of 2**63 bytes
    Raw(b"\x7a\x7f\xff\xff\xff"),  # a text string of 2 GiB
    Raw(b"\x9b" + (1 << 62).to_bytes(8, "big")),  # an array of 2**62 items
    Raw(b"\xba\x00\x10\x00\x00"),  # a map of a million entries (swallows what follows)
    Raw(b"\x5a\x00\x01\x00\x00ab"),  # 64 KiB declared, two bytes sent
    Raw(b"\x81" * 300 + b"\x00"),  # nested past the depth bound
    Raw(b"\xc2\x5a\x00\x00\x10\x00" + b"\xff" * 4096),  # a 32768-bit bignum
    Raw(b"\x5f\x41a\x61b\xff"),  # an indefinite byte string with a text chunk
    Raw(b"\xf8\x10"),  # a two-byte simple value
    Raw(b"\xff"),  # a stray break
]
_TAGS = st.one_of(st.sampled_from([2, 3, 4, 3321, 3322, 3323, 3324, 258]), st.integers(0, (1 << 64) - 1))


def _retyped(original: Any) -> list[Any]:
    """Near misses of ``original``: the same content in another type."""
    if isinstance(original, str):
        return [original.encode(), [original], {original: original}]
    if isinstance(original, (bytes, Embedded)):
        raw = original.original if isinstance(original, Embedded) else original
        return [raw.decode("latin-1"), raw[: len(raw) // 2], raw + b"\x00", [raw], Raw(raw)]
    if isinstance(original, bool):
        return [int(original), str(original)]
    if isinstance(original, int):
        return [str(original), float(original), -original - 1, original + (1 << 64), Tagged(4, [0, original])]
    if isinstance(original, list):
        return [original[::-1], original[:-1], original + original, {0: original}]
    if isinstance(original, dict):
        return [list(original.values()), {}, {**original, 99: None}]
    return [None]


def mutants(original: Any) -> st.SearchStrategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, -1, 2**31, 2**53, 2**63 - 1, 2**64, -(2**64) - 1]),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=5),
        st.sampled_from([b"", "", [], {}]),
        st.sampled_from(_HUGE),
        st.builds(Tagged, _TAGS, _SMALL),
        st.lists(_SMALL, max_size=3),
        st.sampled_from(_OVERSIZED),
        st.sampled_from(_retyped(original)),
    )


@dataclass
class Case:
    framed: Framed
    mode: str
    data: bytes  # what is sent after framed.prefix
    #: the request as sent decodes to whole items (else the server may wait for more)
    complete: bool = True
    method_id: int | None = None
    notes: list[str] = field(default_factory=list)
    #: an ``endpoints`` request follows on the same connection: answered too, unless it closed
    follow: bool = False
    #: the bytes are exactly one request (else what follows it may be answered as more requests)
    exact: bool = True


FOLLOWER = Encoder().int(1).int(MethodId.endpoints).getvalue()


def _top_items(data: bytes) -> list:
    out, offset = [], 0
    while offset < len(data):
        value, offset = decode_item(data, offset)
        out.append(value)
    return out


def _scan_request(data: bytes) -> tuple[bool, int | None, bool]:
    """How the server reads ``data``: whether its first request is whole (else the server may
    wait), that request's method id (None if it has none), and whether ``data`` is exactly it."""
    try:
        marker, offset = decode_item(data, 0)
        method_id, offset = decode_item(data, offset)
    except NeedMore:
        return False, None, False
    except CborError:
        return True, None, False
    if marker != 1 or type(marker) is not int or type(method_id) is not int:
        return True, None, False
    count = ARGUMENTS.get(method_id)
    if count is None:
        return True, method_id, False
    try:
        for _ in range(count):
            _value, offset = decode_item(data, offset)
    except NeedMore:
        return False, method_id, False
    except CborError:
        return True, method_id, False
    return True, method_id, offset == len(data)


#: method id -> argument count, as the server reads them (the client's stubs write the same)
ARGUMENTS = {
    MethodId.authorizeConnection: 5, MethodId.endpoints: 0, MethodId.defineKeySchema: 1,
    MethodId.defineAttributeListId: 1, MethodId.defineAttributeList: 1, MethodId.getItem: 3,
    MethodId.putItem: 4, MethodId.updateItem: 3, MethodId.deleteItem: 3, MethodId.query: 3, MethodId.scan: 2,
    MethodId.batchGetItem: 2, MethodId.batchWriteItem: 2, MethodId.transactGetItems: 4,
    MethodId.transactWriteItems: 9,
}
MODES = ["valid"] + ["subtrees"] * 8 + ["truncated", "flipped", "garbage", "spliced"]


@st.composite
def cases(draw, methods: list[str] | None = None) -> Case:
    framed = draw(framed_requests(methods))
    mode = draw(st.sampled_from(MODES))
    data = framed.request
    notes = []
    if mode == "subtrees":
        tree = lift(_top_items(data))
        for _ in range(draw(st.integers(1, 3))):
            candidates = subtree_paths(tree)
            if draw(st.integers(0, 9)):  # mostly the arguments: the marker and method id only close
                candidates = [p for p in candidates if p[0] >= 2] or candidates
            path = draw(st.sampled_from(candidates))
            node = tree
            for step in path:
                node = _child(node, step)
            new = copy.deepcopy(draw(mutants(node)))  # shared constants must not be edited by later steps
            notes.append(f"{path} -> {new!r:.60}")
            tree = replace(tree, path, new)
        enc = Encoder()
        for item in tree:
            lower(item, enc)
        data = enc.getvalue()
    elif mode == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif mode == "flipped":
        flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 7)), min_size=1, max_size=4))
        mutable = bytearray(data)
        for at, bit in flips:
            mutable[at] ^= 1 << bit
        data = bytes(mutable)
    elif mode == "garbage":
        data = draw(st.one_of(st.binary(min_size=1, max_size=64), st.just(b"\x01" + draw(st.binary(max_size=64)))))
    elif mode == "spliced":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    complete, method_id, exact = _scan_request(data)
    follow = exact and draw(st.booleans())
    return Case(framed, mode, data + (FOLLOWER if follow else b""), complete, method_id, notes, follow, exact)


# --- what an answer must be ------------------------------------------------------------------------------

#: method id -> how many CBOR items its success body is (1 unless listed; authorizeConnection: no answer)
BODY_ITEMS = {MethodId.batchWriteItem: 3, MethodId.batchGetItem: 2}
_ASSEMBLERS: dict[str, Callable] = {
    "get_item": Assemblers.getItem_263244906_1, "put_item": Assemblers.putItem_N2106490455_1,
    "update_item": Assemblers.updateItem_1425579023_1, "delete_item": Assemblers.deleteItem_1013539361_1,
    "query": Assemblers.query_N931250863_1, "scan": Assemblers.scan_N1875390620_1,
    "batch_get_item": Assemblers.batchGetItem_N697851100_1, "batch_write_item": Assemblers.batchWriteItem_116217951_1,
    "transact_get_items": Assemblers.transactGetItems_1866287579_1,
    "transact_write_items": Assemblers.transactWriteItems_N1160037738_1,
    "endpoints": Assemblers.endpoints_455855874_1, "defineKeySchema": Assemblers.defineKeySchema_N742646399_1,
    "defineAttributeListId": Assemblers.defineAttributeListId_N1230579644_1,
    "defineAttributeList": Assemblers.defineAttributeList_670678385_1,
}


class _Reader:
    """The client's own decoder over the bytes a connection received."""

    def __init__(self, data: bytes) -> None:
        def more(_buf, _n):
            raise NoMoreData()

        self.dec = DaxCborDecoder(more)
        self.dec.buffer += data

    def __getattr__(self, name: str):  # read_array, read_map, read_int... as a Tube has them
        if name.startswith("read_") or name.startswith("try_"):
            return getattr(self.dec, name.replace("read_", "decode_").replace("try_read_", "try_decode_"))
        raise AttributeError(name)

    def peek(self) -> int:
        return self.dec.peek()

    def skip(self) -> None:
        self.dec.skip()

    @property
    def left(self) -> int:
        return len(self.dec.buffer)


@dataclass
class Verdict:
    answered: str  # "success", "error", "none"
    error: DaxServiceError | None = None
    problems: list[str] = field(default_factory=list)


def _error(reader: _Reader) -> DaxServiceError:
    codes = reader.dec.decode_object()
    message = reader.dec.decode_string()
    info = reader.dec.decode_object() or (None, None, None)
    return DaxServiceError("op", message, codes, *info)


def judge(case: Case, out: bytes, closed: bool) -> Verdict:
    """What the connection got for ``case``, and everything wrong with it."""
    reader = _Reader(out)
    try:
        for _ in range(case.framed.defines):
            if reader.peek() != 0x80:
                return Verdict("none", problems=[f"a defineAttributeListId was refused: {_error(reader)}"])
            reader.skip()
            reader.dec.decode_int()
    except NoMoreData:
        return Verdict("none", problems=["no answer to a defineAttributeListId"])
    if case.method_id == MethodId.authorizeConnection:
        verdict = Verdict("none")
    elif reader.left == 0:
        verdict = Verdict("none")
        if not closed and case.complete and case.method_id in ARGUMENTS:
            verdict.problems.append("a whole request got no answer and the connection stays open")
        return verdict
    else:
        verdict = _answer(case, reader)
    if case.follow and reader.left:
        try:
            if reader.peek() != 0x80:
                verdict.problems.append(f"the next request on the connection failed: {_error(reader)}")
            else:
                reader.skip()
                Assemblers.endpoints_455855874_1(None, reader)
        except Exception as exc:  # noqa: BLE001 - the client could not read it
            verdict.problems.append(f"the client cannot read the next request's answer: {exc!r}")
    elif case.follow and not closed:
        verdict.problems.append("the next request on the connection got no answer")
    if reader.left and case.exact:
        verdict.problems.append(f"{reader.left} bytes after the answers")
    return verdict


def _answer(case: Case, reader: _Reader) -> Verdict:
    """The answer to the case's own request."""
    problems = []
    try:
        if reader.peek() == 0x80:
            reader.skip()
            verdict = Verdict("success")
            assembler = _ASSEMBLERS.get(case.framed.method)
            if case.mode == "valid" and assembler is not None:
                assembler(case.framed.client_request, reader)
            else:
                for _ in range(BODY_ITEMS.get(case.method_id, 1)):  # type: ignore[call-overload]
                    reader.dec.decode_object()
        else:
            err = _error(reader)
            verdict = Verdict("error", err)
            if not err.code or not isinstance(err.codes, list) or not all(isinstance(c, int) for c in err.codes):
                problems.append(f"an error the client cannot name: codes {err.codes!r}")
            if err.code == "InternalServerErrorException" or (err.http_status or 0) >= 500:
                problems.append(f"a 5xx answer: {err.code} {err.response.get('Error', {}).get('Message')!r}")
    except NoMoreData:
        return Verdict("none", problems=["a cut-short answer"])
    except Exception as exc:  # noqa: BLE001 - the client could not read the answer
        return Verdict("none", problems=[f"the client cannot read the answer: {exc!r}"])
    verdict.problems = problems + verdict.problems
    return verdict


# --- a real DAX node over a real embedded router ------------------------------------------------------------


class _Transport:
    """A stream transport that keeps what is written (no sockets: ``DaxProtocol`` is driven directly)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.writes_after_close = 0

    def write(self, data: bytes) -> None:
        if self.closed:
            self.writes_after_close += 1
            return
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8111)}.get(name, default)


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class DaxUnderTest:
    """An embedded router (its own loop, in a thread) and a DAX node in front of it, built as production does."""

    def __init__(self, data_dir: str) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.router = self.run(self._start(data_dir))
        self.cases = 0
        self.answers: dict[str, int] = {}

    async def _start(self, data_dir: str):
        from meridian.model.errors import ResourceNotFoundException
        from meridian.node.engine import Engine
        from meridian.router.dax.endpoints import Node
        from meridian.router.dax.front import data_handlers
        from meridian.router.dax.node import DaxNode
        from meridian.router.dax.server import DaxServer
        from meridian.router.dax.upstream import InProcessUpstream
        from meridian.router.server import RouterOptions, start_router
        from meridian.router.storage_embedded import EmbeddedStorage

        storage = EmbeddedStorage(Engine(data_dir, node_id="embedded", region=REGION, sync=False))
        router = await start_router(storage, host="127.0.0.1", port=0, region=REGION, shared_catalog=False,
                                    options=RouterOptions(throttling=False))
        self.app = router.app
        for body in create_table_bodies():
            await self.app.invoke("CreateTable", body)
        self.node = node = DaxNode.create("fuzz-dax", InProcessUpstream(router.app))

        async def describe(table: str):
            try:
                return await node.key_schemas.of(table)
            except ResourceNotFoundException:
                return None

        self.server = DaxServer(handlers=data_handlers(node), describe_key_schema=describe, registry=node.registry,
                                node=Node(node_id="fuzz-dax", hostname="localhost", az="us-east-1a"))
        return router

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT_S)

    def close(self) -> None:
        self.run(self.server.close())
        self.run(self.router.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_S)
        self.loop.close()

    async def exchange(self, stream: bytes, cuts: list[int]) -> tuple[bytes, bool, list[str]]:
        """Feeds ``stream`` (in pieces at ``cuts``) to a new connection; its output, whether it closed, problems."""
        from meridian.router.dax.server import DaxProtocol

        transport = _Transport()
        protocol = DaxProtocol(self.server)
        problems = []
        try:
            protocol.connection_made(transport)  # type: ignore[arg-type]
            last = 0
            for point in sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]:
                if point > last:
                    protocol.data_received(stream[last:point])
                    last = point
                await asyncio.sleep(0)
            while protocol.task is not None:
                await asyncio.wait_for(asyncio.shield(protocol.task), WAIT_S)
        except Exception as exc:  # noqa: BLE001 - anything raised out of the protocol is the finding
            problems.append(f"raised out of the protocol: {exc!r}")
        if transport.writes_after_close:
            problems.append("wrote after closing")
        out, closed = bytes(transport.out), transport.closed
        protocol.connection_lost(None)
        return out, closed, problems

    async def snapshot(self) -> dict[str, list[bytes]]:
        """Every table's items, read consistently (pages followed)."""
        import orjson

        out = {}
        for table in TABLES:
            found, start = [], None
            while True:
                body: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
                if start:
                    body["ExclusiveStartKey"] = start
                answer = await self.app.invoke("Scan", body)
                found += [orjson.dumps(item, option=orjson.OPT_SORT_KEYS) for item in answer.get("Items", [])]
                start = answer.get("LastEvaluatedKey")
                if not start:
                    break
            out[table] = sorted(found)
        return out

    async def serves_another(self) -> bool:
        enc = Encoder().int(1).int(MethodId.endpoints)
        out, closed, problems = await self.exchange(_HANDSHAKE + enc.getvalue(), [])
        return not problems and out[:1] == b"\x80" and not closed

    async def check(self, case: Case, cuts: list[int]) -> list[str]:
        """Runs one case; every property it breaks."""
        self.cases += 1
        write = case.framed.method in WRITES
        before = await self.snapshot() if write else None
        out, closed, problems = await self.exchange(case.framed.prefix + case.data, cuts)
        verdict = judge(case, out, closed)
        self.answers[verdict.answered] = self.answers.get(verdict.answered, 0) + 1
        problems += verdict.problems
        if write and verdict.answered != "success" and await self.snapshot() != before:
            problems.append(f"a write answered {verdict.error.code if verdict.error else 'with no answer'} changed a table")
        if not await self.serves_another():
            problems.append("the next connection is not served")
        return problems


@pytest.fixture(scope="module")
def error_log():
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(scope="module")
def dax(tmp_path_factory, error_log):
    node = DaxUnderTest(str(tmp_path_factory.mktemp("dax-fuzz")))
    yield node
    node.close()


def describe_case(case: Case, problems: list[str]) -> str:
    return (f"{case.framed.method} ({case.mode}) {problems}\n  mutations: {case.notes}\n"
            f"  request bytes: {case.data[:400].hex()}{'...' if len(case.data) > 400 else ''}")


def _run(dax: DaxUnderTest, error_log: ErrorLog, case: Case, cuts: list[int]) -> None:
    logged = len(error_log.records)
    problems = dax.run(dax.check(case, cuts))
    for record in error_log.records[logged:]:
        problems.append(f"logged {record.levelname} {record.getMessage()!r} (traceback: {record.exc_info is not None})")
    assert not problems, describe_case(case, problems)


_FUZZ = settings(max_examples=max(1, EXAMPLES // len(REQUESTS)), deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                        HealthCheck.function_scoped_fixture])


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(REQUESTS))
@_FUZZ
@given(data=st.data())
def test_no_request_of_any_method_crashes_the_node_or_gets_a_500(dax, error_log, method, data) -> None:
    case = data.draw(cases([method]))
    cuts = data.draw(st.lists(st.integers(0, len(case.framed.prefix) + len(case.data)), max_size=3))
    _run(dax, error_log, case, cuts)


def test_every_method_valid_and_unchanged_is_answered_as_the_client_expects(dax, error_log) -> None:
    """The fuzzer's starting points are right: each valid request, as the client frames it, succeeds."""
    requests = {
        "put_item": {"TableName": "fuzz_hr", "Item": {"pk": {"S": "v"}, "sk": {"N": "1"}, "a": {"SS": ["x"]}}},
        "get_item": {"TableName": "fuzz_hr", "Key": {"pk": {"S": "v"}, "sk": {"N": "1"}}},
        "update_item": {"TableName": "fuzz_hr", "Key": {"pk": {"S": "v"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET #n = :v", "ExpressionAttributeNames": {"#n": "n"},
                        "ExpressionAttributeValues": {":v": {"N": "2"}}, "ReturnValues": "ALL_NEW"},
        "query": {"TableName": "fuzz_hr", "KeyConditionExpression": "pk = :p",
                  "ExpressionAttributeValues": {":p": {"S": "v"}}},
        "scan": {"TableName": "fuzz_h", "Limit": 2},
        "batch_get_item": {"RequestItems": {"fuzz_hr": {"Keys": [{"pk": {"S": "v"}, "sk": {"N": "1"}}]}}},
        "batch_write_item": {"RequestItems": {"fuzz_h": [{"PutRequest": {"Item": {"pk": {"S": "w"}}}}]}},
        "transact_get_items": {"TransactItems": [{"Get": {"TableName": "fuzz_h", "Key": {"pk": {"S": "w"}}}}]},
        "transact_write_items": {"TransactItems": [{"Delete": {"TableName": "fuzz_h", "Key": {"pk": {"S": "w"}}}}]},
        "delete_item": {"TableName": "fuzz_hr", "Key": {"pk": {"S": "v"}, "sk": {"N": "1"}}},
        "endpoints": {}, "defineKeySchema": {"TableName": "fuzz_b"}, "defineAttributeListId": {"Names": ["a"]},
        "defineAttributeList": {"Id": 1},
    }
    for method, kwargs in requests.items():
        framed = frame(method, kwargs)
        assert framed is not None, method
        complete, method_id, exact = _scan_request(framed.request)
        case = Case(framed, "valid", framed.request, complete, method_id, exact=exact)
        out, closed, problems = dax.run(dax.exchange(framed.prefix + framed.request, []))
        verdict = judge(case, out, closed)
        assert verdict.answered == "success" and not problems + verdict.problems, (method, verdict, problems)
    assert not error_log.records


@pytest.mark.parametrize("data", [
    b"",
    b"\x00" * 64,
    bytes(range(256)),
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    _HANDSHAKE[:5],
    _HANDSHAKE + b"\x01",
    _HANDSHAKE + b"\x01\x1a",
    _HANDSHAKE + b"\x01\x1a\x0f\xb0\xb5\x6a\x5b" + (1 << 63).to_bytes(8, "big"),
    _HANDSHAKE + b"\x01\x1a\x0f\xb0\xb5\x6a\x9f" * 200,
    _HANDSHAKE + b"\x01\x1a\x0f\xb0\xb5\x6a" + b"\x81" * 2000,
    # a 4,096-byte bignum as the marker, then as the method id: its repr alone used to raise
    _HANDSHAKE + b"\xc2\x59\x10\x00" + b"\xff" * 4096,
    _HANDSHAKE + b"\x01\xc2\x59\x10\x00" + b"\xff" * 4096,
])
def test_raw_garbage_and_cut_streams_are_closed_or_awaited(dax, error_log, data) -> None:
    out, closed, problems = dax.run(dax.exchange(data, [len(data) // 2]))
    assert not problems
    assert closed or not out or out[:1] != b"\x80"
    assert dax.run(dax.serves_another())
    assert not error_log.records


@pytest.mark.parametrize("consistent", [False, True])
@pytest.mark.parametrize("projection, message", [
    ("a, a", "Two document paths overlap with each other; must remove or rewrite one of these paths; "
             "path one: [a], path two: [a]"),
    ("b[0], b[0][0]", "Two document paths overlap with each other; must remove or rewrite one of these paths; "
                      "path one: [b, [0]], path two: [b, [0], [0]]"),
])
def test_a_projection_is_validated_even_when_the_cache_answers(dax, projection, message, consistent) -> None:
    """The item cache applies projections itself; DynamoDB's checks must still run (found by the fuzzer:
    an overlapping projection was answered with paths the client cannot rebuild an item from)."""
    put = frame("put_item", {"TableName": "fuzz_h", "Item": {"pk": {"S": "proj"}, "a": {"S": "x"},
                                                              "b": {"L": [{"L": [{"N": "1"}]}]}}})
    dax.run(dax.exchange(put.prefix + put.request, []))
    for method, kwargs in [
        ("get_item", {"TableName": "fuzz_h", "Key": {"pk": {"S": "proj"}}, "ProjectionExpression": projection,
                      "ConsistentRead": consistent}),
        ("batch_get_item", {"RequestItems": {"fuzz_h": {"Keys": [{"pk": {"S": "proj"}}], "ConsistentRead": consistent,
                                                        "ProjectionExpression": projection}}}),
        ("transact_get_items", {"TransactItems": [{"Get": {"TableName": "fuzz_h", "Key": {"pk": {"S": "proj"}},
                                                           "ProjectionExpression": projection}}]}),
    ]:
        framed = frame(method, kwargs)
        assert framed is not None
        out, closed, problems = dax.run(dax.exchange(framed.prefix + framed.request, []))
        complete, method_id, exact = _scan_request(framed.request)
        verdict = judge(Case(framed, "valid", framed.request, complete, method_id, exact=exact), out, closed)
        assert verdict.answered == "error" and not problems + verdict.problems, (method, verdict)
        assert verdict.error.code == "ValidationException"
        assert verdict.error.response["Error"]["Message"] == f"Invalid ProjectionExpression: {message}"


def test_a_number_too_long_for_an_int_is_an_overflow() -> None:
    from meridian.model.errors import ValidationException
    from meridian.router.dax.values import av_from_cbor

    value, _end = decode_item(Encoder().tag(2).bytes_(b"\x01" * 4096).getvalue(), 0)
    assert isinstance(value, Tagged) and value.tag == 2  # never an int of 32,768 bits
    with pytest.raises(ValidationException, match="Number overflow"):
        av_from_cbor(value)
    padded, _end = decode_item(Encoder().tag(3).bytes_(b"\x00" * 4096 + b"\x05").getvalue(), 0)
    assert padded == -6  # leading zeros are no length
