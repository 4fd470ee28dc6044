"""A deterministic world of Raft replicas (``model/raft``) under faults, for test_raft_sim.py.

One process, one seeded ``random.Random`` per concern, virtual time in
integer milliseconds driven by an event queue (the functional core needs no
event loop: every event returns the effects to carry out).  In it:

* **hosts**: a ``RaftNode`` each, with a disk (hard state and a ``RaftLog``
  written only from the node's effects, so a restart sees exactly what was
  persisted), a register-per-key state machine (puts and conditional
  updates; snapshots of it), and a clock that is true time plus an offset the
  faults move within ``drift_ms`` (clock jumps);
* **a network** that loses, duplicates, delays (so reorders) messages, and
  cuts links, one direction or both (asymmetric partitions);
* **clients**, one operation at a time each, sent to whichever node they
  believe leads (a refusal's hint, else a guess), given up after a timeout:
  put, get (ConsistentRead: lease or ReadIndex) and conditional update on a
  few keys; every operation goes into a history for ``tests/linearizability.py``;
* **faults**: crashes and restarts (volatile state lost), partitions, clock
  jumps, lossy spells, membership changes (one voter at a time, new nodes
  join empty) and leadership transfers.

``run_raft`` runs the fault phase, then heals everything and requires
liveness: a leader within ``LEADER_AFTER_HEAL_MS``, every voter converged
within ``CONVERGE_AFTER_HEAL_MS``.  ``RaftChecker`` (raft_checker.py) checks
the invariants after every step.  Same seed, same trace (``trace_hash``).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.raft_checker import LIVENESS, InvariantViolation, RaftChecker
from sim.raft_faults import FaultPlan
from sim.raft_history import Client, History, StateMachine

from meridian.model import limits
from meridian.model.raft import (
    Effects,
    Message,
    Persisted,
    RaftLog,
    RaftNode,
    RaftOptions,
    Role,
    bootstrap,
)

LEADER_AFTER_HEAL_MS = 10_000
CONVERGE_AFTER_HEAL_MS = 30_000


@dataclass(frozen=True)
class RaftSimConfig:
    """One run's shape; ``for_seed`` draws it (and the node's knobs) from the seed."""

    seed: int
    voters: int = 3
    spare_nodes: int = 2  # ids available to membership changes (new nodes join empty)
    clients: int = 3
    keys: int = 3
    fault_ms: int = 12_000  # virtual time of the fault phase
    faults: bool = True
    membership: bool = True
    loss: float = 0.05
    duplicate: float = 0.02
    delay_ms_max: int = 30
    client_timeout_ms: int = 1_500
    drift_ms: int = limits.RAFT_CLOCK_DRIFT_MS_MAX
    tick_ms: int = limits.RAFT_TICK_MS
    append_entries_max: int = limits.RAFT_APPEND_ENTRIES_MAX
    inflight_appends_max: int = limits.RAFT_INFLIGHT_APPENDS_MAX
    snapshot_entries: int = 40
    fault_gap_ms: int = 700  # mean virtual time between two faults

    @classmethod
    def for_seed(cls, seed: int, **overrides: object) -> RaftSimConfig:
        rng = random.Random(f"raft-config/{seed}")
        drawn = dict(
            seed=seed,
            voters=rng.choice((3, 3, 5)),
            spare_nodes=rng.choice((0, 2)),
            clients=rng.randint(2, 4),
            keys=rng.randint(1, 4),
            faults=rng.random() < 0.95,
            loss=rng.choice((0.0, 0.02, 0.1)),
            duplicate=rng.choice((0.0, 0.05)),
            delay_ms_max=rng.choice((5, 30, 120)),
            append_entries_max=rng.choice((1, 3, limits.RAFT_APPEND_ENTRIES_MAX)),
            inflight_appends_max=rng.choice((1, 2, limits.RAFT_INFLIGHT_APPENDS_MAX)),
            snapshot_entries=rng.choice((5, 40, limits.RAFT_SNAPSHOT_ENTRIES)),
            fault_gap_ms=rng.choice((500, 1000, 2000)),
        )
        drawn["membership"] = drawn["spare_nodes"] > 0
        drawn.update(overrides)
        return cls(**drawn)  # type: ignore[arg-type]

    def options(self) -> RaftOptions:
        return RaftOptions(
            append_entries_max=self.append_entries_max,
            inflight_appends_max=self.inflight_appends_max,
            snapshot_entries=self.snapshot_entries,
            lease_ms=limits.RAFT_ELECTION_TIMEOUT_MIN_MS - 2 * self.drift_ms,
        )


@dataclass
class RaftSimResult:
    seed: int
    trace_hash: str
    steps: int
    virtual_ms: int
    commits: int
    elections: int
    ops_ok: int
    lease_reads: int
    read_index_reads: int
    crashes: int
    pauses: int
    partitions: int
    clock_jumps: int
    membership_changes: int
    transfers: int
    snapshots_installed: int
    heal_to_leader_ms: int
    history: History
    ever_logged: set[bytes]


class Disk:
    """What a node persisted: written only from its effects, read only at restart."""

    def __init__(self, persisted: Persisted) -> None:
        self.hard_state = persisted.hard_state
        self.log = RaftLog(persisted.snapshot, persisted.entries)

    def write(self, fx: Effects) -> None:
        if fx.hard_state is not None:
            self.hard_state = fx.hard_state
        if fx.snapshot is not None and fx.snapshot.index > self.log.snapshot.index:
            self.log.compact(fx.snapshot)
        if fx.log_write is not None:
            if fx.log_write.truncate_from <= self.log.last_index:
                self.log.truncate_from(fx.log_write.truncate_from)
            self.log.append(fx.log_write.entries)

    def persisted(self) -> Persisted:
        return Persisted(self.hard_state, self.log.snapshot, self.log.entries())


@dataclass
class Host:
    id: str
    disk: Disk
    node: RaftNode | None = None
    machine: StateMachine = field(default_factory=StateMachine)
    offset_ms: int = 0
    incarnation: int = 0
    led_term: int = 0
    paused_until_ms: int = 0  # SIGSTOP: events wait until then (its clock runs on)
    pending: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (index, term) -> (client, op)
    read_asked: dict[tuple[int, int], int] = field(default_factory=dict)  # (client, op) -> committed when asked


class RaftWorld:
    def __init__(self, config: RaftSimConfig, node_class: type[RaftNode] = RaftNode,
                 checker: RaftChecker | None = None) -> None:
        self.config = config
        self.node_class = node_class
        self.options = config.options()
        self.now_ms = 0
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self._touched: list[RaftNode] = []  # the nodes the current step changed: what the checker looks at
        self.net_rng = random.Random(f"raft-net/{config.seed}")
        self.fault_rng = random.Random(f"raft-faults/{config.seed}")
        self.client_rng = random.Random(f"raft-clients/{config.seed}")
        self.checker = checker or RaftChecker()
        self.history = History()
        self._trace = hashlib.sha256()
        self.cut: set[tuple[str, str]] = set()  # (src, dst) links that drop everything
        self.loss, self.duplicate = config.loss, config.duplicate
        voters = tuple(f"n{i}" for i in range(1, config.voters + 1))
        self.spares = [f"n{i}" for i in range(config.voters + 1, config.voters + 1 + config.spare_nodes)]
        self.hosts: dict[str, Host] = {}
        for node_id in voters:
            self._add_host(node_id, bootstrap(voters))
        self.clients = [Client(i, config.keys, voters) for i in range(config.clients)]
        self.counts = dict(crashes=0, pauses=0, partitions=0, clock_jumps=0, membership_changes=0, transfers=0,
                           snapshots_installed=0, elections=0, lease_reads=0, read_index_reads=0)
        self.heal_to_leader_ms = -1
        self.ops_until_ms = 0

    # --- the event queue ---

    def at(self, when_ms: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when_ms, self._seq, action))

    def run_until(self, end_ms: int, until: Callable[[], bool] | None = None) -> bool:
        while self._queue and self._queue[0][0] <= end_ms:
            when_ms, _, action = heapq.heappop(self._queue)
            self.now_ms = when_ms
            action()
            self.checker.check(self._touched)
            self._touched = []
            if until is not None and until():
                return True
        self.now_ms = max(self.now_ms, end_ms)
        return False

    def trace(self, *parts: object) -> None:
        self._trace.update(repr((self.now_ms, *parts)).encode())

    # --- hosts ---

    def _add_host(self, node_id: str, persisted: Persisted) -> None:
        host = Host(node_id, Disk(persisted))
        self.hosts[node_id] = host
        self._start(host)

    def local_ms(self, host: Host) -> int:
        return self.now_ms + host.offset_ms

    def _start(self, host: Host) -> None:
        host.incarnation += 1
        persisted = host.disk.persisted()
        rng = random.Random(f"raft-node/{self.config.seed}/{host.id}/{host.incarnation}")
        host.node = self.node_class(host.id, persisted, rng, self.local_ms(host), self.options)
        host.machine = StateMachine.restore(persisted.snapshot.data)
        host.pending, host.read_asked = {}, {}
        self.checker.restarted(host.id)
        self._schedule_tick(host, host.incarnation)

    def _schedule_tick(self, host: Host, incarnation: int) -> None:
        def tick() -> None:
            if host.node is None or host.incarnation != incarnation or self._deferred(host, tick):
                return
            self.carry_out(host, host.node.tick(self.local_ms(host)))
            self._schedule_tick(host, incarnation)

        self.at(self.now_ms + self.config.tick_ms, tick)

    def _deferred(self, host: Host, action: Callable[[], None]) -> bool:
        """A paused host's events wait for it to resume, then run in a shuffled order."""
        if self.now_ms >= host.paused_until_ms:
            return False
        self.at(host.paused_until_ms + self.net_rng.randint(0, 5), action)
        return True

    def carry_out(self, host: Host, fx: Effects) -> None:
        """The host's side of effects.py's contract, in its order."""
        node = host.node
        assert node is not None
        if node not in self._touched:
            self._touched.append(node)
        host.disk.write(fx)
        if fx.log_write is not None:
            self.checker.saw_log_write(node, fx.log_write.entries)
        if fx.snapshot is not None:
            self.checker.saw_snapshot(node, fx.snapshot)
        for message in fx.messages:
            self._send(message)
        if fx.restore is not None:
            host.machine = StateMachine.restore(fx.restore.data)
            self.counts["snapshots_installed"] += 1
            # proposals the snapshot covers may or may not be in it: their clients never learn
            host.pending = {key: ctx for key, ctx in host.pending.items() if key[0] > fx.restore.index}
        for entry in fx.committed:
            self.checker.saw_apply(host.id, entry)
            result = host.machine.apply(entry)
            waiting = host.pending.pop((entry.index, entry.term), None)
            for key in [k for k in host.pending if k[0] == entry.index]:
                self._answer(host.pending.pop(key), ("lost", None))  # another entry took its index
            if waiting is not None:
                self._answer(waiting, result)
        for read in fx.reads:
            ctx = read.ctx
            asked = host.read_asked.pop(ctx, self.checker.committed_max)  # type: ignore[arg-type]
            self.checker.saw_read(node, read, self.now_ms, asked)
            self.counts["lease_reads" if read.lease else "read_index_reads"] += 1
            self._answer(ctx, ("value", host.machine.get(self.history.ops[ctx[1]].key)))  # type: ignore[index]
        for refused in fx.refused_reads + fx.refused_proposals:
            if isinstance(refused.ctx, tuple):
                host.read_asked.pop(refused.ctx, None)
                self._answer(refused.ctx, ("refused", refused.leader_hint))
        for accepted in fx.accepted:
            if isinstance(accepted.ctx, tuple):
                host.pending[(accepted.index, accepted.term)] = accepted.ctx
        if fx.snapshot_wanted:
            self.at(self.now_ms + 1, lambda: self._compact(host, host.incarnation))
        if node.role is Role.LEADER and host.led_term != node.term:
            host.led_term = node.term
            self.counts["elections"] += 1
            self.trace("leader", host.id, node.term)

    def _compact(self, host: Host, incarnation: int) -> None:
        if host.node is not None and host.incarnation == incarnation:
            machine = host.machine
            self.carry_out(host, host.node.compact(machine.applied, machine.snapshot(), self.local_ms(host)))

    # --- the network ---

    def _send(self, message: Message) -> None:
        if (message.src, message.dst) in self.cut or self.net_rng.random() < self.loss:
            return
        copies = 2 if self.net_rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.at(self.now_ms + self.net_rng.randint(1, self.config.delay_ms_max), lambda m=message: self._deliver(m))

    def _deliver(self, message: Message) -> None:
        host = self.hosts.get(message.dst)
        if host is None or host.node is None or (message.src, message.dst) in self.cut:
            return
        if self._deferred(host, lambda: self._deliver(message)):
            return
        self.trace("msg", type(message).__name__, message.src, message.dst, message.term)
        self.carry_out(host, host.node.receive(message, self.local_ms(host)))

    # --- clients ---

    def start_clients(self, until_ms: int) -> None:
        self.ops_until_ms = until_ms
        for client in self.clients:
            self.at(self.now_ms + self.client_rng.randint(1, 50), lambda c=client: self._next_op(c))

    def _next_op(self, client: Client) -> None:
        if self.now_ms >= self.ops_until_ms:
            return
        op = client.new_op(self.client_rng, self.history, self.now_ms)
        target = client.target(self.client_rng, sorted(self.hosts))
        delay_ms = self.client_rng.randint(1, 10)
        self.at(self.now_ms + delay_ms, lambda: self._request(target, client, op.id))
        self.at(self.now_ms + self.config.client_timeout_ms, lambda: self._timeout(client, op.id))

    def _request(self, target: str, client: Client, op_id: int) -> None:
        host = self.hosts[target]
        if host.node is None or self._deferred(host, lambda: self._request(target, client, op_id)):
            return
        op = self.history.ops[op_id]
        ctx = (client.id, op_id)
        local_ms = self.local_ms(host)
        if op.kind == "get":
            host.read_asked[ctx] = self.checker.committed_max
            self.carry_out(host, host.node.read(ctx, local_ms))
        else:
            self.carry_out(host, host.node.propose(op.command(), local_ms, ctx))

    def _answer(self, ctx: tuple[int, int], result: tuple[str, object]) -> None:
        client = self.clients[ctx[0]]
        self.at(self.now_ms + self.client_rng.randint(1, 10), lambda: self._complete(client, ctx[1], result))

    def _complete(self, client: Client, op_id: int, result: tuple[str, object]) -> None:
        if client.current != op_id:
            return  # given up on already: its outcome stays unknown
        self.history.complete(op_id, self.now_ms, result)
        client.learn(result)
        self.trace("done", op_id, result)
        client.current = None
        self.at(self.now_ms + self.client_rng.randint(0, 20), lambda: self._next_op(client))

    def _timeout(self, client: Client, op_id: int) -> None:
        if client.current == op_id:
            client.current = None
            client.leader = None
            self._next_op(client)

    # --- state ---

    def leader(self) -> Host | None:
        leaders = [h for h in self.hosts.values() if h.node is not None and h.node.role is Role.LEADER]
        return max(leaders, key=lambda h: h.node.term) if leaders else None  # type: ignore[union-attr]

    def converged(self) -> bool:
        leader = self.leader()
        if leader is None or leader.node is None or any(c.current is not None for c in self.clients):
            return False
        node = leader.node
        if node.commit != node.log.last_index or node.config_index > node.commit or node.id not in node.voters:
            return False
        for voter in node.voters:
            host = self.hosts[voter]
            if host.node is None or host.node.applied != node.commit or host.machine.state != leader.machine.state:
                return False
        return True

    def result(self) -> RaftSimResult:
        return RaftSimResult(
            seed=self.config.seed, trace_hash=self._trace.hexdigest(), steps=self.checker.steps,
            virtual_ms=self.now_ms, commits=self.checker.committed_max, ops_ok=self.history.ok_count(),
            heal_to_leader_ms=self.heal_to_leader_ms, history=self.history, ever_logged=self.checker.ever_logged,
            **self.counts,
        )


