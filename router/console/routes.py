"""``/console``: the web console's page, its assets and its JSON API.

    GET  /console                    the page (index.html; app.js and app.css beside it)
    GET  /console/api/overview       region, nodes, whether replication is configured, Meridian's version
    GET  /console/api/tables         every table with its description's essentials
    GET  /console/api/items?table=T&limit=N&start=K
                                     one Scan page (K: the previous page's LastEvaluatedKey, JSON)
    GET  /console/api/replication    links, backlog and latency per region pair (503 without a replicator)
    GET  /console/api/events         every region's control events, oldest first
    GET  /console/api/capacity       per table: billing mode, provisioned (or on-demand maximum) units,
                                     units consumed and requests throttled through this router (cumulative)
    GET  /console/api/contributors?table=T
                                     Contributor Insights of T and its global indexes: status, mode, and
                                     each rule's top keys through this router (most accessed, most throttled)
    GET  /console/api/dax            per DAX node of this router (``--dax-port``, DAX clusters): URL, item and
                                     query cache hits and misses, evicted and cached bytes, connections,
                                     requests per method (cumulative; ``console/dax.py``)
    POST /console/api/link           {"action": cut|heal|set, "source", "target", ...}

``console_handler`` wraps the application's handler: paths under
``/console`` come here (with their query string and body, which the
application's extra routes do not get), every other request goes on to
``Application.handle`` untouched, without an extra coroutine frame.

Assets are read once, when the router starts; the page's footer gets the
running Meridian's version (``__MERIDIAN_VERSION__`` in index.html) when
the page is first asked for, so that looking the version up (~10 ms of
``importlib.metadata``) is not part of a server's start-up.
Every page answer carries a Content-Security-Policy allowing nothing but
this router (no inline script, nothing from elsewhere), on top of the page
itself never inserting data as HTML.  A POST must be ``application/json``, which a cross-site form cannot
send, so another site open in the same browser cannot cut links.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import orjson

from meridian.model import limits
from meridian.model.errors import DynamoError

from ..actions.contributor_insights import console_view as contributors_view
from ..context import RouterContext
from ..contributors import enabled_entries
from ..http import Request, Response
from ..throttle import READ, WRITE
from .dax import dax_state
from .replication import ConsoleError, ReplicationView
from .tables import list_tables, page_limit, scan_page

log = logging.getLogger("meridian.router.console")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

CONSOLE_PATH = b"/console"
_ASSETS = {
    "index.html": b"text/html; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "app.css": b"text/css; charset=utf-8",
}
_CSP = (
    b"Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
)
_COMMON = b"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
_JSON = b"Content-Type: application/json\r\n" + _COMMON


_VERSION_MARK = b"__MERIDIAN_VERSION__"


def _version() -> str:
    from meridian import __version__

    return __version__


def _load_assets() -> dict[bytes, Response]:
    folder = resources.files(__package__)
    out = {}
    for name, content_type in _ASSETS.items():
        body = folder.joinpath(name).read_bytes()
        out[CONSOLE_PATH + b"/" + name.encode()] = Response(200, body, b"Content-Type: " + content_type + b"\r\n" + _COMMON + _CSP)
    out[CONSOLE_PATH] = out[CONSOLE_PATH + b"/"] = out[CONSOLE_PATH + b"/index.html"]
    return out


def _json(status: int, body: Any) -> Response:
    return Response(status, orjson.dumps(body), _JSON)


def _message(status: int, message: str) -> Response:
    return _json(status, {"message": message})


class Console:
    """The console's routes over one router's context (and its region's replicator, if any)."""

    def __init__(self, ctx: RouterContext, replicator: str | None) -> None:
        self._ctx = ctx
        self._assets = _load_assets()
        self._versioned = False  # the page's footer names the version (``_version_page``)
        self._replication = ReplicationView(ctx.region, replicator, ctx.catalog) if replicator else None
        self._get: dict[bytes, Callable[[dict[str, str]], Awaitable[Response]]] = {
            b"/console/api/overview": self._overview,
            b"/console/api/tables": self._tables,
            b"/console/api/items": self._items,
            b"/console/api/replication": self._replication_state,
            b"/console/api/events": self._events,
            b"/console/api/contributors": self._contributors,
            b"/console/api/capacity": self._capacity,
            b"/console/api/dax": self._dax,
        }
        self._post: dict[bytes, Callable[[Any], Awaitable[Response]]] = {b"/console/api/link": self._link}

    def owns(self, path: bytes) -> bool:
        """Whether a request path is the console's (``/console``, ``/console/...``, ``/console?...``)."""
        return path.startswith(CONSOLE_PATH) and path[len(CONSOLE_PATH) : len(CONSOLE_PATH) + 1] in (b"", b"/", b"?")

    async def handle(self, req: Request) -> Response:
        path, _, query = req.path.partition(b"?")
        try:
            if req.method == b"GET":
                asset = self._assets.get(path)
                if asset is not None:
                    if not self._versioned:
                        self._version_page()
                        asset = self._assets[path]
                    return asset
                route = self._get.get(path)
                if route is None:
                    return _message(404, "no such console page")
                params = {k: v[-1] for k, v in parse_qs(query.decode("latin-1"), encoding="utf-8").items()}
                return await route(params)
            if req.method == b"POST":
                route = self._post.get(path)
                if route is None:
                    return _message(404, "no such console action")
                if not (req.content_type or "").startswith("application/json"):
                    return _message(415, "a console action is a JSON body (Content-Type: application/json)")
                try:
                    body = orjson.loads(req.body)
                except orjson.JSONDecodeError:
                    return _message(400, "the body is not JSON")
                return await route(body)
            return Response(405, orjson.dumps({"message": "GET or POST only"}), _JSON + b"Allow: GET, POST\r\n")
        except ConsoleError as exc:
            return _message(exc.status, exc.message)
        except DynamoError as err:  # what a client would have been told
            return _json(err.status, err.body())
        except Exception:  # noqa: BLE001 - the boundary: a bug is a 500, never a dropped connection
            log.exception("console request %r failed", path)
            return _message(500, "internal error: see the router's log")

    def _version_page(self) -> None:
        """Put the running version in the page's footer, once."""
        page = self._assets[CONSOLE_PATH]
        body = page.body.replace(_VERSION_MARK, html.escape(_version()).encode())
        versioned = Response(page.status, body, page.headers)
        for path, asset in list(self._assets.items()):
            if asset is page:
                self._assets[path] = versioned
        self._versioned = True

    # --- tables and items ----------------------------------------------------
    async def _overview(self, params: dict[str, str]) -> Response:
        ctx = self._ctx
        body: dict[str, Any] = {"region": ctx.region, "nodes": len(ctx.storage.node_ids),
                                "replication": self._replication is not None, "version": _version()}  # fmt: skip
        if self._replication is not None:
            try:
                body["regions"] = await self._replication.regions()
            except ConsoleError as exc:
                body["regions"], body["replication_error"] = [ctx.region], exc.message
        else:
            body["regions"] = [ctx.region]
        return _json(200, body)

    async def _tables(self, params: dict[str, str]) -> Response:
        return _json(200, await list_tables(self._ctx))

    async def _items(self, params: dict[str, str]) -> Response:
        table = params.get("table")
        if not table:
            return _message(400, "table is required")
        try:
            limit = page_limit(params.get("limit"))
        except ValueError:
            return _message(400, "limit must be a positive whole number")
        start = None
        if params.get("start"):
            try:
                start = orjson.loads(params["start"])
            except orjson.JSONDecodeError:
                return _message(400, "start must be a LastEvaluatedKey in JSON")
        return _json(200, await scan_page(self._ctx, table, limit, start))

    async def _contributors(self, params: dict[str, str]) -> Response:
        table = params.get("table")
        if not table:
            return _message(400, "table is required")
        return _json(200, await contributors_view(self._ctx, table))

    # --- replication ---------------------------------------------------------
    def _need_replication(self) -> ReplicationView:
        if self._replication is None:
            raise ConsoleError(503, "replication is not configured: this router has no replicator (single region or meridian serve)")
        return self._replication

    async def _replication_state(self, params: dict[str, str]) -> Response:
        if self._replication is None:
            return _json(200, {"configured": False, "region": self._ctx.region, "regions": [self._ctx.region],
                               "links": [], "latency": [], "errors": {}})  # fmt: skip
        return _json(200, await self._replication.state())

    async def _events(self, params: dict[str, str]) -> Response:
        if self._replication is None:
            return _json(200, {"events": [], "errors": {}})
        return _json(200, await self._replication.events())

    async def _link(self, body: Any) -> Response:
        return _json(200, await self._need_replication().change_link(body))

    # --- capacity ------------------------------------------------------------
    async def _capacity(self, params: dict[str, str]) -> Response:
        return _json(200, capacity_state(self._ctx))

    # --- DAX -----------------------------------------------------------------
    async def _dax(self, params: dict[str, str]) -> Response:
        return _json(200, dax_state(self._ctx))


def _maximum(units: int | None) -> int | None:
    """An on-demand maximum as DynamoDB shows it: None when there is none (-1 or absent)."""
    return units if units is not None and units > 0 else None


def capacity_state(ctx: RouterContext) -> dict[str, Any]:
    """Per table (by name, up to ``limits.CONSOLE_TABLES_MAX``): its billing mode,
    its provisioned units (or on-demand maxima) and this router's cumulative
    counters (``router/throttle.py``: units consumed, requests throttled, as on
    ``/metrics``), and whether Contributor Insights ranks its keys (the
    table or an index: the page then asks ``/console/api/contributors``).  The page turns the counters into per-second series; a
    region's figure is the sum over its routers.  ``throttling`` is False
    (and the counters null) when this router meters nothing (``--no-throttling``).
    ``t``: this router's clock when the counters were read, so the page divides
    by the time between two readings, not between two answers."""
    throttle = ctx.throttle
    metering = throttle is not None and throttle.enabled
    tables = sorted(ctx.catalog.tables(), key=lambda table: table.name)
    out = []
    for table in tables[: limits.CONSOLE_TABLES_MAX]:
        provisioned = table.billing_mode == "PROVISIONED"
        row: dict[str, Any] = {
            "name": table.name,
            "billing_mode": table.billing_mode,
            "provisioned_read_units": table.read_capacity if provisioned else None,
            "provisioned_write_units": table.write_capacity if provisioned else None,
            "max_read_units": None if provisioned else _maximum(table.on_demand_max_read_units),
            "max_write_units": None if provisioned else _maximum(table.on_demand_max_write_units),
            "consumed_read_units": None, "consumed_write_units": None,
            "read_throttle_events": None, "write_throttle_events": None,
            "contributor_insights": bool(enabled_entries(table)),
        }  # fmt: skip
        if metering:
            row["consumed_read_units"] = throttle.consumed[READ].get(table.table_id, 0.0)
            row["consumed_write_units"] = throttle.consumed[WRITE].get(table.table_id, 0.0)
            row["read_throttle_events"] = throttle.throttled.get((table.name, READ), 0)
            row["write_throttle_events"] = throttle.throttled.get((table.name, WRITE), 0)
        out.append(row)
    return {"region": ctx.region, "throttling": metering, "t": time.time(), "tables": out,
            "truncated": len(tables) > limits.CONSOLE_TABLES_MAX}  # fmt: skip


def console_handler(handle: Handler, ctx: RouterContext, replicator: str | None) -> Handler:
    """``handle`` with ``/console`` answered by the console."""
    console = Console(ctx, replicator)
    owns, console_handle = console.owns, console.handle
    prefix, prefix_len = CONSOLE_PATH, len(CONSOLE_PATH)  # locals: every request passes here

    def dispatch(req: Request) -> Coroutine[Any, Any, Response]:
        if req.path[:prefix_len] == prefix and owns(req.path):
            return console_handle(req)
        return handle(req)

    return dispatch
