"""DAX's single-item calls and Query/Scan: decode, answer from the caches or the action layer, encode.

Semantics (AWS's "DAX and DynamoDB consistency models"; the caches are
``router/dax/cache.py``):

* GetItem, eventually consistent: from the item cache, which holds the full
  item (or "no such item") per key; a miss reads the full item upstream and
  applies the request's projection here.  ``ConsistentRead`` passes through.
* PutItem, UpdateItem, DeleteItem: written to the table first, then the item
  cache (write-through): the item now (Put; Update when the answer carries
  ALL_NEW), "no such item" (Delete), or a tombstone when the new item is not
  known (Update with another ReturnValues), so the next read misses.
* Query and Scan, eventually consistent: from the query cache, keyed by the
  whole request; writes never invalidate it (DAX's documented staleness).

Every handler is ``async fn(connection, args) -> body bytes`` (what follows
the success marker); ``handlers`` lists them with their argument counts for
``router/dax/server.py``.  Batches and transactions: ``router/dax/batches.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from meridian.model.errors import ResourceNotFoundException

from . import answers
from .cache import MISS
from .cbor import Encoder, dumps
from .node import DaxNode
from .requests import (
    BadArgument,
    Expressions,
    Param,
    RETURN_CONSUMED_CAPACITY,
    SELECT,
    add_common,
    bytes_of,
    enum_of,
    exclusive_start_key,
    flag_of,
    int_of,
    kwargs_of,
    projection_paths,
    text_of,
)
from .values import decode_key, decode_values, encode_index_key, encode_key, encode_values

Handler = Callable[[Any, list], Awaitable[bytes]]

GET_ITEM, PUT_ITEM, UPDATE_ITEM, DELETE_ITEM = 263244906, -2106490455, 1425579023, 1013539361
QUERY, SCAN = -931250863, -1875390620
_NULL = b"\xf6"


def key_names(schema: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(name for name, _type in schema)


class ItemMethods:
    """GetItem, PutItem, UpdateItem, DeleteItem, Query, Scan of one DAX node."""

    def __init__(self, node: DaxNode) -> None:
        self.node = node

    def item_handlers(self) -> dict[int, tuple[int, Handler]]:
        return {
            GET_ITEM: (3, self.get_item),
            PUT_ITEM: (4, self.put_item),
            UPDATE_ITEM: (3, self.update_item),
            DELETE_ITEM: (3, self.delete_item),
            QUERY: (3, self.query),
            SCAN: (2, self.scan),
        }

    # --- shared -----------------------------------------------------------------
    async def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        self.node.statistics.upstream_calls += 1
        try:
            return await self.node.upstream.call(action, body)
        except ResourceNotFoundException:
            table = body.get("TableName")
            if isinstance(table, str):
                self.node.key_schemas.forget(table)
            raise

    async def _target(self, table_arg: Any, key_arg: Any) -> tuple[str, list[tuple[str, str]], dict, bytes]:
        """Table name, key schema, key, canonical key bytes."""
        table = text_of(table_arg, "TableName")
        schema = await self.node.key_schemas.of(table)
        key = decode_key(bytes_of(key_arg, "Key"), schema)
        return table, schema, key, encode_key(key, schema)

    def _single_answer(self, part: Callable[[Encoder], None] | None, answer: dict[str, Any],
                       param: int) -> bytes:
        """``{param: part, 1: ConsumedCapacity, 3: ItemCollectionMetrics}``, or null when empty."""
        cc = answer.get("ConsumedCapacity")
        icm = answer.get("ItemCollectionMetrics")
        count = (part is not None) + (cc is not None) + (icm is not None)
        if not count:
            return _NULL
        enc = Encoder()
        enc.map_header(count)
        if part is not None:
            enc.int(param)
            part(enc)
        if cc is not None:
            enc.int(answers.CONSUMED_CAPACITY)
            answers.consumed_capacity(enc, cc)
        if icm is not None:
            enc.int(answers.ITEM_COLLECTION_METRICS)
            answers.item_collection_metrics(enc, icm)
        return enc.getvalue()

    # --- GetItem ------------------------------------------------------------------
    async def get_item(self, _conn: Any, args: list) -> bytes:
        table, schema, key, key_bytes = await self._target(args[0], args[1])
        kwargs = kwargs_of(args[2])
        consistent = flag_of(kwargs.get(Param.CONSISTENT_READ, False))
        projection = kwargs.get(Param.PROJECTION)
        paths = projection_paths(bytes_of(projection, "ProjectionExpression")) if projection is not None else None
        rcc_arg = kwargs.get(Param.RETURN_CONSUMED_CAPACITY)
        rcc = None if rcc_arg is None else enum_of(RETURN_CONSUMED_CAPACITY, rcc_arg, "ReturnConsumedCapacity")
        body: dict[str, Any] = {"TableName": table, "Key": key}  # what goes upstream; a cache hit needs none
        if rcc is not None:
            body["ReturnConsumedCapacity"] = rcc
        names = key_names(schema)
        if consistent:
            self.node.statistics.pass_through_reads += 1
            body["ConsistentRead"] = True
            if projection is not None:
                exprs = Expressions()
                add_common(body, {Param.PROJECTION: projection}, exprs)
                exprs.apply(body)
            answer = await self.call("GetItem", body)
            item = answer.get("Item")
            return self._single_answer(self._item_part(item, paths, names), answer, answers.ITEM)
        items = self.node.caches.items
        cached = items.get(table, key_bytes)
        if cached is MISS:
            ticket = items.ticket()
            answer = await self.call("GetItem", body)
            item = answer.get("Item")
            cached = None if item is None else (item, encode_values(item, names, self.node.registry))
            items.fill(table, key_bytes, cached, 0 if cached is None else len(cached[1]), ticket)
        else:
            answer = {}
            if rcc is not None and rcc != "NONE":
                answer["ConsumedCapacity"] = {"TableName": table, "CapacityUnits": 0.0}
        if cached is None:
            return self._single_answer(None, answer, answers.ITEM)
        item, values = cached
        if paths is not None:
            return self._single_answer(lambda enc: answers.projected(enc, item, paths), answer, answers.ITEM)
        return self._single_answer(lambda enc: enc.bytes_(values), answer, answers.ITEM)

    def _item_part(self, item: dict | None, paths: list | None, names: tuple[str, ...]):
        if item is None:
            return None
        if paths is not None:
            return lambda enc: answers.projected(enc, item, paths)
        return lambda enc: answers.item_values(enc, item, names, self.node.registry)

    # --- writes -----------------------------------------------------------------
    def _attributes_part(self, answer: dict[str, Any], return_values: str | None, names: tuple[str, ...]):
        attributes = answer.get("Attributes")
        if attributes is None:
            return None
        if return_values in ("UPDATED_OLD", "UPDATED_NEW"):
            return lambda enc: answers.updated_attributes(enc, attributes, self.node.registry)
        return lambda enc: answers.item_values(enc, attributes, names, self.node.registry)

    async def _write(self, action: str, table: str, names: tuple[str, ...], key_bytes: bytes, body: dict[str, Any],
                     new_item: dict | None | Any) -> bytes:
        """Run a write, then write it through to the item cache.  ``new_item``:
        the item as the write leaves it, None for deleted, ``MISS`` for unknown."""
        answer = await self.call(action, body)
        node = self.node
        if action == "UpdateItem" and body.get("ReturnValues") == "ALL_NEW":
            new_item = answer.get("Attributes")
        if new_item is MISS:
            node.invalidate(table, key_bytes)
        elif new_item is None:
            node.write_through(table, key_bytes, None, 0)
        else:
            values = encode_values(new_item, names, node.registry)
            node.write_through(table, key_bytes, (new_item, values), len(values))
        return self._single_answer(self._attributes_part(answer, body.get("ReturnValues"), names), answer,
                                   answers.ATTRIBUTES)

    def _write_body(self, table: str, key_field: str, key: dict, kwargs: dict[int, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": table, key_field: key}
        exprs = Expressions()
        add_common(body, kwargs, exprs)
        exprs.apply(body)
        return body

    async def put_item(self, _conn: Any, args: list) -> bytes:
        table, schema, key, key_bytes = await self._target(args[0], args[1])
        item = dict(key)
        item.update(decode_values(bytes_of(args[2], "Item"), self.node.registry))
        body = self._write_body(table, "Item", item, kwargs_of(args[3]))
        return await self._write("PutItem", table, key_names(schema), key_bytes, body, item)

    async def update_item(self, _conn: Any, args: list) -> bytes:
        table, schema, key, key_bytes = await self._target(args[0], args[1])
        body = self._write_body(table, "Key", key, kwargs_of(args[2]))
        return await self._write("UpdateItem", table, key_names(schema), key_bytes, body, MISS)

    async def delete_item(self, _conn: Any, args: list) -> bytes:
        table, schema, key, key_bytes = await self._target(args[0], args[1])
        body = self._write_body(table, "Key", key, kwargs_of(args[2]))
        return await self._write("DeleteItem", table, key_names(schema), key_bytes, body, None)

    # --- Query and Scan ---------------------------------------------------------------
    async def query(self, _conn: Any, args: list) -> bytes:
        table = text_of(args[0], "TableName")
        kwargs = dict(kwargs_of(args[2]))
        if args[1] is not None:
            kwargs[Param.KEY_CONDITION] = args[1]
        return await self._range("Query", table, kwargs, args)

    async def scan(self, _conn: Any, args: list) -> bytes:
        return await self._range("Scan", text_of(args[0], "TableName"), kwargs_of(args[1]), args)

    async def _range(self, action: str, table: str, kwargs: dict[int, Any], args: list) -> bytes:
        schema = await self.node.key_schemas.of(table)
        body: dict[str, Any] = {"TableName": table}
        exprs = Expressions()
        condition = kwargs.get(Param.KEY_CONDITION)
        if condition is not None:
            from . import sexpr  # noqa: PLC0415 - the same module requests.py uses

            body["KeyConditionExpression"] = sexpr.to_condition(
                bytes_of(condition, "KeyConditionExpression"), exprs.names, exprs.values, label="KeyConditionExpression")
        add_common(body, {k: v for k, v in kwargs.items() if k != Param.RETURN_VALUES}, exprs)
        exprs.apply(body)
        index = kwargs.get(Param.INDEX_NAME)
        if index is not None:
            body["IndexName"] = text_of(index, "IndexName")
        for param, member in ((Param.LIMIT, "Limit"), (Param.SEGMENT, "Segment"),
                              (Param.TOTAL_SEGMENTS, "TotalSegments")):
            if param in kwargs:
                body[member] = int_of(kwargs[param], member)
        if Param.SELECT in kwargs:
            body["Select"] = enum_of(SELECT, kwargs[Param.SELECT], "Select")
        if Param.SCAN_INDEX_FORWARD in kwargs:
            body["ScanIndexForward"] = flag_of(kwargs[Param.SCAN_INDEX_FORWARD])
        consistent = flag_of(kwargs.get(Param.CONSISTENT_READ, False))
        if consistent:
            body["ConsistentRead"] = True
        if Param.EXCLUSIVE_START_KEY in kwargs:
            body["ExclusiveStartKey"] = exclusive_start_key(kwargs[Param.EXCLUSIVE_START_KEY], schema,
                                                            index is not None)
        projection = kwargs.get(Param.PROJECTION)
        paths = projection_paths(bytes_of(projection, "ProjectionExpression")) if projection is not None else None
        queries = self.node.caches.queries
        if consistent or not queries.enabled:
            self.node.statistics.pass_through_reads += consistent
            answer = await self.call(action, body)
            return self._range_answer(answer, schema, paths, index is not None)
        request_key = dumps([table, args[1:]])
        cached = queries.get(action, request_key)
        if cached is not MISS:
            return cached
        encoded = self._range_answer(await self.call(action, body), schema, paths, index is not None)
        queries.put(action, request_key, encoded, len(encoded))
        return encoded

    def _range_answer(self, answer: dict[str, Any], schema: list[tuple[str, str]], paths: list | None,
                      on_index: bool) -> bytes:
        enc = Encoder()
        fields = [name for name in ("Items", "Count", "ScannedCount", "LastEvaluatedKey", "ConsumedCapacity")
                  if name in answer]
        enc.map_header(len(fields))
        names = key_names(schema)
        registry = self.node.registry
        for name in fields:
            value = answer[name]
            if name == "Items":
                enc.int(answers.ITEMS)
                enc.array_header(len(value))
                for item in value:
                    if paths is not None:
                        answers.projected(enc, item, paths)
                    else:
                        answers.scan_item(enc, item, schema, names, registry)
            elif name == "Count":
                enc.int(answers.COUNT)
                enc.int(value)
            elif name == "ScannedCount":
                enc.int(answers.SCANNED_COUNT)
                enc.int(value)
            elif name == "LastEvaluatedKey":
                enc.int(answers.LAST_EVALUATED_KEY)
                if on_index:
                    enc.bytes_(encode_index_key(value))
                else:
                    enc.bytes_(encode_key(value, schema))
            else:
                enc.int(answers.CONSUMED_CAPACITY)
                answers.consumed_capacity(enc, value)
        return enc.getvalue()


__all__ = ["BadArgument", "ItemMethods", "key_names"]
