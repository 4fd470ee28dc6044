"""A deterministic world of regions for the replication simulation.

Everything that replication touches is here in one process, on the virtual
clock of a ``VirtualTimeLoop``, with all randomness drawn from generators
seeded by the run's seed:

* regions of ``SimNodeStore`` nodes (``replication/sim_store.py``) - or,
  with ``WorldConfig.engines``, of real storage engines on RocksDB
  (``engine_store.py``: the production apply path) - each region with a
  durable ``MemoryCursorStore`` and a real ``Replicator``;
* a ``SimulatedLink`` for every ordered pair of regions (the production
  link code), over a transport that hands batches straight to the peer's
  current replicator, or refuses them while it is down;
* a workload of random puts and deletes to a small set of overlapping keys
  in every region, interleaved with faults: link latency/jitter/loss
  changes, cuts and heals, clock skew, replicator crashes and restarts,
  replication pauses, and garbage collection by ``replication/gc.py``'s rule;
* an oracle: every acknowledged write with its stamp, so the expected final
  version of each key is the one with the largest stamp.

After the workload everything heals, the world runs until no region has a
change pending for any peer, and ``check`` demands that every region holds
the same item versions (equal digests) and that each key holds the version
the oracle expects.  Every step is appended to a trace; the same seed gives
the same trace, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import tempfile
from dataclasses import dataclass

import orjson

from meridian.model import limits
from meridian.model.keycodec import encode_item_key
from meridian.model.stamps import VersionStamp
from meridian.model.records import is_tombstone
from meridian.replication.clock import VirtualClock, VirtualTimeLoop
from meridian.replication.cursors import MemoryCursorStore
from meridian.replication.digest import Digest, compare
from meridian.model.changes import Ack, ReplicationBatch
from meridian.replication.interfaces import PeerUnavailable
from meridian.replication.link import LinkConditions, SimulatedLink
from meridian.replication.replicator import Replicator
from meridian.replication.sim_store import SimNodeStore, SimRegionStorage
from sim.engine_store import KEY_SCHEMA, EngineNodeStore

REGION_NAMES = ("us-east-1", "eu-west-1", "ap-south-1", "sa-east-1")
TABLE_IDS = (0x1111, 0x2222)
QUIESCENCE_TIMEOUT_S = 3600.0  # virtual seconds
QUIESCENCE_POLL_S = 0.25


@dataclass(frozen=True)
class WorldConfig:
    """The shape of one simulated run; ``for_seed`` draws it from the seed."""

    seed: int
    regions: int = 3
    nodes_per_region: int = 2
    writes: int = 80
    keys: int = 12
    delete_ratio: float = 0.3
    faults: bool = True
    gc: bool = True
    mean_gap_ms: float = 40.0  # between workload steps
    # Replicator bounds, varied per seed like FoundationDB's knobs: tiny
    # batches and windows reach code paths the defaults rarely do.
    batch_changes_max: int = limits.REPLICATION_BATCH_CHANGES_MAX
    batch_bytes_max: int = limits.REPLICATION_BATCH_BYTES_MAX
    inflight_batches_max: int = limits.REPLICATION_INFLIGHT_BATCHES_MAX
    floor_interval_s: float = limits.REPLICATION_FLOOR_INTERVAL_S
    # Regions on real storage engines (RocksDB in a temporary folder) instead
    # of the in-memory model: slower, so only some runs use them.
    engines: bool = False

    @classmethod
    def for_seed(cls, seed: int) -> WorldConfig:
        rng = random.Random(f"config/{seed}")
        return cls(
            seed=seed,
            regions=rng.randint(2, 4),
            nodes_per_region=rng.randint(1, 3),
            writes=rng.randint(20, 400),
            keys=rng.randint(3, 30),
            delete_ratio=rng.choice((0.1, 0.3, 0.5)),
            faults=rng.random() < 0.9,
            gc=rng.random() < 0.7,
            mean_gap_ms=rng.choice((5.0, 40.0, 200.0)),
            batch_changes_max=rng.choice((1, 3, 20, limits.REPLICATION_BATCH_CHANGES_MAX)),
            batch_bytes_max=rng.choice((300, 4096, limits.REPLICATION_BATCH_BYTES_MAX)),
            inflight_batches_max=rng.choice((1, 2, 4, limits.REPLICATION_INFLIGHT_BATCHES_MAX)),
            floor_interval_s=rng.choice((0.1, limits.REPLICATION_FLOOR_INTERVAL_S)),
        )


@dataclass
class SimRegion:
    name: str
    storage: SimRegionStorage
    cursors: MemoryCursorStore
    replicator: Replicator | None = None
    task: asyncio.Task | None = None
    paused: bool = False
    crashes: int = 0


@dataclass
class SimResult:
    seed: int
    trace_hash: str
    trace_events: int
    virtual_s: float
    writes: int
    batches_delivered: int
    faults: int
    replicator_crashes: int
    tombstones_dropped: int
    log_entries_truncated: int


@dataclass(frozen=True)
class _Expected:
    stamp: VersionStamp
    item_json: bytes | None


class _RegionTransport:
    """Carries batches to whatever replicator a region runs at the moment."""

    def __init__(self, world: World, target: str) -> None:
        self._world = world
        self._target = target

    async def deliver(self, batch: ReplicationBatch) -> Ack:
        region = self._world.regions[self._target]
        if region.replicator is None:
            raise PeerUnavailable(self._target)
        ack = await region.replicator.receive(batch)
        self._world.delivered += 1
        self._world.log(
            "deliver", batch.origin, self._target, batch.node_id, batch.after_sequence, batch.last_sequence,
            len(batch.changes), ack.applied,
        )
        return ack


class World:
    """Regions, links, clocks and a workload, all driven by one seed."""

    def __init__(self, config: WorldConfig, loop: VirtualTimeLoop, data_dir: str | None = None) -> None:
        """``data_dir``: where the engines keep their databases (``config.engines`` only)."""
        self.config = config
        self.loop = loop
        self.clock = VirtualClock(loop)
        self.rng = random.Random(f"workload/{config.seed}")
        self.trace: list[tuple] = []
        self.delivered = 0
        self.faults = 0
        self.tombstones_dropped = 0
        self.log_truncated = 0
        self.expected: dict[bytes, _Expected] = {}
        names = REGION_NAMES[: config.regions]
        self.regions: dict[str, SimRegion] = {}
        for name in names:
            if config.engines:
                assert data_dir is not None, "a world of engines needs a data folder"
                nodes = [
                    EngineNodeStore(f"{name}/n{i}", name, self.clock, f"{data_dir}/{name}-n{i}", TABLE_IDS)
                    for i in range(config.nodes_per_region)
                ]
            else:
                nodes = [SimNodeStore(f"{name}/n{i}", name, self.clock) for i in range(config.nodes_per_region)]
            cursors = MemoryCursorStore(self.clock, save_delay_s=self.rng.choice((0.0, 0.002, 0.02)))
            self.regions[name] = SimRegion(name, SimRegionStorage(nodes), cursors)
        self.links: dict[tuple[str, str], SimulatedLink] = {}
        for a in names:
            for b in names:
                if a != b:
                    self.links[(a, b)] = SimulatedLink(
                        a, b, _RegionTransport(self, b), self.clock, random.Random(f"link/{config.seed}/{a}->{b}"),
                        self._random_conditions(),
                    )

    def close(self) -> None:
        """Close the engines (a world of ``SimNodeStore`` holds nothing to close)."""
        for region in self.regions.values():
            for node in region.storage.nodes:
                close = getattr(node, "close", None)
                if close is not None:
                    close()

    # --- tracing ------------------------------------------------------------

    def log(self, *event: object) -> None:
        self.trace.append((round(self.loop.time(), 9), *event))

    def trace_hash(self) -> str:
        h = hashlib.sha256()
        for event in self.trace:
            h.update(repr(event).encode())
            h.update(b"\n")
        return h.hexdigest()

    # --- replicators --------------------------------------------------------

    def start_replicator(self, name: str) -> None:
        region = self.regions[name]
        assert region.replicator is None
        links = {b: link for (a, b), link in self.links.items() if a == name}
        c = self.config
        replicator = Replicator(
            name, region.storage.nodes, region.storage, region.cursors, links, self.clock,
            batch_changes_max=c.batch_changes_max, batch_bytes_max=c.batch_bytes_max,
            inflight_batches_max=c.inflight_batches_max, floor_interval_s=c.floor_interval_s,
        )
        if region.paused:
            for peer in links:
                replicator.pause(peer)
        for other in self.regions.values():  # peers paused towards a paused region stay so
            if other.paused and other.name != name:
                replicator.pause(other.name)
        region.replicator = replicator
        region.task = self.loop.create_task(replicator.run(), name=f"replicator {name}")
        self.log("start", name)

    async def crash_replicator(self, name: str) -> None:
        """Kill a replicator: in-memory state is gone, its durable cursors stay."""
        region = self.regions[name]
        replicator, task = region.replicator, region.task
        if replicator is None:
            return
        region.replicator = None
        region.task = None
        replicator.close()
        try:
            await task
        except asyncio.CancelledError:
            pass
        region.crashes += 1
        self.log("crash", name)

    def _check_replicators(self) -> None:
        for region in self.regions.values():
            task = region.task
            if task is not None and task.done() and not task.cancelled():
                task.result()  # a replicator that failed raises here
                raise AssertionError(f"replicator of {region.name} stopped by itself")

    # --- writes -------------------------------------------------------------

    def write(self, region_name: str, table_id: int, key_index: int, delete: bool) -> None:
        key = encode_item_key(table_id, KEY_SCHEMA, {"pk": {"S": f"k{key_index:03d}"}})
        node = self.regions[region_name].storage.owner(key)
        if delete:
            item_json = None
            stamp = node.delete(table_id, key)
            if stamp is None:  # no live item here: DynamoDB (and the engine) write nothing
                self.log("write-nothing", region_name, node.node_id, key)
                return
        else:
            item = {
                "pk": {"S": f"k{key_index:03d}"},
                "v": {"N": str(self.rng.randint(0, 10**6))},
                "w": {"S": region_name},
            }
            item_json = orjson.dumps(item)
            stamp = node.put(table_id, key, item_json)
        self.log("write", region_name, node.node_id, key, stamp.hlc, stamp.region, delete)
        best = self.expected.get(key)
        if best is None or stamp > best.stamp:
            self.expected[key] = _Expected(stamp, item_json)

    # --- faults -------------------------------------------------------------

    def _random_conditions(self) -> LinkConditions:
        rng = self.rng
        return LinkConditions(
            latency_ms=rng.choice((0.0, 5.0, 30.0, 80.0, 150.0, 300.0)),
            jitter_ms=rng.choice((0.0, 0.0, 5.0, 40.0)),
            loss=rng.choice((0.0, 0.0, 0.01, 0.1, 0.3)),
        )

    async def _fault(self) -> None:
        rng = self.rng
        names = list(self.regions)
        kind = rng.choice(("link", "cut", "heal", "skew", "crash", "pause", "resume"))
        a, b = rng.sample(names, 2)
        if kind == "link":
            c = self._random_conditions()
            self.links[(a, b)].set(latency_ms=c.latency_ms, jitter_ms=c.jitter_ms, loss=c.loss)
            self.log("fault", kind, a, b, c.latency_ms, c.jitter_ms, c.loss)
        elif kind in ("cut", "heal"):
            both = rng.random() < 0.5
            for pair in ((a, b), (b, a)) if both else ((a, b),):
                self.links[pair].set(cut=kind == "cut")
            self.log("fault", kind, a, b, both)
        elif kind == "skew":
            skew_ms = rng.choice((-5000, -300, 0, 0, 250, 4000))
            for node in self.regions[a].storage.nodes:
                node.skew_ms = skew_ms
            self.log("fault", kind, a, skew_ms)
        elif kind == "crash":
            await self.crash_replicator(a)
            down_s = rng.choice((0.0, 0.1, 1.0, 3.0))
            self.log("fault", kind, a, down_s)
            self.loop.create_task(self._restart_later(a, down_s))
        elif kind == "pause":
            self.pause_region(a)
        else:
            self.resume_region(a)
        self.faults += 1

    async def _restart_later(self, name: str, down_s: float) -> None:
        await self.clock.sleep(down_s)
        if self.regions[name].replicator is None:
            self.start_replicator(name)

    def pause_region(self, name: str) -> None:
        """Stop replication to and from one region (every replicator involved is told)."""
        self.regions[name].paused = True
        for region in self.regions.values():
            if region.replicator is None:
                continue
            peers = [p for p in self.regions if p != region.name] if region.name == name else [name]
            for peer in peers:
                region.replicator.pause(peer)
        self.log("fault", "pause", name)

    def resume_region(self, name: str) -> None:
        self.regions[name].paused = False
        for region in self.regions.values():
            if region.replicator is None:
                continue
            peers = [p for p in self.regions if p != region.name] if region.name == name else [name]
            for peer in peers:
                if not self.regions[peer].paused and not region.paused:
                    region.replicator.resume(peer)
        self.log("fault", "resume", name)

    def collect_garbage(self) -> None:
        """Apply each region's GC horizon to its nodes (what a replicator will ask nodes to do)."""
        for region in self.regions.values():
            if region.replicator is None:
                continue
            horizon = region.replicator.gc_horizon()
            for node in region.storage.nodes:
                truncated = node.truncate_log(horizon.truncate_through.get(node.node_id, 0))
                dropped = node.drop_tombstones(horizon.tombstone_floor_hlc)
                self.log_truncated += truncated
                self.tombstones_dropped += dropped
                if truncated or dropped:
                    self.log("gc", node.node_id, truncated, dropped)

    # --- phases -------------------------------------------------------------

    async def workload(self) -> None:
        config = self.config
        rng = self.rng
        names = list(self.regions)
        for _ in range(config.writes):
            await self.clock.sleep(rng.expovariate(1000 / config.mean_gap_ms))
            self._check_replicators()
            if config.faults and rng.random() < 0.15:
                await self._fault()
            if config.gc and rng.random() < 0.1:
                self.collect_garbage()
            self.write(
                rng.choice(names),
                rng.choice(TABLE_IDS),
                rng.randrange(config.keys),
                rng.random() < config.delete_ratio,
            )

    async def heal(self) -> None:
        for link in self.links.values():
            link.heal()
        for name, region in self.regions.items():
            if region.paused:
                self.resume_region(name)
            if region.replicator is None:
                self.start_replicator(name)
        self.log("healed")

    async def quiesce(self) -> None:
        """Run until no region has a change pending for any peer."""
        deadline = self.clock.monotonic_s() + QUIESCENCE_TIMEOUT_S
        while True:
            self._check_replicators()
            pending = 0
            for region in self.regions.values():
                pending += sum((await region.replicator.pending_changes()).values())
            if pending == 0:
                break
            if self.clock.monotonic_s() > deadline:
                raise AssertionError(f"no convergence after {QUIESCENCE_TIMEOUT_S} virtual s: {pending} pending")
            if self.config.gc:
                self.collect_garbage()
            await self.clock.sleep(QUIESCENCE_POLL_S)
        if self.config.gc:
            self.collect_garbage()
        self.log("quiescent")

    # --- the check ----------------------------------------------------------

    def contents(self, name: str) -> list[tuple[bytes, bytes]]:
        """A region's item versions, as the digest compares them.

        With garbage collection, regions may drop a tombstone at different
        times, so only live items are compared; without it, tombstones too.
        """
        records = self.regions[name].storage.records()
        if self.config.gc:
            return sorted((k, r) for k, r in records if not is_tombstone(r))
        return sorted(records)

    def check(self) -> None:
        names = list(self.regions)
        reference = self.contents(names[0])
        for name in names[1:]:
            other = self.contents(name)
            if Digest.of(reference) != Digest.of(other):
                keys = compare(reference, other)
                raise AssertionError(f"{names[0]} and {name} differ in {len(keys)} keys: {keys[:10]}")
        for name in names:
            storage = self.regions[name].storage
            seen = set()
            for key, expected in self.expected.items():
                seen.add(key)
                got = storage.owner(key).get(key)
                if got is None:
                    assert expected.item_json is None and self.config.gc, (name, key, expected)
                    continue
                stamp, item_json = got
                assert (stamp, item_json) == (expected.stamp, expected.item_json), (name, key, got, expected)
            for key, _ in storage.records():
                assert key in seen, (name, key, "stored but never written")
        for name in names:
            self.log("digest", name, Digest.of(self.contents(name)).root().hex())

    async def run(self) -> SimResult:
        for name in self.regions:
            self.start_replicator(name)
        await self.workload()
        await self.heal()
        await self.quiesce()
        self.check()
        return SimResult(
            seed=self.config.seed,
            trace_hash=self.trace_hash(),
            trace_events=len(self.trace),
            virtual_s=self.loop.time(),
            writes=self.config.writes,
            batches_delivered=self.delivered,
            faults=self.faults,
            replicator_crashes=sum(r.crashes for r in self.regions.values()),
            tombstones_dropped=self.tombstones_dropped,
            log_entries_truncated=self.log_truncated,
        )


def run_world(config: WorldConfig) -> SimResult:
    """Run one world on a fresh virtual-time loop."""
    folder = tempfile.TemporaryDirectory(prefix="meridian-sim-") if config.engines else contextlib.nullcontext()
    with folder as data_dir:
        loop = VirtualTimeLoop()
        world = None
        try:
            world = World(config, loop, data_dir)
            return loop.run_until_complete(world.run())
        finally:
            leftover = asyncio.all_tasks(loop)  # replicators, restarts: end them in virtual time too
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()
            if world is not None:
                world.close()


def replay_hint(config: WorldConfig) -> str:
    if config == WorldConfig.for_seed(config.seed):
        how = f"MERIDIAN_SIM_SEED={config.seed} /tmp/venv/bin/pytest tests/sim -k replay -q"
    else:
        how = f"run_world({config!r})"
    return f"simulation seed {config.seed} failed; replay it with: {how}"
