"""The router application: from an HTTP request to a DynamoDB answer.

This module only dispatches and formats; the work of each action lives in
``router/actions/``.  Checks happen in DynamoDB's order (see mhart/dynalite's
``index.js``, which records live AWS replies):

0. ``OPTIONS`` with ``Origin`` (CORS preflight)  -> 200 with the CORS headers;
   ``GET /``                                     -> 200 ``healthy: <Host> `` (DynamoDB's health check)
1. not ``POST`` / foreign content type          -> 404 ``<UnknownOperationException/>``
   ``Content-Encoding`` unknown, broken, empty   -> 500 InternalServerError (DynamoDB's answer);
   decompressed past HTTP_REQUEST_BYTES_MAX      -> 413, empty (guess: DynamoDB's status here differs by front)
2. body is not JSON                              -> SerializationException
3. unknown ``X-Amz-Target``                      -> UnknownOperationException
   (``DynamoDB_20120810.<Action>``, and ``DynamoDBStreams_20120810.<Action>``
   for the DynamoDB Streams API, served on the same endpoint; ``AmazonDAXV3.<Action>``
   for the DAX control plane, JSON 1.1, its faults bare ``__type`` names)
4. missing/odd ``Authorization``                 -> MissingAuthenticationToken /
                                                    IncompleteSignature;
   with ``credentials``: the SigV4 signature      -> ``sigv4.verify``'s checks, in DynamoDB's
   (over the body as sent, still compressed)         order (InvalidSignature, UnrecognizedClient, ...)
5. ``limits.HTTP_INFLIGHT_REQUESTS_MAX`` requests
   of this router already in their action        -> RequestLimitExceeded
6. JSON types, then constraints (``validation``) -> SerializationException / ValidationException
7. the action's semantic checks and its work     -> any ``DynamoError``

Errors are formatted here (``Application._error``) and nowhere else.

Every answer is encoded here too (``Application.encode``), with the request
it answers: ``Server: Server`` as DynamoDB sends it, the CORS headers when
the request came with an ``Origin`` (allowed origins: ``cors_origins``), and
the body compressed when the client accepts gzip/deflate and the body is at
least ``limits.HTTP_RESPONSE_COMPRESS_BYTES_MIN`` (``x-amz-crc32`` is then
over the compressed bytes, as botocore checks it).  Nothing of this runs for
an ordinary small request beyond two attribute tests.

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

from . import sigv4
from .content_coding import BadEncoding, BodyTooLarge, choose_coding, compress, decode_body
from .http import Request, Response, status_line
from .validation import validate_request, validate_stream_request

log = logging.getLogger("meridian.router")

ActionFn = Callable[[Any, dict[str, Any]], Awaitable[Any]]

_JSON_10 = "application/x-amz-json-1.0"
_JSON = "application/json"
_API_PREFIXES = ("DynamoDB_20120810.",)
_STREAMS_PREFIX = "DynamoDBStreams_20120810."
_DAX_PREFIX = "AmazonDAXV3."
_JSON_11 = "application/x-amz-json-1.1"  # the DAX control plane's (router/actions/dax_control.py)
_UNKNOWN_OPERATION_XML = b"<UnknownOperationException/>\n"
# CORS: the response headers a browser script may read (what the JavaScript SDKs look at).
_CORS_EXPOSE = b"Access-Control-Expose-Headers: x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amz-crc32,Date\r\n"
# DynamoDB's own words (its developer guide's table of errors).
_REQUEST_LIMIT_MESSAGE = (
    "Throughput exceeds the current throughput limit for your account. "
    "Please contact AWS Support at https://aws.amazon.com/support request a limit increase"
)


# An answer's head, in one formatting step: status line, Server, request id,
# CRC32 of the body, Date, Content-Length, the response's own headers, then
# "Connection: close" or nothing, the blank line and the body.
_HEAD = (b"%sServer: Server\r\nx-amzn-RequestId: %s%012d\r\nx-amz-crc32: %d\r\nDate: %s\r\n"
         b"Content-Length: %d\r\n%s%s\r\n%s")
_STATUS_LINES = {status: status_line(status) for status in (200, 400, 404, 413, 500)}
_CONNECTION_CLOSE = b"Connection: close\r\n"


class RequestIds:
    """52-character request ids, like DynamoDB's, without a syscall per request.

    A random prefix is drawn once per process; a counter makes ids unique.
    """

    __slots__ = ("_prefix", "_n")

    def __init__(self) -> None:
        raw = os.urandom(30).hex().upper()  # 60 hex chars, we keep 40
        self._prefix = raw[:40].encode()
        self._n = 0

    def take(self) -> tuple[bytes, int]:
        """The next id as its prefix and counter (``encode`` formats them in place: ``%s%012d``)."""
        self._n += 1
        return self._prefix, self._n


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
    ``stream_actions``: the same for the DynamoDB Streams API
    (``ListStreams`` ...), served under its own target prefix;
    ``dax_actions``: the DAX control plane's (``CreateCluster`` ...), which
    check their own requests (``router/dax/control_faults.py``).
    """

    def __init__(
        self,
        ctx: Any,
        actions: dict[str, ActionFn],
        extra_routes: dict[bytes, Callable[[], Awaitable[Response]]] | None = None,
        post_routes: dict[bytes, Callable[[Request], Awaitable[Response]]] | None = None,
        *,
        inflight_max: int = limits.HTTP_INFLIGHT_REQUESTS_MAX,
        cors_origins: str | list[str] = "*",
        credentials: dict[str, sigv4.Credential] | None = None,
        stream_actions: dict[str, ActionFn] | None = None,
        dax_actions: dict[str, ActionFn] | None = None,
    ) -> None:
        """``extra_routes``: GET paths; ``post_routes``: POST paths other than
        DynamoDB's ``/`` (the handler gets the request, body included);
        ``inflight_max``: DynamoDB requests in their action at once, beyond
        which the next one gets RequestLimitExceeded; ``cors_origins``: the
        browser origins allowed to call, ``"*"`` (any, DynamoDB's answer) or a
        list of exact origins (``https://app.example.com``), or ``[]``: no
        CORS headers at all; ``credentials``: access key -> ``sigv4.Credential``,
        every DynamoDB request's signature verified against them (the
        protocol must then be ``HttpProtocolAllHeaders``); None: any
        signature passes."""
        assert inflight_max >= 1
        self.ctx = ctx
        self._actions = {
            prefix + name: (name, fn, validate_request) for name, fn in actions.items() for prefix in _API_PREFIXES
        }
        for name, fn in (stream_actions or {}).items():
            self._actions[_STREAMS_PREFIX + name] = (name, fn, validate_stream_request)
        for name, fn in (dax_actions or {}).items():
            self._actions[_DAX_PREFIX + name] = (name, fn, _checked_by_action)
        self._extra_routes = extra_routes or {}
        self._post_routes = post_routes or {}
        self._ids = RequestIds()
        self._date = HttpDate()
        self.errors_by_type: dict[str, int] = {}
        self.inflight_max = inflight_max
        self.inflight = 0  # DynamoDB requests inside their action now (live; for /metrics and tests)
        self.cors_origins: frozenset[str] | None = None if cors_origins == "*" else frozenset(cors_origins)
        self.credentials = credentials or None
        self.signing_keys = sigv4.SigningKeys()

    def __repr__(self) -> str:
        return f"<Application inflight={self.inflight}/{self.inflight_max} errors_by_type={self.errors_by_type}>"

    # --- encoding -------------------------------------------------------------
    def encode(self, response: Response, request: Request | None) -> bytes:
        """The bytes of one answer to ``request`` (None: a protocol failure; the connection closes)."""
        body = response.body
        headers = response.headers
        if request is None:
            keep_alive = False
        else:
            keep_alive = request.keep_alive
            if len(body) >= limits.HTTP_RESPONSE_COMPRESS_BYTES_MIN and request.accept_encoding and response.status == 200:
                # Only successful answers: DynamoDB was seen sending large errors uncompressed.
                coding = choose_coding(request.accept_encoding)
                if coding is not None:
                    body = compress(body, coding)
                    headers += b"Content-Encoding: %s\r\n" % coding.encode()
            if request.origin is not None:
                headers += self._cors_headers(request.origin)
        status = response.status
        prefix, n = self._ids.take()
        return _HEAD % (
            _STATUS_LINES.get(status) or status_line(status), prefix, n, zlib.crc32(body), self._date.value(),
            len(body), headers, b"" if keep_alive else _CONNECTION_CLOSE, body,
        )

    def _cors_headers(self, origin: str) -> bytes:
        """The CORS headers of any answer to a request from ``origin``; none if it is not allowed."""
        allowed = self.cors_origins
        if allowed is None:
            return b"Access-Control-Allow-Origin: *\r\n" + _CORS_EXPOSE
        if origin in allowed:
            return b"Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n%s" % (origin.encode("latin-1"), _CORS_EXPOSE)
        return b"Vary: Origin\r\n"

    def _preflight(self, req: Request) -> Response:
        """``OPTIONS`` from a browser: allow what it asks for (``encode`` adds the origin).

        As DynamoDB does, the requested method and headers are echoed back
        as allowed (the SigV4 headers a browser SDK sends vary by version).
        """
        extra = [b"Access-Control-Max-Age: %d\r\n" % limits.HTTP_CORS_MAX_AGE_S]
        if req.cors_method is not None:
            extra.append(b"Access-Control-Allow-Methods: %s\r\n" % req.cors_method.encode("latin-1"))
        if req.cors_headers is not None:
            extra.append(b"Access-Control-Allow-Headers: %s\r\n" % req.cors_headers.encode("latin-1"))
        return Response(200, b"", b"".join(extra))

    def _health(self, req: Request) -> Response:
        """DynamoDB's ``GET /``: ``healthy: `` and the host the client addressed."""
        host = req.host
        if not host:  # HTTP/1.0 without Host: name the region's endpoint (guess)
            host = f"dynamodb.{getattr(self.ctx, 'region', 'local')}.amazonaws.com"
        return Response(200, b"healthy: %s " % host.encode("latin-1"), b"Content-Type: text/plain\r\n")

    def _error(self, err: DynamoError, content_type: bytes) -> Response:
        name = err.type_name
        self.errors_by_type[name] = self.errors_by_type.get(name, 0) + 1
        return Response(err.status, orjson.dumps(err.body()), content_type)

    def failed(self, action: str, exc: Exception, content_type: bytes) -> Response:
        """The answer to an action that raised ``exc``: its DynamoError, or a
        500 for anything else (a bug: logged, never a crash)."""
        if isinstance(exc, DynamoError):
            return self._error(exc, content_type)
        log.error("action %s failed", action, exc_info=exc)
        return self._error(InternalServerError("Internal server error"), content_type)

    # --- dispatch -------------------------------------------------------------
    async def invoke(self, name: str, body: dict[str, Any]) -> Any:
        """Run one DynamoDB action in-process (the DAX front, ``router/dax/``):
        validated as over HTTP (step 6, then 7); raises its ``DynamoError``."""
        entry = self._actions.get(_API_PREFIXES[0] + name)
        if entry is None:
            raise UnknownOperationException(None)
        _name, fn, validate = entry
        validate(name, body)
        result = await fn(self.ctx, body)
        return orjson.loads(result) if result.__class__ is bytes else result

    async def handle(self, req: Request) -> Response:
        if req.method != b"POST":
            if req.method == b"OPTIONS" and req.origin is not None:
                return self._preflight(req)
            route = self._extra_routes.get(req.path.split(b"?", 1)[0])
            if route is not None and req.method in (b"GET", b"HEAD"):
                return await route()
            if req.method == b"GET" and req.path == b"/":
                return self._health(req)
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
        elif content_type == _JSON_11 and (req.target or "").startswith(_DAX_PREFIX):
            ctype = b"Content-Type: application/x-amz-json-1.1\r\n"
        else:
            return Response(404, _UNKNOWN_OPERATION_XML, b"Content-Type: application/json\r\n")

        raw = req.body
        if req.content_encoding is not None:
            try:
                raw = decode_body(req.content_encoding, raw, limits.HTTP_REQUEST_BYTES_MAX)
            except BadEncoding:
                # DynamoDB answers 500 to an unknown coding and to broken or empty compressed data.
                return self._error(InternalServerError("Internal server error"), ctype)
            except BodyTooLarge:
                return Response(413, b"")
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return self._error(SerializationException(None), ctype)

        entry = self._actions.get(req.target or "")
        if entry is None:
            return self._error(UnknownOperationException(None), ctype)
        name, fn, validate = entry

        auth_error = check_authorization(req)
        if auth_error is None and self.credentials is not None:
            auth_error = self._verify_signature(req)
        if auth_error is not None:
            return self._error(auth_error, ctype)

        if body is None:
            return self._error(SerializationException(None), ctype)
        if self.inflight >= self.inflight_max:
            return self._error(RequestLimitExceeded(_REQUEST_LIMIT_MESSAGE), ctype)
        self.inflight += 1
        try:
            validate(name, body)
            result = await fn(self.ctx, body)
        except Exception as exc:  # noqa: BLE001 - the boundary: a bug becomes a 500, never a crash
            return self.failed(name, exc, ctype)
        finally:
            self.inflight -= 1
        if result.__class__ is bytes:
            return Response(200, result, ctype)
        return Response(200, orjson.dumps(result), ctype)

    def _verify_signature(self, req: Request) -> DynamoError | None:
        """The SigV4 check (``sigv4.verify``) over the request as it was sent."""
        assert self.credentials is not None and req.headers is not None, "credentials need HttpProtocolAllHeaders"
        path, _, query = req.path.partition(b"?")
        return sigv4.verify(
            method=req.method.decode("latin-1"), path=path.decode("latin-1"), query=query.decode("latin-1"),
            headers=req.headers, body=req.body, credentials=self.credentials, now=time.time(), keys=self.signing_keys,
            service="dax" if (req.target or "").startswith(_DAX_PREFIX) else sigv4.SERVICE,
        )  # fmt: skip


