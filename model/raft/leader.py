"""The leader's side of a ``RaftNode``: replication, commit, strong reads, membership, transfer.

* **Replication.**  Per follower a ``Progress``: ``match`` (known to hold our
  log up to there), ``next`` (the next index to send).  While a follower keeps
  up, AppendEntries go out back to back (``next`` moves on optimistically; at
  most ``inflight_appends_max`` unacknowledged); after a rejection, or when a
  follower made no progress over a heartbeat (a lost message), it is probed
  one message at a time from ``match + 1``, jumping back by the follower's
  conflict hint.  A follower behind the snapshot gets InstallSnapshot.
* **Commit** only of an entry of the current term, once a majority of the
  voters holds it (the paper's §5.4.2; older entries commit with it).  Hence
  the no-op every new leader appends.
* **Strong reads.**  Every AppendEntries carries the number of the heartbeat
  round it belongs to; the answer echoes it.  When a majority has answered
  round *r*, sent at local time *t*, no other leader can have been elected
  before *t* + the election timeout (voters refuse votes that long after
  hearing us, node.py), so reads are served locally until *t* +
  ``lease_ms`` (the timeout less two clock-drift bounds).  Outside the lease a
  read waits for a fresh round (ReadIndex: thesis §6.4): it is served at the
  commit index it was registered under once a majority answered a round sent
  after it.  Either way only after the leader committed an entry of its own
  term (before that its commit index may lag the last leader's).
* **Membership**: one voter added or removed at a time, from the moment its
  CONFIG entry is appended; a second change waits until the first commits.  A
  leader that removed itself steps down when the removal commits.
* **Transfer** (thesis §3.10): proposals stop, the target is brought up to
  date and sent TimeoutNow.  Its election skips the voters' stickiness check,
  so the old leader gives up its lease for the rest of its term first.
* **Check quorum**: a leader that has heard no majority for an election
  timeout steps down, so clients cut off with it look elsewhere.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .effects import Accepted, ReadReady
from .messages import AppendRequest, AppendResponse, Entry, EntryKind, SnapshotRequest, TimeoutNow, encode_voters

if TYPE_CHECKING:
    from .node import RaftNode

NOT_LEADER = "not the leader"
TRANSFERRING = "leadership transfer in progress"
BUSY = "too much work pending"
CHANGE_PENDING = "a membership change is in progress"
BAD_CHANGE = "not a single-voter change of the current voters"


@dataclass
class Progress:
    """What the leader knows of one follower."""

    next: int
    match: int = 0
    probing: bool = True  # one message at a time, until an answer says where the logs meet
    probe_sent: bool = False
    inflight: deque[int] = field(default_factory=deque)  # last index of each unanswered append
    match_at_heartbeat: int = -1
    acked_round: int = 0  # the latest heartbeat round it answered (this term)
    last_heard_ms: int = 0


@dataclass
class PendingRead:
    ctx: object
    round: int  # a majority must answer this round (sent after the read arrived)
    index: int | None  # the commit index to serve at; None until this term committed an entry


class Leadership:
    """Mixin of ``RaftNode`` (node.py): the state and rules of the leader."""

    def _init_leadership(self: RaftNode) -> None:
        self.progress: dict[str, Progress] = {}
        self._term_start_index = 0  # this term's no-op
        self._round = 0
        # (round, local send time) of the rounds sent within the last lease: heartbeats, and a
        # round per event that registered reads, so at most this many
        rounds_max = self.options.lease_ms // self.options.heartbeat_interval_ms + self.options.pending_reads_max + 1
        self._rounds_sent_ms: deque[tuple[int, int]] = deque(maxlen=rounds_max)
        self._round_wanted = False
        self._lease_end_ms = 0
        self._lease_forfeited = False
        self._pending_reads: list[PendingRead] = []
        self._transfer_target: str | None = None
        self._transfer_deadline_ms = 0
        self._transfer_sent = False
        self._heartbeat_due_ms = 0

    # --- becoming and stopping ---

    def _become_leader(self: RaftNode) -> None:
        from .node import Role

        self.role = Role.LEADER
        self.leader_id = self.id
        self.progress = {}
        self._round = 0
        self._rounds_sent_ms.clear()
        self._lease_end_ms = self._now_ms
        self._lease_forfeited = False
        self._transfer_target = None
        self._config_changed()
        self._term_start_index = self.log.last_index + 1
        self._append(EntryKind.NOOP, b"")
        self._heartbeat()

    def _stop_leading(self: RaftNode) -> None:
        for read in self._pending_reads:
            self._refuse_read(read.ctx, NOT_LEADER)
        self._pending_reads = []
        self.progress = {}
        self._transfer_target = None

    def _config_changed(self: RaftNode) -> None:
        from .node import Role

        if self.role is not Role.LEADER:
            return
        for peer in [peer for peer in self.progress if peer not in self.voters]:
            del self.progress[peer]
        for peer in self.voters:
            if peer != self.id and peer not in self.progress:
                self.progress[peer] = Progress(next=self.log.last_index + 1, last_heard_ms=self._now_ms)

    # --- appending and sending ---

    def _append(self: RaftNode, kind: EntryKind, data: bytes) -> Entry:
        entry = Entry(self.log.last_index + 1, self.term, kind, data)
        self.log.append((entry,))
        self._fx.write_entries(entry.index, (entry,))
        if kind is EntryKind.CONFIG:
            self._refresh_config()
        self._maybe_commit()
        for peer in self.progress:
            self._send_append(peer)
        return entry

    def _send_append(self: RaftNode, peer: str) -> bool:
        """Send what ``peer`` needs next, if its window allows; True if something was sent."""
        pr = self.progress[peer]
        if pr.probe_sent if pr.probing else len(pr.inflight) >= self.options.inflight_appends_max:
            return False
        if pr.next <= self.log.snapshot.index:
            self._send(SnapshotRequest(self.id, peer, self.term, self.log.snapshot, self._round))
            pr.probing = pr.probe_sent = True
            return True
        entries = self.log.slice(pr.next, self.options.append_entries_max, self.options.append_bytes_max)
        if not entries and not pr.probing:
            return False
        prev_term = self.log.term_at(pr.next - 1)
        assert prev_term is not None
        self._send(AppendRequest(self.id, peer, self.term, pr.next - 1, prev_term, entries, self.commit, self._round))
        if pr.probing:
            pr.probe_sent = True
        elif entries:
            pr.next = entries[-1].index + 1
            pr.inflight.append(entries[-1].index)
        return True

    def _heartbeat(self: RaftNode) -> None:
        """A new round to every follower: entries where one stalled, else an empty append."""
        self._round += 1
        self._rounds_sent_ms.append((self._round, self._now_ms))
        while self._rounds_sent_ms and self._rounds_sent_ms[0][1] < self._now_ms - self.options.lease_ms:
            self._rounds_sent_ms.popleft()
        self._heartbeat_due_ms = self._now_ms + self.options.heartbeat_interval_ms
        self._round_wanted = False
        for peer, pr in self.progress.items():
            if pr.match < self.log.last_index and pr.match == pr.match_at_heartbeat:
                self._backtrack_to(pr, pr.match + 1)  # no progress since the last round: resend
            pr.match_at_heartbeat = pr.match
            if not self._send_append(peer):
                # an empty append where the follower's log is known to match ours
                index = pr.match if self.log.term_at(pr.match) is not None else self.log.snapshot.index
                prev_term = self.log.term_at(index)
                assert prev_term is not None
                self._send(AppendRequest(self.id, peer, self.term, index, prev_term, (), min(self.commit, index), self._round))

    def _backtrack_to(self: RaftNode, pr: Progress, next_index: int) -> None:
        pr.next = max(pr.match + 1, next_index)
        pr.probing, pr.probe_sent = True, False
        pr.inflight.clear()

    def _leader_tick(self: RaftNode) -> None:
        if self._transfer_target is not None and self._now_ms >= self._transfer_deadline_ms:
            self._transfer_target = None  # abandoned; the lease stays forfeited for this term
        heard = {peer: pr.last_heard_ms for peer, pr in self.progress.items()} | {self.id: self._now_ms}
        if self._now_ms - self._quorum_value(heard) >= self.options.election_timeout_max_ms:
            self._become_follower(self.term, None)  # check quorum: cut off from a majority
            return
        if self._now_ms >= self._heartbeat_due_ms:
            self._heartbeat()

    # --- answers ---

    def _on_append_response(self: RaftNode, m: AppendResponse) -> None:
        from .node import Role

        pr = self.progress.get(m.src)
        if self.role is not Role.LEADER or pr is None:
            return
        pr.last_heard_ms = self._now_ms
        pr.probe_sent = False
        if m.seq > pr.acked_round:
            pr.acked_round = m.seq
            self._round_acknowledged()
        if m.success:
            if m.match_index > pr.match:
                pr.match = m.match_index
                self._maybe_commit()
            pr.next = max(pr.next, pr.match + 1)
            pr.probing = False
            while pr.inflight and pr.inflight[0] <= pr.match:
                pr.inflight.popleft()
        elif (m.rejected_prev == pr.next - 1) if pr.probing else (m.rejected_prev > pr.match):
            self._on_reject(pr, m)
        if self.role is Role.LEADER:
            self._send_append(m.src)
            if m.src == self._transfer_target and pr.match == self.log.last_index and not self._transfer_sent:
                self._send(TimeoutNow(self.id, m.src, self.term))
                self._transfer_sent = True

    def _on_reject(self: RaftNode, pr: Progress, m: AppendResponse) -> None:
        """Conflict backtracking: past the follower's whole conflicting term at once."""
        next_index = m.conflict_index
        if m.conflict_term:
            last_of_term = self.log.last_index_of_term(m.conflict_term)
            if last_of_term is not None:
                next_index = last_of_term + 1
        self._backtrack_to(pr, min(next_index, m.rejected_prev))

    def _maybe_commit(self: RaftNode) -> None:
        matches = {peer: pr.match for peer, pr in self.progress.items()} | {self.id: self.log.last_index}
        index = self._quorum_value(matches)
        if index > self.commit and self._may_commit(index):
            self.commit = index
            if self.id not in self.voters and self.commit >= self.config_index:
                self._become_follower(self.term, None)  # our own removal is committed

    def _may_commit(self: RaftNode, index: int) -> bool:
        """Only an entry of the current term is committed by counting (Raft §5.4.2)."""
        return self.log.term_at(index) == self.term

    # --- strong reads ---

    def _read(self: RaftNode, ctx: object) -> None:
        from .node import Role

        if self.role is not Role.LEADER:
            self._refuse_read(ctx, NOT_LEADER)
        elif self._transfer_target is not None:
            self._refuse_read(ctx, TRANSFERRING)
        elif self._lease_valid():
            self._fx.reads.append(ReadReady(ctx, self.commit, self.term, True))
        elif len(self._pending_reads) >= self.options.pending_reads_max:
            self._refuse_read(ctx, BUSY)
        else:
            index = self.commit if self._committed_in_term() else None
            self._pending_reads.append(PendingRead(ctx, self._round + 1, index))
            self._round_wanted = True

    def _committed_in_term(self: RaftNode) -> bool:
        return self.commit >= self._term_start_index

    def _lease_valid(self: RaftNode) -> bool:
        return not self._lease_forfeited and self._committed_in_term() and self._now_ms < self._lease_end_ms

    def _round_acknowledged(self: RaftNode) -> None:
        rounds = {peer: pr.acked_round for peer, pr in self.progress.items()} | {self.id: self._round}
        quorum_round = self._quorum_value(rounds)
        for number, sent_ms in self._rounds_sent_ms:
            if number == quorum_round:
                self._lease_end_ms = max(self._lease_end_ms, sent_ms + self.options.lease_ms)

    def _finish_leadership(self: RaftNode) -> None:
        from .node import Role

        if self.role is not Role.LEADER:
            return
        if self._round_wanted:
            self._heartbeat()
        if not self._pending_reads:
            return
        rounds = {peer: pr.acked_round for peer, pr in self.progress.items()} | {self.id: self._round}
        quorum_round = self._quorum_value(rounds)
        still: list[PendingRead] = []
        for read in self._pending_reads:
            if read.index is None and self._committed_in_term():
                read.index = self.commit
            if read.index is not None and read.round <= quorum_round and read.index <= self.applied:
                self._fx.reads.append(ReadReady(read.ctx, read.index, self.term, False))
            else:
                still.append(read)
        self._pending_reads = still

    # --- proposals, membership, transfer ---

    def _propose(self: RaftNode, data: bytes, ctx: object) -> None:
        from .node import Role

        if self.role is not Role.LEADER:
            self._refuse_proposal(ctx, NOT_LEADER)
        elif self._transfer_target is not None:
            self._refuse_proposal(ctx, TRANSFERRING)
        elif self.log.last_index - self.commit >= self.options.uncommitted_entries_max:
            self._refuse_proposal(ctx, BUSY)
        else:
            entry = self._append(EntryKind.COMMAND, data)
            self._fx.accepted.append(Accepted(ctx, entry.index, entry.term))

    def _change_voters(self: RaftNode, add: str | None, remove: str | None, ctx: object) -> None:
        from .node import Role

        voters = set(self.voters)
        if self.role is not Role.LEADER:
            self._refuse_proposal(ctx, NOT_LEADER)
        elif self.config_index > self.commit or not self._committed_in_term():
            self._refuse_proposal(ctx, CHANGE_PENDING)  # thesis §4.1 (and its erratum: a no-op of this term first)
        elif (add is None) == (remove is None) or add in voters or (remove is not None and remove not in voters):
            self._refuse_proposal(ctx, BAD_CHANGE)
        elif voters == {remove}:
            self._refuse_proposal(ctx, BAD_CHANGE)
        else:
            new = voters | {add} if add is not None else voters - {remove}
            entry = self._append(EntryKind.CONFIG, encode_voters(tuple(sorted(new))))
            self._fx.accepted.append(Accepted(ctx, entry.index, entry.term))

    def _transfer(self: RaftNode, target: str) -> None:
        from .node import Role

        if self.role is not Role.LEADER or target == self.id or target not in self.progress:
            return
        self._transfer_target = target
        self._transfer_deadline_ms = self._now_ms + self.options.transfer_timeout_ms
        self._transfer_sent = False
        self._lease_forfeited = True  # the target's election will skip the voters' stickiness check
        pr = self.progress[target]
        if pr.match == self.log.last_index:
            self._send(TimeoutNow(self.id, target, self.term))
            self._transfer_sent = True
        else:
            self._send_append(target)
