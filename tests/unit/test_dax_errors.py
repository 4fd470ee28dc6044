"""DAX error replies, authorizeConnection and the metadata answers, read back by the real Python client's code.

The replies are decoded with ``amazondax``'s own decoder and assemblers
(``DaxClient._handle_error``, ``Assemblers.endpoints_...``), so a passing test
means the published client understands what the server sends.
"""

from __future__ import annotations

import asyncio
import datetime
import socket
from types import SimpleNamespace

import pytest

amazondax = pytest.importorskip("amazondax")
from amazondax import Assemblers, SigV4Gen  # noqa: E402
from amazondax.CborDecoder import NoMoreData  # noqa: E402
from amazondax.DaxClient import DaxClient  # noqa: E402
from amazondax.DaxCborDecoder import DaxCborDecoder  # noqa: E402
from amazondax.DaxError import DaxServiceError  # noqa: E402

from meridian.model.errors import (  # noqa: E402
    AccessDeniedException,
    ConditionalCheckFailedException,
    DynamoError,
    InternalServerError,
    InvalidSignatureException,
    ResourceNotFoundException,
    SerializationException,
    ServiceUnavailable,
    TableNotFoundException,
    ThrottlingException,
    TransactionCanceledException,
    TransactionConflictException,
    UnrecognizedClientException,
    ValidationException,
)
from meridian.router.dax import endpoints  # noqa: E402
from meridian.router.dax.auth import Authenticator  # noqa: E402
from meridian.router.dax.errors import codes_for, encode_error  # noqa: E402
from meridian.router.sigv4 import Credential  # noqa: E402


class ClientTube:
    """Just enough of ``amazondax.Tube`` to run the client's readers over fixed bytes."""

    def __init__(self, data: bytes) -> None:
        def more(buf: bytearray, n: int) -> int:
            raise NoMoreData()

        self.dec = DaxCborDecoder(more)
        self.dec.buffer += data

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

    def rest(self) -> bytes:
        return bytes(self.dec.buffer)


def client_error(reply: bytes) -> DaxServiceError:
    tube = ClientTube(reply)
    with pytest.raises(DaxServiceError) as caught:
        DaxClient._handle_error(None, "GetItem", tube)  # type: ignore[arg-type]
    assert tube.rest() == b"", "the client must read the whole reply"
    return caught.value


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "client_code"),
    [
        (ConditionalCheckFailedException(), "ConditionalCheckFailedException"),
        (ResourceNotFoundException(), "ResourceNotFoundException"),
        (ValidationException("bad"), "ValidationException"),
        (ThrottlingException("slow down"), "ThrottlingException"),
        (InternalServerError("oops"), "InternalServerErrorException"),
        (AccessDeniedException("no"), "AccessDeniedException"),
        # no DAX code: the client falls back to the __type text sent beside the codes
        (TransactionConflictException("conflict"), "TransactionConflictException"),
        (SerializationException("types"), "SerializationException"),
        (TableNotFoundException("gone"), "TableNotFoundException"),
        (ServiceUnavailable("later"), "ServiceUnavailable"),
        (UnrecognizedClientException("who"), "UnrecognizedClientException"),
    ],
)
def test_the_python_client_names_every_error(err: DynamoError, client_code: str) -> None:
    exc = client_error(encode_error(err, "REQ1"))
    assert exc.code == client_code
    assert exc.response["Error"]["Message"] == (err.message or "")
    assert exc.response["ResponseMetadata"] == {"RequestId": "REQ1", "HTTPStatusCode": err.status}
    assert exc.codes == list(codes_for(err))


def test_an_auth_failure_is_an_auth_error_for_the_client() -> None:
    for err in (UnrecognizedClientException("x"), InvalidSignatureException("y")):
        exc = client_error(encode_error(err, "R"))
        assert exc.auth_error and exc.codes == [4, 23, 31, 33]
    assert not client_error(encode_error(ValidationException("v"), "R")).auth_error


