"""Deliberately broken ``RaftNode``s: each breaks one rule, and one invariant must notice.

test_raft_sim.py runs the simulation with each and requires the checker to
fail with the invariant named beside it, which shows the checks can see what
they claim to.  The production rule each one replaces is the method it
overrides (model/raft/node.py, leader.py).
"""

from __future__ import annotations

from sim.raft_checker import (
    ELECTION_SAFETY,
    LEADER_COMPLETENESS,
    LEASE_SAFETY,
    LIVENESS,
    LOG_MATCHING,
    STATE_MACHINE_SAFETY,
)

from meridian.model.raft import RaftNode
from meridian.model.raft.leader import Progress


class CountsEveryAnswerAsAVote(RaftNode):
    """Vote counting that counts rejections too: two candidates win one term."""

    def _tally(self) -> tuple[int, int]:
        return sum(1 for voter in self.voters if voter in self._votes), 0


class CommitsOldTermsByCounting(RaftNode):
    """Commits an earlier term's entry once a majority holds it (the paper's Figure 8)."""

    def _may_commit(self, index: int) -> bool:
        return True


class SkipsTheLogMatchingCheck(RaftNode):
    """Appends after any entry it holds at prev_index, whatever its term."""

    def _prev_matches(self, prev_index: int, prev_term: int) -> bool:
        return prev_index <= self.log.last_index


class CommitsItsWholeTail(RaftNode):
    """A follower that commits up to the leader's commit index across its own log's
    tail, which may still hold a deposed leader's entries."""

    def _follower_commit(self, leader_commit: int, last_new: int) -> int:
        return min(leader_commit, self.log.last_index)


class ServesReadsWithoutALease(RaftNode):
    """A leader that serves every strong read locally, lease or not."""

    def _lease_valid(self) -> bool:
        return self._committed_in_term()


class NeverBacktracks(RaftNode):
    """Never moves a follower's next index back (after a rejection or a lost append):
    a follower that missed a message is never repaired."""

    def _backtrack_to(self, pr: Progress, next_index: int) -> None:
        return


#: broken node -> the invariant that must catch it
BUGS: dict[type[RaftNode], str] = {
    CountsEveryAnswerAsAVote: ELECTION_SAFETY,
    SkipsTheLogMatchingCheck: LOG_MATCHING,
    CommitsOldTermsByCounting: LEADER_COMPLETENESS,
    CommitsItsWholeTail: STATE_MACHINE_SAFETY,
    ServesReadsWithoutALease: LEASE_SAFETY,
    NeverBacktracks: LIVENESS,
}
