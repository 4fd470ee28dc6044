"""model/raft's rules one at a time, with messages delivered by hand (tests/sim/raft_script.py).

The simulation (tests/sim/test_raft_sim.py) finds what chance finds; these
pin the behaviours issue 19 names, each in the few steps that show it.
"""

from __future__ import annotations

import random

from sim.raft_script import Script

from meridian.model import limits
from meridian.model.raft import (
    AppendRequest,
    AppendResponse,
    Entry,
    RaftLog,
    RaftNode,
    RaftOptions,
    Role,
    Snapshot,
    TimeoutNow,
    VoteRequest,
    bootstrap,
)

THREE = ("n1", "n2", "n3")
EVERYONE = set(THREE)


def _cluster(options: RaftOptions = RaftOptions()) -> Script:
    script = Script(THREE, RaftNode, options)
    script.elect("n1", EVERYONE)
    script.deliver(lambda m: True)
    return script


def test_a_leader_is_elected_and_its_no_op_commits_everywhere() -> None:
    script = _cluster()
    assert script.node("n1").role is Role.LEADER
    script.tick("n1")  # the next heartbeat carries the commit index
    script.now_ms += limits.RAFT_HEARTBEAT_INTERVAL_MS
    script.tick("n1")
    script.deliver(lambda m: True)
    assert [script.node(n).commit for n in THREE] == [1, 1, 1]


def test_a_rejoining_node_does_not_depose_a_healthy_leader() -> None:
    """Pre-vote: n3, cut off, times out again and again without raising its term;
    back, its pre-votes are refused since n2 still hears the leader."""
    script = _cluster()
    term = script.node("n1").term
    for _ in range(60):  # 6 s: n3 times out several times while n1 and n2 carry on
        script.now_ms += 100
        script.tick("n1")
        script.tick("n3")
        script.drop(lambda m: "n3" in (m.src, m.dst))  # cut off
        script.deliver(lambda m: True)
    assert script.node("n3").term == term and script.node("n3").role is Role.PRE_CANDIDATE
    script.now_ms += 10
    script.tick("n3")  # back: asks for pre-votes
    script.deliver(lambda m: True)
    assert script.node("n1").role is Role.LEADER and script.node("n1").term == term
    assert script.node("n3").term == term


def test_a_deposed_leaders_appends_are_refused_by_term_and_it_steps_down() -> None:
    script = _cluster()
    old_term = script.node("n1").term
    script.elect("n2", {"n2", "n3"})
    fx = script.propose("n1", b"late")  # n1 still believes it leads
    late = [m for m in fx.messages if isinstance(m, AppendRequest) and m.dst == "n3"]
    assert late and late[0].term == old_term
    script.inbox = [m for m in script.inbox if m.src == "n1"]
    script.deliver(lambda m: {m.src, m.dst} == {"n1", "n3"})
    n1 = script.node("n1")
    assert n1.role is Role.FOLLOWER and n1.term > old_term
    assert script.node("n3").log.term_at(n1.log.last_index) != old_term  # the late entry did not land
    assert script.propose("n1", b"again").refused_proposals  # and it no longer takes proposals


def test_strong_reads_use_the_lease_only_while_it_holds() -> None:
    script = _cluster()
    script.now_ms += limits.RAFT_HEARTBEAT_INTERVAL_MS
    script.tick("n1")
    script.deliver(lambda m: True)  # a majority acknowledged this round
    fx = script.read("n1", "r1")
    assert [read.lease for read in fx.reads] == [True]
    script.now_ms += limits.RAFT_LEASE_MS  # no acknowledgement since: the lease ran out
    fx = script.read("n1", "r2")
    assert not fx.reads  # it waits for a ReadIndex round, sent at once
    script.deliver(lambda m: True)
    assert [(read.ctx, read.lease) for read in script.served] == [("r1", True), ("r2", False)]


def test_a_read_index_read_waits_for_a_majority_round() -> None:
    script = _cluster()
    script.now_ms += limits.RAFT_LEASE_MS + 1
    fx = script.read("n1", "r")
    assert not fx.reads and any(isinstance(m, AppendRequest) for m in fx.messages)
    script.drop(lambda m: True)  # that round is lost: still no answer
    assert not script.tick("n1").reads
    script.now_ms += limits.RAFT_HEARTBEAT_INTERVAL_MS
    script.tick("n1")  # the next round
    script.deliver(lambda m: True)
    assert [(read.ctx, read.lease) for read in script.served] == [("r", False)]


