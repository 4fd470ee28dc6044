"""The metadata methods a DAX client calls before its data: ``endpoints``,
``defineKeySchema``, ``defineAttributeListId`` and ``defineAttributeList``.

Each function returns the success BODY (the server puts ``0x80`` before it)
or raises a ``DynamoError`` the server encodes.

``endpoints``: one map per node of this DAX cluster, integer keys::

    {0: node id (int or text), 1: hostname, 2: address (4 or 16 bytes), 3: port,
     4: role (1 leader, 2 replica), 5: availability zone, 6: leader session id}

The clients connect to every ``address:port`` listed and send writes to a
leader (Python waits for one, then gives up with NoRoute).  Python needs keys
0-5 (no ``az`` is a TypeError) and keeps only the endpoints whose address
family is its own connection's, so a node listed without an address gets the
address the client reached it at (the connection's own ``sockname``; an
IPv4-mapped IPv6 address goes back as the IPv4 it is).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence

from meridian.model.errors import ResourceNotFoundException, ValidationException

from .cbor import Encoder

if TYPE_CHECKING:  # only its id_for and names_for are called
    from .attribute_lists import AttributeListRegistry

#: async table name -> [(hash name, type), (range name, type)?]; raises
#: ResourceNotFoundException (or returns None) for a table that does not exist
DescribeKeySchema = Callable[[str], Awaitable["list[tuple[str, str]] | None"]]


class Role(enum.IntEnum):
    leader = 1
    replica = 2


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a DAX cluster as ``endpoints`` lists it.

    ``address``/``port`` None: the address and port the client reached this
    node at (right for the node answering; other nodes need theirs).
    """

    node_id: int | str
    hostname: str
    az: str
    role: Role = Role.leader
    leader_session_id: int = 1
    address: str | None = None
    port: int | None = None


def address_bytes(host: str) -> bytes:
    """An IP literal as the 4 or 16 bytes ``endpoints`` carries (IPv4-mapped IPv6 as 4)."""
    addr = ipaddress.ip_address(host.split("%", 1)[0])  # a link-local address's %scope is not sent
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.packed


def encode_endpoints(nodes: Sequence[Node], sockname: tuple[object, ...]) -> bytes:
    """The ``endpoints`` body for a client connected to ``sockname`` (this node's side of the socket)."""
    own_host, own_port = str(sockname[0]), int(sockname[1])  # type: ignore[call-overload]
    enc = Encoder()
    enc.array_header(len(nodes))
    for node in nodes:
        enc.map_header(7)
        enc.int(0)
        if isinstance(node.node_id, str):
            enc.text(node.node_id)
        else:
            enc.int(node.node_id)
        enc.int(1)
        enc.text(node.hostname)
        enc.int(2)
        enc.bytes_(address_bytes(node.address if node.address is not None else own_host))
        enc.int(3)
        enc.int(node.port if node.port is not None else own_port)
        enc.int(4)
        enc.int(int(node.role))
        enc.int(5)
        enc.text(node.az)
        enc.int(6)
        enc.int(node.leader_session_id)
    return enc.getvalue()


def _text_arg(value: object, what: str) -> str:
    """A name the clients send as bytes (Python, JS) or text (others)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationException(f"{what} is not valid UTF-8") from None
    raise ValidationException(f"{what} must be a string")


async def define_key_schema(describe: DescribeKeySchema, args: list[object]) -> bytes:
    """``defineKeySchema(table)`` -> ``{hash name: type, range name: type}``, hash first."""
    table = _text_arg(args[0], "TableName")
    schema = await describe(table)
    if not schema:
        raise ResourceNotFoundException()
    enc = Encoder()
    enc.map_header(len(schema))
    for name, attr_type in schema:
        enc.text(name)
        enc.text(attr_type)
    return enc.getvalue()


def define_attribute_list_id(registry: AttributeListRegistry, args: list[object]) -> bytes:
    """``defineAttributeListId([names])`` -> the list's id (the same on every node, for good)."""
    names = args[0]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValidationException("attribute names must be an array of strings")
    enc = Encoder()
    enc.int(registry.id_for(tuple(names)))
    return enc.getvalue()


def define_attribute_list(registry: AttributeListRegistry, args: list[object]) -> bytes:
    """``defineAttributeList(id)`` -> the names of a list this node handed out."""
    list_id = args[0]
    if type(list_id) is not int:
        raise ValidationException("attribute list id must be an integer")
    try:
        names = registry.names_for(list_id)
    except KeyError:
        raise ValidationException(f"Unknown attribute list id {list_id}") from None
    enc = Encoder()
    enc.array_header(len(names))
    for name in names:
        enc.text(name)
    return enc.getvalue()
