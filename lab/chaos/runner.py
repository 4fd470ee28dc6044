"""One scenario run, end to end: ``meridian chaos run FILE --seed N``.

1. Load the scenario (scaled by ``--duration-scale``), print the seed.
2. Pick the target: ``--lab``, ``--cluster-dir D``, or a ``meridian up`` of
   the run's own (started now, stopped at the end).
3. Draw everything random from one ``random.Random(seed)``: the plan (fault
   times with their jitter, ``node-*`` choices) first, then the workload's
   seed (its key choice and request jitter).  Same seed, same run.
4. Create the table (a fresh one per run, with the scenario's ``table``
   billing) with a replica in every region of the scenario; write ``run.json``.
5. At one instant start the workload, the timeline and the lag sampler.
   Fault actions block (HTTP, gRPC, docker), so they run in threads; the
   ``hot-key`` fault reaches the workload through ``RunSurface``.
6. When the timeline is over, revert whatever is still active, run the
   checks (convergence first, while lag is still sampled, so the catch-up
   is recorded), write ``checks.json`` and the final ``run.json``, print a
   summary table.  Exit status 0 only when every check passed (and every
   fault of the timeline could be carried out).

The run directory (``--run-dir``, default ``meridian-runs/<name>-seed<N>-<time>``)
gets ``run.json``, ``history.jsonl`` and ``visibility.jsonl`` (the
workload), ``lag.jsonl``, ``faults.jsonl``, ``checks.json`` and, for a
cluster of the run's own, its processes' logs in ``logs/``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient
from meridian.lab.chaos import checks as checks_module
from meridian.lab.chaos.faults import FaultLog, Injector
from meridian.lab.chaos.sampler import LagSampler
from meridian.lab.chaos.scenario import Action, Scenario, faulted_regions, plan
from meridian.lab.chaos.schema import ScenarioError
from meridian.lab.chaos.targets import LabTarget, OwnUpTarget, Target, UpTarget
from meridian.lab.chaos.timeline import run_timeline
from meridian.lab.load import CheckResult, KeyDistribution, Workload, WorkloadSpec, WorkloadStats, ensure_table
from meridian.lab.load.history import write_json, write_run_json
from meridian.lab.load.spec import ZIPF
from meridian.replication.clock import SystemClock

log = logging.getLogger(__name__)

FAULTS_FILE = "faults.jsonl"
LAG_FILE = "lag.jsonl"
HISTORY_FILE = "history.jsonl"
CHECKS_FILE = "checks.json"


def default_run_dir(scenario: Scenario, seed: int) -> Path:
    return Path("meridian-runs") / f"{scenario.name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def open_target(scenario: Scenario, *, lab: bool, cluster_dir: str | None, work_dir: Path, swarm: bool = False) -> Target:
    """The target of a run (a cluster of its own is started here, on the calling thread)."""
    if swarm:
        from meridian.lab.chaos.swarm_target import SwarmTarget

        return SwarmTarget()
    if lab:
        return LabTarget()
    if cluster_dir is not None:
        return UpTarget(cluster_dir)
    return OwnUpTarget(scenario.regions, scenario.nodes_per_region, work_dir)


def run(
    scenario: Scenario, seed: int, run_dir: Path, *, lab: bool = False, cluster_dir: str | None = None,
    echo: Callable[[str], None] = print, swarm: bool = False,
) -> int:  # fmt: skip
    """Run ``scenario`` with ``seed``; 0 when every check passed, 1 otherwise."""
    echo(f"chaos: scenario {scenario.name}, seed {seed}  (rerun: meridian chaos run {scenario.source or scenario.name} --seed {seed})")
    run_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="meridian-chaos-"))
    target: Target | None = None
    try:
        if not lab and not swarm and cluster_dir is None:
            echo(f"chaos: starting meridian up ({len(scenario.regions)} regions x {scenario.nodes_per_region} nodes) in {work_dir}")
        target = open_target(scenario, lab=lab, cluster_dir=cluster_dir, work_dir=work_dir, swarm=swarm)
        missing = [r for r in scenario.regions if r not in target.regions]
        if missing:
            raise ScenarioError(f"the target has no region {', '.join(missing)} (it has {', '.join(target.regions)})")
        results = asyncio.run(_run(scenario, seed, run_dir, target, echo))
    finally:
        if target is not None:
            target.close()
        if isinstance(target, OwnUpTarget):
            shutil.copytree(work_dir / "cluster" / "logs", run_dir / "logs", dirs_exist_ok=True)
            shutil.copy2(target.log_path, run_dir / "logs" / "up.log")
        shutil.rmtree(work_dir, ignore_errors=True)
    echo(summary_table(results))
    passed = all(r.passed for r in results)
    echo(f"chaos: {'PASSED' if passed else 'FAILED'} ({sum(r.passed for r in results)}/{len(results)} checks); run directory {run_dir}")
    return 0 if passed else 1


async def _run(scenario: Scenario, seed: int, run_dir: Path, target: Target, echo: Callable[[str], None]) -> list[CheckResult]:
    rng = random.Random(seed)
    names = await asyncio.to_thread(target.process_names)
    actions = plan(scenario, rng, names)
    workload_seed = rng.randrange(2**31)
    regions = {r: target.regions[r] for r in scenario.regions}
    table = f"chaos-{scenario.name}-s{seed}-{int(time.time() * 1000):x}"
    echo(f"chaos: table {table}; {len(actions)} timeline actions; workload seed {workload_seed}")
    for action in actions:
        echo(f"  +{action.t_s:6.2f} s  {action.phase:<6}  {action.fault:<17} {action.target}")
    billing = await asyncio.wait_for(ensure_table(regions, table, billing=scenario.table), limits.TABLE_ACTIVE_TIMEOUT_S)
    echo(f"chaos: table {table} is {billing}")

    spec = WorkloadSpec(regions=regions, table=table, seed=workload_seed, **scenario.workload)
    run_args = {"scenario_file": scenario.source, "duration_s": scenario.duration_s, "workload": scenario.workload,
                "table": {"billing_mode": billing.mode, "read_capacity": billing.read_capacity,
                          "write_capacity": billing.write_capacity},
                "target": target.describe(), "actions": [_action_json(a) for a in actions]}  # fmt: skip
    started_at = time.time()
    _write_run(run_dir, scenario, seed, started_at, None, regions, target, table, run_args)

    workload = _ScenarioWorkload(spec, run_dir)
    injector = Injector(RunSurface(target, workload, asyncio.get_running_loop()), FaultLog(run_dir / FAULTS_FILE, echo))
    sampler = LagSampler(target.control_for, list(regions), table, run_dir / LAG_FILE)
    sampling_stop = asyncio.Event()
    sampling = asyncio.create_task(_sample_until(sampler, sampling_stop))
    workload_task = asyncio.create_task(workload.run())

    async def act(action: Action) -> None:
        if action.phase == "inject":
            await asyncio.to_thread(injector.inject, action.fault, action.target, action.args)
        else:
            await asyncio.to_thread(injector.revert, action.fault, action.target, action.args)

    try:
        done = await run_timeline(actions, act, SystemClock(), scenario.duration_s)
        stats = await workload_task
    finally:
        if not workload_task.done():
            workload_task.cancel()
        leftover_errors = await asyncio.to_thread(injector.revert_all)
    ended_at = time.time()
    echo(f"chaos: timeline over; workload: {_stats_line(stats)}")

    evidence = checks_module.Evidence(
        regions=regions, table=table, history_path=run_dir / HISTORY_FILE, started_at=started_at, ended_at=ended_at,
        acknowledged=workload.acknowledged, attempted=workload.attempted, fault_events=injector.events,
        lag_samples=sampler.samples, faulted_regions=faulted_regions(actions), control=target.control,
    )  # fmt: skip
    results: dict[str, CheckResult] = {}
    try:
        for name in checks_module.ORDER:
            if name not in scenario.checks:
                continue
            if name != "convergence" and not sampling_stop.is_set():
                sampling_stop.set()  # convergence (the catch-up) is recorded; the rest reads what is there
                await sampling
            echo(f"chaos: checking {name} ...")
            results[name] = await asyncio.to_thread(checks_module.run_check, name, scenario.checks[name], evidence)
    finally:
        sampling_stop.set()
        await sampling
    ordered = [results[name] for name in scenario.checks]
    failures = [f"{d.action.phase} {d.action.fault} {d.action.target}: {d.error}" for d in done if d.error]
    failures += [f"the final revert: {error}" for error in leftover_errors]
    if failures:  # a fault that did not happen (or stayed) makes every check meaningless
        ordered.append(CheckResult(
            "timeline", False, f"{len(failures)} fault action(s) failed: " + "; ".join(failures),
            {"failed_actions": len(failures)},
        ))  # fmt: skip
    write_json(run_dir / CHECKS_FILE, [r.as_dict() for r in ordered])
    run_args["workload_stats"] = stats.as_dict()
    run_args["late_actions_max_s"] = round(max((d.late_s for d in done), default=0.0), 3)
    _write_run(run_dir, scenario, seed, started_at, ended_at, regions, target, table, run_args)
    return ordered


async def _sample_until(sampler: LagSampler, stop: asyncio.Event) -> None:
    failures = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            await asyncio.to_thread(sampler.sample)
        except Exception as error:  # noqa: BLE001 - a lost sample must not end the run; say so once
            failures += 1
            if failures == 1:
                log.warning("a lag sample failed (later failures are not shown): %r", error)
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, limits.LAG_SAMPLE_INTERVAL_S - (time.monotonic() - began)))
        except TimeoutError:
            pass


def _write_run(run_dir: Path, scenario: Scenario, seed: int, started_at: float, ended_at: float | None,
               regions: dict[str, str], target: Target, table: str, args: dict) -> None:  # fmt: skip
    write_run_json(
        run_dir, kind="scenario", scenario=scenario.name, seed=seed, started_at=started_at, ended_at=ended_at,
        regions=regions, target=target.kind, table=table, args=args,
    )  # fmt: skip


def _action_json(action: Action) -> dict:
    return {"t_s": round(action.t_s, 3), "phase": action.phase, "fault": action.fault, "target": action.target,
            "args": action.args}  # fmt: skip


def _stats_line(stats: WorkloadStats) -> str:
    errors = sum(stats.errors.values())
    kinds = ", ".join(f"{name} {n}" for name, n in sorted(stats.errors.items(), key=lambda kv: -kv[1])[:3])
    return (
        f"{stats.sent} requests sent ({stats.achieved_rate_per_s:.1f}/s), {stats.ok} ok, {errors} failed"
        + (f" ({kinds})" if kinds else "") + f", {stats.acknowledged_writes} writes acknowledged"
    )


class RunSurface:
    """What a scenario's faults act on: its target, and its workload (the ``hot-key`` fault).

    Faults run in worker threads; the workload's key distribution is changed
    on its own event loop, and ``skew_keys`` returns once it has been.
    """

    def __init__(self, target: Target, workload: Workload, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._workload = workload
        self._loop = loop

    def control(self) -> ControlClient:
        return self._target.control()

    def process(self, name: str, action: str) -> dict:
        return self._target.process(name, action)

    def disconnect_region(self, region: str) -> object | None:
        return self._target.disconnect_region(region)

    def reconnect_region(self, region: str, saved: object | None) -> None:
        self._target.reconnect_region(region, saved)

    def skew_keys(self, region: str, zipf_s: float | None) -> None:
        distribution = None if zipf_s is None else KeyDistribution(ZIPF, zipf_s)

        async def apply() -> None:
            self._workload.set_key_distribution(region, distribution)

        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(limits.CONTROL_CALL_TIMEOUT_S)


class _ScenarioWorkload(Workload):
    """The workload without its own lag sampling: during a scenario ``LagSampler`` writes
    ``lag.jsonl`` (windowed percentiles and every pair's backlog), and two writers would
    interleave two series in one file."""

    async def _sample_lag(self) -> None:
        return None


def summary_table(results: list[CheckResult]) -> str:
    """The checks as a table: name, PASS/FAIL, detail (wrapped to one line each)."""
    width = max((len(r.name) for r in results), default=5)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  {'-' * 40}"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {'PASS' if r.passed else 'FAIL':<6}  {r.detail}")
    return "\n".join(lines)
