"""A replicator's view of its own region's storage nodes, over gRPC.

``NodeChangeSource`` is one node's change log (``ChangeSource``);
``RegionSink`` applies incoming changes through the nodes that own them
(``ChangeSink``), placing each key on the routers' ring
(``meridian.model.ring.Ring``, same node ids) by its partition key, which
it decodes with the table's key schema from the region's catalog copy.

A node that does not answer (restarting) is retried here, every
``REPLICATION_NODE_RETRY_S``, for reads: the backlog waits in its log.  An
apply that fails raises instead, so the batch goes unacknowledged and the
sending region's link retransmits it.

Every failed call to a node is raised as the error the node raised
(``proto/errors.py``): ``LogTruncated`` for a log read behind garbage
collection, a ``DynamoError`` otherwise (``ServiceUnavailable`` for a node
that cannot be reached) - never as a raw ``grpc.aio.AioRpcError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.model.keycodec import decode_item_key, partition_hash
from meridian.model.ops import CatalogEntry
from meridian.model.changes import Change
from meridian.proto.channels import channel_options
from meridian.proto.errors import error_from_rpc
from meridian.proto.storage_codec import catalog_from_pb, catalog_to_pb
from meridian.proto import replication_pb2 as rpb
from meridian.proto import replication_pb2_grpc, storage_pb2_grpc
from meridian.proto import storage_pb2 as spb
from meridian.replication.digest import Digest
from meridian.model.changes import LogPosition
from meridian.replication.interfaces import Clock
from meridian.proto.replication_codec import change_from_pb, changes_from_pb, changes_to_pb, position_from_pb
from meridian.model.ring import Ring

log = logging.getLogger(__name__)

_CHANNEL_OPTIONS = channel_options(
    backoff_s_min=limits.REPLICATION_NODE_RETRY_S, backoff_s_max=limits.REPLICATION_RECONNECT_BACKOFF_S_MAX
)
_EMPTY = rpb.ReplEmpty()


class RegionNodes:
    """Channels to the region's nodes, by node id."""

    def __init__(self, nodes: Sequence[tuple[str, str]]) -> None:
        self.addresses = dict(nodes)
        self.ring = Ring([node_id for node_id, _ in nodes])
        self._channels = {
            node_id: grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS) for node_id, address in nodes
        }
        self.replica = {node_id: replication_pb2_grpc.ReplicaNodeStub(ch) for node_id, ch in self._channels.items()}
        self.storage = {node_id: storage_pb2_grpc.StorageStub(ch) for node_id, ch in self._channels.items()}

    def __repr__(self) -> str:
        return f"<RegionNodes {sorted(self.addresses)}>"

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def call(
        self, node_id: str, rpc, request, timeout_s: float | None = limits.REPLICATION_DELIVER_TIMEOUT_S
    ):
        """One unary call to a node (no deadline with ``timeout_s`` None); a
        failure raises the node's error."""
        return await _call(node_id, rpc, request, timeout_s)

    async def catalog(self, *, every_node: bool = False) -> dict[str, CatalogEntry]:
        """Every table's newest catalog entry over the nodes that answer (a
        node that was down missed changes); ``every_node``: raise unless all do."""
        newest: dict[str, CatalogEntry] = {}
        for node_id, stub in self.storage.items():
            try:
                reply = await self.call(node_id, stub.CatalogList, spb.Empty())
            except DynamoError as err:
                if every_node:
                    raise
                log.info("CatalogList on %s failed: %r", node_id, err)
                continue
            for entry in reply.entries:
                if entry.name not in newest or newest[entry.name].revision < entry.revision:
                    newest[entry.name] = catalog_from_pb(entry)
        return newest

    async def catalog_put(self, entry: CatalogEntry) -> None:
        """Store a catalog entry on every node (raises if one does not answer)."""
        message = catalog_to_pb(entry)
        for node_id, stub in self.storage.items():
            await self.call(node_id, stub.CatalogPut, message)

    async def drop_table(self, table_id: int) -> None:
        for node_id, stub in self.storage.items():
            await self.call(node_id, stub.DropTable, spb.TableRef(table_id=table_id))

    async def item_count(self, table_id: int) -> int:
        total = 0
        for node_id, stub in self.storage.items():
            stats = await self.call(node_id, stub.GetTableStats, spb.TableRef(table_id=table_id))
            total += stats.item_count
        return total

    async def set_clock_skew(self, skew_ms: int) -> None:
        """Offset every node's hybrid clock (``meridian clock skew``)."""
        for node_id, stub in self.replica.items():
            await self.call(node_id, stub.SetClockSkew, rpb.Skew(ms=skew_ms))

    async def truncate_log(self, node_id: str, through_sequence: int) -> int:
        """Garbage-collect a node's change log; the sequence it truncated through."""
        stub = self.replica[node_id]
        return (await self.call(node_id, stub.TruncateLog, rpb.Sequence(sequence=through_sequence), None)).sequence

    async def drop_tombstones(self, floor_hlc: int) -> int:
        """Drop every node's tombstones stamped at or below ``floor_hlc``; how many went."""
        dropped = 0
        for node_id, stub in self.replica.items():
            # A whole pass over the node's items: no deadline.
            dropped += (await self.call(node_id, stub.DropTombstones, rpb.Clock(hlc=floor_hlc), None)).count
        return dropped

    async def table_entry(self, name: str) -> CatalogEntry | None:
        """The live catalog entry of a table (None if absent or deleted)."""
        entry = (await self.catalog()).get(name)
        if entry is None or entry.deleted or "table_id" not in entry.description:
            return None
        return entry

    async def table_id(self, name: str) -> int | None:
        entry = await self.table_entry(name)
        return None if entry is None else entry.description["table_id"]

    async def digest(self, table_id: int, depth: int) -> Digest:
        """The region's digest of a table: every node's records, tombstones included."""
        digest = Digest(depth)
        async for key, record in self.records(table_id):
            digest.add(key, record)
        return digest

    async def records(self, table_id: int):
        """Every stored ``(key, record)`` of a table, node by node, page by page."""
        for node_id, stub in self.replica.items():
            after = b""
            while True:
                request = rpb.RecordsRequest(table_id=table_id, after=after)
                page = (await self.call(node_id, stub.ReadRecords, request)).records
                for record in page:
                    yield record.key, record.record
                if not page:
                    break
                after = page[-1].key


