"""Raft, one group per replica set (Multi-Raft): the protocol core, pure (no I/O).

    RaftNode(node_id, persisted, rng, now_ms, options)    one replica (node.py,
        leader.py): tick / receive / propose / read / change_voters /
        transfer_leadership / compact, each returning Effects (effects.py)
    bootstrap(voters) -> Persisted                         a new node's disk
    RaftLog                                                the log (log.py)
    messages                                               what nodes persist and
                                                           send (messages.py)

Issue 19 chose a consensus protocol in Meridian (docs/architecture.md,
"Replica sets (issue 19): the protocol"); tests/sim/test_raft_sim.py proves it
in seeded simulation.  Nothing here is wired to storage nodes or gRPC yet.
"""

from .effects import Accepted, Effects, LogWrite, ReadReady, Refused
from .log import RaftLog
from .messages import (
    AppendRequest,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    Message,
    Persisted,
    Snapshot,
    SnapshotRequest,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
    decode_voters,
    encode_voters,
)
from .node import RaftNode, RaftOptions, Role, bootstrap

__all__ = [
    "Accepted",
    "AppendRequest",
    "AppendResponse",
    "Effects",
    "Entry",
    "EntryKind",
    "HardState",
    "LogWrite",
    "Message",
    "Persisted",
    "RaftLog",
    "RaftNode",
    "RaftOptions",
    "ReadReady",
    "Refused",
    "Role",
    "Snapshot",
    "SnapshotRequest",
    "TimeoutNow",
    "VoteRequest",
    "VoteResponse",
    "bootstrap",
    "decode_voters",
    "encode_voters",
]
