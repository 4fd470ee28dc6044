"""One Raft replica as a pure state machine: events in, effects out (no I/O, no clock).

The host (a storage node, later; the simulation, now) feeds a ``RaftNode``
five kinds of event - ``tick(now_ms)``, ``receive(message, now_ms)``,
``propose``, ``read``, and the operator's ``change_voters`` /
``transfer_leadership`` - plus ``compact`` when it has taken a snapshot; each
returns an ``Effects`` (effects.py says what to do with it, in order).  Time
is whatever the host says it is, randomness comes from the ``random.Random``
it injects, and nothing else is read, so a simulation replays a run exactly.

This module holds terms, elections and the follower's side; ``leader.py`` the
leader's (replication, commit, leases and ReadIndex, membership, transfer).
What it implements, from the Raft paper and Ongaro's thesis:

* persisted state ``(term, voted_for, log)``; a node restarted from
  ``Persisted`` has lost everything else (commit index, leadership, leases);
* randomized election timeouts, and **pre-vote** (thesis §9.6): a node first
  asks whether it could win, without raising anyone's term, so a node cut off
  and coming back cannot depose a healthy leader;
* **leader stickiness** (thesis §4.2.3): a voter that heard a leader less than
  an election timeout ago refuses (pre-)votes unless the leader itself asked
  for the election (TimeoutNow); a node that restarts counts as having just
  heard one, since it may have acknowledged a lease before it crashed.  This
  is what makes the leader's lease safe (leader.py);
* log replication with conflict backtracking (the follower names the first
  index of the conflicting term); entries at or below the commit index are
  never truncated;
* fencing by term: anything from a lower term is refused with the current
  term, so a deposed leader learns it and steps down;
* snapshots: the host compacts on request; a follower too far behind gets
  the leader's snapshot (InstallSnapshot).

The ``_prev_matches``, ``_follower_commit``, ``_tally`` and ``_may_commit``
hooks are single rules kept as methods so the simulation can break each one
in a subclass and show its checker notices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from .. import limits
from .effects import Effects, Refused
from .leader import Leadership
from .log import RaftLog
from .messages import (
    AppendRequest,
    AppendResponse,
    HardState,
    Message,
    Persisted,
    Snapshot,
    SnapshotRequest,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True)
class RaftOptions:
    """The node's bounds, defaulting to ``model/limits.py``'s; the simulation shrinks
    them per seed (tiny batches and snapshots reach code the defaults rarely do)."""

    heartbeat_interval_ms: int = limits.RAFT_HEARTBEAT_INTERVAL_MS
    election_timeout_min_ms: int = limits.RAFT_ELECTION_TIMEOUT_MIN_MS
    election_timeout_max_ms: int = limits.RAFT_ELECTION_TIMEOUT_MAX_MS
    lease_ms: int = limits.RAFT_LEASE_MS
    append_entries_max: int = limits.RAFT_APPEND_ENTRIES_MAX
    append_bytes_max: int = limits.RAFT_APPEND_BYTES_MAX
    inflight_appends_max: int = limits.RAFT_INFLIGHT_APPENDS_MAX
    uncommitted_entries_max: int = limits.RAFT_UNCOMMITTED_ENTRIES_MAX
    pending_reads_max: int = limits.RAFT_PENDING_READS_MAX
    snapshot_entries: int = limits.RAFT_SNAPSHOT_ENTRIES
    transfer_timeout_ms: int = limits.RAFT_TRANSFER_TIMEOUT_MS

    def __post_init__(self) -> None:
        assert 0 < self.heartbeat_interval_ms < self.election_timeout_min_ms < self.election_timeout_max_ms
        assert 0 <= self.lease_ms < self.election_timeout_min_ms
        assert self.append_entries_max >= 1 and self.inflight_appends_max >= 1 and self.snapshot_entries >= 1


def bootstrap(voters: tuple[str, ...]) -> Persisted:
    """The disk of a node of a new replica set (``voters``), or of a node about to
    be added to one (``()``: it learns its voters from the leader's log)."""
    return Persisted(HardState(0, None), Snapshot(0, 0, tuple(sorted(voters)), b""), ())


class RaftNode(Leadership):
    def __init__(
        self,
        node_id: str,
        persisted: Persisted,
        rng: random.Random,
        now_ms: int,
        options: RaftOptions = RaftOptions(),
    ) -> None:
        self.id = node_id
        self.options = options
        self._rng = rng
        self._now_ms = now_ms
        # persisted
        self.term = persisted.hard_state.term
        self.voted_for = persisted.hard_state.voted_for
        self.log = RaftLog(persisted.snapshot, persisted.entries)
        # volatile: a restart starts here again
        self.role = Role.FOLLOWER
        self.leader_id: str | None = None
        self.commit = self.applied = persisted.snapshot.index
        self.config_index, self.voters = self.log.latest_config()
        self._votes: dict[str, bool] = {}
        self._leader_contact_ms = now_ms  # see "leader stickiness" above
        self._election_deadline_ms = now_ms
        self._reset_election_timer()
        self._snapshot_asked = False
        self._fx = Effects()
        self._init_leadership()

    # --- events ---

    def tick(self, now_ms: int) -> Effects:
        self._begin(now_ms)
        if self.role is Role.LEADER:
            self._leader_tick()
        elif now_ms >= self._election_deadline_ms:
            if self.id in self.voters:
                self._start_pre_vote()
            else:
                self._reset_election_timer()
        return self._finish()

    def receive(self, message: Message, now_ms: int) -> Effects:
        assert message.dst == self.id, (message, self.id)
        self._begin(now_ms)
        self._step(message)
        return self._finish()

    def propose(self, data: bytes, now_ms: int, ctx: object = None) -> Effects:
        self._begin(now_ms)
        self._propose(data, ctx)
        return self._finish()

    def read(self, ctx: object, now_ms: int) -> Effects:
        """A strong read (ConsistentRead): served under the lease, through a
        ReadIndex round, or refused (not the leader: ``leader_hint``)."""
        self._begin(now_ms)
        self._read(ctx)
        return self._finish()

    def change_voters(self, now_ms: int, add: str | None = None, remove: str | None = None, ctx: object = None) -> Effects:
        """Add or remove one voter (thesis §4.1: one at a time, so any majority of the
        old set meets any majority of the new); the leader only, one change at a time."""
        self._begin(now_ms)
        self._change_voters(add, remove, ctx)
        return self._finish()

    def transfer_leadership(self, target: str, now_ms: int) -> Effects:
        self._begin(now_ms)
        self._transfer(target)
        return self._finish()

    def compact(self, index: int, data: bytes, now_ms: int) -> Effects:
        """The host's snapshot of its state machine at ``index`` (<= applied): the log up
        to there is dropped and the snapshot persisted in its place."""
        self._begin(now_ms)
        self._snapshot_asked = False
        if self.log.snapshot.index < index <= self.applied:
            term = self.log.term_at(index)
            assert term is not None
            snapshot = Snapshot(index, term, self.log.config_at(index)[1], data)
            self.log.compact(snapshot)
            self._fx.snapshot = snapshot
        return self._finish()

    # --- plumbing ---

    def _begin(self, now_ms: int) -> None:
        self._now_ms = now_ms
        self._fx = Effects()

    def _finish(self) -> Effects:
        fx = self._fx
        while self.applied < self.commit:
            self.applied += 1
            fx.committed.append(self.log.entry(self.applied))
        self._finish_leadership()
        if not self._snapshot_asked and self.applied - self.log.snapshot.index >= self.options.snapshot_entries:
            self._snapshot_asked = fx.snapshot_wanted = True
        self._fx = Effects()
        return fx

    def _send(self, message: Message) -> None:
        self._fx.messages.append(message)

    def _persist_hard_state(self) -> None:
        self._fx.hard_state = HardState(self.term, self.voted_for)

    def _reset_election_timer(self) -> None:
        timeout_ms = self._rng.randrange(self.options.election_timeout_min_ms, self.options.election_timeout_max_ms)
        self._election_deadline_ms = self._now_ms + timeout_ms

    def _refresh_config(self) -> None:
        """The voters are the newest CONFIG entry's, committed or not (thesis §4.1)."""
        self.config_index, self.voters = self.log.latest_config()
        self._config_changed()

    def _quorum_value(self, values: dict[str, int]) -> int:
        """The largest value a majority of the voters has reached (``values`` per voter)."""
        ranked = sorted((values.get(voter, 0) for voter in self.voters), reverse=True)
        return ranked[len(ranked) // 2] if ranked else 0

    def _leader_recently_heard(self) -> bool:
        return self.role is Role.LEADER or self._now_ms - self._leader_contact_ms < self.options.election_timeout_min_ms

    def __repr__(self) -> str:
        return (
            f"<RaftNode {self.id} {self.role.value} term={self.term} leader={self.leader_id} "
            f"log={self.log.snapshot.index}..{self.log.last_index} commit={self.commit} voters={','.join(self.voters)}>"
        )

    # --- terms ---

    def _become_follower(self, term: int, leader: str | None) -> None:
        if term > self.term:
            self.term, self.voted_for = term, None
            self._persist_hard_state()
        if self.role is Role.LEADER:
            self._leader_contact_ms = self._now_ms  # it may have granted itself a lease until now
        if self.role is not Role.FOLLOWER or leader != self.leader_id:
            self._stop_leading()
        self.role = Role.FOLLOWER
        self.leader_id = leader
        self._reset_election_timer()

    def _step(self, m: Message) -> None:
        if m.term > self.term:
            if isinstance(m, VoteRequest):
                if m.pre_vote:
                    self._on_vote_request(m)  # a pre-vote changes no one's term
                    return
                if not m.transfer and self._leader_recently_heard():
                    return  # leader stickiness: a live leader is not deposed by a stray candidate
                self._become_follower(m.term, None)
            elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass  # granted pre-votes carry the term the candidate would campaign in
            else:
                leader = m.src if isinstance(m, (AppendRequest, SnapshotRequest, TimeoutNow)) else None
                self._become_follower(m.term, leader)
        elif m.term < self.term:
            if isinstance(m, (AppendRequest, SnapshotRequest)):
                # fencing: the sender is a deposed leader; our term tells it so
                self._send(AppendResponse(self.id, m.src, self.term, False, 0, m.seq))
            elif isinstance(m, VoteRequest):
                self._send(VoteResponse(self.id, m.src, self.term, False, m.pre_vote))
            return
        if isinstance(m, VoteRequest):
            self._on_vote_request(m)
        elif isinstance(m, VoteResponse):
            self._on_vote_response(m)
        elif isinstance(m, AppendRequest):
            self._on_append(m)
        elif isinstance(m, SnapshotRequest):
            self._on_snapshot(m)
        elif isinstance(m, AppendResponse):
            self._on_append_response(m)
        elif isinstance(m, TimeoutNow):
            if self.role is Role.FOLLOWER and self.id in self.voters:
                self._campaign(transfer=True)

    # --- elections ---

    def _start_pre_vote(self) -> None:
        self._stop_leading()
        self.role = Role.PRE_CANDIDATE
        self.leader_id = None
        self._votes = {self.id: True}
        self._reset_election_timer()
        self._request_votes(pre_vote=True, transfer=False)

    def _campaign(self, transfer: bool) -> None:
        self.term += 1
        self.voted_for = self.id
        self._persist_hard_state()
        self._stop_leading()
        self.role = Role.CANDIDATE
        self.leader_id = None
        self._votes = {self.id: True}
        self._reset_election_timer()
        self._request_votes(pre_vote=False, transfer=transfer)

    def _request_votes(self, pre_vote: bool, transfer: bool) -> None:
        term = self.term + 1 if pre_vote else self.term
        for voter in self.voters:
            if voter != self.id:
                self._send(VoteRequest(self.id, voter, term, self.log.last_index, self.log.last_term, pre_vote, transfer))
        self._count_votes()

    def _on_vote_request(self, m: VoteRequest) -> None:
        up_to_date = self.log.is_up_to_date(m.last_index, m.last_term)
        if m.pre_vote:
            # etcd's rule: a pre-vote for a later term, or one for this term we could still give
            can_vote = m.term > self.term or self.voted_for == m.src or (self.voted_for is None and self.leader_id is None)
            sticky = not m.transfer and self._leader_recently_heard()
            granted = can_vote and up_to_date and not sticky
            self._send(VoteResponse(self.id, m.src, m.term if granted else self.term, granted, True))
            return
        can_vote = self.voted_for == m.src or (self.voted_for is None and self.leader_id is None)
        granted = can_vote and up_to_date and self.role is not Role.LEADER
        if granted:
            self.voted_for = m.src
            self._persist_hard_state()
            self._reset_election_timer()
        self._send(VoteResponse(self.id, m.src, self.term, granted, False))

    def _on_vote_response(self, m: VoteResponse) -> None:
        wanted = Role.PRE_CANDIDATE if m.pre_vote else Role.CANDIDATE
        expected_term = self.term + 1 if m.pre_vote else self.term
        if self.role is not wanted or m.term != expected_term or m.src not in self.voters:
            return
        self._votes.setdefault(m.src, m.granted)
        self._count_votes()

    def _count_votes(self) -> None:
        granted, rejected = self._tally()
        majority = len(self.voters) // 2 + 1
        if granted >= majority:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(transfer=False)
            else:
                self._become_leader()
        elif rejected >= majority:
            self._become_follower(self.term, None)

    def _tally(self) -> tuple[int, int]:
        """(granted, rejected) among the voters, one answer each."""
        granted = sum(1 for voter in self.voters if self._votes.get(voter) is True)
        rejected = sum(1 for voter in self.voters if self._votes.get(voter) is False)
        return granted, rejected

    # --- the follower's side of replication ---

    def _heard_leader(self, m: AppendRequest | SnapshotRequest) -> None:
        if self.role is not Role.FOLLOWER or self.leader_id != m.src:
            self._become_follower(m.term, m.src)
        self._leader_contact_ms = self._now_ms
        self._reset_election_timer()

    def _on_append(self, m: AppendRequest) -> None:
        self._heard_leader(m)
        prev_index, prev_term, entries = m.prev_index, m.prev_term, m.entries
        if prev_index < self.commit:
            # what the commit index covers matches every leader's log: skip it
            skip = self.commit - prev_index
            if skip >= len(entries):
                self._send(AppendResponse(self.id, m.src, self.term, True, self.commit, m.seq))
                return
            prev_index, entries = self.commit, entries[skip:]
            prev_term = self.log.term_at(prev_index)  # type: ignore[assignment]
        if not self._prev_matches(prev_index, prev_term):
            self._reject(m, prev_index)
            return
        for position, entry in enumerate(entries):
            held = self.log.term_at(entry.index)
            if held == entry.term:
                continue
            if held is not None:
                assert entry.index > self.commit, f"{self.id}: truncating committed entry {entry.index}"
                self.log.truncate_from(entry.index)
            rest = entries[position:]
            self.log.append(rest)
            self._fx.write_entries(entry.index, rest)
            self._refresh_config()
            break
        last_new = prev_index + len(entries)
        self._commit_to(self._follower_commit(m.commit, last_new))
        self._send(AppendResponse(self.id, m.src, self.term, True, last_new, m.seq))

    def _prev_matches(self, prev_index: int, prev_term: int) -> bool:
        """The log-matching check: do we hold the entry the new ones follow?"""
        return self.log.term_at(prev_index) == prev_term

    def _follower_commit(self, leader_commit: int, last_new: int) -> int:
        """Only what this message proved to match may be committed (not the log's
        whole tail: entries past ``last_new`` may be a deposed leader's)."""
        return min(leader_commit, last_new)

    def _reject(self, m: AppendRequest, prev_index: int) -> None:
        if prev_index > self.log.last_index:
            conflict_index, conflict_term = self.log.last_index + 1, 0
        else:
            conflict_term = self.log.term_at(prev_index) or 0
            conflict_index = self.log.first_index_of_term(prev_index)
        self._send(AppendResponse(self.id, m.src, self.term, False, 0, m.seq, m.prev_index, conflict_index, conflict_term))

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            assert index <= self.log.last_index
            self.commit = index

    def _on_snapshot(self, m: SnapshotRequest) -> None:
        self._heard_leader(m)
        snapshot = m.snapshot
        if snapshot.index > self.commit:
            self.log.compact(snapshot)
            self.commit = self.applied = snapshot.index
            self._fx.snapshot = self._fx.restore = snapshot
            self._refresh_config()
        self._send(AppendResponse(self.id, m.src, self.term, True, self.commit, m.seq))

    # --- proposals and reads off the leader ---

    def _refuse_proposal(self, ctx: object, reason: str) -> None:
        self._fx.refused_proposals.append(Refused(ctx, reason, self.leader_id if self.leader_id != self.id else None))

    def _refuse_read(self, ctx: object, reason: str) -> None:
        self._fx.refused_reads.append(Refused(ctx, reason, self.leader_id if self.leader_id != self.id else None))