def test_every_code_path_ends_where_the_clients_expect() -> None:
    """A path must end in a leaf or a miss of the Python client's tree, never on an inner dict."""
    from amazondax.DaxError import _pick_error_code

    for cls in list(_all_errors()):
        err = cls.__new__(cls)
        DynamoError.__init__(err, "m")
        code = _pick_error_code(list(codes_for(err)))
        assert code is None or isinstance(code, str), (cls, code)


def _all_errors():
    stack = [DynamoError]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        yield cls


def test_an_unmapped_subclass_takes_its_base_codes() -> None:
    class Special(ValidationException):
        pass

    assert codes_for(Special("x")) == codes_for(ValidationException("x"))


def test_cancellation_reasons_are_a_flat_array() -> None:
    reasons = [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": {"k": {"S": "a"}}},
    ]
    err = TransactionCanceledException(reasons)
    seen = []

    def item_bytes(index: int, item: dict) -> bytes:
        seen.append((index, item))
        return b"\x01\x02"

    exc = client_error(encode_error(err, "R", item_bytes))
    assert exc.code == "TransactionCanceledException"
    assert exc.cancellation_reasons == ["None", None, None, "ConditionalCheckFailed",
                                        "The conditional request failed", b"\x01\x02"]
    assert seen == [(1, {"k": {"S": "a"}})]
    # without an item encoder the item is null
    exc = client_error(encode_error(err, "R"))
    assert exc.cancellation_reasons[5] is None


def test_a_rebuilt_cancellation_without_reasons_sends_three_infos() -> None:
    err = TransactionCanceledException.__new__(TransactionCanceledException)
    DynamoError.__init__(err, "cancelled")
    exc = client_error(encode_error(err, "R"))
    assert exc.code == "TransactionCanceledException" and exc.cancellation_reasons is None


# --- authorizeConnection -------------------------------------------------------------------

_NOW = datetime.datetime(2024, 5, 6, 7, 8, 9)


def _signed(access_key: str, secret: str, region: str = "us-east-1", token: str | None = None,
            at: datetime.datetime = _NOW) -> list[object]:
    """The arguments the Python client sends, made with its own signer."""
    creds = SimpleNamespace(access_key=access_key, secret_key=secret, token=token)
    sig = SigV4Gen.generate_signature(creds, "https://dax.amazonaws.com", region, b"", at)
    return [access_key, sig.signature, sig.string_to_sign.encode(), token, "DaxPythonClient-2.1.0"]


def _auth(credentials) -> Authenticator:
    return Authenticator(credentials, now_s=lambda: _NOW.replace(tzinfo=datetime.timezone.utc).timestamp())


def test_without_credentials_anything_passes() -> None:
    auth = Authenticator(None)
    assert not auth.required
    assert auth.check(["x", "junk", b"junk", None, None]) is None
    assert auth.check([1, 2, 3, 4, 5]) is None


def test_the_clients_signature_is_accepted() -> None:
    auth = _auth({"AKID": "secret"})
    assert auth.required
    assert auth.check(_signed("AKID", "secret")) is None
    assert auth.check(_signed("AKID", "secret", region="eu-west-3")) is None
    assert auth.accepted == 2 and auth.rejected == 0


def test_a_wrong_secret_or_key_is_refused() -> None:
    auth = _auth({"AKID": "secret"})
    assert isinstance(auth.check(_signed("AKID", "other")), InvalidSignatureException)
    assert isinstance(auth.check(_signed("NOPE", "secret")), UnrecognizedClientException)
    assert auth.rejected == 2


def test_a_tampered_string_to_sign_is_refused() -> None:
    auth = _auth({"AKID": "secret"})
    args = _signed("AKID", "secret")
    text = args[2].decode()  # type: ignore[union-attr]
    for bad in (text.replace("/dax/", "/dynamodb/"), text[:-1] + ("0" if text[-1] != "0" else "1"),
                text.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "\xff", ""):
        assert isinstance(auth.check([args[0], args[1], bad.encode(), None, None]), InvalidSignatureException), bad
    assert isinstance(auth.check(["AKID", "sig", "not bytes", None, None]), UnrecognizedClientException)


def test_an_old_signature_is_refused() -> None:
    auth = _auth({"AKID": "secret"})
    stale = _signed("AKID", "secret", at=_NOW - datetime.timedelta(hours=1))
    assert isinstance(auth.check(stale), InvalidSignatureException)


