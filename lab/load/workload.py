"""The workload: open-loop PutItem / GetItem at a fixed rate, every write remembered.

**Schedule.**  Request ``i`` is due at ``start + i / rate``, whatever the
earlier ones are doing (open loop: a slow server does not slow the
offered load, it shows as latency and errors).  A due request is *behind*,
and is not sent, when its region already has ``limits.IN_FLIGHT_PER_REGION_MAX``
requests in flight or when the scheduler reaches it more than
``limits.SCHEDULE_SLACK_S`` late (this process is short of CPU).  The limit is per
region so that a region that stops answering cannot starve the others.

**Operations.**  A seeded ``random.Random`` draws, for every due request,
its region, PutItem or GetItem, the key and the pad offset, so the same
seed offers the same sequence.  A write goes to its key's writer region
(``spec.py``); a read to any key, from the region drawn.  Keys are drawn
from each region's key distribution (``spec.KeyDistribution``): uniform,
or Zipf over the region's own keys, reads included (a region with a hot
key reads it too); ``set_key_distribution`` changes one region's while
the workload runs (the chaos fault ``hot-key``).  Writes to one key may
be in flight together (a hot key takes them as fast as they come): one
sent while earlier ones are unanswered may be overtaken by them, so its
acknowledgement only promises the lowest version then in flight
(``Versions``).  A write whose outcome is unknown (a time-out, a lost
connection, a 5xx) could still be applied at any later time: its key is
retired for the rest of the run (a later write takes the next key of its
region, up to ``limits.KEY_TRIES_MAX``, or is skipped) so that the
no-acknowledged-write-lost check stays exact.  A
throttled write (``ProvisionedThroughputExceededException``,
``ThrottlingException``) is a refused write like any other 4xx: never
applied, never acknowledged, its key stays in use; it is counted apart
(per region and per second) and its ``ThrottlingReasons`` go into the
history.

**Visibility probes.**  Every Nth acknowledged single-writer write, each
other region is read (GetItem, ConsistentRead) until it returns that
version or a later one; ``visible_ms`` is from the write's acknowledgement
to the answer of the first read that returned it.  Reads are spaced by a
tenth of the time waited so far (between ``limits.VISIBILITY_POLL_MIN_S`` and
``limits.VISIBILITY_POLL_MAX_S``), so the figure is within about 10 % and a slow
link does not cost a read per millisecond.

**Replication lag.**  With a run directory, ``ControlClient.lag()`` and
``pending()`` are sampled every ``limits.LAG_SAMPLE_INTERVAL_S`` (off the loop);
a target without replication, or a failed sample, records nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meridian.cluster import limits
from meridian.model.limits import ITEM_SIZE_BYTES_MAX

from .client import DynamoClient, Reply
from .history import RunWriter
from .spec import (
    UNIFORM,
    KeyDistribution,
    Versions,
    WorkloadSpec,
    conflict_key,
    keys_per_region,
    make_item,
    pad_length,
    pad_source,
    parse_item,
    region_key,
    version_base,
    writer_of,
)
from .stats import THROTTLE_ERRORS, LiveStats, WorkloadStats

log = logging.getLogger("meridian.lab.load")


@dataclass(frozen=True, slots=True)
class Operation:
    """One scheduled request, as drawn from the seeded generator."""

    region: str
    write: bool
    key_index: int  # into the region's writable keys (write) or every key (read)
    pad_offset: int


class OperationPlan:
    """The seeded sequence of operations, and the keys they name."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.regions = list(spec.regions)
        owned = keys_per_region(self.regions, spec.keys)
        conflicts = [conflict_key(j) for j in range(spec.conflict_keys)]
        #: Per region, the keys it may write: its own, then the conflict keys.
        self.writable = {r: [region_key(r, j) for j in range(owned[r])] + conflicts for r in self.regions}
        #: Every key, for reads.
        self.all_keys = [region_key(r, j) for r in self.regions for j in range(owned[r])] + conflicts
        #: Per region, where each of its writable keys is in ``all_keys`` (a skewed region's reads).
        self._read_index: dict[str, list[int]] = {}
        offset, conflicts_at = 0, len(self.all_keys) - len(conflicts)
        for r in self.regions:
            self._read_index[r] = [offset + j for j in range(owned[r])] + [conflicts_at + j for j in range(len(conflicts))]
            offset += owned[r]
        self.distributions = dict.fromkeys(self.regions, KeyDistribution(spec.key_distribution, spec.zipf_s))
        self._rng = random.Random(spec.seed)
        self._pad_offsets = ITEM_SIZE_BYTES_MAX

    def set_key_distribution(self, region: str, distribution: KeyDistribution | None) -> None:
        """From now on draw ``region``'s keys from ``distribution`` (None: the spec's)."""
        if region not in self.distributions:
            raise ValueError(f"{region!r} is not a region of this workload")
        self.distributions[region] = distribution or KeyDistribution(self.spec.key_distribution, self.spec.zipf_s)

    def next(self) -> Operation:
        rng = self._rng
        region = self.regions[rng.randrange(len(self.regions))]
        write = rng.random() < self.spec.write_ratio
        distribution = self.distributions[region]
        if write:
            index = distribution.draw(rng, len(self.writable[region]))
        elif distribution.name == UNIFORM:
            index = distribution.draw(rng, len(self.all_keys))
        else:  # a skewed region reads its own hot keys
            index = self._read_index[region][distribution.draw(rng, len(self._read_index[region]))]
        return Operation(region, write, index, rng.randrange(self._pad_offsets) if write else 0)


