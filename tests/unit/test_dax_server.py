"""The DAX server's framing and dispatch: client bytes in (made by the real Python
client's own stubs), replies out, in order; garbage closes, never raises.

Most tests drive ``DaxProtocol`` through a fake transport (no sockets), feeding
bytes in any split; the last one runs a ``DaxServer`` on a port and the real
``amazondax.AmazonDaxClient`` against it.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest

amazondax = pytest.importorskip("amazondax")
from amazondax import Assemblers  # noqa: E402
from amazondax.CborDecoder import NoMoreData  # noqa: E402
from amazondax.DaxCborDecoder import DaxCborDecoder  # noqa: E402
from amazondax.DaxClient import DaxClient  # noqa: E402
from amazondax.DaxError import DaxServiceError  # noqa: E402
from amazondax.generated import Stubs  # noqa: E402
from amazondax.Tube import Tube, _SessionVersion  # noqa: E402

from meridian.model.errors import ConditionalCheckFailedException  # noqa: E402
from meridian.router.dax import endpoints  # noqa: E402
from meridian.router.dax.cbor import Encoder  # noqa: E402
from meridian.router.dax.server import ConnState, DaxProtocol, DaxServer, MethodId  # noqa: E402

NODE = endpoints.Node(node_id=1, hostname="localhost", az="us-east-1a")
TABLE = [("pk", "S")]


# --- client bytes, made by the client's own code ---------------------------------------------


class CaptureSocket:
    family = socket.AF_INET

    def __init__(self) -> None:
        self.sent = bytearray()

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)


def client_tube(session: bool = False, secret: str = "y", access_key: str = "x") -> tuple[Tube, CaptureSocket]:
    sock = CaptureSocket()
    creds = SimpleNamespace(access_key=access_key, secret_key=secret, token=None)
    tube = Tube(sock, _SessionVersion() if session else None, lambda: creds, "us-east-1")
    return tube, sock


def take(sock: CaptureSocket) -> bytes:
    data = bytes(sock.sent)
    sock.sent.clear()
    return data


# --- replies, read by the client's own code ----------------------------------------------------


class ReplyReader:
    def __init__(self, data: bytes) -> None:
        def more(buf: bytearray, n: int) -> int:
            raise NoMoreData()

        self.dec = DaxCborDecoder(more)
        self.dec.buffer += data

    def peek(self) -> int:
        return self.dec.peek()

    def skip(self) -> None:
        self.dec.skip()

    def read_object(self):
        return self.dec.decode_object()

    def read_string(self):
        return self.dec.decode_string()

    def read_array(self):
        return self.dec.decode_array()

    def read_map(self):
        return self.dec.decode_map()

    def read_int(self):
        return self.dec.decode_int()

    def try_read_null(self):
        return self.dec.try_decode_null()

    def result(self, assembler) -> Any:
        """The client's decode of one reply: its assembler's value, or the DaxServiceError it raises."""
        try:
            client = SimpleNamespace(_handle_error=lambda op, tube: DaxClient._handle_error(None, op, tube))
            return DaxClient._decode_result(client, "op", {}, assembler, self)  # type: ignore[arg-type]
        except DaxServiceError as exc:
            return exc

    @property
    def empty(self) -> bool:
        return not self.dec.buffer


# --- a server with a fake transport ------------------------------------------------------------


class FakeTransport:
    def __init__(self, sockname=("127.0.0.1", 8111)) -> None:
        self.out = bytearray()
        self.closed = False
        self.aborted = False
        self._extra = {"peername": ("127.0.0.1", 50000), "sockname": sockname}

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.out += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default=None):
        return self._extra.get(name, default)


class Store:
    """Handlers for PutItem and GetItem over a dict: values bytes by key bytes."""

    def __init__(self) -> None:
        self.items: dict[tuple[bytes, bytes], bytes] = {}
        self.states: list[ConnState] = []

    async def put(self, state: ConnState, args: list) -> bytes:
        self.states.append(state)
        table, key, values, _kwargs = args
        if key == b"taken" and (table, key) in self.items:
            raise ConditionalCheckFailedException()
        self.items[(table, key)] = values
        return b"\xf6"

    async def get(self, state: ConnState, args: list) -> bytes:
        self.states.append(state)
        table, key, _kwargs = args
        if key == b"boom":
            raise RuntimeError("a bug")
        values = self.items.get((table, key))
        if values is None:
            return b"\xf6"
        return Encoder().map_header(1).int(0).bytes_(values).getvalue()

    def handlers(self) -> dict:
        return {MethodId.putItem: (4, self.put), MethodId.getItem: (3, self.get)}


class DictRegistry:
    def __init__(self) -> None:
        self.lists: dict[int, tuple[str, ...]] = {1: ()}

    def id_for(self, names: tuple[str, ...]) -> int:
        for list_id, known in self.lists.items():
            if known == names:
                return list_id
        self.lists[len(self.lists) + 1] = names
        return len(self.lists)

    def names_for(self, list_id: int) -> tuple[str, ...]:
        return self.lists[list_id]


def registry():
    try:
        from meridian.router.dax.attribute_lists import AttributeListRegistry
    except ImportError:  # helper A's registry not there yet: the stand-in behaves the same here
        return DictRegistry()
    return AttributeListRegistry()


async def describe(table: str):
    return TABLE if table == "t" else None


def make_server(store: Store | None = None, **kwargs) -> DaxServer:
    return DaxServer(handlers=(store or Store()).handlers(), describe_key_schema=describe, registry=registry(),
                     node=NODE, **kwargs)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def feed(protocol: DaxProtocol, data: bytes, step: int | None = None) -> None:
    if step is None:
        protocol.data_received(data)
    else:
        for i in range(0, len(data), step):
            protocol.data_received(data[i:i + step])
            await settle()
    await settle()


def connect(server: DaxServer, transport: FakeTransport | None = None) -> tuple[DaxProtocol, FakeTransport]:
    transport = transport or FakeTransport()
    protocol = DaxProtocol(server)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


def key_request(tube: Tube, sock: CaptureSocket, method: str, key: bytes, values: bytes = b"") -> bytes:
    """A GetItem/PutItem exactly as the client frames it (key and values already encoded)."""
    tube.write_int(1)
    if method == "get":
        tube.write_int(MethodId.getItem)
        tube.write_binary(b"t")
        tube.write_binary(key)
        tube.write_null()
    else:
        tube.write_int(MethodId.putItem)
        tube.write_binary(b"t")
        tube.write_binary(key)
        tube.write_binary(values)
        tube.write_null()
    tube.flush()
    return take(sock)


# --- framing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 3, 7, None])
def test_handshake_auth_and_requests_in_any_split(step: int | None) -> None:
    async def main() -> None:
        server = make_server()
        protocol, transport = connect(server)
        tube, sock = client_tube(session=True)
        tube.reauth()  # appended, sent with the next request
        Stubs.write_endpoints_455855874_1(tube)
        Stubs.write_defineKeySchema_N742646399_1(b"t", tube)
        Stubs.write_defineAttributeListId_N1230579644_1(["a", "b"], tube)
        await feed(protocol, take(sock), step)
        reader = ReplyReader(bytes(transport.out))
        (ep,) = reader.result(Assemblers.endpoints_455855874_1)
        assert (ep["address"], ep["port"], ep["role"], ep["az"]) == ("127.0.0.1", 8111, 1, "us-east-1a")
        assert reader.result(Assemblers.defineKeySchema_N742646399_1) == [{"AttributeName": "pk", "AttributeType": "S"}]
        list_id = reader.result(Assemblers.defineAttributeListId_N1230579644_1)
        assert reader.empty and not transport.closed
        Stubs.write_defineAttributeList_670678385_1(list_id, tube)
        transport.out.clear()
        await feed(protocol, take(sock), step)
        assert ReplyReader(bytes(transport.out)).result(Assemblers.defineAttributeList_670678385_1) == ["a", "b"]
        assert protocol.state.user_agent.startswith("DaxPythonClient")
        assert isinstance(protocol.state.session, bytes) and protocol.state.authorized

    asyncio.run(main())


def test_data_methods_go_to_the_handlers_and_errors_keep_the_connection() -> None:
    async def main() -> None:
        store = Store()
        server = make_server(store)
        protocol, transport = connect(server)
        tube, sock = client_tube()
        take(sock)
        handshake = bytes(client_tube()[1].sent)
        values = Encoder().int(2).text("hello").getvalue()
        data = handshake + key_request(tube, sock, "put", b"k1", values) + key_request(tube, sock, "get", b"k1")
        data += key_request(tube, sock, "get", b"missing") + key_request(tube, sock, "get", b"boom")
        data += key_request(tube, sock, "put", b"taken") + key_request(tube, sock, "put", b"taken")
        await feed(protocol, data)
        reader = ReplyReader(bytes(transport.out))
        assert reader.result(Assemblers.putItem_N2106490455_1) == {}
        got = reader.result(Assemblers.getItem_263244906_1)
        assert got["Item"]["_attr_list_id"] == 2
        assert got["Item"]["_anonymous_attribute_values"] == [{"S": "hello"}]
        assert reader.result(Assemblers.getItem_263244906_1) == {}
        bug = reader.result(Assemblers.getItem_263244906_1)
        assert isinstance(bug, DaxServiceError) and bug.code == "InternalServerErrorException"
        assert reader.result(Assemblers.putItem_N2106490455_1) == {}
        failed = reader.result(Assemblers.putItem_N2106490455_1)
        assert isinstance(failed, DaxServiceError) and failed.code == "ConditionalCheckFailedException"
        assert reader.empty and not transport.closed
        assert all(state is protocol.state for state in store.states)
        stats = server.statistics()
        assert stats["requests"] == 6
        assert stats["errors_by_type"] == {"InternalServerError": 1, "ConditionalCheckFailedException": 1}

    asyncio.run(main())


def test_answers_come_back_in_order_when_a_handler_is_slow() -> None:
    async def main() -> None:
        release = asyncio.Event()
        order = []

        async def slow(state, args):
            order.append("slow")
            await release.wait()
            return Encoder().int(1).getvalue()

        async def fast(state, args):
            order.append("fast")
            return Encoder().int(2).getvalue()

        server = DaxServer(handlers={MethodId.scan: (2, slow), MethodId.query: (3, fast)},
                           describe_key_schema=describe, registry=registry(), node=NODE)
        protocol, transport = connect(server)
        enc = Encoder().text("J7yne5G").int(0).null().map_header(0).int(0)
        enc.int(1).int(MethodId.scan).bytes_(b"t").null()
        enc.int(1).int(MethodId.query).bytes_(b"t").null().null()
        await feed(protocol, enc.getvalue())
        assert order == ["slow"] and transport.out == b""
        release.set()
        await settle()
        assert order == ["slow", "fast"] and transport.out == b"\x80\x01\x80\x02"

    asyncio.run(main())


def test_a_client_that_does_not_read_gets_no_more_answers_until_it_does() -> None:
    async def main() -> None:
        server = make_server()
        protocol, transport = connect(server)
        protocol.pause_writing()  # the transport's buffer is full
        enc = Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).int(1).int(MethodId.endpoints)
        await feed(protocol, enc.getvalue())
        assert transport.out == b""
        protocol.resume_writing()
        await settle()
        assert isinstance(ReplyReader(bytes(transport.out)).result(Assemblers.endpoints_455855874_1), list)

    asyncio.run(main())


# --- what closes a connection ---------------------------------------------------------------------


def test_an_unknown_method_is_answered_then_closed() -> None:
    async def main() -> None:
        server = make_server()
        protocol, transport = connect(server)
        enc = Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).int(1).int(12345).int(7)
        await feed(protocol, enc.getvalue())
        err = ReplyReader(bytes(transport.out)).result(Assemblers.getItem_263244906_1)
        assert isinstance(err, DaxServiceError) and err.code == "UnknownOperationException"
        assert transport.closed

    asyncio.run(main())


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # not a DAX client
        Encoder().text("J7yne5G").int(0).int(5).map_header(0).int(0).getvalue(),  # session an int
        Encoder().text("J7yne5G").int(0).null().text("ua").int(0).getvalue(),  # user agent not a map
        Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).int(2).getvalue(),  # not a request
        Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).int(1).text("x").getvalue(),  # bad method id
        Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).getvalue() + b"\x1c",  # reserved CBOR
    ],
)
def test_off_protocol_bytes_close_the_connection(data: bytes) -> None:
    async def main() -> None:
        server = make_server()
        protocol, transport = connect(server)
        await feed(protocol, data)
        assert transport.closed and transport.out == b""
        assert server.statistics()["connections_malformed"] == 1
        protocol.data_received(b"more")  # after closing: ignored
        protocol.connection_lost(None)
        assert server.statistics()["connections_open"] == 0

    asyncio.run(main())


def test_random_bytes_never_raise_out_of_the_protocol() -> None:
    async def main() -> None:
        rng = random.Random(16)
        handshake = Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).getvalue()
        for _ in range(300):
            server = make_server()
            protocol, transport = connect(server)
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            await feed(protocol, handshake + junk, rng.choice([1, 5, None]))
            protocol.connection_lost(None)
            await settle()

    asyncio.run(main())


def test_a_request_past_the_size_bound_closes(monkeypatch) -> None:
    from meridian.model import limits

    monkeypatch.setattr(limits, "DAX_REQUEST_BYTES_MAX", 64)

    async def main() -> None:
        server = make_server()
        protocol, transport = connect(server)
        await feed(protocol, Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).getvalue())
        head = Encoder().int(1).int(MethodId.getItem).getvalue() + b"\x58\x40"  # a 64-byte table name...
        await feed(protocol, head + b"x" * 10)  # ... cut short
        assert not transport.closed
        await feed(protocol, b"x" * 60)
        assert transport.closed

    asyncio.run(main())


def test_connections_past_the_limit_are_refused() -> None:
    async def main() -> None:
        server = make_server(connections_max=2)
        first, _ = connect(server)
        connect(server)
        third, transport = connect(server)
        assert transport.aborted
        stats = server.statistics()
        assert (stats["connections_open"], stats["connections_refused"]) == (2, 1)
        third.connection_lost(None)
        first.connection_lost(None)
        assert server.statistics()["connections_open"] == 1

    asyncio.run(main())


def test_an_idle_connection_is_closed() -> None:
    async def main() -> None:
        server = make_server(idle_s=0.05)
        protocol, transport = connect(server)
        await asyncio.sleep(0.03)
        protocol.data_received(b"\x67")  # activity pushes the deadline
        await asyncio.sleep(0.03)
        assert not transport.closed
        await asyncio.sleep(0.1)
        assert transport.closed and server.statistics()["connections_idle_closed"] == 1

    asyncio.run(main())


# --- authorization -------------------------------------------------------------------------------


def test_with_credentials_a_bad_signature_fails_the_next_requests() -> None:
    async def main() -> None:
        server = make_server(credentials={"x": "y"})
        tube, sock = client_tube(secret="wrong")
        tube.reauth()
        Stubs.write_endpoints_455855874_1(tube)
        Stubs.write_endpoints_455855874_1(tube)
        protocol, transport = connect(server)
        await feed(protocol, take(sock))
        reader = ReplyReader(bytes(transport.out))
        for _ in range(2):
            err = reader.result(Assemblers.endpoints_455855874_1)
            assert isinstance(err, DaxServiceError) and err.auth_error and err.codes == [4, 23, 31, 33]
        assert not protocol.state.authorized
        # a good one later clears it
        good, good_sock = client_tube()
        good.reauth()
        Stubs.write_endpoints_455855874_1(good)
        data = take(good_sock)
        handshake_len = len(bytes(client_tube()[1].sent))
        transport.out.clear()
        await feed(protocol, data[handshake_len:])
        assert isinstance(ReplyReader(bytes(transport.out)).result(Assemblers.endpoints_455855874_1), list)
        assert protocol.state.access_key_id == "x"

    asyncio.run(main())


def test_with_credentials_a_request_before_any_authorization_fails() -> None:
    async def main() -> None:
        server = make_server(credentials={"x": "y"})
        protocol, transport = connect(server)
        enc = Encoder().text("J7yne5G").int(0).null().map_header(0).int(0).int(1).int(MethodId.endpoints)
        await feed(protocol, enc.getvalue())
        err = ReplyReader(bytes(transport.out)).result(Assemblers.endpoints_455855874_1)
        assert isinstance(err, DaxServiceError) and err.auth_error

    asyncio.run(main())


# --- the real client, over TCP ------------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_real_python_client_connects_puts_and_gets(loop: str) -> None:
    """endpoints, defineKeySchema, defineAttributeListId (put) and defineAttributeList (get) on the way."""
    from amazondax import AmazonDaxClient

    async def main() -> None:
        store = Store()
        server = make_server(store)
        host, port = await server.start("127.0.0.1", 0)

        def use_client() -> tuple[dict, dict]:
            client = AmazonDaxClient(endpoint_url=f"dax://{host}:{port}", region_name="us-east-1",
                                     aws_access_key_id="x", aws_secret_access_key="y")
            try:
                client.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "5"}, "s": {"S": "hi"}})
                found = client.get_item(TableName="t", Key={"pk": {"S": "a"}})
                missing = client.get_item(TableName="t", Key={"pk": {"S": "zz"}})
                return found, missing
            finally:
                client.close()

        started = time.monotonic()
        found, missing = await asyncio.wait_for(asyncio.to_thread(use_client), 30)
        assert found["Item"] == {"pk": {"S": "a"}, "n": {"N": "5"}, "s": {"S": "hi"}}
        assert "Item" not in missing
        assert time.monotonic() - started < 20
        assert server.statistics()["connections_total"] >= 1
        await server.close()

    if loop == "uvloop":  # the loop `meridian serve` runs the DAX node on
        uvloop = pytest.importorskip("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())