def test_a_session_token_must_match() -> None:
    auth = _auth({"AKID": Credential("secret", "TOKEN")})
    assert auth.check(_signed("AKID", "secret", token="TOKEN")) is None
    assert isinstance(auth.check(_signed("AKID", "secret", token="OTHER")), UnrecognizedClientException)
    assert isinstance(auth.check(_signed("AKID", "secret")), UnrecognizedClientException)


# --- endpoints and metadata --------------------------------------------------------------


def test_endpoints_read_by_the_python_client() -> None:
    nodes = [
        endpoints.Node(node_id=7, hostname="dax-1", az="us-east-1a"),
        endpoints.Node(node_id="n2", hostname="dax-2", az="us-east-1b", role=endpoints.Role.replica,
                       address="10.0.0.2", port=9111),
    ]
    body = endpoints.encode_endpoints(nodes, ("127.0.0.1", 8111))
    got = Assemblers.endpoints_455855874_1(None, ClientTube(body))
    assert got == [
        {"node": 7, "hostname": "dax-1", "address": "127.0.0.1", "port": 8111, "role": 1, "az": "us-east-1a",
         "leader_session_id": 1, "ip_version": socket.AF_INET},
        {"node": "n2", "hostname": "dax-2", "address": "10.0.0.2", "port": 9111, "role": 2, "az": "us-east-1b",
         "leader_session_id": 1, "ip_version": socket.AF_INET},
    ]


def test_endpoints_keep_the_connections_address_family() -> None:
    node = endpoints.Node(node_id=1, hostname="h", az="a")
    (v6,) = Assemblers.endpoints_455855874_1(None, ClientTube(endpoints.encode_endpoints([node], ("::1", 5, 0, 0))))
    assert v6["address"] == "::1" and v6["ip_version"] == socket.AF_INET6
    # a dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d: it goes back as IPv4
    body = endpoints.encode_endpoints([node], ("::ffff:127.0.0.1", 5, 0, 0))
    (v4,) = Assemblers.endpoints_455855874_1(None, ClientTube(body))
    assert v4["address"] == "127.0.0.1" and v4["ip_version"] == socket.AF_INET
    assert endpoints.address_bytes("fe80::1%eth0") == socket.inet_pton(socket.AF_INET6, "fe80::1")


def test_define_key_schema_hash_first() -> None:
    async def describe(table: str):
        return {"t": [("pk", "S"), ("sk", "N")]}.get(table)

    body = asyncio.run(endpoints.define_key_schema(describe, [b"t"]))
    assert Assemblers.defineKeySchema_N742646399_1(None, ClientTube(body)) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
    ]
    with pytest.raises(ResourceNotFoundException) as missing:
        asyncio.run(endpoints.define_key_schema(describe, [b"nope"]))
    assert missing.value.message == "Requested resource not found"
    with pytest.raises(ValidationException):
        asyncio.run(endpoints.define_key_schema(describe, [b"\xff"]))
    with pytest.raises(ValidationException):
        asyncio.run(endpoints.define_key_schema(describe, [3]))


class DictRegistry:
    """A stand-in attribute-list registry (the real one is attribute_lists.py's)."""

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


def test_attribute_lists_round_trip() -> None:
    registry = DictRegistry()
    body = endpoints.define_attribute_list_id(registry, [["a", "b"]])  # type: ignore[arg-type]
    list_id = Assemblers.defineAttributeListId_N1230579644_1(None, ClientTube(body))
    body = endpoints.define_attribute_list(registry, [list_id])  # type: ignore[arg-type]
    assert Assemblers.defineAttributeList_670678385_1(None, ClientTube(body)) == ["a", "b"]
    with pytest.raises(ValidationException):
        endpoints.define_attribute_list(registry, [999])  # type: ignore[arg-type]
    with pytest.raises(ValidationException):
        endpoints.define_attribute_list(registry, [True])  # type: ignore[arg-type]
    with pytest.raises(ValidationException):
        endpoints.define_attribute_list_id(registry, [["a", 1]])  # type: ignore[arg-type]
