"""HTTP/1.1 for the router: an ``asyncio.Protocol`` over httptools.

Why not a framework: on this machine aiohttp, uvicorn, granian and socketify
spent more CPU per request than a whole GetItem is allowed (about 35 µs);
a bare protocol with llhttp (httptools) and orjson does not.

Shape of a connection:

* bytes arrive -> ``httptools.HttpRequestParser`` -> one ``_Request`` per
  message (method, path, the few headers we use, body bounded by
  ``limits.HTTP_REQUEST_BYTES_MAX``);
* each request is first offered to the fast path, when there is one
  (``router/fast_path.py``: embedded GetItem and PutItem answered by plain
  calls, no coroutine at all), then handed to ``app.handle(request) ->
  coroutine``; the coroutine is stepped inline (``_Drive``): in embedded
  mode most requests finish without ever suspending, so they are answered
  inside the same ``data_received`` call, with no Task created.  An answer
  ready at once, with no earlier answer outstanding on the connection, is
  written straight away, without a place in the answer queue;
* responses leave in request order (pipelining); at most
  ``limits.HTTP_PIPELINED_REQUESTS_MAX`` requests are started and not yet
  answered per connection.  A request parsed past that bound is *parked*
  (not started) and reading pauses (back-pressure through TCP) until answers
  drain below ``limits.HTTP_PIPELINED_REQUESTS_RESUME_BELOW``.  The parser
  has no way to stop inside the chunk it was fed, so the parked requests are
  at most one read's worth of bytes (the transport's read size).  Why not an
  error: the SDKs never pipeline, so only raw clients and load generators
  get here, and for them an answer that comes later is better than a
  spurious throttle; the per-router bound (``app.py``) is the one that
  answers ``RequestLimitExceeded``;
* answers a client does not read are bounded the same way: when the
  transport's write buffer passes its high-water mark (``pause_writing``),
  requests already read are parked and reading pauses until the buffer
  drains (``resume_writing``), so a client that sends without reading
  cannot make the router hold its answers (a small request can ask for a
  1 MB page);
* unparseable bytes, and a request line plus headers longer than
  ``limits.HTTP_HEADER_BYTES_MAX`` (DynamoDB's 16 KB), get ``400`` after the
  answers of the requests before them, and the connection closes; a body
  past ``limits.HTTP_REQUEST_BYTES_MAX`` gets ``413`` the same way.  Nothing a
  client sends can raise out of this module.

What a response carries beyond its status and body (compression, CORS) is
the encoder's business (``app.py``): each answer is encoded with the request
it answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable, Coroutine

import httptools

from meridian.model import limits

from .http_outbox import Outbox, outbox_of

log = logging.getLogger("meridian.router.http")

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Request Entity Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}

# Headers the router reads; everything else is skipped while parsing.
_WANTED_HEADERS: dict[bytes, str | None] = {
    b"x-amz-target": "target",
    b"content-type": "content_type",
    b"authorization": "authorization",
    b"x-amz-date": "date",
    b"date": "date",
    b"host": "host",
    b"accept-encoding": "accept_encoding",
    b"content-encoding": "content_encoding",
    b"origin": "origin",
    b"access-control-request-method": "cors_method",
    b"access-control-request-headers": "cors_headers",
}
# Header names as SDKs spell them, so the common case needs no .lower():
# the wanted ones map to their attribute, frequent unwanted ones to None.
_HEADER_FAST: dict[bytes, str | None] = {}
for _name, _attr in _WANTED_HEADERS.items():
    _HEADER_FAST[_name] = _attr
    _HEADER_FAST[b"-".join(part.capitalize() for part in _name.split(b"-"))] = _attr
_HEADER_FAST.update({b"X-Amz-Target": "target", b"X-Amz-Date": "date"})
for _name in (b"Content-Length", b"content-length", b"User-Agent", b"user-agent",
              b"Connection", b"connection", b"Accept", b"accept",
              b"amz-sdk-invocation-id", b"amz-sdk-request", b"X-Amz-Security-Token", b"x-amz-security-token",
              b"X-Amz-Content-Sha256", b"x-amz-content-sha256", b"Expect", b"expect"):
    _HEADER_FAST.setdefault(_name, None)
_UNKNOWN = object()


class Request:
    """One parsed HTTP request (only what the router needs)."""

    # Headers few requests carry are class-level defaults, stored per
    # request (in a ``__dict__`` made on first use) only when present, so an
    # ordinary request pays nothing for them.
    __slots__ = (
        "method", "path", "target", "content_type", "authorization", "date", "body", "keep_alive",
        "host", "accept_encoding", "__dict__",
    )
    content_encoding: str | None = None  # the body is compressed (app.py decodes it)
    origin: str | None = None  # a browser's cross-origin request: CORS headers in the answer
    cors_method: str | None = None  # Access-Control-Request-Method (preflight)
    cors_headers: str | None = None  # Access-Control-Request-Headers (preflight)
    headers: list[tuple[str, str]] | None = None  # every header, names lower-cased (HttpProtocolAllHeaders only)

    def __init__(self) -> None:
        self.method: bytes = b""
        self.path: bytes = b""
        self.target: str | None = None
        self.content_type: str | None = None
        self.authorization: str | None = None
        self.date: str | None = None
        self.body: bytes = b""
        self.keep_alive: bool = True
        self.host: str | None = None
        self.accept_encoding: str | None = None  # responses may be compressed (app.py)


class Response:
    """Status, content type, body and extra header lines (already encoded)."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: bytes = b"") -> None:
        self.status = status
        self.body = body
        self.headers = headers


Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: ``fast(request)``: the answer (a ``Response``), a coroutine that will
#: produce it, or None when the request must take ``Handler``.
FastHandler = Callable[[Request], "Response | Coroutine[Any, Any, Response] | None"]
#: ``encode(response, request)``: the bytes of one answer; ``request`` is
#: None for a protocol failure (the connection closes after it).
Encoder = Callable[[Response, "Request | None"], bytes]


