"""DAX's BatchGetItem, BatchWriteItem, TransactGetItems and TransactWriteItems.

* BatchGetItem: "DAX treats each of these as an individual GetItem": the
  eventually consistent keys are looked up in the item cache one by one and
  only the misses go upstream, in one BatchGetItem; the full items come back
  and fill the cache; each table's projection is applied here.
* BatchWriteItem: written upstream, then every processed write goes through
  to the item cache (the new item, or "no such item").
* TransactGetItems: passed through, never cached.
* TransactWriteItems: passed through; every item it names is invalidated in
  the item cache (committed or not: the next read asks the table).
"""

from __future__ import annotations

from typing import Any

from . import answers
from .cache import MISS
from .cbor import Encoder
from .methods import ItemMethods, key_names
from .requests import (
    RETURN_ON_FAILURE,
    TRANSACT_CHECK,
    TRANSACT_DELETE,
    TRANSACT_PUT,
    TRANSACT_UPDATE,
    BadArgument,
    Expressions,
    Param,
    add_common,
    bytes_of,
    flag_of,
    int_of,
    kwargs_of,
    projection_paths,
    text_of,
)
from .values import decode_key, decode_values, encode_key, encode_values

BATCH_GET_ITEM, BATCH_WRITE_ITEM = -697851100, 116217951
TRANSACT_GET_ITEMS, TRANSACT_WRITE_ITEMS = 1866287579, -1160037738
def check_batch_get(body: dict[str, Any]) -> None:
    """BatchGetItem's validation and request-only checks (router/validation.py, router/actions/batch.py)."""
    from ..actions.batch import _check_get_request  # noqa: PLC0415 - the router's own checks, not a copy
    from ..validation import validate_request  # noqa: PLC0415

    validate_request("BatchGetItem", body)
    _check_get_request(body)


_TRANSACT_ACTIONS = {TRANSACT_PUT: "Put", TRANSACT_DELETE: "Delete", TRANSACT_UPDATE: "Update",
                     TRANSACT_CHECK: "ConditionCheck"}


