"""The embedded router's fast path: GetItem and PutItem answered by plain calls.

Why: in ``meridian serve`` the engine answers a read in about 2 µs and a
write without waiting (unless ``--sync``), yet the general path
(``Application.handle``) spends several times that around it: a coroutine
per layer (handler, action, catalog lookup, storage call), the schema walk
over every member of the request, and checks that cannot fail for an
ordinary request.  Here an ordinary GetItem or PutItem is answered inside
``data_received`` by plain function calls.

What it serves: ``POST /`` with a JSON content type, no ``Content-Encoding``,
a ``DynamoDB_20120810.GetItem`` or ``.PutItem`` target, an Authorization
header that passes ``check_authorization``, no signature verification
configured, and a body holding only members the path knows, each of the
right JSON type:

* GetItem: ``TableName``, ``Key``, optional ``ConsistentRead`` and
  ``ReturnConsumedCapacity``;
* PutItem: ``TableName``, ``Item``, optional ``ReturnValues`` (NONE or
  ALL_OLD), ``ReturnConsumedCapacity``, ``ReturnItemCollectionMetrics``;

and a table this router has in its catalog.

Why the answers are the general path's, byte for byte: the fast path runs
the same functions in the same order (``check_authorization``, the schema's
JSON-type check of ``Key``/``Item``, ``validate_item``, ``item_size``, then
``router/actions/items.py``'s ``get_op``/``put_op``, ``prepare_write``,
``get_answer``/``write_answer``, the throttle and the Contributor Insights
hooks around it, and ``Application.failed`` and ``encode``
for the answer), and skips only steps that cannot fail or change anything
for the bodies it accepts: the schema walk over members it checked itself
(a table in the catalog has a name that passes every TableName
constraint), ``check_not_mixed`` and expression compilation (no expression
or legacy member is present), and the coroutines.  Anything else, and any
``DynamoError`` raised before the operation runs, returns None: the request
then takes the general path from its start, and nothing had been done yet.
Once the operation has run, its errors are answered here, as the general
path answers them.

A write in ``--sync`` mode must wait for its group commit: it returns a
coroutine (counted in ``Application.inflight`` while it waits, like any
request that suspends), which ``router/http.py`` drives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.model.ops import ItemResult
from meridian.model.values import item_size, validate_item

from .actions.items import get_answer, get_op, metering, prepare_write, put_op, write_answer
from .app import Application, check_authorization
from .contributors import THROTTLED
from .http import Request, Response
from .throttle import READ, WRITE
from .validation_types import compile_types

__all__ = ["FastPath", "fast_path_for"]

_JSON_10 = "application/x-amz-json-1.0"
_JSON = "application/json"
_CTYPE_JSON_10 = b"Content-Type: application/x-amz-json-1.0\r\n"
_CTYPE_JSON = b"Content-Type: application/json\r\n"
_GET_TARGET = "DynamoDB_20120810.GetItem"
_PUT_TARGET = "DynamoDB_20120810.PutItem"

_GET_MEMBERS = frozenset({"TableName", "Key", "ConsistentRead", "ReturnConsumedCapacity"})
_PUT_MEMBERS = frozenset({"TableName", "Item", "ReturnValues", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"})
_CAPACITY = frozenset({"INDEXES", "TOTAL", "NONE"})
_COLLECTION_METRICS = frozenset({"SIZE", "NONE"})
_PUT_RETURN_VALUES = frozenset({"NONE", "ALL_OLD"})  # the two PutItem accepts; others take the general path
#: Every constraint the schema puts on an item action's TableName (pattern,
#: 3 to 255 characters, not empty).  Names in the catalog passed CreateTable's
#: stricter checks already; this keeps the argument local and costs ~0.1 µs.
_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.-]{%d,%d}" % (limits.TABLE_NAME_LENGTH_MIN, limits.TABLE_NAME_LENGTH_MAX))

#: The schema's JSON-type check of a ``Key`` or ``Item`` member (a map of
#: AttributeValues, not inside a collection): the function the general
#: path's validator runs on them (``router/validation_types.py``).
_check_attribute_map = compile_types({"type": "map", "value": {"type": "attribute_value"}}, False)

Answer = Response | Coroutine[Any, Any, Response] | None


def _enum_or_absent(body: dict[str, Any], member: str, allowed: frozenset[str]) -> bool:
    """``member`` is absent or one of ``allowed``; a JSON null (which the general path drops) is neither."""
    value = body.get(member)
    return value is None and member not in body or type(value) is str and value in allowed


class FastPath:
    """``fast(request)`` for ``HttpProtocol``: the answer, a coroutine, or None (take the general path)."""

    __slots__ = ("_app", "_ctx", "_catalog", "_execute_now", "_settle")

    def __init__(self, app: Application, execute_now: Callable[..., Any], settle: Callable[..., Any]) -> None:
        self._app = app
        self._ctx = app.ctx
        self._catalog = app.ctx.catalog
        self._execute_now = execute_now
        self._settle = settle

    def __call__(self, req: Request) -> Answer:
        if req.method != b"POST" or req.path != b"/" or req.content_encoding is not None:
            return None
        target = req.target
        if target == _GET_TARGET:
            serve = self._get_item
        elif target == _PUT_TARGET:
            serve = self._put_item
        else:
            return None
        content_type = req.content_type
        if content_type == _JSON_10:
            ctype = _CTYPE_JSON_10
        elif content_type == _JSON:
            ctype = _CTYPE_JSON
        else:
            return None
        raw = req.body
        app = self._app
        if not raw or check_authorization(req) is not None or app.inflight >= app.inflight_max:
            return None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if type(body) is not dict:
            return None
        return serve(body, ctype)

    # --- GetItem ------------------------------------------------------------------
    def _get_item(self, body: dict[str, Any], ctype: bytes) -> Answer:
        if not body.keys() <= _GET_MEMBERS:
            return None
        if len(body) > 2:
            consistent = body.get("ConsistentRead", False)
            if type(consistent) is not bool or not _enum_or_absent(body, "ReturnConsumedCapacity", _CAPACITY):
                return None
        name, key_in = body.get("TableName"), body.get("Key")
        if type(name) is not str or type(key_in) is not dict or _TABLE_NAME.fullmatch(name) is None:
            return None
        table = self._catalog.get_cached(name)
        if table is None:
            return None
        try:
            _check_attribute_map(key_in)
            key_in = validate_item(key_in, context="key")
            _node, op = get_op(self._ctx, table, key_in, None, None, False)
        except DynamoError:
            return None
        throttle = metering(self._ctx)
        key_hash = None
        try:
            if throttle is not None:
                key_hash = throttle.key_hash(table, op.key_item)
                try:
                    if not throttle.admit_now(table, READ, key_hash=key_hash):
                        return None  # a lease to await: the general path does
                except THROTTLED:
                    self._ctx.contributors.throttled(table, op.key_item)
                    raise
            result, durable = self._execute_now(op)
            if durable is not None:
                return self._get_later(body, ctype, table, result, durable, throttle, key_hash, op.key_item)
            insights = self._ctx.contributors if table.contributor_insights else None
            return Response(200, get_answer(body, table, result, throttle, key_hash, insights, op.key_item), ctype)
        except Exception as exc:  # noqa: BLE001 - answered as the general path answers it
            return self._app.failed("GetItem", exc, ctype)

    async def _get_later(self, body: dict[str, Any], ctype: bytes, table: Any, result: ItemResult,
                         durable: Any, throttle: Any, key_hash: int | None, key: dict[str, Any]) -> Response:
        """A read of a write still being committed (``--sync``): answered once it is durable."""
        app = self._app
        app.inflight += 1
        try:
            result = await self._settle(result, durable)
            insights = self._ctx.contributors if table.contributor_insights else None
            return Response(200, get_answer(body, table, result, throttle, key_hash, insights, key), ctype)
        except Exception as exc:  # noqa: BLE001 - answered as the general path answers it
            return app.failed("GetItem", exc, ctype)
        finally:
            app.inflight -= 1

    # --- PutItem ------------------------------------------------------------------
    def _put_item(self, body: dict[str, Any], ctype: bytes) -> Answer:
        if not body.keys() <= _PUT_MEMBERS:
            return None
        if len(body) > 2 and not (
            _enum_or_absent(body, "ReturnValues", _PUT_RETURN_VALUES)
            and _enum_or_absent(body, "ReturnConsumedCapacity", _CAPACITY)
            and _enum_or_absent(body, "ReturnItemCollectionMetrics", _COLLECTION_METRICS)
        ):
            return None
        name, item_in = body.get("TableName"), body.get("Item")
        if type(name) is not str or type(item_in) is not dict or _TABLE_NAME.fullmatch(name) is None:
            return None
        table = self._catalog.get_cached(name)
        if table is None:
            return None
        try:
            _check_attribute_map(item_in)
            item = validate_item(item_in)
            size = item_size(item)
            if size > limits.ITEM_SIZE_BYTES_MAX:
                return None
            key, _node, op = put_op(self._ctx, body, table, item, size, (None, None, None), False)
        except DynamoError:
            return None
        throttle = metering(self._ctx)
        key_hash = None
        try:
            if throttle is not None:
                key_hash = throttle.key_hash(table, key)
                try:
                    # the item: its global index partitions' ceilings (nothing to do without indexes)
                    if not throttle.admit_now(table, WRITE, key_hash=key_hash, item=item):
                        return None  # a lease to await: the general path does
                except THROTTLED:
                    self._ctx.contributors.throttled(table, key, item=item)
                    raise
            indexed, requested = prepare_write(body, table, op, throttle)
            result, durable = self._execute_now(op)
            if durable is not None:
                return self._put_later(body, ctype, table, key, item, indexed, requested, result, durable,
                                       throttle, key_hash)
            insights = self._ctx.contributors if table.contributor_insights else None
            return Response(200, write_answer(body, table, key, result, item, indexed, requested, None,
                                              throttle, key_hash, insights), ctype)
        except Exception as exc:  # noqa: BLE001 - answered as the general path answers it
            return self._app.failed("PutItem", exc, ctype)

    async def _put_later(self, body: dict[str, Any], ctype: bytes, table: Any, key: dict[str, Any],
                         item: dict[str, Any], indexed: bool, requested: Any, result: ItemResult,
                         durable: Any, throttle: Any, key_hash: int | None) -> Response:
        """A write in ``--sync`` mode: answered once its group commit is durable."""
        app = self._app
        app.inflight += 1
        try:
            result = await self._settle(result, durable)
            insights = self._ctx.contributors if table.contributor_insights else None
            return Response(200, write_answer(body, table, key, result, item, indexed, requested, None,
                                              throttle, key_hash, insights), ctype)
        except Exception as exc:  # noqa: BLE001 - answered as the general path answers it
            return app.failed("PutItem", exc, ctype)
        finally:
            app.inflight -= 1


def fast_path_for(app: Application, storage: Any) -> FastPath | None:
    """The fast path over ``storage`` when it can run an operation without a
    coroutine (``EmbeddedStorage.immediate``) and signatures are not verified
    (``sigv4.verify`` needs every header, which the fast path does not check)."""
    immediate = getattr(storage, "immediate", None)
    halves = immediate() if immediate is not None else None
    if halves is None or app.credentials is not None:
        return None
    execute_now, settle = halves
    return FastPath(app, execute_now, settle)