class _Slot:
    """A place in a connection's answer queue, filled when its request is done."""

    __slots__ = ("response", "request")

    def __init__(self, request: Request | None) -> None:
        self.response: Response | None = None
        self.request = request  # None: a protocol failure, answered then the connection closes


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_handler", "_encode", "_parser", "_transport", "_request", "_body_parts", "_body_bytes",
        "_head_bytes", "_slots", "_parked", "_paused", "_draining", "_write_blocked", "_closing", "_stats",
        "_pipelined_max", "_resume_below", "_fast", "_out", "_out_bytes", "_outbox",
    )

    def __init__(
        self,
        handler: Handler,
        encode: Encoder,
        stats: "HttpStats",
        *,
        pipelined_max: int = limits.HTTP_PIPELINED_REQUESTS_MAX,
        resume_below: int = limits.HTTP_PIPELINED_REQUESTS_RESUME_BELOW,
        fast: FastHandler | None = None,
    ) -> None:
        assert 1 <= resume_below <= pipelined_max
        self._handler = handler
        self._fast = fast
        self._encode = encode
        self._stats = stats
        self._pipelined_max = pipelined_max
        self._resume_below = resume_below
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request: Request | None = None
        self._body_parts: list[bytes] = []
        self._body_bytes = 0
        self._head_bytes = 0  # >0: a request line + headers still open at the end of the last read (bytes seen)
        self._slots: deque[_Slot] = deque()  # started, not yet answered: at most pipelined_max
        self._parked: deque[Request | Response] = deque()  # parsed past the bound (a Response: a protocol failure)
        self._paused = False  # reading paused: requests parked, or answers not read by the client
        self._draining = False
        self._write_blocked = False  # between pause_writing and resume_writing
        self._closing = False
        self._out: list[bytes] = []  # encoded answers waiting for the end of the loop's round (http_outbox.py)
        self._out_bytes = 0
        self._outbox: Outbox | None = None

    # --- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._outbox = outbox_of(asyncio.get_running_loop())
        self._stats.connections_open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._stats.connections_open -= 1
        self._transport = None
        self._closing = True
        self._parked.clear()
        self._out.clear()

    def pause_writing(self) -> None:
        self._write_blocked = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_blocked = False
        if self._paused and not self._draining:
            self._drain()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        head = self._head_bytes
        if head or len(data) > limits.HTTP_HEADER_BYTES_MAX:
            if self._head_too_large(data, head):
                self._fail(400)
                return
        try:
            self._parser.feed_data(data)
            req = self._request
            if req is not None and not req.method:  # this read ends inside a request line or headers
                # measured while it continues from read to read; one begun in this read counts from the next
                self._head_bytes = head + len(data) if head and data.find(b"\r\n\r\n") < 0 else 1
            elif head:
                self._head_bytes = 0
        except _TooLarge as exc:
            self._fail(exc.status)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            cause = exc.__context__
            self._fail(cause.status if isinstance(cause, _TooLarge) else 400)

    def _head_too_large(self, data: bytes, head: int) -> bool:
        """Whether the request line + headers starting or continuing in ``data`` pass the bound.

        DynamoDB answers 400 past 16 KB of them.  Counted per read, never per
        header (the parser callbacks stay as cheap as they were): a read
        that starts at a message boundary or inside an open head is measured
        exactly, up to its blank line; a head that begins after other
        messages in the same read is counted from the next read on, so its
        bound is loose by at most one read.
        """
        if not head and self._request is not None:
            return False  # the read starts inside a body
        room = limits.HTTP_HEADER_BYTES_MAX - head
        return data.find(b"\r\n\r\n", 0, room + 4) < 0 and len(data) > room

    # --- httptools callbacks ------------------------------------------------
    def on_message_begin(self) -> None:
        if self._closing:
            self._request = None
            return
        self._request = Request()
        self._body_parts = []
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        req = self._request
        if req is not None:
            req.path += url
            if len(req.path) > limits.HTTP_HEADER_BYTES_MAX:
                raise _TooLarge(400)

    def on_header(self, name: bytes, value: bytes) -> None:
        attr = _HEADER_FAST.get(name, _UNKNOWN)
        if attr is _UNKNOWN:
            attr = _WANTED_HEADERS.get(name.lower())
        if attr is not None and self._request is not None:
            setattr(self._request, attr, value.decode("latin-1"))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        req = self._request
        if req is None:
            return
        req.method = self._parser.get_method()
        req.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > limits.HTTP_REQUEST_BYTES_MAX:
            raise _TooLarge(413)
        self._body_parts.append(body)

    def on_message_complete(self) -> None:
        req = self._request
        if req is None:
            return
        self._request = None
        parts = self._body_parts
        req.body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._stats.requests += 1
        if self._parked or self._write_blocked or len(self._slots) >= self._pipelined_max:
            self._park(req)
            return
        self._start(req)

    def _start(self, req: Request) -> None:
        """Answer ``req`` now if it can be (the fast path, or a handler that does
        not suspend); otherwise give it its place in the answer queue."""
        fast = self._fast
        answer = fast(req) if fast is not None else None
        if answer is None:
            answer = self._handler(req)
        if answer.__class__ is Response:
            transport = self._transport
            if not self._slots and req.keep_alive and not self._paused and transport is not None:
                self._send(self._encode(answer, req))  # type: ignore[arg-type]
                return
            slot = _Slot(req)
            self._slots.append(slot)
            self._answer(slot, answer)  # type: ignore[arg-type]
            return
        slot = _Slot(req)
        self._slots.append(slot)
        _Drive(self, slot, answer)  # type: ignore[arg-type]

    # --- the per-connection bound -----------------------------------------------
    def _park(self, item: Request | Response) -> None:
        """Hold ``item`` back until answers free a place (or the client reads); stop reading meanwhile."""
        self._parked.append(item)
        self._pause_reading()

    def _pause_reading(self) -> None:
        if not self._paused and self._transport is not None and not self._closing:
            self._paused = True
            self._stats.reads_paused += 1
            self._transport.pause_reading()

    def _drain(self) -> None:
        """Start parked requests while places are free; read again once few
        wait and the client has read what was written.

        Runs as a loop, never recursively: a parked request that completes
        inline calls ``_answer`` again, which sees ``_draining`` and returns.
        """
        self._draining = True
        try:
            parked, slots = self._parked, self._slots
            while parked and len(slots) < self._pipelined_max and not self._write_blocked and self._transport is not None:
                item = parked.popleft()
                if item.__class__ is Response:  # the protocol failure that ended the connection
                    slot = _Slot(None)
                    slots.append(slot)
                    self._answer(slot, item)  # type: ignore[arg-type]
                else:
                    self._start(item)  # type: ignore[arg-type]
        finally:
            self._draining = False
        transport = self._transport
        if (
            not self._parked and len(self._slots) < self._resume_below and not self._write_blocked
            and transport is not None and not self._closing
        ):
            self._paused = False
            transport.resume_reading()

    # --- answers -------------------------------------------------------------
    def _answer(self, slot: _Slot, response: Response) -> None:
        slot.response = response
        transport = self._transport
        if transport is None:
            return
        out: list[bytes] = []
        slots = self._slots
        close = False
        while slots and slots[0].response is not None:
            done = slots.popleft()
            request = done.request
            out.append(self._encode(done.response, request))  # type: ignore[arg-type]
            if request is None or not request.keep_alive:
                close = True
                slots.clear()
                break
        if out:
            self._send(out[0] if len(out) == 1 else b"".join(out))
        if close:
            self._flush()
            self._closing = True
            self._parked.clear()
            if request is None and transport.can_write_eof():
                self._linger_close(transport)
            else:
                transport.close()
        elif self._paused and not self._draining:
            self._drain()

    def _send(self, data: bytes) -> None:
        """Write ``data`` at the end of this loop round, with the other connections' answers."""
        out = self._out
        if not out:
            self._outbox.register(self)  # type: ignore[union-attr]
        out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= limits.HTTP_WRITE_COALESCE_BYTES_MAX:
            self._flush()

    def _flush(self) -> None:
        """Write what ``_send`` holds now (the outbox's call, or before closing or a large answer)."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_bytes = 0
        transport = self._transport
        if transport is not None:
            transport.write(data)

    def _linger_close(self, transport: asyncio.Transport) -> None:
        """Close after a protocol failure without losing the answer.

        The client may still be sending the rest of a request we refused;
        closing with its bytes unread makes the kernel answer them with a
        reset, which can destroy our answer before the client reads it.  So
        send FIN after the answer, read and drop what still arrives, and
        close when the client closes or after ``HTTP_LINGER_CLOSE_S``.
        """
        transport.write_eof()
        if self._paused:
            self._paused = False
            transport.resume_reading()
        asyncio.get_running_loop().call_later(limits.HTTP_LINGER_CLOSE_S, transport.close)

    def _fail(self, status: int) -> None:
        """Protocol-level failure: answer what is pending, then ``status``, then close.

        Nothing more is parsed; requests parsed before the bad bytes are
        still answered, in order, and ``status`` goes out after them.
        """
        self._stats.protocol_errors += 1
        self._closing = True
        if self._transport is None:
            return
        failure = Response(status, b"")
        if self._parked:
            self._parked.append(failure)
            return
        slot = _Slot(None)
        self._slots.append(slot)
        self._answer(slot, failure)


class HttpProtocolAllHeaders(HttpProtocol):
    """``HttpProtocol`` that also keeps every header of a request, for signature checks.

    Used only when the router verifies signatures (``--credentials``): a
    signature covers headers the router otherwise skips.  They are bounded
    by ``limits.HTTP_HEADER_BYTES_MAX`` like the rest of the head.
    """

    __slots__ = ()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._request is not None:
            self._request.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self._request
        if req is not None:
            lower = name.lower()
            text = value.decode("latin-1")
            attr = _WANTED_HEADERS.get(lower)
            if attr is not None:
                setattr(req, attr, text)
            req.headers.append((lower.decode("latin-1"), text))  # type: ignore[union-attr]


class _TooLarge(Exception):
    """Raised from parser callbacks when a request passes a size bound; ``status`` is the answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Drive:
    """Runs a handler coroutine, stepping it inline until it first suspends.

    A minimal Task: if the coroutine completes on the first ``send`` (the
    usual case in embedded mode), the answer is written at once.  If it
    awaits an asyncio future, stepping resumes from that future's done
    callback.  Exceptions are the handler's job; anything that escapes is a
    bug, answered with 500 and logged.
    """

    __slots__ = ("_proto", "_slot", "_coro")

    def __init__(self, proto: HttpProtocol, slot: _Slot, coro: Coroutine[Any, Any, Response]) -> None:
        self._proto = proto
        self._slot = slot
        self._coro = coro
        self._step()

    def _step(self, _fut: Any = None) -> None:
        try:
            yielded = self._coro.send(None)
        except StopIteration as stop:
            self._proto._answer(self._slot, stop.value)
            return
        except BaseException:  # noqa: BLE001 - a handler bug must not kill the connection
            log.exception("request handler failed")
            self._proto._answer(self._slot, Response(500, b""))
            return
        if yielded is None:  # bare yield (asyncio.sleep(0))
            asyncio.get_running_loop().call_soon(self._step)
            return
        yielded._asyncio_future_blocking = False
        yielded.add_done_callback(self._step)


class HttpStats:
    """Live counters of one HTTP server (for ``/metrics`` and tests)."""

    __slots__ = ("connections_open", "requests", "protocol_errors", "reads_paused")

    def __init__(self) -> None:
        self.connections_open = 0
        self.requests = 0
        self.protocol_errors = 0
        self.reads_paused = 0  # times a connection stopped reading: too many requests waiting, or answers unread

    def __repr__(self) -> str:
        return (
            f"<HttpStats connections_open={self.connections_open} requests={self.requests} "
            f"protocol_errors={self.protocol_errors} reads_paused={self.reads_paused}>"
        )


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