class Workload:
    """Runs a ``WorkloadSpec`` against its regions; see the module docstring.

    ``acknowledged`` (key -> last acknowledged ``(version, region)``) and
    ``attempted`` (key -> writer region -> highest version sent) are what
    ``check_no_acknowledged_write_lost`` takes.  With ``run_dir``, writes
    ``history.jsonl``, ``visibility.jsonl`` and ``lag.jsonl`` there (not
    ``run.json``: the caller knows what the run is).
    """

    def __init__(self, spec: WorkloadSpec, run_dir: Path | None = None) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.plan = OperationPlan(spec)
        self.live = LiveStats(self.plan.regions)
        self.started_at: float | None = None
        self.versions = Versions(0)
        self._pad = pad_source(spec.seed)
        self._retired: set[str] = set()
        self._in_flight = dict.fromkeys(self.plan.regions, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._probes: set[asyncio.Task[None]] = set()
        self._acks_counted = 0
        self._clients: dict[str, DynamoClient] = {}
        self._writer: RunWriter | None = None
        self._elapsed_fraction = 0.0

    @property
    def acknowledged(self) -> dict[str, tuple[int, str]]:
        return self.versions.acknowledged

    @property
    def attempted(self) -> dict[str, dict[str, int]]:
        return self.versions.attempted

    @property
    def progress(self) -> float:
        """Share of the schedule done, 0..1."""
        return self._elapsed_fraction

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    @property
    def probes_running(self) -> int:
        return len(self._probes)

    def set_key_distribution(self, region: str, distribution: KeyDistribution | None) -> None:
        """Draw ``region``'s keys from ``distribution`` from the next request on (None: the spec's).

        Call it on the workload's event loop.
        """
        self.plan.set_key_distribution(region, distribution)

    async def run(self, stop: asyncio.Event | None = None) -> WorkloadStats:
        """Run until ``duration_s`` has passed or ``stop`` is set; then let what is in flight finish."""
        loop = asyncio.get_running_loop()
        self.started_at = time.time()
        self.versions = Versions(version_base(self.started_at))
        self._clients = {region: DynamoClient(url, region) for region, url in self.spec.regions.items()}
        if self.run_dir is not None:
            self._writer = await loop.run_in_executor(None, RunWriter, self.run_dir)
        lag_task = loop.create_task(self._sample_lag()) if self._writer is not None else None
        schedule_ended_at = self.started_at
        try:
            await self._schedule(stop or asyncio.Event())
            schedule_ended_at = time.time()
            await self._drain()
        finally:
            if lag_task is not None:
                lag_task.cancel()
                await asyncio.gather(lag_task, return_exceptions=True)
            for task in (*self._tasks, *self._probes):
                task.cancel()
            await asyncio.gather(*self._tasks, *self._probes, return_exceptions=True)
            await asyncio.gather(*(client.close() for client in self._clients.values()))
            ended_at = time.time()
            stalls = 0
            if self._writer is not None:
                await loop.run_in_executor(None, self._writer.close)
                stalls = self._writer.stalls
        return WorkloadStats.from_live(self.live, self.started_at, schedule_ended_at, ended_at, stalls)

    # --- the schedule ---------------------------------------------------------

    async def _schedule(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        interval_s = 1.0 / self.spec.rate_per_s
        total = max(1, round(self.spec.duration_s * self.spec.rate_per_s))
        start = flushed = loop.time()
        i = 0
        while i < total and not stop.is_set():
            elapsed_s = loop.time() - start
            if self._writer is not None and loop.time() - flushed >= limits.HISTORY_FLUSH_INTERVAL_S:
                self._writer.flush()
                flushed = loop.time()
            while i < total and i * interval_s <= elapsed_s:
                operation = self.plan.next()  # drawn even when not sent: the sequence stays the seed's
                self.live.scheduled += 1
                late_s = elapsed_s - i * interval_s
                if late_s > limits.SCHEDULE_SLACK_S or self._in_flight[operation.region] >= limits.IN_FLIGHT_PER_REGION_MAX:
                    self.live.behind += 1
                    self.live.regions[operation.region].behind += 1
                else:
                    self._start(operation)
                i += 1
            self._elapsed_fraction = i / total
            if i < total:
                wait_s = start + i * interval_s - loop.time()
                await asyncio.sleep(min(limits.SCHEDULER_SLEEP_MAX_S, max(limits.SCHEDULER_TICK_S, wait_s)))
        if self._writer is not None:
            self._writer.flush()

    def _start(self, operation: Operation) -> None:
        if operation.write:
            coroutine = self._write(operation)
            if coroutine is None:
                self.live.skipped += 1
                return
        else:
            coroutine = self._read(operation.region, self.plan.all_keys[operation.key_index])
        self._in_flight[operation.region] += 1
        self.live.sent += 1
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        pending = self._tasks | self._probes
        if pending:
            await asyncio.wait(pending, timeout=limits.DRAIN_TIMEOUT_S)
        if self._probes:  # probes started by the last acknowledgements
            await asyncio.wait(set(self._probes), timeout=limits.DRAIN_TIMEOUT_S)

    # --- requests -------------------------------------------------------------

    def _write(self, operation: Operation) -> Coroutine[Any, Any, None] | None:
        """The PutItem of ``operation`` (its key, or the next free one), None if no key is free."""
        region = operation.region
        keys = self.plan.writable[region]
        for step in range(min(limits.KEY_TRIES_MAX, len(keys))):
            key = keys[(operation.key_index + step) % len(keys)]
            if key not in self._retired:
                break
        else:
            return None
        version = self.versions.next(key, region)
        floor = self.versions.sent(key, region, version)
        length = pad_length(key, version, region, self.spec.item_bytes)
        item = make_item(key, version, region, self._pad[operation.pad_offset : operation.pad_offset + length])
        return self._put(region, key, version, floor, item)

    async def _put(self, region: str, key: str, version: int, floor: int, item: dict[str, Any]) -> None:
        t = time.time()
        try:
            reply = await self._clients[region].call("PutItem", {"TableName": self.spec.table, "Item": item})
        finally:
            self._in_flight[region] -= 1
            self.versions.answered(key, region, version)
        self.live.record(region, "put", reply.ok, reply.error, reply.latency_ms)
        self._history(t, region, "put", key, reply, version)
        single_writer = writer_of(key, self.spec.regions) is not None
        if reply.ok:
            self.versions.acknowledge(key, version, region, floor)
            self.live.acknowledged_writes += 1
            if single_writer:
                self._maybe_probe(region, key, version)
        elif reply.applied_unknown and single_writer:
            self._retired.add(key)
            self.live.retired_keys += 1

    async def _read(self, region: str, key: str) -> None:
        t = time.time()
        try:
            reply = await self._clients[region].call(
                "GetItem", {"TableName": self.spec.table, "Key": {"pk": {"S": key}}}
            )
        finally:
            self._in_flight[region] -= 1
        held = parse_item(reply.body.get("Item")) if reply.ok and reply.body is not None else None
        self.live.record(region, "get", reply.ok, reply.error, reply.latency_ms)
        self._history(t, region, "get", key, reply, held[0] if held else None)

    def _history(self, t: float, region: str, op: str, key: str, reply: Reply, version: int | None) -> None:
        reasons = _throttle_reasons(reply) if reply.error in THROTTLE_ERRORS else None
        if reasons is not None:
            self.live.throttle_reasons.update(reasons or ["(none given)"])
        if self._writer is not None:
            record = {
                "t": round(t, 6), "region": region, "op": op, "key": key, "ok": reply.ok, "error": reply.error,
                "latency_ms": round(reply.latency_ms, 3), "version": version,
            }  # fmt: skip
            if reasons is not None:
                record["throttle"] = reasons
            self._writer.history.append(record)

    # --- visibility probes ----------------------------------------------------

    def _maybe_probe(self, source: str, key: str, version: int) -> None:
        every = self.spec.visibility_probe_every
        if not every or len(self._clients) < 2:
            return
        self._acks_counted += 1
        if self._acks_counted % every:
            return
        acked_at, acked_clock = time.time(), time.perf_counter()  # uvloop's loop.time() is in whole ms
        for target in self._clients:
            if target == source:
                continue
            if len(self._probes) >= limits.VISIBILITY_PROBES_MAX:
                self.live.probes_skipped += 1
                continue
            self.live.probes_started += 1
            task = asyncio.get_running_loop().create_task(self._probe(source, target, key, version, acked_at, acked_clock))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)

    async def _probe(self, source: str, target: str, key: str, version: int, acked_at: float, acked_clock: float) -> None:
        deadline = acked_clock + limits.VISIBILITY_TIMEOUT_S
        request = {
            "TableName": self.spec.table,
            "Key": {"pk": {"S": key}},
            "ConsistentRead": True,
            "ProjectionExpression": "#v, #w",
            "ExpressionAttributeNames": {"#v": "v", "#w": "w"},
        }
        visible_ms = None
        while True:
            reply = await self._clients[target].call("GetItem", request)
            now = time.perf_counter()
            held = parse_item(reply.body.get("Item")) if reply.ok and reply.body is not None else None
            if held is not None and held[1] == source and held[0] >= version:
                visible_ms = (now - acked_clock) * 1000.0
                break
            if now >= deadline:
                break
            waited_s = now - acked_clock
            pause_s = min(limits.VISIBILITY_POLL_MAX_S, max(limits.VISIBILITY_POLL_MIN_S, waited_s * limits.VISIBILITY_POLL_FRACTION))
            await asyncio.sleep(min(pause_s, max(0.0, deadline - now)))
        if visible_ms is None:
            self.live.probes_timed_out += 1
        else:
            self.live.probes_seen += 1
            self.live.visibility.record(visible_ms)
        if self._writer is not None:
            self._writer.visibility.append({
                "t": round(acked_at, 6), "source": source, "target": target, "key": key, "version": version,
                "visible_ms": None if visible_ms is None else round(visible_ms, 3),
            })  # fmt: skip

    # --- replication lag ------------------------------------------------------

    async def _sample_lag(self) -> None:
        """Every second, the table's replication latency per region pair (nothing without replication)."""
        loop = asyncio.get_running_loop()
        endpoint = next(iter(self.spec.regions.values()))
        # Importing the control client (gRPC) takes a while: not on the loop.
        module = await loop.run_in_executor(None, importlib.import_module, "meridian.cluster.control_client")
        control = module.ControlClient(endpoint, timeout_s=limits.LAG_SAMPLE_TIMEOUT_S)
        try:
            await loop.run_in_executor(None, control.regions)
        except module.ControlUnavailable as exc:
            log.info("replication at %s unreachable for now: %s", endpoint, exc)
        except module.ControlError as exc:  # not a router with replication: nothing to sample
            log.info("no replication lag from %s: %s", endpoint, exc)
            return
        failures_logged = False
        while True:
            started = loop.time()
            try:
                rows = await loop.run_in_executor(None, _lag_rows, control, self.spec.table)
            except Exception as exc:  # noqa: BLE001 - no replicator, or one that is down: record nothing
                if not failures_logged:
                    log.info("no replication lag from %s: %s", endpoint, exc)
                    failures_logged = True
                rows = []
            if rows and self._writer is not None:
                for row in rows:
                    self._writer.lag.append(row)
                self.live.lag_samples += 1
            await asyncio.sleep(max(0.0, started + limits.LAG_SAMPLE_INTERVAL_S - loop.time()))

    def __repr__(self) -> str:
        return (
            f"<Workload {self.spec.table} regions={list(self.spec.regions)} sent={self.live.sent} "
            f"in_flight={self.in_flight} behind={self.live.behind}>"
        )


def _throttle_reasons(reply: Reply) -> list[str]:
    """The ``reason`` of each of a throttled answer's ``ThrottlingReasons`` (empty when it gives none)."""
    given = reply.body.get("ThrottlingReasons") if reply.body is not None else None
    if not isinstance(given, list):
        return []
    return [str(entry.get("reason")) for entry in given if isinstance(entry, dict) and entry.get("reason")]


def _lag_rows(control: Any, table: str) -> list[dict[str, Any]]:
    """One lag sample: a row per region pair replicating ``table`` (blocking: runs in a thread)."""
    t = time.time()
    latency = [entry for entry in control.lag() if entry.get("table") == table]
    pending = control.pending()
    rows = []
    seen = set()
    for entry in latency:
        pair = (entry["source"], entry["target"])
        seen.add(pair)
        rows.append({
            "t": round(t, 3), "source": pair[0], "target": pair[1], "table": table,
            "p50_ms": entry.get("p50_ms"), "p99_ms": entry.get("p99_ms"), "max_ms": entry.get("max_ms"),
            "count": entry.get("count"), "pending": pending.get(pair), "window": entry.get("window", "total"),
        })  # fmt: skip
    for pair, count in pending.items():
        if pair not in seen:  # nothing of the table applied yet on that pair, but a backlog is known
            rows.append({
                "t": round(t, 3), "source": pair[0], "target": pair[1], "table": table,
                "p50_ms": None, "p99_ms": None, "max_ms": None, "count": 0, "pending": count, "window": "total",
            })  # fmt: skip
    return rows
