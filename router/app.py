"""The router application: from an HTTP request to a DynamoDB answer.

This module only dispatches and formats; the work of each action lives in
``router/actions/``.  Checks happen in DynamoDB's order (see mhart/dynalite's
``index.js``, which records live AWS replies):

1. not ``POST`` / foreign content type          -> 404 ``<UnknownOperationException/>``
2. body is not JSON                              -> SerializationException
3. unknown ``X-Amz-Target``                      -> UnknownOperationException
4. missing/odd ``Authorization``                 -> MissingAuthenticationToken /
                                                    IncompleteSignature
5. ``limits.HTTP_INFLIGHT_REQUESTS_MAX`` requests
   of this router already in their action        -> RequestLimitExceeded
6. JSON types, then constraints (``validation``) -> SerializationException / ValidationException
7. the action's semantic checks and its work     -> any ``DynamoError``

Errors are formatted here (``Application._error``) and nowhere else.

Step 5 is where ScyllaDB Alternator sheds load too (after the operation is
known and the signature checked, before any parsing of the request's
content).  DynamoDB answers ``RequestLimitExceeded`` (HTTP 400) when an
account's throughput quota is passed; ``ThrottlingException`` is its answer
to control-plane calls made too fast (CreateTable, UpdateTable, ...), so an
overloaded router uses the former.  The SDKs retry both as throttling (with
backoff) in their standard retry mode.  Only requests that suspend count: one
that completes inline (embedded mode, most of the time) enters and leaves in
the same step, at the cost of one increment and one decrement.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from typing import Any, Awaitable, Callable

import orjson

from meridian.model import limits
from meridian.model.errors import (
    DynamoError,
    IncompleteSignatureException,
    InternalServerError,
    MissingAuthenticationTokenException,
    RequestLimitExceeded,
    SerializationException,
    UnknownOperationException,
)

from .http import Request, Response, status_line
from .validation import validate_request

log = logging.getLogger("meridian.router")

ActionFn = Callable[[Any, dict[str, Any]], Awaitable[Any]]

_JSON_10 = "application/x-amz-json-1.0"
_JSON = "application/json"
_API_PREFIXES = ("DynamoDB_20120810.",)
_UNKNOWN_OPERATION_XML = b"<UnknownOperationException/>\n"
# DynamoDB's own words (its developer guide's table of errors).
_REQUEST_LIMIT_MESSAGE = (
    "Throughput exceeds the current throughput limit for your account. "
    "Please contact AWS Support at https://aws.amazon.com/support request a limit increase"
)


class RequestIds:
    """52-character request ids, like DynamoDB's, without a syscall per request.

    A random prefix is drawn once per process; a counter makes ids unique.
    """

    __slots__ = ("_prefix", "_n")

    def __init__(self) -> None:
        raw = os.urandom(30).hex().upper()  # 60 hex chars, we keep 40
        self._prefix = raw[:40].encode()
        self._n = 0

    def next(self) -> bytes:
        self._n += 1
        return self._prefix + b"%012d" % self._n


class HttpDate:
    """The ``Date`` header, formatted once per second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
        return self._value