async def _call(node_id: str, rpc, request, timeout_s: float | None):
    """``rpc(request)``; a failure raises the error the node raised."""
    try:
        return await rpc(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        raise error_from_rpc(exc, f"storage node {node_id}") from exc


async def _retrying(what: str, node_id: str, rpc, request, timeout_s: float | None, clock: Clock):
    """``rpc(request)`` until the node answers (it may be restarting); a
    ``LogTruncated`` is raised, as retrying cannot cure it."""
    while True:
        try:
            return await _call(node_id, rpc, request, timeout_s)
        except DynamoError as err:
            log.info("%s on %s failed (%r), retrying", what, node_id, err)
            await clock.sleep(limits.REPLICATION_NODE_RETRY_S)


class NodeChangeSource:
    """One local node's change log (``ChangeSource``)."""

    def __init__(self, node_id: str, stub: replication_pb2_grpc.ReplicaNodeStub, clock: Clock) -> None:
        self._node_id = node_id
        self._stub = stub
        self._clock = clock

    @property
    def node_id(self) -> str:
        return self._node_id

    def __repr__(self) -> str:
        return f"<NodeChangeSource {self._node_id}>"

    async def read(self, after_seq: int, changes_max: int, bytes_max: int) -> list[Change]:
        """Raises ``LogTruncated`` if the node's log no longer holds ``after_seq + 1``."""
        request = rpb.ReadChangesRequest(after_sequence=after_seq, changes_max=changes_max, bytes_max=bytes_max)
        reply = await _retrying("ReadChanges", self._node_id, self._stub.ReadChanges, request, None, self._clock)
        return changes_from_pb(reply)

    async def log_position(self) -> LogPosition:
        reply = await _retrying("GetLogPosition", self._node_id, self._stub.GetLogPosition, _EMPTY, None, self._clock)
        return position_from_pb(reply)

    async def wait_beyond(self, sequence: int) -> None:
        request = rpb.WaitBeyondRequest(sequence=sequence, timeout_s=limits.REPLICATION_WAIT_BEYOND_S_MAX)
        deadline_s = limits.REPLICATION_WAIT_BEYOND_S_MAX + limits.REPLICATION_WAIT_BEYOND_GRACE_S
        while True:
            reply = await _retrying("WaitBeyond", self._node_id, self._stub.WaitBeyond, request, deadline_s, self._clock)
            if reply.last_sequence > sequence:
                return


class WireChanges(tuple):
    """Decoded changes that remember the protobuf messages they came from
    (``pb``), so applying them all on one node sends those as they are."""

    pb: Sequence[rpb.Change]

    @classmethod
    def of(cls, messages: Sequence[rpb.Change]) -> WireChanges:
        changes = cls(map(change_from_pb, messages))
        changes.pb = messages
        return changes


class RegionSink:
    """The region's storage as incoming replication sees it (``ChangeSink``)."""

    def __init__(self, nodes: RegionNodes) -> None:
        self._nodes = nodes
        self._schemas: dict[int, list] = {}  # table id -> key schema, from the catalog

    def __repr__(self) -> str:
        return f"<RegionSink {self._nodes!r} tables={len(self._schemas)}>"

    async def _refresh_schemas(self) -> None:
        self._schemas = {
            entry.description["table_id"]: entry.description["key_schema"]
            for entry in (await self._nodes.catalog()).values()
            if not entry.deleted and "table_id" in entry.description
        }

    def _owner(self, change: Change) -> str | None:
        schema = self._schemas.get(change.table_id)
        if schema is None:
            return None
        ring = self._nodes.ring
        if ring.single is not None:
            return ring.single
        pk_name, pk_type = schema[0]
        key = decode_item_key(change.key, schema)
        return ring.owner(partition_hash(pk_type, key[pk_name][pk_type]))

    async def apply(self, changes: Sequence[Change]) -> list[bool]:
        if any(c.table_id not in self._schemas for c in changes):
            await self._refresh_schemas()
        by_node: dict[str, list[int]] = {}
        for i, change in enumerate(changes):
            owner = self._owner(change)
            if owner is not None:  # a table without a replica here: discarded
                by_node.setdefault(owner, []).append(i)
        applied = [False] * len(changes)
        wire = getattr(changes, "pb", None)

        async def apply_on(node_id: str, positions: list[int]) -> None:
            if wire is not None and len(positions) == len(changes):  # all on one node: as received
                message = rpb.Changes(changes=wire)
            else:
                message = changes_to_pb(changes[i] for i in positions)
            reply = await self._nodes.call(node_id, self._nodes.replica[node_id].ApplyReplicated, message)
            for i, ok in zip(positions, reply.applied):
                applied[i] = ok

        await asyncio.gather(*(apply_on(node_id, positions) for node_id, positions in by_node.items()))
        return applied