def _checked_by_action(name: str, body: Any) -> None:
    """The DAX control plane's actions check their requests themselves."""


_SIGNATURE_PART = ", Signature="


def check_authorization(req: Request) -> DynamoError | None:
    """DynamoDB's checks of the Authorization header, short of the signature.

    Without ``--credentials`` Meridian does not verify signatures (any
    credentials work, as with every local DynamoDB), but a request must look
    signed, as DynamoDB demands; with them ``sigv4.verify`` follows.

    The parse is skipped for a header seen to pass just before, and for one
    that differs from the last passing one only in its signature: an SDK
    signs every request differently, but ``AWS4-HMAC-SHA256 Credential=...,
    SignedHeaders=...`` stays the same for a client.  Such a header is that
    prefix, ``, Signature=`` and a signature of letters and digits only (no
    space, comma or ``=``), so the parse would find the prefix's parameters
    plus ``Signature``: the same verdict, for ~0.3 µs instead of ~1.4.
    """
    auth = req.authorization
    if auth is not None and (auth == _last_good_auth[0] or _same_but_signature(auth)):
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
    at = auth.rfind(_SIGNATURE_PART)
    if at > 0 and auth[at + len(_SIGNATURE_PART):].isalnum():
        _last_good_auth[1] = auth[:at]
    return None


def _same_but_signature(auth: str) -> bool:
    """``auth`` is the last passing header's prefix, ``, Signature=`` and letters and digits."""
    at = auth.rfind(_SIGNATURE_PART)
    return at > 0 and auth[:at] == _last_good_auth[1] and auth[at + len(_SIGNATURE_PART):].isalnum()


#: The last Authorization header that passed, and its part before ``, Signature=``.
_last_good_auth: list[str | None] = [None, None]


def _incomplete(msg: str, auth: str) -> IncompleteSignatureException:
    return IncompleteSignatureException(msg + "Authorization=" + auth)