class Application:
    """Dispatches parsed requests to actions; encodes answers.

    ``actions`` maps an action name (``GetItem``) to ``async fn(ctx, body)``
    returning either a ``dict`` (serialised with orjson) or ``bytes``
    (already JSON, spliced as they are).  ``ctx`` is the router context
    handed to every action (catalog, storage, ring, region).
    """

    def __init__(
        self,
        ctx: Any,
        actions: dict[str, ActionFn],
        extra_routes: dict[bytes, Callable[[], Awaitable[Response]]] | None = None,
        post_routes: dict[bytes, Callable[[Request], Awaitable[Response]]] | None = None,
        *,
        inflight_max: int = limits.HTTP_INFLIGHT_REQUESTS_MAX,
    ) -> None:
        """``extra_routes``: GET paths; ``post_routes``: POST paths other than
        DynamoDB's ``/`` (the handler gets the request, body included);
        ``inflight_max``: DynamoDB requests in their action at once, beyond
        which the next one gets RequestLimitExceeded."""
        assert inflight_max >= 1
        self.ctx = ctx
        self._actions = {prefix + name: (name, fn) for name, fn in actions.items() for prefix in _API_PREFIXES}
        self._extra_routes = extra_routes or {}
        self._post_routes = post_routes or {}
        self._ids = RequestIds()
        self._date = HttpDate()
        self.errors_by_type: dict[str, int] = {}
        self.inflight_max = inflight_max
        self.inflight = 0  # DynamoDB requests inside their action now (live; for /metrics and tests)

    def __repr__(self) -> str:
        return f"<Application inflight={self.inflight}/{self.inflight_max} errors_by_type={self.errors_by_type}>"

    # --- encoding -------------------------------------------------------------
    def encode(self, response: Response, keep_alive: bool) -> bytes:
        body = response.body
        head = b"".join((
            status_line(response.status),
            b"x-amzn-RequestId: ", self._ids.next(),
            b"\r\nx-amz-crc32: %d" % zlib.crc32(body),
            b"\r\nDate: ", self._date.value(),
            b"\r\nContent-Length: %d\r\n" % len(body),
            response.headers,
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
        ))
        return head + body if body else head

    def _error(self, err: DynamoError, content_type: bytes) -> Response:
        name = err.type_name
        self.errors_by_type[name] = self.errors_by_type.get(name, 0) + 1
        return Response(err.status, orjson.dumps(err.body()), content_type)

    # --- dispatch -------------------------------------------------------------
    async def handle(self, req: Request) -> Response:
        if req.method != b"POST":
            route = self._extra_routes.get(req.path.split(b"?", 1)[0])
            if route is not None and req.method in (b"GET", b"HEAD"):
                return await route()
            if req.method == b"GET" and req.path == b"/":
                # DynamoDB answers its health check on GET /.
                return Response(200, b"healthy: dynamodb.local.meridian ", b"Content-Type: text/plain\r\n")
            return Response(404, _UNKNOWN_OPERATION_XML, b"Content-Type: application/json\r\n")
        if self._post_routes and req.path != b"/":
            post_route = self._post_routes.get(req.path.split(b"?", 1)[0])
            if post_route is not None:
                return await post_route(req)
        content_type = req.content_type
        if content_type == _JSON_10:
            ctype = b"Content-Type: application/x-amz-json-1.0\r\n"
        elif content_type == _JSON or not req.body:
            ctype = b"Content-Type: application/json\r\n"
        else:
            return Response(404, _UNKNOWN_OPERATION_XML, b"Content-Type: application/json\r\n")

        body: Any = None
        if req.body:
            try:
                body = orjson.loads(req.body)
            except orjson.JSONDecodeError:
                return self._error(SerializationException(None), ctype)

        entry = self._actions.get(req.target or "")
        if entry is None:
            return self._error(UnknownOperationException(None), ctype)
        name, fn = entry

        auth_error = _check_authorization(req)
        if auth_error is not None:
            return self._error(auth_error, ctype)

        if body is None:
            return self._error(SerializationException(None), ctype)
        if self.inflight >= self.inflight_max:
            return self._error(RequestLimitExceeded(_REQUEST_LIMIT_MESSAGE), ctype)
        self.inflight += 1
        try:
            validate_request(name, body)
            result = await fn(self.ctx, body)
        except DynamoError as err:
            return self._error(err, ctype)
        except Exception:  # noqa: BLE001 - the boundary: a bug becomes a 500, never a crash
            log.exception("action %s failed", name)
            return self._error(InternalServerError("Internal server error"), ctype)
        finally:
            self.inflight -= 1
        if result.__class__ is bytes:
            return Response(200, result, ctype)
        return Response(200, orjson.dumps(result), ctype)


def _check_authorization(req: Request) -> DynamoError | None:
    """DynamoDB's checks of the Authorization header, short of the signature.

    Meridian does not verify signatures (any credentials work, as with every
    local DynamoDB), but a request must look signed, as DynamoDB demands.
    The last header that passed is remembered: a client that reuses one
    (or the same load generator) skips the parsing.
    """
    auth = req.authorization
    if auth is not None and auth == _last_good_auth[0]:
        return None if req.date else _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ", auth)
    if not auth or auth.strip()[:5] != "AWS4-":
        return MissingAuthenticationTokenException("Request is missing Authentication Token")
    params: dict[str, str] = {}
    for part in "".join(auth.split(" ")[1:]).split(","):
        key, _, value = part.strip().partition("=")
        if value:
            params[key] = value
    msg = ""
    for header in ("Credential", "Signature", "SignedHeaders"):
        if header not in params:
            msg += f"Authorization header requires '{header}' parameter. "
    if not req.date:
        msg += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
    if msg:
        return _incomplete(msg, auth)
    _last_good_auth[0] = auth
    return None


_last_good_auth: list[str | None] = [None]


def _incomplete(msg: str, auth: str) -> IncompleteSignatureException:
    return IncompleteSignatureException(msg + "Authorization=" + auth)
