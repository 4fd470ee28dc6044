"""The faults of the Raft simulation, drawn from the seed (raft_world.py runs them).

Every ``fault_gap_ms`` or so (exponentially distributed) one of: a crash and
a later restart (often the leader), a pause (SIGSTOP: its events wait, its
clock runs on), a partition (one node cut off both ways
or one way only, or a split into two groups) healed later, a clock jump
within the drift bound, a lossy spell, a membership change (add a new
empty node, or remove a voter - the leader included), or a leadership
transfer.  Faults overlap freely: a majority may be down for a while; only
the time after healing must show progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meridian.model.raft import Role, bootstrap

if TYPE_CHECKING:
    from sim.raft_world import Host, RaftWorld

VOTERS_MIN = 3
VOTERS_MAX = 5
OUTAGE_MS_MIN, OUTAGE_MS_MAX = 200, 3_000
LOSSY_SPELL_LOSS = 0.3

KINDS = (
    ("crash", 3),
    ("crash-leader", 2),
    ("pause", 1),
    ("pause-leader", 2),
    ("isolate", 2),
    ("isolate-leader", 2),
    ("one-way", 2),
    ("split", 1),
    ("clock", 2),
    ("lossy", 1),
    ("membership", 2),
    ("transfer", 1),
)


class FaultPlan:
    def __init__(self, world: RaftWorld) -> None:
        self.world = world
        self.rng = world.fault_rng

    def schedule(self, until_ms: int) -> None:
        at_ms = 0
        kinds = [kind for kind, weight in KINDS for _ in range(weight)]
        if not self.world.config.membership:
            kinds = [kind for kind in kinds if kind != "membership"]
        while True:
            at_ms += int(self.rng.expovariate(1 / self.world.config.fault_gap_ms)) + 1
            if at_ms >= until_ms:
                return
            kind = self.rng.choice(kinds)
            self.world.at(at_ms, lambda k=kind: self.inject(k))

    # --- one fault ---

    def _outage_ms(self) -> int:
        return self.rng.randint(OUTAGE_MS_MIN, OUTAGE_MS_MAX)

    def _pick(self, leader_first: bool) -> Host:
        world = self.world
        leader = world.leader()
        if leader_first and leader is not None:
            return leader
        return world.hosts[self.rng.choice(sorted(world.hosts))]

    def inject(self, kind: str) -> None:
        world = self.world
        world.trace("fault", kind)
        if kind in ("crash", "crash-leader"):
            host = self._pick(kind == "crash-leader")
            if host.node is not None:
                self._crash(host)
        elif kind in ("pause", "pause-leader"):
            host = self._pick(kind == "pause-leader")
            host.paused_until_ms = max(host.paused_until_ms, world.now_ms + self._outage_ms())
            world.counts["pauses"] += 1
        elif kind in ("isolate", "isolate-leader", "one-way"):
            host = self._pick(kind == "isolate-leader")
            others = [peer for peer in sorted(world.hosts) if peer != host.id]
            links = {(host.id, peer) for peer in others}
            if kind != "one-way":
                links |= {(peer, host.id) for peer in others}
            elif self.rng.random() < 0.5:
                links = {(peer, host.id) for peer in others}  # it hears nothing, but is heard
            self._cut(links)
        elif kind == "split":
            ids = sorted(world.hosts)
            self.rng.shuffle(ids)
            side = set(ids[: len(ids) // 2])
            self._cut({(a, b) for a in ids for b in ids if (a in side) != (b in side)})
        elif kind == "clock":
            host = self._pick(False)
            host.offset_ms = self.rng.randint(0, world.config.drift_ms)
            world.counts["clock_jumps"] += 1
        elif kind == "lossy":
            world.loss = LOSSY_SPELL_LOSS
            world.at(world.now_ms + self._outage_ms(), self._end_lossy_spell)
        elif kind == "membership":
            self._change_membership()
        elif kind == "transfer":
            leader = world.leader()
            if leader is not None and leader.node is not None:
                targets = [v for v in leader.node.voters if v != leader.id]
                if targets:
                    world.counts["transfers"] += 1
                    world.carry_out(leader, leader.node.transfer_leadership(self.rng.choice(targets), world.local_ms(leader)))

    def _end_lossy_spell(self) -> None:
        self.world.loss = self.world.config.loss

    def _crash(self, host: Host) -> None:
        world = self.world
        host.node = None
        world.counts["crashes"] += 1
        world.trace("crash", host.id)

        def restart(incarnation: int = host.incarnation) -> None:
            if host.node is None and host.incarnation == incarnation:
                world._start(host)
                world.trace("restart", host.id)

        world.at(world.now_ms + self._outage_ms(), restart)

    def _cut(self, links: set[tuple[str, str]]) -> None:
        world = self.world
        fresh = sorted(links - world.cut)
        world.cut |= set(fresh)
        world.counts["partitions"] += 1

        def heal() -> None:
            world.cut -= set(fresh)

        world.at(world.now_ms + self._outage_ms(), heal)

    def _change_membership(self) -> None:
        world = self.world
        leader = world.leader()
        if leader is None or leader.node is None or leader.node.role is not Role.LEADER:
            return
        voters = leader.node.voters
        add = remove = None
        if world.spares and len(voters) < VOTERS_MAX and (len(voters) <= VOTERS_MIN or self.rng.random() < 0.5):
            add = world.spares.pop(0)
            world._add_host(add, bootstrap(()))
        elif len(voters) > VOTERS_MIN:
            remove = self.rng.choice(voters)
        else:
            return
        world.counts["membership_changes"] += 1
        world.trace("membership", add, remove)
        world.carry_out(leader, leader.node.change_voters(world.local_ms(leader), add=add, remove=remove))
