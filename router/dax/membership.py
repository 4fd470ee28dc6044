"""The members of a DAX cluster whose nodes are processes of their own.

``meridian dax --members`` names every node of the cluster, this one included,
the first the leader (DAX's primary)::

    --members ID=HOST:DAXPORT/PEERPORT,ID=HOST:DAXPORT/PEERPORT,...

``DAXPORT`` is where clients reach the node (``dax://HOST:DAXPORT``),
``PEERPORT`` its gRPC peer channel (``proto/dax_peer.proto``).  Every node is
given the same list, so every node answers ``endpoints`` with the same
nodes and roles, and writes through to all the others (``peer_channel.py``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from .endpoints import Node, Role

_ZONES = "abc"


@dataclass(frozen=True)
class DaxMember:
    node_id: str
    host: str
    dax_port: int
    peer_port: int

    @property
    def peer_address(self) -> str:
        return f"{self.host}:{self.peer_port}"


def _port(text: str, entry: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"--members entry {entry!r}: {text!r} is not a TCP port")
    return port


def parse_members(text: str) -> list[DaxMember]:
    """``"a=127.0.0.1:8111/9111,b=..."`` -> members in order (the first the leader)."""
    members = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        node_id, sep, address = entry.partition("=")
        host, colon, ports = address.rpartition(":")
        dax_port, slash, peer_port = ports.partition("/")
        if not (sep and node_id and colon and host and slash):
            raise ValueError(f"--members entry {entry!r} is not ID=HOST:DAXPORT/PEERPORT")
        members.append(DaxMember(node_id, host.strip("[]"), _port(dax_port, entry), _port(peer_port, entry)))
    ids = [member.node_id for member in members]
    if len(set(ids)) != len(ids):
        raise ValueError(f"--members names a node twice: {ids}")
    return members


def member_of(members: list[DaxMember], node_id: str) -> DaxMember:
    for member in members:
        if member.node_id == node_id:
            return member
    raise ValueError(f"--members must include this node ({node_id})")


def zone_of(region: str, index: int) -> str:
    """Zones cycle through the region's a, b, c (as ``cluster.DaxCluster.zone_of``)."""
    return f"{region}{_ZONES[index % len(_ZONES)]}"


def _address_of(host: str) -> str | None:
    """The IP literal ``endpoints`` lists for a node on ``host`` (None: the one the client reached)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            return socket.gethostbyname(host)
        except OSError:
            return None
    return None if address.is_unspecified else str(address)


def parse_advertise(text: str) -> tuple[str, int | None]:
    """``--advertise HOST[:PORT]`` -> (host, port or None)."""
    host, colon, port = text.rpartition(":")
    if not colon or "]" in port:
        return text.strip("[]"), None
    return host.strip("[]"), _port(port, text)


def endpoints_of(members: list[DaxMember], node_id: str, region: str,
                 unreachable: frozenset[str] = frozenset(),
                 advertise: tuple[str, int | None] | None = None) -> tuple[Node, ...]:  # fmt: skip
    """What ``endpoints`` answers on node ``node_id``: every member, the first the leader.

    The answering node lists itself with the address and port the client
    reached it at (right behind NAT), or ``advertise`` (behind a published
    port, where the node sees the container's address), the others with
    their own.  Replicas in ``unreachable`` (this node's peer stream to them
    is down) are left out, as DAX leaves out a failed node, so clients stop
    sending reads to a dead process at their next refresh; the leader is
    always listed (there is no failover: writes need it)."""
    listed = []
    for i, member in enumerate(members):
        me = member.node_id == node_id
        if i > 0 and not me and member.node_id in unreachable:
            continue
        if me:
            host, address, port = member.host, None, None
            if advertise is not None:
                host, address, port = advertise[0], _address_of(advertise[0]), advertise[1]
        else:
            host, address, port = member.host, _address_of(member.host), member.dax_port
        listed.append(Node(node_id=member.node_id, hostname=host, az=zone_of(region, i),
                           role=Role.leader if i == 0 else Role.replica, address=address, port=port))
    return tuple(listed)
