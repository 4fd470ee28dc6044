"""What a ``RaftNode`` asks its host to do after one event, in the order to do it.

The functional core of etcd/raft's ``Ready``: the node does no I/O, so every
event returns an ``Effects`` and the host carries it out in this order:

1. persist: ``hard_state``, then ``snapshot`` (it replaces the log up to its
   index; entries after it stay when the log has the snapshot's last entry,
   as ``RaftLog.compact``), then ``log_write`` (drop the log from
   ``truncate_from``, append ``entries``) - durably (fsync, or the WAL)
   before step 2;
2. send ``messages`` (any order, any loss: Raft tolerates both);
3. restore the state machine from ``restore`` when it is set (a snapshot the
   leader sent), then apply ``committed`` in order;
4. serve ``reads`` (the state machine has applied at least their index now),
   answer ``refused_reads`` / ``refused_proposals`` (retry elsewhere:
   ``leader_hint``), note ``accepted`` proposals (they are done when an entry
   with that index *and* term is applied; another term there means lost);
5. when ``snapshot_wanted``, call ``RaftNode.compact`` with a snapshot of the
   state machine at its applied index (now or later).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .messages import Entry, HardState, Message, Snapshot


@dataclass(frozen=True, slots=True)
class LogWrite:
    truncate_from: int  # drop entries from this index on (== first new index when nothing is dropped)
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class ReadReady:
    """A strong read the host may serve now from its state machine.  ``lease``: served
    under the leader lease (no round trip); else confirmed by a ReadIndex round."""

    ctx: object
    index: int
    term: int
    lease: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A proposal or read this node cannot take: ``reason`` says why, ``leader_hint`` where to go."""

    ctx: object
    reason: str
    leader_hint: str | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A proposal now in the leader's log at (index, term)."""

    ctx: object
    index: int
    term: int


@dataclass
class Effects:
    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    restore: Snapshot | None = None
    log_write: LogWrite | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    reads: list[ReadReady] = field(default_factory=list)
    refused_reads: list[Refused] = field(default_factory=list)
    refused_proposals: list[Refused] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)
    snapshot_wanted: bool = False

    def write_entries(self, truncate_from: int, entries: tuple[Entry, ...]) -> None:
        """Fold a log change into this event's single ``log_write``."""
        if self.log_write is None:
            self.log_write = LogWrite(truncate_from, entries)
            return
        previous = self.log_write
        start = min(previous.truncate_from, truncate_from)
        kept = tuple(e for e in previous.entries if e.index < truncate_from)
        self.log_write = LogWrite(start, kept + entries)

    def __bool__(self) -> bool:
        return bool(
            self.hard_state or self.snapshot or self.restore or self.log_write or self.messages or self.committed or self.reads
            or self.refused_reads or self.refused_proposals or self.accepted or self.snapshot_wanted
        )
