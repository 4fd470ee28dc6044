"""Replicators of different regions talking gRPC: the ``Transport`` to a
peer, and the ``Replicator`` service a peer delivers to and a user controls.

``PeerTransport.deliver`` is one unary ``Deliver`` call per batch on a
long-lived HTTP/2 channel; the ``SimulatedLink`` in front of it keeps
batches in order (it hands the next one over only once the previous one is
acknowledged) and turns any failure - peer down, restarting, too slow -
into a retransmission, so this layer never loses or reorders a batch.

``Control`` takes JSON commands (``link-set``, ``link-cut``, ``link-heal``,
``pause``, ``resume``, ``show``, ``clock-skew``, ``digest``, ``events``) for
the ``meridian link`` / ``replication`` / ``clock`` / ``lag`` / ``verify``
commands (``meridian.cluster.control_client``) and tests; a link is one direction
(this region -> peer).  A command naming another ``region`` is forwarded to
that region's replicator over the peer channel, so a user who reaches one
region's router (``POST /meridian/control``) reaches every region.  Every
change of conditions a replicator applies is kept, with its wall-clock
time, in a bounded event log (``REPLICATION_CONTROL_EVENTS_MAX``).

Errors cross gRPC as ``proto/errors.py`` encodes them: a refused command is
a ``ControlError`` (INVALID_ARGUMENT; HTTP 400 at a router), a region that
does not answer a ``ControlUnreachable`` (UNAVAILABLE; HTTP 503), also when
the region it was forwarded to said so.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Mapping

import grpc
import orjson

from meridian.model import limits
from meridian.model.changes import Ack, Change, ReplicationBatch
from meridian.model.errors import DynamoError, ServiceUnavailable
from meridian.model.ops import CatalogEntry
from meridian.proto.channels import channel_options
from meridian.proto import replication_pb2 as rpb
from meridian.proto import replication_pb2_grpc
from meridian.proto.errors import ControlError, ControlUnreachable, abort, error_from_rpc  # also this module's API
from meridian.replication.digest import FANOUT, entry_hash, leaf_of
from meridian.replication.clock import SystemClock
from meridian.replication.interfaces import ChangeSink, Clock, PeerUnavailable
from meridian.replication.link import SimulatedLink
from meridian.replication.nodes import RegionNodes, WireChanges
from meridian.replication.replicator import Replicator
from meridian.proto.replication_codec import ack_from_pb, ack_to_pb, batch_to_pb, changes_from_pb, changes_to_pb

log = logging.getLogger(__name__)

_CHANNEL_OPTIONS = channel_options(
    backoff_s_min=limits.REPLICATION_NODE_RETRY_S, backoff_s_max=limits.REPLICATION_RECONNECT_BACKOFF_S_MAX
)
_LINK_SETTINGS = ("latency_ms", "jitter_ms", "loss")

#: Commands that change conditions, recorded in the event log.
_RECORDED_COMMANDS = frozenset({"link-set", "link-cut", "link-heal", "pause", "resume", "clock-skew"})
#: Fields of a command that are not its arguments.
_NOT_ARGUMENTS = frozenset({"command", "region"})


class PeerTransport:
    """Delivers batches to one peer region's replicator (``Transport``)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = replication_pb2_grpc.ReplicatorStub(self._channel)

    def __repr__(self) -> str:
        return f"<PeerTransport {self.address}>"

    async def deliver(self, batch: ReplicationBatch) -> Ack:
        try:
            reply = await self._stub.Deliver(batch_to_pb(batch), timeout=limits.REPLICATION_DELIVER_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise PeerUnavailable(f"{self.address}: {exc.code().name} {exc.details()}") from exc
        return ack_from_pb(reply)

    async def control(self, command: dict, timeout_s: float = limits.REPLICATION_DELIVER_TIMEOUT_S) -> dict:
        reply = await self._stub.Control(rpb.ControlRequest(json=orjson.dumps(command)), timeout=timeout_s)
        return orjson.loads(reply.json)

    async def backfill(self, changes: list[Change]) -> None:
        """Have the peer apply a new replica's existing items (raises on failure)."""
        await self._stub.Backfill(changes_to_pb(changes), timeout=limits.REPLICATION_DELIVER_TIMEOUT_S)

    async def close(self) -> None:
        await self._channel.close()


class ReplicatorService(replication_pb2_grpc.ReplicatorServicer):
    """One region's replicator as peers and users reach it."""

    def __init__(
        self,
        replicator: Replicator,
        links: Mapping[str, SimulatedLink],
        nodes: RegionNodes,
        sink: ChangeSink | None = None,
        note_catalog: Callable[[CatalogEntry], None] | None = None,
        peer_addresses: Mapping[str, str] | None = None,
        metrics: Callable[[], str] | None = None,
        transports: Mapping[str, PeerTransport] | None = None,
        table_name: Callable[[int], str | None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``transports``: the peers' replicators, to forward commands naming
        their region; ``table_name``: names tables in ``show``'s latency;
        ``clock``: timestamps the event log (default: the system clock)."""
        self._replicator = replicator
        self._clock = clock or SystemClock()
        self._transports = dict(transports or {})
        self._table_name = table_name or (lambda table_id: None)
        self._events: deque[dict] = deque(maxlen=limits.REPLICATION_CONTROL_EVENTS_MAX)
        self._peer_addresses = dict(peer_addresses or {})  # answered to "peers", for --endpoint
        self._metrics = metrics  # Prometheus text, answered to "metrics" (a router's GET /metrics)
        self._links = dict(links)
        self._nodes = nodes
        self._sink = sink
        self._note_catalog = note_catalog  # ReplicaManager.note

    def __repr__(self) -> str:
        return f"<ReplicatorService {self._replicator.region}>"

    async def Deliver(self, request: rpb.Batch, context) -> rpb.BatchAck:
        try:
            batch = ReplicationBatch(
                origin=request.origin,
                node_id=request.node_id,
                after_sequence=request.after_sequence,
                last_sequence=request.last_sequence,
                changes=WireChanges.of(request.changes),  # applied as received when one node owns them all
                size_bytes=request.size_bytes,
                stamp_floor_hlc=request.stamp_floor_hlc,
            )
            ack = await self._replicator.receive(batch)
        except PeerUnavailable as exc:
            await abort(context, ServiceUnavailable(str(exc)))
        except ValueError as exc:  # a batch from a region that is not a peer
            await abort(context, ControlError(str(exc)))
        except Exception as exc:  # a node failed or is down: not acknowledged, so resent
            log.info("applying a batch from %s failed: %s", request.origin, exc)
            await abort(context, ServiceUnavailable(f"apply failed: {exc}"))
        return ack_to_pb(ack)

    async def Backfill(self, request: rpb.Changes, context) -> rpb.Applied:
        try:
            applied = await self._sink.apply(changes_from_pb(request))
        except Exception as exc:
            log.info("applying a backfill batch failed: %s", exc)
            await abort(context, ServiceUnavailable(f"apply failed: {exc}"))
        return rpb.Applied(applied=applied)

    async def Control(self, request: rpb.ControlRequest, context) -> rpb.ControlReply:
        """A command for this region, or forwarded to the region it names.

        A bad command is INVALID_ARGUMENT, also when the region it was
        forwarded to said so; a region that cannot be reached is UNAVAILABLE.
        """
        try:
            command = orjson.loads(request.json)
            if not isinstance(command, dict):
                raise ControlError("a control command is a JSON object")
            region = command.get("region")
            if region is not None and region != self._replicator.region:
                answer = await self._forward(region, command)
            else:
                answer = await self.control(command)
        except ControlError as exc:
            await abort(context, exc)
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            await abort(context, ControlError(str(exc)))
        except ControlUnreachable as exc:
            await abort(context, exc)
        except DynamoError as err:  # one of this region's nodes
            await abort(context, ControlUnreachable(f"a storage node of {self._replicator.region}: {err.message}"))
        return rpb.ControlReply(json=orjson.dumps(answer))

    async def _forward(self, region: object, command: dict) -> dict:
        transport = self._transports.get(region)  # type: ignore[arg-type]
        if transport is None:
            known = ", ".join(sorted({self._replicator.region, *self._transports}))
            raise ControlError(f"unknown region {region!r}: the regions are {known}")
        try:
            return await transport.control(command, timeout_s=limits.REPLICATION_CONTROL_FORWARD_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            err = error_from_rpc(exc, f"the replicator of {region} at {transport.address}")
            if isinstance(err, ControlError):
                raise err from exc
            raise ControlUnreachable(
                f"the replicator of {region} at {transport.address} is unreachable: {exc.code().name}"
            ) from exc

    def _record(self, name: str, command: dict) -> None:
        args = {k: v for k, v in command.items() if k not in _NOT_ARGUMENTS}
        t = self._clock.wall_ms() / 1000
        self._events.append({"t": t, "region": self._replicator.region, "command": name, "args": args})

    def _link(self, command: dict) -> SimulatedLink:
        link = self._links.get(command.get("peer"))
        if link is None:
            raise ControlError(f"{command.get('peer')!r} is not a peer of {self._replicator.region}")
        return link

    async def control(self, command: dict) -> dict:
        """Carry out one control command here; answer with the state after it."""
        name = command.get("command")
        answer = await self._carry_out(name, command)
        if name in _RECORDED_COMMANDS:
            self._record(name, command)
        return answer

    async def _carry_out(self, name: object, command: dict) -> dict:
        if name == "link-set":
            settings = {k: float(command[k]) for k in _LINK_SETTINGS if command.get(k) is not None}
            try:
                self._link(command).set(**settings)
            except ValueError as exc:
                raise ControlError(str(exc)) from exc
        elif name == "link-cut":
            self._link(command).cut()
        elif name == "link-heal":
            self._link(command).heal()
        elif name in ("pause", "resume"):
            peers = [command["peer"]] if command.get("peer") else list(self._links)
            for peer in peers:
                self._link({"peer": peer})
                getattr(self._replicator, name)(peer)
        elif name == "clock-skew":
            if "ms" not in command:
                raise ControlError("clock-skew needs ms")
            await self._nodes.set_clock_skew(int(command["ms"]))
            return {"region": self._replicator.region, "skew_ms": int(command["ms"])}
        elif name == "events":
            return {"region": self._replicator.region, "events": list(self._events)}
        elif name == "digest":
            return await self._digest(command)
        elif name == "catalog-put":  # from the coordinator of a replica change
            entry = CatalogEntry(
                command["name"], int(command["revision"]), command["description"], bool(command["deleted"])
            )
            if self._note_catalog is not None:
                self._note_catalog(entry)  # the scope first: see ReplicaManager.note
            await self._nodes.catalog_put(entry)
            return {"region": self._replicator.region}
        elif name == "drop-table":
            await self._nodes.drop_table(int(command["table_id"]))
            return {"region": self._replicator.region}
        elif name == "peers":  # a router resolving every region's replicator for the CLI
            return {"region": self._replicator.region, "replicators": self._peer_addresses}
        elif name == "metrics":
            if self._metrics is None:
                raise ControlError(f"the replicator of {self._replicator.region} keeps no metrics")
            return {"region": self._replicator.region, "text": self._metrics()}
        elif name != "show":
            raise ControlError(f"unknown control command {name!r}")
        return await self.show()

    async def _digest(self, command: dict) -> dict:
        """A table's digest in this region: its non-empty leaves, and with
        ``leaves`` given, the entry hash of every key in those leaves (and
        the key schema, to read those keys)."""
        entry = await self._nodes.table_entry(str(command.get("table")))
        if entry is None:
            return {"region": self._replicator.region, "table_id": None}
        table_id = entry.description["table_id"]
        depth = int(command.get("depth", limits.DIGEST_DEPTH))
        try:
            digest = await self._nodes.digest(table_id, depth)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        leaves = {}
        for leaf in range(FANOUT**depth):
            total, count = digest.node(depth, leaf)
            if count:
                leaves[str(leaf)] = f"{total:x}/{count}"
        answer = {"region": self._replicator.region, "table_id": table_id, "count": digest.count, "leaves": leaves}
        wanted = frozenset(int(leaf) for leaf in command.get("leaves") or ())
        if wanted:
            entries = {}
            async for key, record in self._nodes.records(table_id):
                if leaf_of(key, depth) in wanted:
                    entries[key.hex()] = f"{entry_hash(key, record):x}"
            answer["entries"] = entries
            answer["key_schema"] = entry.description["key_schema"]
        return answer

    async def show(self) -> dict:
        replicator = self._replicator
        statistics = dataclasses.asdict(replicator.statistics())
        return {
            "region": replicator.region,
            "links": [
                {**dataclasses.asdict(link.statistics().conditions), "source": link.source, "target": link.target}
                for link in self._links.values()
            ],
            "statistics": statistics,
            "pending": await replicator.pending_changes(),
            "latency": [
                {
                    "table_id": key.table_id, "table": self._table_name(key.table_id),
                    "origin": key.origin, "receiver": key.receiver, **dataclasses.asdict(s),
                }
                for key, s in replicator.latency.summaries().items()
            ],
        }


async def control(address: str, command: dict, timeout_s: float = limits.REPLICATION_CONTROL_TIMEOUT_S) -> dict:
    """Send one control command to the replicator at ``address``.

    Raises ``ControlError`` for a command the replicators refused (the
    caller's mistake: HTTP 400 at a router); anything else that went wrong
    (the replicator, or the region it forwards to, unreachable or failing)
    raises what ``proto.errors.error_from_rpc`` makes of it (HTTP 503).
    A channel per call: control commands are operator actions, not the data path.
    """
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = replication_pb2_grpc.ReplicatorStub(channel)
            reply = await stub.Control(rpb.ControlRequest(json=orjson.dumps(command)), timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc, f"the replicator at {address}") from None
    return orjson.loads(reply.json)
