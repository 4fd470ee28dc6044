"""A DAX node's TCP front: the handshake, the request stream, one answer per request, in order.

The wire (no length prefixes, no request ids: a raw stream of CBOR items)::

    client -> server, once:   "J7yne5G"  0  session(bytes|null|text)  {"UserAgent": ...}  0
    client -> server, each:   1  methodId  arg1 ... argN        (N fixed per method)
    server -> client, each:   0x80 body...                       success (an empty array, then the body)
                              [codes] "message" [requestId, "__type", status(, reasons)]   error

``authorizeConnection`` has no answer; every other method has exactly one.
The clients send one request at a time per connection (an authorize goes in
the same write as the request after it); a connection is still served one
request after another, so answers always come back in order.

Items are decoded with ``cbor.decode_item``: ``NeedMore`` waits for more bytes
(its ``total_bytes`` says how many, so a large request is not re-parsed on
every segment), ``CborError`` or anything off-protocol closes the connection
(there is no way to find the next request in a stream that is not
understood).  The buffer is bounded by ``limits.DAX_REQUEST_BYTES_MAX``: a
connection sending more than that without completing a request is closed.

Dispatch: the metadata methods here (``endpoints.py``, ``auth.py``); the data
methods through ``handlers`` (``methods.HANDLERS``: method id -> (argument
count, ``async fn(conn_state, args) -> body bytes``)).  A handler's
``DynamoError`` becomes a DAX error reply (``errors.py``); any other exception
is logged and answered InternalServerError, never a crash.  An unknown method
id is answered with an error, then the connection is closed: its arguments
cannot be skipped without knowing how many there are.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence

from meridian.model import limits
from meridian.model.errors import (
    DynamoError,
    InternalServerError,
    MissingAuthenticationTokenException,
    UnknownOperationException,
)
from meridian.router.sigv4 import Credential

from . import endpoints
from .auth import Authenticator
from .cbor import CborError, NeedMore, decode_item
from .errors import encode_error
from .latency import LatencyHistogram, monotonic_ns

if TYPE_CHECKING:
    import ssl

    from .attribute_lists import AttributeListRegistry

log = logging.getLogger("meridian.router.dax")

MAGIC = "J7yne5G"  # the handshake's first item (its raw bytes: b"gJ7yne5G")
SUCCESS = b"\x80"


class MethodId(enum.IntEnum):
    """Every method id of the protocol (the clients' generated stubs name them so)."""

    authorizeConnection = 1489122155
    endpoints = 455855874
    defineKeySchema = -742646399
    defineAttributeListId = -1230579644
    defineAttributeList = 670678385
    methods = 785068263
    services = -1016793520
    getItem = 263244906
    putItem = -2106490455
    updateItem = 1425579023
    deleteItem = 1013539361
    query = -931250863
    scan = -1875390620
    batchGetItem = -697851100
    batchWriteItem = 116217951
    transactGetItems = 1866287579
    transactWriteItems = -1160037738


@dataclass(slots=True)
class ConnState:
    """What a handler may need to know about its connection."""

    peername: tuple[Any, ...] | None = None
    sockname: tuple[Any, ...] | None = None
    user_agent: str | None = None
    session: bytes | str | None = None
    #: a good authorizeConnection was seen (always True on a node without credentials)
    authorized: bool = False
    #: the last authorizeConnection's failure: every request is answered with it until a good one
    auth_error: DynamoError | None = None
    access_key_id: str | None = None
    requests: int = 0


Handler = Callable[[ConnState, list], Awaitable[bytes]]
HandlerTable = Mapping[int, tuple[int, Handler]]

#: metadata methods: id -> argument count
_BUILTIN_ARGS = {
    MethodId.authorizeConnection: 5,
    MethodId.endpoints: 0,
    MethodId.defineKeySchema: 1,
    MethodId.defineAttributeListId: 1,
    MethodId.defineAttributeList: 1,
}


class RequestIds:
    """Request ids for error replies: a random prefix per process and a counter."""

    __slots__ = ("_prefix", "_n")

    def __init__(self) -> None:
        self._prefix = os.urandom(16).hex().upper()
        self._n = 0

    def take(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n:012d}"


@dataclass(slots=True)
class Statistics:
    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    connections_idle_closed: int = 0
    connections_malformed: int = 0
    requests: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    #: each answered request's time in the server: last byte parsed -> answer written
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


class _Malformed(Exception):
    """The stream cannot be understood: close the connection."""


class _UnknownMethod(Exception):
    def __init__(self, method_id: int) -> None:
        super().__init__(method_id)
        self.method_id = method_id


class DaxServer:
    """One DAX node: listens, speaks the protocol, hands data methods to ``handlers``."""

    def __init__(
        self,
        *,
        handlers: HandlerTable,
        describe_key_schema: endpoints.DescribeKeySchema,
        registry: AttributeListRegistry,
        node: endpoints.Node,
        cluster: Sequence[endpoints.Node] | None = None,
        credentials: Mapping[str, Credential | str] | None = None,
        connections_max: int = limits.DAX_CONNECTIONS_MAX,
        idle_s: float = limits.DAX_CONNECTION_IDLE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: serve ``daxs://`` (TLS, ``tls.py``) instead of ``dax://``; kept across restarts."""
        assert connections_max >= 1 and idle_s > 0
        self.ssl_context = ssl_context
        self.handlers = handlers
        self.describe_key_schema = describe_key_schema
        self.registry = registry
        self.node = node
        self.cluster: tuple[endpoints.Node, ...] = tuple(cluster) if cluster is not None else (node,)
        self.auth = Authenticator(credentials)
        self.connections_max = connections_max
        self.idle_s = idle_s
        self.stats = Statistics()
        self._request_ids = RequestIds()
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[DaxProtocol] = set()

    def __repr__(self) -> str:
        s = self.stats
        return f"<DaxServer node={self.node.node_id} open={s.connections_open} requests={s.requests}>"

    def statistics(self) -> dict[str, Any]:
        s = self.stats
        return {
            "connections_open": s.connections_open,
            "connections_total": s.connections_total,
            "connections_refused": s.connections_refused,
            "connections_idle_closed": s.connections_idle_closed,
            "connections_malformed": s.connections_malformed,
            "requests": s.requests,
            "errors_by_type": dict(s.errors_by_type),
            "auth_accepted": self.auth.accepted,
            "auth_rejected": self.auth.rejected,
            "latency_p50_us": s.latency.percentile_ns(50) / 1000,
            "latency_p99_us": s.latency.percentile_ns(99) / 1000,
        }

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: any free one); returns the address bound."""
        loop = asyncio.get_running_loop()
        if self.ssl_context is None:
            server = await loop.create_server(lambda: DaxProtocol(self), host, port)
        else:  # the protocol sees only decrypted bytes, after the handshake
            server = await loop.create_server(lambda: DaxProtocol(self), host, port, ssl=self.ssl_context,
                                              ssl_handshake_timeout=limits.DAX_TLS_HANDSHAKE_TIMEOUT_S)
        self._server = server
        bound = server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def close(self) -> None:
        """Stop listening, close every connection, give running requests a moment to finish."""
        if self._server is not None:
            self._server.close()
        tasks = [conn.task for conn in self._connections if conn.task is not None]
        for conn in list(self._connections):
            conn.close()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=limits.DAX_CLOSE_GRACE_S)
            for task in pending:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    # --- connections ----------------------------------------------------------

    def _opened(self, conn: DaxProtocol) -> bool:
        if len(self._connections) >= self.connections_max:
            self.stats.connections_refused += 1
            return False
        self._connections.add(conn)
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        return True

    def _closed(self, conn: DaxProtocol) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.stats.connections_open -= 1

    def args_for(self, method_id: int) -> int:
        """How many arguments follow ``method_id``; ``_UnknownMethod`` if it is not served."""
        count = _BUILTIN_ARGS.get(method_id)  # type: ignore[call-overload]
        if count is not None:
            return count
        entry = self.handlers.get(method_id)
        if entry is None:
            raise _UnknownMethod(method_id)
        return entry[0]

    # --- answers --------------------------------------------------------------

    async def answer(self, state: ConnState, method_id: int, args: list) -> bytes | None:
        """The whole reply to one request (None for authorizeConnection)."""
        self.stats.requests += 1
        state.requests += 1
        try:
            if method_id == MethodId.authorizeConnection:
                self._authorize(state, args)
                return None
            if state.auth_error is not None:
                raise state.auth_error
            if not state.authorized:
                raise MissingAuthenticationTokenException("Request is missing Authentication Token")
            return SUCCESS + await self._body(state, method_id, args)
        except DynamoError as err:
            return self.error_reply(err)
        except Exception as exc:  # a bug: logged, answered, never a crash
            log.error("DAX method %s failed", method_id, exc_info=exc)
            return self.error_reply(InternalServerError("Internal server error"))

    def error_reply(self, err: DynamoError) -> bytes:
        name = err.type_name
        self.stats.errors_by_type[name] = self.stats.errors_by_type.get(name, 0) + 1
        return encode_error(err, self._request_ids.take())

    def _authorize(self, state: ConnState, args: list) -> None:
        err = self.auth.check(args)
        state.auth_error = err
        state.authorized = err is None
        if err is None and isinstance(args[0], str):
            state.access_key_id = args[0]
        if isinstance(args[4], str):
            state.user_agent = args[4]

    async def _body(self, state: ConnState, method_id: int, args: list) -> bytes:
        if method_id == MethodId.endpoints:
            assert state.sockname is not None
            return endpoints.encode_endpoints(self.cluster, state.sockname)
        if method_id == MethodId.defineKeySchema:
            return await endpoints.define_key_schema(self.describe_key_schema, args)
        if method_id == MethodId.defineAttributeListId:
            return endpoints.define_attribute_list_id(self.registry, args)
        if method_id == MethodId.defineAttributeList:
            return endpoints.define_attribute_list(self.registry, args)
        return await self.handlers[method_id][1](state, args)


class DaxProtocol(asyncio.Protocol):
    """One client connection: bytes in, requests parsed one by one, answers written in order."""

    def __init__(self, server: DaxServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._need_bytes = 1  # do not try to parse before the buffer holds this many
        self._handshaken = False
        self._closing = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_active_s = 0.0
        self.task: asyncio.Task | None = None
        self.state = ConnState()

    def __repr__(self) -> str:
        return f"<DaxProtocol peer={self.state.peername} buffered={len(self._buf)} requests={self.state.requests}>"

    # --- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (asyncio's or uvloop's)
        if not self._server._opened(self):
            self._closing = True
            transport.abort()
            return
        self.state.peername = transport.get_extra_info("peername")
        self.state.sockname = transport.get_extra_info("sockname")
        self.state.authorized = not self._server.auth.required
        loop = asyncio.get_running_loop()
        self._last_active_s = loop.time()
        self._idle_timer = loop.call_later(self._server.idle_s, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._can_write.set()  # a task waiting to write finds the connection gone
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._server._closed(self)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buf += data
        self._last_active_s = asyncio.get_running_loop().time()
        if len(self._buf) > limits.DAX_REQUEST_BYTES_MAX:
            self._malformed("request larger than %d bytes" % limits.DAX_REQUEST_BYTES_MAX)
            return
        if self.task is None and len(self._buf) >= self._need_bytes:
            self.task = asyncio.get_running_loop().create_task(self._serve())

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; a request in flight still finishes

    # --- the request loop ---------------------------------------------------------

    async def _serve(self) -> None:
        """Answers every complete request in the buffer, one after another."""
        try:
            while not self._closing:
                try:
                    request = self._next_request()
                except _UnknownMethod as unknown:
                    self._write(self._server.error_reply(
                        UnknownOperationException(f"Unknown DAX method id {unknown.method_id}")))
                    self.close()
                    return
                except (CborError, _Malformed) as exc:
                    self._malformed(str(exc))
                    return
                except Exception as exc:  # noqa: BLE001 - input no rule foresaw: close, never hang or crash
                    self._malformed(f"unreadable request ({type(exc).__name__}: {exc!s:.80})")
                    return
                if request is None:
                    return
                parsed_ns = monotonic_ns()
                reply = await self._server.answer(self.state, *request)
                if reply is not None:
                    await self._can_write.wait()
                    self._write(reply)
                    self._server.stats.latency.record_ns(monotonic_ns() - parsed_ns)
        finally:
            self.task = None

    def _next_request(self) -> tuple[int, list] | None:
        """The next whole request (method id, arguments), consumed from the buffer; None: wait for bytes."""
        buf = self._buf
        if len(buf) < self._need_bytes:
            return None
        try:
            offset = 0
            if not self._handshaken:
                offset = self._handshake(buf)
                del buf[:offset]
                offset = 0
                self._handshaken = True
            marker, offset = decode_item(buf, offset)
            if type(marker) is not int or marker != 1:
                raise _Malformed(f"expected a request (1), got {marker!r:.40}")
            method_id, offset = decode_item(buf, offset)
            if type(method_id) is not int:
                raise _Malformed(f"expected a method id, got {method_id!r:.40}")
            args = []
            for _ in range(self._server.args_for(method_id)):
                arg, offset = decode_item(buf, offset)
                args.append(arg)
        except NeedMore as more:
            self._need_bytes = max(more.total_bytes, len(buf) + 1)
            return None
        del buf[:offset]
        self._need_bytes = 1
        return method_id, args

    def _handshake(self, buf: bytearray) -> int:
        """Reads the five handshake items; returns the offset past them (NeedMore if incomplete)."""
        magic, offset = decode_item(buf, 0)
        if magic != MAGIC:
            raise _Malformed(f"not a DAX client (first item {magic!r:.40})")
        layering, offset = decode_item(buf, offset)
        session, offset = decode_item(buf, offset)
        agent, offset = decode_item(buf, offset)
        types, offset = decode_item(buf, offset)
        if type(layering) is not int or type(types) is not int or not isinstance(agent, dict):
            raise _Malformed("bad DAX handshake")
        if session is not None and not isinstance(session, (bytes, str)):
            raise _Malformed("bad DAX handshake session")
        self.state.session = session
        user_agent = agent.get("UserAgent")
        if isinstance(user_agent, str):
            self.state.user_agent = user_agent
        return offset

    # --- closing --------------------------------------------------------------------

    def _write(self, reply: bytes) -> None:
        if not self._closing and self._transport is not None:
            self._transport.write(reply)

    def close(self) -> None:
        """Close after the answers already written are sent."""
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _malformed(self, why: str) -> None:
        log.info("DAX connection from %s closed: %s", self.state.peername, why)
        self._server.stats.connections_malformed += 1
        self._buf.clear()
        self.close()

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        idle_s = loop.time() - self._last_active_s
        if self._closing:
            return
        remaining_s = self._server.idle_s - idle_s
        if remaining_s <= 0 and self.task is None:
            self._server.stats.connections_idle_closed += 1
            self.close()
            return
        # a request still running is not idleness: look again a whole period later
        self._idle_timer = loop.call_later(remaining_s if remaining_s > 0 else self._server.idle_s, self._check_idle)