def test_a_follower_behind_the_snapshot_gets_it_installed() -> None:
    script = _cluster(RaftOptions(snapshot_entries=3))
    script.crash("n3")
    for i in range(6):
        script.propose("n1", f"x{i}".encode())
        script.deliver(lambda m: {m.src, m.dst} == {"n1", "n2"})
    n1 = script.node("n1")
    script.do("n1", lambda node: node.compact(node.applied, b"state", script.now_ms))
    assert n1.log.snapshot.index == n1.applied > 3
    script.start("n3")
    script.now_ms += limits.RAFT_HEARTBEAT_INTERVAL_MS
    seen: list[str] = []
    script.tick("n1")
    script.deliver(lambda m: seen.append(type(m).__name__) is None)
    assert "SnapshotRequest" in seen
    assert script.node("n3").log.snapshot == n1.log.snapshot and script.node("n3").commit >= n1.log.snapshot.index


def test_membership_changes_go_one_at_a_time_and_a_removed_leader_steps_down() -> None:
    script = _cluster()
    fx = script.do("n1", lambda node: node.change_voters(script.now_ms, remove="n3"))
    assert fx.accepted and script.node("n1").voters == ("n1", "n2")  # in force once appended
    fx = script.do("n1", lambda node: node.change_voters(script.now_ms, add="n4"))
    assert [r.reason for r in fx.refused_proposals] == ["a membership change is in progress"]
    script.deliver(lambda m: True)
    script.now_ms += limits.RAFT_HEARTBEAT_INTERVAL_MS
    script.tick("n1")
    script.deliver(lambda m: True)
    fx = script.do("n1", lambda node: node.change_voters(script.now_ms, remove="n1"))
    assert fx.accepted
    script.deliver(lambda m: True)
    assert script.node("n1").role is Role.FOLLOWER and script.node("n2").voters == ("n2",)


def test_leadership_transfer_hands_over_and_gives_up_the_lease() -> None:
    script = _cluster()
    fx = script.do("n1", lambda node: node.transfer_leadership("n2", script.now_ms))
    assert any(isinstance(m, TimeoutNow) for m in fx.messages)
    assert script.read("n1", "r").refused_reads  # no lease reads while handing over
    script.deliver(lambda m: True)
    assert script.node("n2").role is Role.LEADER and script.node("n1").role is Role.FOLLOWER


def test_a_restarted_node_waits_an_election_timeout_before_voting() -> None:
    """It may have acknowledged a lease just before it crashed."""
    node = RaftNode("n2", bootstrap(THREE), random.Random(1), now_ms=10_000)
    early = node.receive(VoteRequest("n3", "n2", 5, 0, 0), 10_001)
    assert not any(getattr(m, "granted", False) for m in early.messages)
    later = node.receive(VoteRequest("n3", "n2", 6, 0, 0), 10_000 + limits.RAFT_ELECTION_TIMEOUT_MIN_MS)
    assert any(getattr(m, "granted", False) for m in later.messages)


def test_conflicting_entries_are_replaced_and_committed_ones_never() -> None:
    node = RaftNode("n2", bootstrap(THREE), random.Random(1), 0)
    first = AppendRequest("n1", "n2", 1, 0, 0, (Entry(1, 1), Entry(2, 1), Entry(3, 1)), 1, 1)
    node.receive(first, 0)
    assert node.log.last_index == 3 and node.commit == 1
    second = AppendRequest("n1", "n2", 2, 1, 1, (Entry(2, 2),), 2, 1)
    fx = node.receive(second, 1)
    assert [e.term for e in node.log.entries()] == [1, 2] and fx.log_write.truncate_from == 2
    stale = AppendRequest("n1", "n2", 2, 0, 0, (Entry(1, 1),), 2, 1)  # a late, shorter copy: no truncation
    node.receive(stale, 2)
    assert node.log.last_index == 2
    reject = node.receive(AppendRequest("n1", "n2", 2, 5, 2, (), 2, 1), 3).messages[0]
    assert isinstance(reject, AppendResponse) and not reject.success and reject.conflict_index == 3


def test_the_log_keeps_the_tail_a_snapshot_agrees_with() -> None:
    log = RaftLog(Snapshot(0, 0, THREE, b""), (Entry(1, 1), Entry(2, 1), Entry(3, 2)))
    log.compact(Snapshot(2, 1, THREE, b"s"))
    assert log.first_index == 3 and log.term_at(3) == 2 and log.term_at(1) is None
    log.compact(Snapshot(5, 3, THREE, b"t"))  # a leader's snapshot past a log it disagrees with
    assert log.last_index == 5 and log.entries() == ()
