"""The invariants of Raft, checked after every step of the simulation (``raft_world.py``).

Each check is incremental (it looks at what the step changed), so checking
after every step stays cheap:

* **election safety**: at most one leader per term;
* **log matching**: two logs holding an entry with the same index and term
  hold the same entries up to it - checked as "every copy of (index, term)
  carries the same data and follows the same term", which implies it;
* **leader completeness**: an index, once committed anywhere, is never
  committed with another entry, and every new leader holds every committed
  entry;
* **state machine safety**: every node applies the same entry at each index;
* **lease safety**: a strong read reflects every entry committed anywhere
  before it was asked (so a deposed leader serving from a stale lease is
  caught), and lease reads by different leaders never interleave in time;
* **liveness** (``raft_world.heal_and_converge``): after healing, a leader
  within a bounded time, and every voter converges.

A violation raises ``InvariantViolation`` naming every invariant that failed
in the step, so a test can assert which one caught an injected bug.
"""

from __future__ import annotations

from dataclasses import dataclass

from meridian.model.raft import Entry, RaftNode, ReadReady, Role, Snapshot

ELECTION_SAFETY = "election safety"
LOG_MATCHING = "log matching"
LEADER_COMPLETENESS = "leader completeness"
STATE_MACHINE_SAFETY = "state machine safety"
LEASE_SAFETY = "lease safety"
LIVENESS = "liveness"


class InvariantViolation(AssertionError):
    def __init__(self, kinds: set[str], details: list[str]) -> None:
        super().__init__("; ".join(details))
        self.kinds = kinds


@dataclass(frozen=True)
class ServedRead:
    at_ms: int
    node: str
    term: int
    index: int
    lease: bool


class RaftChecker:
    def __init__(self) -> None:
        self.leader_of_term: dict[int, str] = {}
        self.copies: dict[tuple[int, int], tuple[object, bytes, int | None]] = {}  # (index, term) -> kind, data, prev term
        self.ever_logged: set[bytes] = set()  # every entry's data any log ever held
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self.committed_max = 0
        self.applied: dict[int, tuple[int, bytes]] = {}
        self.reads: list[ServedRead] = []
        self._last_lease_read: ServedRead | None = None
        self._seen_commit: dict[str, int] = {}
        self._was_leader: dict[str, int] = {}  # node -> the term it was last seen leading
        self._violations: list[tuple[str, str]] = []
        self.steps = 0

    def _fail(self, kind: str, detail: str) -> None:
        self._violations.append((kind, detail))

    # --- fed by the world as it carries out effects ---

    def saw_log_write(self, node: RaftNode, entries: tuple[Entry, ...]) -> None:
        for entry in entries:
            self.ever_logged.add(entry.data)
            prev_term = node.log.term_at(entry.index - 1)
            copy = (entry.kind, entry.data, prev_term)
            known = self.copies.setdefault((entry.index, entry.term), copy)
            if known != copy:
                self._fail(LOG_MATCHING, f"{node.id}: entry ({entry.index}, {entry.term}) is {copy}, elsewhere {known}")

    def saw_snapshot(self, node: RaftNode, snapshot: Snapshot) -> None:
        known = self.committed.get(snapshot.index)
        if known is not None and known[0] != snapshot.term:
            self._fail(LEADER_COMPLETENESS, f"{node.id}: snapshot at {snapshot.index} has term {snapshot.term}, committed {known[0]}")
        self._seen_commit[node.id] = max(self._seen_commit.get(node.id, 0), snapshot.index)

    def saw_apply(self, node_id: str, entry: Entry) -> None:
        mine = (entry.term, entry.data)
        known = self.applied.setdefault(entry.index, mine)
        if known != mine:
            self._fail(STATE_MACHINE_SAFETY, f"{node_id} applied {mine} at {entry.index}, another node {known}")

    def saw_read(self, node: RaftNode, read: ReadReady, at_ms: int, committed_when_asked: int) -> None:
        served = ServedRead(at_ms, node.id, read.term, read.index, read.lease)
        self.reads.append(served)
        if read.index < committed_when_asked:
            self._fail(LEASE_SAFETY, f"{node.id} served a read at index {read.index} (lease={read.lease}, term "
                       f"{read.term}) though {committed_when_asked} was committed before it was asked")
        if read.lease:
            last = self._last_lease_read
            if last is not None and last.node != node.id and last.term > read.term:
                self._fail(LEASE_SAFETY, f"lease reads interleave: {last} then {served}")
            self._last_lease_read = served

    def restarted(self, node_id: str) -> None:
        self._seen_commit.pop(node_id, None)
        self._was_leader.pop(node_id, None)

    # --- after every step ---

    def check(self, nodes: list[RaftNode]) -> None:
        self.steps += 1
        for node in nodes:
            self._check_leader(node)
            self._check_commit(node)
        if self._violations:
            violations, self._violations = self._violations, []
            raise InvariantViolation({kind for kind, _ in violations}, [f"{kind}: {detail}" for kind, detail in violations])

    def _check_leader(self, node: RaftNode) -> None:
        if node.role is not Role.LEADER:
            return
        holder = self.leader_of_term.setdefault(node.term, node.id)
        if holder != node.id:
            self._fail(ELECTION_SAFETY, f"{node.id} and {holder} both lead term {node.term}")
        if self._was_leader.get(node.id) == node.term:
            return
        self._was_leader[node.id] = node.term
        for index in range(node.log.snapshot.index + 1, self.committed_max + 1):
            known = self.committed.get(index)
            if known is not None and node.log.term_at(index) != known[0]:
                self._fail(LEADER_COMPLETENESS, f"{node.id} leads term {node.term} without committed entry "
                           f"{index} (term {known[0]}; it holds {node.log.term_at(index)})")
                return

    def _check_commit(self, node: RaftNode) -> None:
        seen = self._seen_commit.get(node.id, node.log.snapshot.index)
        for index in range(max(seen, node.log.snapshot.index) + 1, node.commit + 1):
            entry = node.log.entry(index)
            mine = (entry.term, entry.data)
            known = self.committed.setdefault(index, mine)
            if known != mine:
                self._fail(LEADER_COMPLETENESS, f"{node.id} committed {mine} at {index}, already committed {known}")
        self._seen_commit[node.id] = max(seen, node.commit)
        self.committed_max = max(self.committed_max, node.commit)

