"""What Raft nodes persist and say to each other: plain frozen records, no I/O.

A later step carries these over gRPC (one ``proto/`` message per class); here
they are what ``RaftNode`` consumes and emits.  Every message names its
sender, its receiver and the sender's term: a receiver first compares terms
(a higher one deposes it, a lower one is answered with its own so a deposed
leader learns it was replaced: fencing by term).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EntryKind(Enum):
    """What an entry carries: a client command, a new leader's no-op, or a voter set."""

    COMMAND = "command"
    NOOP = "noop"
    CONFIG = "config"


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry.  A CONFIG entry's ``data`` is ``encode_voters(...)``."""

    index: int
    term: int
    kind: EntryKind = EntryKind.COMMAND
    data: bytes = b""


def encode_voters(voters: tuple[str, ...]) -> bytes:
    """A voter set as a CONFIG entry's data: the sorted ids, comma-separated."""
    assert all("," not in voter for voter in voters)
    return ",".join(sorted(voters)).encode()


def decode_voters(data: bytes) -> tuple[str, ...]:
    return tuple(sorted(data.decode().split(","))) if data else ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine up to ``index`` (inclusive), the term of that entry, and the voters then."""

    index: int
    term: int
    voters: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on disk before any message that depends on it is sent."""

    term: int
    voted_for: str | None


@dataclass(frozen=True, slots=True)
class Persisted:
    """Everything a node kept on disk: it restarts from exactly this (volatile state is lost)."""

    hard_state: HardState
    snapshot: Snapshot
    entries: tuple[Entry, ...]  # the log after ``snapshot.index``, contiguous


@dataclass(frozen=True, slots=True)
class Message:
    src: str
    dst: str
    term: int


@dataclass(frozen=True, slots=True)
class VoteRequest(Message):
    """RequestVote, or with ``pre_vote`` the pre-vote that changes no one's state
    (``term`` is then the term the sender would campaign in).  ``transfer``: sent
    because the leader asked for it (TimeoutNow), so voters skip the check that a
    leader was heard recently."""

    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse(Message):
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendRequest(Message):
    """AppendEntries (a heartbeat when ``entries`` is empty).  ``seq`` numbers the
    leader's sends within its term; the response echoes it, which is how the
    leader knows a majority heard it after a given moment (leases, ReadIndex)."""

    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    seq: int


@dataclass(frozen=True, slots=True)
class AppendResponse(Message):
    """``match_index``: the follower's log matches the leader's up to here (on
    success).  On a rejection, ``conflict_index`` / ``conflict_term`` tell the
    leader where to try next (the first index of the conflicting term, or the
    follower's last index + 1 when its log is too short)."""

    success: bool
    match_index: int
    seq: int
    rejected_prev: int = 0
    conflict_index: int = 0
    conflict_term: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotRequest(Message):
    """InstallSnapshot, in one message (a later step chunks it over gRPC)."""

    snapshot: Snapshot
    seq: int


@dataclass(frozen=True, slots=True)
class TimeoutNow(Message):
    """Leadership transfer: campaign now, without waiting for an election timeout."""
