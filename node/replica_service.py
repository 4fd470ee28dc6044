"""The ``meridian.v1.ReplicaNode`` gRPC service: a region's replicator and one node.

The replicator tails the node's change log (``ReadChanges``, with
``WaitBeyond`` as a long poll so a quiet log costs nothing), applies other
regions' changes the node owns (``ApplyReplicated``: answered once durable)
and garbage-collects what every peer has acknowledged.  The engine's side
is ``node/replica.py``.  A call that fails ends with its error's status,
type kept (``proto/errors.py``): ``LogTruncated`` comes back to the
replicator as ``LogTruncated``, a ``DynamoError`` as its own class.
"""

from __future__ import annotations

import asyncio
import logging

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.node.engine import Engine
from meridian.model.changes import LogTruncated
from meridian.proto import replication_pb2 as rpb
from meridian.proto import replication_pb2_grpc
from meridian.proto.errors import abort
from meridian.proto.replication_codec import changes_from_pb, changes_to_pb, position_to_pb

log = logging.getLogger(__name__)


class ReplicaNodeService(replication_pb2_grpc.ReplicaNodeServicer):
    """Serves one engine's replication side to the region's replicator."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"<ReplicaNodeService {self._engine.node_id}>"

    @staticmethod
    async def _run(context, call):
        """Await ``call()``; a failure ends the RPC with its wire form."""
        try:
            return await call()
        except (LogTruncated, DynamoError) as exc:
            await abort(context, exc)
        except Exception as exc:
            log.exception("replication call failed")
            await abort(context, exc)  # an InternalServerError with its text

    async def ReadChanges(self, request: rpb.ReadChangesRequest, context) -> rpb.Changes:
        changes_max = min(request.changes_max, limits.REPLICATION_BATCH_CHANGES_MAX)
        bytes_max = min(request.bytes_max, limits.REPLICATION_BATCH_BYTES_MAX)

        async def read():
            return self._engine.read_change_batch(request.after_sequence, changes_max, bytes_max)

        return changes_to_pb(await self._run(context, read))

    async def GetLogPosition(self, request: rpb.ReplEmpty, context) -> rpb.LogPosition:
        return position_to_pb(self._engine.log_position())

    async def WaitBeyond(self, request: rpb.WaitBeyondRequest, context) -> rpb.LogPosition:
        timeout_s = min(max(request.timeout_s, 0.0), limits.REPLICATION_WAIT_BEYOND_S_MAX)

        async def wait() -> None:
            try:
                await asyncio.wait_for(self._engine.wait_beyond(request.sequence), timeout_s)
            except TimeoutError:
                pass

        await self._run(context, wait)
        return position_to_pb(self._engine.log_position())

    async def ApplyReplicated(self, request: rpb.Changes, context) -> rpb.Applied:
        applied = await self._run(context, lambda: self._engine.apply_replicated(changes_from_pb(request)))
        return rpb.Applied(applied=applied)

    async def TruncateLog(self, request: rpb.Sequence, context) -> rpb.Sequence:
        async def truncate() -> int:
            return self._engine.truncate_log(request.sequence)

        return rpb.Sequence(sequence=await self._run(context, truncate))

    async def ReadRecords(self, request: rpb.RecordsRequest, context) -> rpb.Records:
        limit = min(request.limit or limits.REPLICATION_BATCH_CHANGES_MAX, limits.REPLICATION_BATCH_CHANGES_MAX)

        async def read():
            return self._engine.table_records(request.table_id, request.after, limit, limits.REPLICATION_BATCH_BYTES_MAX)

        records = await self._run(context, read)
        return rpb.Records(records=[rpb.Record(key=k, record=r) for k, r in records])

    async def SetClockSkew(self, request: rpb.Skew, context) -> rpb.ReplEmpty:
        self._engine.set_clock_skew(request.ms)
        return rpb.ReplEmpty()

    async def DropTombstones(self, request: rpb.Clock, context) -> rpb.Count:
        # A whole pass over the items: off the event loop would race writes.
        async def drop() -> int:
            return self._engine.drop_tombstones(request.hlc)

        return rpb.Count(count=await self._run(context, drop))