def _list_of(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise BadArgument(f"{what} must be an array")
    return value


def _map_of(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadArgument(f"{what} must be a map")
    return value


def _rcc_only(kwargs: dict[int, Any]) -> dict[int, Any]:
    return {k: v for k, v in kwargs.items() if k in (Param.RETURN_CONSUMED_CAPACITY,
                                                      Param.RETURN_ITEM_COLLECTION_METRICS)}


class BatchMethods(ItemMethods):
    """The multi-item calls of one DAX node."""

    def handlers(self):
        return {
            BATCH_GET_ITEM: (2, self.batch_get_item),
            BATCH_WRITE_ITEM: (2, self.batch_write_item),
            TRANSACT_GET_ITEMS: (4, self.transact_get_items),
            TRANSACT_WRITE_ITEMS: (9, self.transact_write_items),
        }

    # --- BatchGetItem -------------------------------------------------------------
    async def batch_get_item(self, _conn: Any, args: list) -> bytes:
        requests = _map_of(args[0], "RequestItems")
        kwargs = kwargs_of(args[1])
        items_cache = self.node.caches.items
        plans = []  # (table, schema, paths, consistent)
        decoded = []  # per table: [(key, key bytes)]
        whole: dict[str, Any] = {}  # the request as DynamoDB would get it, to check before any cache lookup
        for table_arg, spec in requests.items():
            table = text_of(table_arg, "TableName")
            spec = _list_of(spec, "RequestItems entry")
            if len(spec) != 3:
                raise BadArgument("a BatchGetItem table entry has three members")
            consistent = flag_of(spec[0])
            entry: dict[str, Any] = {"ConsistentRead": consistent}
            paths = None
            if spec[1] is not None:
                exprs = Expressions()
                add_common(entry, {Param.PROJECTION: spec[1]}, exprs)
                exprs.apply(entry)
                paths = projection_paths(bytes_of(spec[1], "ProjectionExpression"))
            schema = await self.node.key_schemas.of(table)
            keys = []
            for key_arg in _list_of(spec[2], "Keys"):
                key = decode_key(bytes_of(key_arg, "Key"), schema)
                keys.append((key, encode_key(key, schema)))
            entry["Keys"] = [key for key, _bytes in keys]
            whole[table] = entry
            plans.append((table, schema, paths, consistent))
            decoded.append(keys)
        # DynamoDB's checks of the whole request (empty, duplicates, more than 100 keys,
        # projections), even when every key is answered from the cache
        check_batch_get({"RequestItems": whole})
        upstream: dict[str, Any] = {}
        found: dict[str, list[tuple[dict, bytes | None]]] = {}  # table -> [(item, cached values bytes)]
        tickets: dict[tuple[str, bytes], int] = {}
        for (table, _schema, _paths, consistent), keys in zip(plans, decoded):
            found[table] = []
            missing = []
            for key, key_bytes in keys:
                cached = MISS if consistent else items_cache.get(table, key_bytes)
                if cached is MISS:
                    if not consistent:
                        tickets[table, key_bytes] = items_cache.ticket()
                    missing.append(key)
                elif cached is not None:
                    found[table].append(cached)
            if missing:
                entry = {"Keys": missing}
                if consistent:
                    entry["ConsistentRead"] = True
                    self.node.statistics.pass_through_reads += len(missing)
                upstream[table] = entry
        answer: dict[str, Any] = {}
        if upstream:
            body: dict[str, Any] = {"RequestItems": upstream}
            add_common(body, _rcc_only(kwargs), Expressions())
            answer = await self.call("BatchGetItem", body)
        schemas = {plan[0]: plan[1] for plan in plans}
        unprocessed = answer.get("UnprocessedKeys") or {}
        for table, items in (answer.get("Responses") or {}).items():
            names = key_names(schemas[table])
            for item in items:
                values = encode_values(item, names, self.node.registry)
                found[table].append((item, values))
                key_bytes = encode_key(item, schemas[table])
                ticket = tickets.pop((table, key_bytes), None)
                if ticket is not None:
                    items_cache.fill(table, key_bytes, (item, values), len(values), ticket)
        # keys asked for and answered "no such item": negative entries
        unprocessed_bytes = {(table, encode_key(key, schemas[table]))
                             for table, entry in unprocessed.items() for key in entry.get("Keys", [])}
        for (table, key_bytes), ticket in tickets.items():
            if (table, key_bytes) not in unprocessed_bytes:
                items_cache.fill(table, key_bytes, None, 0, ticket)
        enc = Encoder()
        enc.array_header(2)
        enc.map_header(len(plans))
        for table, schema, paths, _consistent in plans:
            enc.text(table)
            entries = found[table]
            if paths is not None:
                enc.array_header(len(entries))
                for item, _values in entries:
                    answers.projected(enc, item, paths)
            else:
                enc.array_header(2 * len(entries))
                for item, values in entries:
                    enc.bytes_(encode_key(item, schema))
                    enc.bytes_(values)
        enc.map_header(len(unprocessed))
        for table, entry in unprocessed.items():
            enc.text(table)
            keys = entry.get("Keys", [])
            enc.array_header(len(keys))
            for key in keys:
                enc.bytes_(encode_key(key, schemas[table]))
        consumed = answer.get("ConsumedCapacity") or []
        enc.array_header(len(consumed))
        for cc in consumed:
            answers.consumed_capacity(enc, cc)
        return enc.getvalue()

    # --- BatchWriteItem -------------------------------------------------------------
    async def batch_write_item(self, _conn: Any, args: list) -> bytes:
        requests = _map_of(args[0], "RequestItems")
        kwargs = kwargs_of(args[1])
        upstream: dict[str, list] = {}
        schemas: dict[str, list[tuple[str, str]]] = {}
        writes: list[tuple[str, bytes, dict | None]] = []
        for table_arg, flat in requests.items():
            table = text_of(table_arg, "TableName")
            flat = _list_of(flat, "RequestItems entry")
            if len(flat) % 2:
                raise BadArgument("a BatchWriteItem table entry holds key and value pairs")
            schema = schemas[table] = await self.node.key_schemas.of(table)
            entries = upstream[table] = []
            for i in range(0, len(flat), 2):
                key = decode_key(bytes_of(flat[i], "Key"), schema)
                key_bytes = encode_key(key, schema)
                if flat[i + 1] is None:
                    entries.append({"DeleteRequest": {"Key": key}})
                    writes.append((table, key_bytes, None))
                else:
                    item = dict(key)
                    item.update(decode_values(bytes_of(flat[i + 1], "Item"), self.node.registry))
                    entries.append({"PutRequest": {"Item": item}})
                    writes.append((table, key_bytes, item))
        body: dict[str, Any] = {"RequestItems": upstream}
        add_common(body, _rcc_only(kwargs), Expressions())
        answer = await self.call("BatchWriteItem", body)
        unprocessed = answer.get("UnprocessedItems") or {}
        skipped = set()
        for table, entries in unprocessed.items():
            for entry in entries:
                request = entry.get("PutRequest", {}).get("Item") or entry.get("DeleteRequest", {}).get("Key")
                skipped.add((table, encode_key(request, schemas[table])))
        node = self.node
        for table, key_bytes, item in writes:
            if (table, key_bytes) in skipped:
                continue
            if item is None:
                node.write_through(table, key_bytes, None, 0)
            else:
                values = encode_values(item, key_names(schemas[table]), node.registry)
                node.write_through(table, key_bytes, (item, values), len(values))
        enc = Encoder()
        enc.map_header(len(unprocessed))
        for table, entries in unprocessed.items():
            enc.text(table)
            enc.array_header(2 * len(entries))
            names = key_names(schemas[table])
            for entry in entries:
                if "PutRequest" in entry:
                    item = entry["PutRequest"]["Item"]
                    enc.bytes_(encode_key(item, schemas[table]))
                    enc.bytes_(encode_values(item, names, self.node.registry))
                else:
                    enc.bytes_(encode_key(entry["DeleteRequest"]["Key"], schemas[table]))
                    enc.null()
        consumed = answer.get("ConsumedCapacity") or []
        enc.array_header(len(consumed))
        for cc in consumed:
            answers.consumed_capacity(enc, cc)
        metrics = answer.get("ItemCollectionMetrics") or {}
        enc.map_header(len(metrics))
        for table, entries in metrics.items():
            enc.text(table)
            enc.array_header(len(entries))
            for entry in entries:
                answers.item_collection_metrics(enc, entry)
        return enc.getvalue()

    # --- transactions -------------------------------------------------------------
    async def transact_get_items(self, _conn: Any, args: list) -> bytes:
        tables = [text_of(t, "TableName") for t in _list_of(args[0], "TableNames")]
        keys = _list_of(args[1], "Keys")
        projections = _list_of(args[2], "ProjectionExpressions") if args[2] is not None else [None] * len(tables)
        if not (len(tables) == len(keys) == len(projections)):
            raise BadArgument("TransactGetItems' arrays differ in length")
        kwargs = kwargs_of(args[3])
        gets, plans = [], []
        for table, key_arg, projection in zip(tables, keys, projections):
            schema = await self.node.key_schemas.of(table)
            get: dict[str, Any] = {"TableName": table, "Key": decode_key(bytes_of(key_arg, "Key"), schema)}
            paths = None
            if projection is not None:
                exprs = Expressions()
                add_common(get, {Param.PROJECTION: projection}, exprs)
                exprs.apply(get)
                paths = projection_paths(bytes_of(projection, "ProjectionExpression"))
            gets.append({"Get": get})
            plans.append((schema, paths))
        body: dict[str, Any] = {"TransactItems": gets}
        add_common(body, _rcc_only(kwargs), Expressions())
        self.node.statistics.pass_through_reads += len(gets)
        answer = await self.call("TransactGetItems", body)
        enc = Encoder()
        enc.array_header(2)
        responses = answer.get("Responses") or [{} for _ in gets]
        enc.array_header(len(responses))
        for response, (schema, paths) in zip(responses, plans):
            item = response.get("Item")
            if item is None:
                enc.null()
            elif paths is not None:
                answers.projected(enc, item, paths)
            else:
                answers.item_values(enc, item, key_names(schema), self.node.registry)
        answers.transaction_capacity(enc, answer.get("ConsumedCapacity"))
        return enc.getvalue()

    async def transact_write_items(self, _conn: Any, args: list) -> bytes:
        operations = _list_of(args[0], "Operations")
        tables = [text_of(t, "TableName") for t in _list_of(args[1], "TableNames")]
        keys = _list_of(args[2], "Keys")
        n = len(operations)
        values = _list_of(args[3], "Values") if args[3] is not None else [None] * n
        on_failure = _list_of(args[5], "ReturnValuesOnConditionCheckFailure") if args[5] is not None else [None] * n
        conditions = _list_of(args[6], "ConditionExpressions") if args[6] is not None else [None] * n
        updates = _list_of(args[7], "UpdateExpressions") if args[7] is not None else [None] * n
        if not (len(tables) == len(keys) == len(values) == len(on_failure) == len(conditions) == len(updates) == n):
            raise BadArgument("TransactWriteItems' arrays differ in length")
        kwargs = kwargs_of(args[8])
        items, touched = [], []
        for i in range(n):
            action = _TRANSACT_ACTIONS.get(int_of(operations[i], "Operation"))
            if action is None:
                raise BadArgument(f"unknown transaction operation {operations[i]}")
            table = tables[i]
            schema = await self.node.key_schemas.of(table)
            key = decode_key(bytes_of(keys[i], "Key"), schema)
            touched.append((table, encode_key(key, schema)))
            entry: dict[str, Any] = {"TableName": table}
            if action == "Put":
                item = dict(key)
                item.update(decode_values(bytes_of(values[i], "Item"), self.node.registry))
                entry["Item"] = item
            else:
                entry["Key"] = key
            exprs = Expressions()
            expressions: dict[int, Any] = {}
            if conditions[i] is not None:
                expressions[Param.CONDITION] = conditions[i]
            if updates[i] is not None:
                expressions[Param.UPDATE] = updates[i]
            add_common(entry, expressions, exprs)
            exprs.apply(entry)
            if on_failure[i] is not None:
                entry["ReturnValuesOnConditionCheckFailure"] = RETURN_ON_FAILURE.get(
                    int_of(on_failure[i], "ReturnValuesOnConditionCheckFailure"), "NONE")
            items.append({action: entry})
        body: dict[str, Any] = {"TransactItems": items}
        add_common(body, _rcc_only(kwargs), Expressions())
        token = kwargs.get(Param.CLIENT_REQUEST_TOKEN)
        if token is not None:
            body["ClientRequestToken"] = text_of(token, "ClientRequestToken")
        try:
            answer = await self.call("TransactWriteItems", body)
        finally:
            for table, key_bytes in touched:
                self.node.invalidate(table, key_bytes)
        enc = Encoder()
        enc.array_header(3)
        enc.null()
        answers.transaction_capacity(enc, answer.get("ConsumedCapacity"))
        metrics = answer.get("ItemCollectionMetrics") or {}
        enc.map_header(len(metrics))
        for table, entries in metrics.items():
            enc.text(table)
            enc.array_header(len(entries))
            for entry in entries:
                answers.item_collection_metrics(enc, entry)
        return enc.getvalue()