def heal_and_converge(world: RaftWorld) -> None:
    """Liveness: with every fault repaired, a leader soon and every voter the same."""
    world.cut.clear()
    world.loss = world.duplicate = 0.0
    for host in world.hosts.values():
        host.paused_until_ms = min(host.paused_until_ms, world.now_ms)
        if host.node is None:
            world._start(host)
    healed_ms = world.now_ms
    if not world.run_until(healed_ms + LEADER_AFTER_HEAL_MS, lambda: world.leader() is not None):
        raise InvariantViolation({LIVENESS}, [f"{LIVENESS}: no leader {LEADER_AFTER_HEAL_MS} ms after healing"])
    world.heal_to_leader_ms = world.now_ms - healed_ms
    if not world.run_until(healed_ms + CONVERGE_AFTER_HEAL_MS, world.converged):
        states = {h.id: repr(h.node) for h in world.hosts.values()}
        raise InvariantViolation({LIVENESS}, [f"{LIVENESS}: not converged {CONVERGE_AFTER_HEAL_MS} ms after healing: {states}"])


def run_raft(config: RaftSimConfig, node_class: type[RaftNode] = RaftNode,
             checker: RaftChecker | None = None) -> RaftSimResult:
    world = RaftWorld(config, node_class, checker)
    world.start_clients(config.fault_ms)
    if config.faults:
        FaultPlan(world).schedule(config.fault_ms)
    world.run_until(config.fault_ms)
    heal_and_converge(world)
    world.history.check_acknowledged(world.checker.committed)
    return world.result()
