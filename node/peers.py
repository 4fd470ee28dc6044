"""Reaching the other storage nodes of the region (GSI maintenance, transactions).

A node's GSI maintainer sends index entries to the nodes that own them
(``node/gsi.py``); its transaction resolver asks coordinators for their
decisions (``node/txn_recovery.py``, unary ``TxnDecide``).  ``PeerLinks`` keeps one lazily opened gRPC channel per
peer and sends each batch as one unary ``ApplyIndex`` call; a failure is
raised to the maintainer, which repeats the round later, as the error the
peer raised (``proto/errors.py``).
"""

from __future__ import annotations

import grpc

from meridian.model import limits
from meridian.model.ops import IndexEntry
from meridian.proto.channels import channel_options
from meridian.model.errors import ServiceUnavailable
from meridian.model.transactions import TxnOutcome
from meridian.proto import storage_pb2, storage_pb2_grpc
from meridian.proto.errors import error_from_rpc
from meridian.proto.storage_codec import index_entries_to_pb

_CHANNEL_OPTIONS = channel_options(
    backoff_s_min=limits.GSI_RETRY_BACKOFF_S_MIN, backoff_s_max=limits.GSI_RETRY_BACKOFF_S_MAX
)


class PeerLinks:
    """gRPC channels to the peers of a node, by node id."""

    def __init__(self, peers: dict[str, str]) -> None:
        self._addresses = dict(peers)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, storage_pb2_grpc.StorageStub] = {}

    def __repr__(self) -> str:
        return f"<PeerLinks peers={sorted(self._addresses)} open={sorted(self._channels)}>"

    def _stub(self, node_id: str) -> storage_pb2_grpc.StorageStub:
        stub = self._stubs.get(node_id)
        if stub is None:
            channel = grpc.aio.insecure_channel(self._addresses[node_id], options=_CHANNEL_OPTIONS)
            self._channels[node_id] = channel
            stub = self._stubs[node_id] = storage_pb2_grpc.StorageStub(channel)
        return stub

    async def send_index_entries(self, node_id: str, entries: list[IndexEntry]) -> None:
        """Return once ``node_id`` applied ``entries`` durably; raises the
        peer's ``DynamoError`` (``ServiceUnavailable`` if it cannot be reached)."""
        try:
            await self._stub(node_id).ApplyIndex(index_entries_to_pb(entries), timeout=limits.GSI_SEND_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, f"storage node {node_id}") from exc

    async def decide_transaction(self, node_id: str, txn_id: bytes, outcome: TxnOutcome) -> TxnOutcome:
        """Ask the coordinator ``node_id`` for a transaction's decision,
        recording ``outcome`` there if there is none yet (``node/txn_recovery.py``)."""
        if node_id not in self._addresses:
            raise ServiceUnavailable(f"storage node {node_id} is not a peer of this node")
        try:
            reply = await self._stub(node_id).TxnDecide(
                storage_pb2.TxnDecision(txn_id=txn_id, outcome=outcome), timeout=limits.TXN_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, f"storage node {node_id}") from exc
        return TxnOutcome(reply.outcome)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()
