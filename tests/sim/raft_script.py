"""Raft nodes driven by hand, message by message: for histories too precise for chance.

The Raft paper's Figure 8 needs a leader to die at one exact moment; random
faults reach it too rarely, so ``figure_8`` plays it step by step on real
``RaftNode``s (or a broken subclass), with their effects carried out as the
simulation does (disk, checker), and returns the checker's verdict.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sim.raft_checker import RaftChecker
from sim.raft_world import Disk

from meridian.model.raft import (
    AppendRequest,
    Effects,
    Message,
    RaftNode,
    RaftOptions,
    ReadReady,
    Role,
    VoteRequest,
    VoteResponse,
    bootstrap,
)

PHASE_MS = 5_000  # between phases: longer than any election timeout, so voters forget old leaders


class Script:
    def __init__(self, ids: tuple[str, ...], node_class: type[RaftNode], options: RaftOptions) -> None:
        self.node_class, self.options = node_class, options
        self.now_ms = 0
        self.disks = {node_id: Disk(bootstrap(ids)) for node_id in ids}
        self.nodes: dict[str, RaftNode | None] = {node_id: None for node_id in ids}
        self.inbox: list[Message] = []
        self.served: list[ReadReady] = []  # every strong read any node served
        self.checker = RaftChecker()
        for node_id in ids:
            self.start(node_id)

    def start(self, node_id: str) -> None:
        rng = random.Random(node_id)
        self.nodes[node_id] = self.node_class(node_id, self.disks[node_id].persisted(), rng, self.now_ms, self.options)
        self.checker.restarted(node_id)

    def crash(self, node_id: str) -> None:
        self.nodes[node_id] = None
        self.inbox = [m for m in self.inbox if node_id not in (m.src, m.dst)]

    def node(self, node_id: str) -> RaftNode:
        node = self.nodes[node_id]
        assert node is not None
        return node

    def _carry_out(self, node: RaftNode, fx: Effects) -> Effects:
        self.disks[node.id].write(fx)
        if fx.log_write is not None:
            self.checker.saw_log_write(node, fx.log_write.entries)
        self.inbox += fx.messages
        self.served += fx.reads
        for entry in fx.committed:
            self.checker.saw_apply(node.id, entry)
        self.checker.check([node])
        return fx

    def deliver(self, allow: Callable[[Message], bool]) -> None:
        """Deliver the messages ``allow`` lets through (and what they cause) until none is left."""
        while True:
            self.inbox = [m for m in self.inbox if self.nodes[m.dst] is not None]  # a crashed node's are lost
            ready = [m for m in self.inbox if allow(m)]
            if not ready:
                return
            message = ready[0]
            self.inbox.remove(message)
            node = self.node(message.dst)
            self._carry_out(node, node.receive(message, self.now_ms))

    def drop(self, allow: Callable[[Message], bool]) -> None:
        self.inbox = [m for m in self.inbox if not allow(m)]

    def elect(self, candidate: str, among: set[str]) -> None:
        """``candidate`` times out and campaigns; only votes among ``among`` travel."""
        self.now_ms += PHASE_MS
        node = self.node(candidate)
        for _ in range(3):  # a pre-vote may first teach it a newer term
            self._carry_out(node, node.tick(self.now_ms))
            self.deliver(lambda m: isinstance(m, (VoteRequest, VoteResponse)) and {m.src, m.dst} <= among)
            self.drop(lambda m: isinstance(m, (VoteRequest, VoteResponse)))
            if node.role is Role.LEADER:
                return
            self.now_ms += PHASE_MS
        raise AssertionError(f"{candidate} was not elected: {node}")

    def propose(self, node_id: str, data: bytes) -> Effects:
        node = self.node(node_id)
        return self._carry_out(node, node.propose(data, self.now_ms))

    def tick(self, node_id: str) -> Effects:
        node = self.node(node_id)
        return self._carry_out(node, node.tick(self.now_ms))

    def read(self, node_id: str, ctx: object) -> Effects:
        node = self.node(node_id)
        return self._carry_out(node, node.read(ctx, self.now_ms))

    def do(self, node_id: str, event: Callable[[RaftNode], Effects]) -> Effects:
        node = self.node(node_id)
        return self._carry_out(node, event(node))


def figure_8(node_class: type[RaftNode]) -> None:
    """The Raft paper's Figure 8 on five nodes; raises InvariantViolation if the checker objects.

    n1 leads and gives entry 2 to n2 only, then dies; n5 wins with n3, n4 and
    dies with its own entry 2 (a no-op of its term).  n1 returns, wins with n2,
    n3 and copies its old entry 2 to n3: a majority holds it, but it is of an
    earlier term, so a correct leader does not count it committed; n1 dies
    before its own term's entry reaches n3.  n5 returns and wins with n3 and n4,
    and overwrites entry 2 - which only a broken leader had committed."""
    script = Script(("n1", "n2", "n3", "n4", "n5"), node_class, RaftOptions(append_entries_max=1))
    everyone = {"n1", "n2", "n3", "n4", "n5"}
    script.elect("n1", everyone)
    script.deliver(lambda m: True)  # the no-op (entry 1) everywhere, committed
    script.propose("n1", b"x")
    script.deliver(lambda m: {m.src, m.dst} == {"n1", "n2"})
    script.crash("n1")
    script.inbox.clear()
    script.elect("n5", {"n3", "n4", "n5"})
    script.crash("n5")
    script.start("n1")
    script.elect("n1", {"n1", "n2", "n3"})

    def gives_n3_entry_3(m: Message) -> bool:  # once n3 holds the old entry 2, n1's own entry 3 must not reach it
        landing = isinstance(m, AppendRequest) and m.dst == "n3" and any(e.index == 3 for e in m.entries)
        return landing and script.node("n3").log.last_index >= 2

    script.deliver(lambda m: {m.src, m.dst} <= {"n1", "n2", "n3"} and not gives_n3_entry_3(m))
    n1, n3 = script.node("n1"), script.node("n3")
    assert n3.log.last_index == 2 and n3.log.term_at(2) == n1.log.term_at(2) < n1.term, "the scenario went astray"
    script.crash("n1")
    script.inbox.clear()
    script.start("n5")
    script.elect("n5", {"n3", "n4", "n5"})
    script.deliver(lambda m: {m.src, m.dst} <= {"n3", "n4", "n5"})
