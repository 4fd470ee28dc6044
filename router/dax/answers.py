"""DynamoDB answers, written the way the DAX clients read them.

* an item (GetItem, ALL_* ``Attributes``, TransactGetItems): a byte string
  holding its attribute-list id and its non-key values (the client adds the
  key it asked for);
* an item in Query, Scan and BatchGetItem answers: ``[key bytes, values]``;
* a projected item: ``{ordinal: value}``, the ordinal being the path's place
  in the request's ProjectionExpression;
* UPDATED_OLD / UPDATED_NEW ``Attributes``: a byte string holding the id of
  the attribute list of the returned names and ``{index in that list: value}``;
* consumed capacity: a byte string holding the table name, the units, the
  table's units or null, the global and local indexes' units or null; in
  transactions, a map keyed by DAX's consumed-capacity field numbers.
"""

from __future__ import annotations

from typing import Any

from .attribute_lists import AttributeListRegistry
from .cbor import Encoder
from .values import av_to_cbor, encode_key, encode_projected, encode_updated, encode_values

# Response parameter numbers (a data call's answer map).
ITEM, CONSUMED_CAPACITY, ATTRIBUTES, ITEM_COLLECTION_METRICS = 0, 1, 2, 3
ITEMS, COUNT, LAST_EVALUATED_KEY, SCANNED_COUNT = 7, 8, 9, 10
# Consumed-capacity field numbers in transactions' answers.
_CC_UNITS, _CC_READ, _CC_WRITE, _CC_TABLE_NAME, _CC_TABLE, _CC_GSI, _CC_LSI = 1, 2, 3, 4, 5, 6, 7


def item_values(enc: Encoder, item: dict[str, dict], key_names: tuple[str, ...],
                registry: AttributeListRegistry) -> None:
    """An item's non-key attributes, as a byte string item."""
    enc.bytes_(encode_values(item, key_names, registry))


def projected(enc: Encoder, item: dict[str, dict], paths: list[list[str | int]]) -> None:
    """``{ordinal: value}`` for every path the item has (the map itself, not bytes)."""
    enc.raw(encode_projected(item, paths))


def updated_attributes(enc: Encoder, attributes: dict[str, dict], registry: AttributeListRegistry) -> None:
    enc.bytes_(encode_updated(attributes, registry))


def scan_item(enc: Encoder, item: dict[str, dict], key_schema: list[tuple[str, str]], key_names: tuple[str, ...],
              registry: AttributeListRegistry) -> None:
    enc.array_header(2)
    enc.bytes_(encode_key(item, key_schema))
    item_values(enc, item, key_names, registry)


def consumed_capacity(enc: Encoder, cc: dict[str, Any] | None) -> None:
    """One ConsumedCapacity entry (GetItem ... Scan, batches), or null."""
    if not cc:
        enc.null()
        return
    inner = Encoder()
    inner.text(cc.get("TableName", ""))
    inner.float64(float(cc.get("CapacityUnits", 0.0)))
    table = cc.get("Table")
    if table is None:
        inner.null()
    else:
        inner.float64(float(table.get("CapacityUnits", 0.0)))
    for member in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = cc.get(member)
        if indexes is None:
            inner.null()
            continue
        inner.map_header(len(indexes))
        for name, units in indexes.items():
            inner.text(name)
            inner.float64(float(units.get("CapacityUnits", 0.0)))
    enc.bytes_(inner.getvalue())


def _units_map(enc: Encoder, units: dict[str, Any]) -> None:
    fields = [(code, units[name]) for name, code in
              (("CapacityUnits", _CC_UNITS), ("ReadCapacityUnits", _CC_READ), ("WriteCapacityUnits", _CC_WRITE))
              if name in units]
    enc.map_header(len(fields))
    for code, value in fields:
        enc.int(code)
        enc.float64(float(value))


def transaction_capacity(enc: Encoder, entries: list[dict[str, Any]] | None) -> None:
    """Transactions' ConsumedCapacity: an array (never null: the Python client iterates it)."""
    entries = entries or []
    enc.array_header(len(entries))
    for cc in entries:
        fields: list[tuple[int, Any]] = [(_CC_TABLE_NAME, cc.get("TableName", ""))]
        fields += [(code, cc[name]) for name, code in
                   (("CapacityUnits", _CC_UNITS), ("ReadCapacityUnits", _CC_READ), ("WriteCapacityUnits", _CC_WRITE),
                    ("Table", _CC_TABLE), ("GlobalSecondaryIndexes", _CC_GSI), ("LocalSecondaryIndexes", _CC_LSI))
                   if name in cc]
        enc.map_header(len(fields))
        for code, value in fields:
            enc.int(code)
            if code == _CC_TABLE_NAME:
                enc.text(value)
            elif code == _CC_TABLE:
                _units_map(enc, value)
            elif code in (_CC_GSI, _CC_LSI):
                enc.map_header(len(value))
                for name, units in value.items():
                    enc.text(name)
                    _units_map(enc, units)
            else:
                enc.float64(float(value))


def item_collection_metrics(enc: Encoder, metrics: dict[str, Any] | None) -> None:
    """``ItemCollectionMetrics`` of one write: bytes holding the collection's key value and the size range."""
    if not metrics:
        enc.null()
        return
    inner = Encoder()
    key = metrics.get("ItemCollectionKey", {})
    av_to_cbor(next(iter(key.values())), inner)
    low, high = metrics.get("SizeEstimateRangeGB", [0.0, 1.0])
    inner.float64(float(low))
    inner.float64(float(high))
    enc.bytes_(inner.getvalue())
