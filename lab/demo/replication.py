"""``meridian demo replication``: a live dashboard of replication between regions, with link keys.

What runs, in one process:

* a ``meridian.lab.load`` workload writing (and reading) in every region whose
  router is known, recording the run in a run dir (``history.jsonl``,
  ``visibility.jsonl``, ``lag.jsonl``; ``run.json`` written here);
* once a second, a ``ReplicationSampler`` look at every directed link
  (state, pending changes, the window's replication latency), in a thread;
* a ``KeyReader`` thread turning key presses into link actions
  (``LinkActions``, each recorded in ``faults.jsonl``);
* rich's ``Live`` redrawing the dashboard (``view.render``) from a thread.

Without ``--endpoint`` or ``--regions`` it first starts its own two-region
``meridian up`` (``OwnCluster``), from the main thread (children are tied
to the thread that starts them), and stops it on the way out. Links the
demo changed are put back before it exits, so an external cluster is left
as it was found.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient, ControlError

DEFAULT_TABLE = "meridian-demo"
DEFAULT_RUNS_DIR = "meridian-runs"
#: The workload: share of writes, keys over all regions, every Nth acknowledged write probed for visibility.
WRITE_RATIO = 0.7
KEYS = 1000
VISIBILITY_PROBE_EVERY = 10
#: Signals that end the demo cleanly (links put back, run.json completed, terminal restored).
_QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class DemoOptions:
    routers: dict[str, str]  # region -> router URL, every one known (at least one)
    rate_per_s: float
    duration_s: float | None
    keys: bool
    table: str
    run_dir: Path
    target: str
    seed: int


async def run_demo(opts: DemoOptions) -> int:
    """The dashboard until ``q``, Ctrl-C or the end of ``duration_s``; 0 on a clean end."""
    from meridian.lab.load.history import write_run_json
    from meridian.lab.load.spec import WorkloadSpec
    from meridian.lab.load.table import TableSetupError
    from meridian.lab.load.workload import Workload

    from .keys import KeyReader
    from .links import LinkActions
    from .sampler import ReplicationSampler
    from .stats import RateMeter, RegionStats
    from .table import ensure_demo_table
    from .view import DashboardState, render

    console = Console()
    loop = asyncio.get_running_loop()
    first_url = next(iter(opts.routers.values()))
    control = ControlClient(first_url, timeout_s=limits.DEMO_CONTROL_TIMEOUT_S)
    try:
        regions = await asyncio.to_thread(control.regions)
    except ControlError as exc:
        console.print(f"[red]meridian demo: {first_url} does not control replication: {exc}[/red]")
        return 2
    if len(regions) < 2:
        console.print(f"[red]meridian demo: replication needs two regions; {first_url} knows only {regions}[/red]")
        return 2
    unknown = sorted(set(opts.routers) - set(regions))
    if unknown:
        console.print(f"[red]meridian demo: {', '.join(unknown)} not among the replicating regions {regions}[/red]")
        return 2
    console.print(f"table {opts.table}: making sure it is replicated to {', '.join(regions)}...")
    try:
        await ensure_demo_table(opts.routers, regions, opts.table)
    except TableSetupError as exc:
        console.print(f"[red]meridian demo: {exc}[/red]")
        return 2

    opts.run_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(kind="load", scenario=None, seed=opts.seed, regions=opts.routers, target=opts.target,
                table=opts.table, args={"command": "demo replication", "rate": opts.rate_per_s,
                                        "duration_s": opts.duration_s, "keys": KEYS, "write_ratio": WRITE_RATIO,
                                        "visibility_probe_every": VISIBILITY_PROBE_EVERY})  # fmt: skip
    spec = WorkloadSpec(
        regions=opts.routers, table=opts.table, rate_per_s=opts.rate_per_s,
        duration_s=opts.duration_s or limits.DEMO_OPEN_ENDED_DURATION_S, keys=KEYS, write_ratio=WRITE_RATIO,
        seed=opts.seed, visibility_probe_every=VISIBILITY_PROBE_EVERY,
    )  # fmt: skip
    workload = Workload(spec, opts.run_dir)
    stats = RegionStats(list(opts.routers))
    workload.live = stats  # the dashboard's per-region counters (a LiveStats)
    meter = RateMeter(stats, list(opts.routers))
    sampler = ReplicationSampler(control, opts.routers, opts.table, limits.DEMO_WINDOW_S, opts.run_dir / "lag.jsonl")
    actions = LinkActions(control, opts.run_dir / "faults.jsonl")
    actions.remember_initial(await asyncio.to_thread(control.links))
    state = DashboardState(table=opts.table, regions=regions, window_s=limits.DEMO_WINDOW_S, duration_s=opts.duration_s,
                           run_dir=str(opts.run_dir), keys=opts.keys)  # fmt: skip

    live = Live(render(state), console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    dashboard = _Dashboard(state, sampler, meter, actions, None, live)
    for sig in _QUIT_SIGNALS:
        loop.add_signal_handler(sig, dashboard.quit.set)
    stop_workload = asyncio.Event()
    started_at = time.time()
    await asyncio.to_thread(write_run_json, opts.run_dir, started_at=started_at, ended_at=None, **meta)
    workload_task = loop.create_task(workload.run(stop_workload))
    try:
        if opts.keys:
            if _stdin_is_a_terminal():
                dashboard.reader = KeyReader(loop)
            else:
                state.keys = False
                state.note("stdin is not a terminal: keys are off")
        if live is not None:
            live.start()
        await dashboard.run(workload_task)
    finally:
        for sig in _QUIT_SIGNALS:
            loop.remove_signal_handler(sig)
        stop_workload.set()
        if dashboard.reader is not None:
            dashboard.reader.close()  # the terminal is itself again before anything else is printed
        restored = await _restore_links(actions, state)
        if live is not None:
            await dashboard.redraw()
            live.stop()
        try:
            workload_stats = await workload_task
            await asyncio.to_thread(write_run_json, opts.run_dir, started_at=workload_stats.started_at,
                                    ended_at=workload_stats.ended_at, **meta)  # fmt: skip
        finally:
            control.close()
    for message in restored:
        console.print(message)
    console.print(
        f"sent {workload_stats.sent:,} requests ({workload_stats.ok:,} ok) in "
        f"{workload_stats.ended_at - workload_stats.started_at:.0f} s; run dir {opts.run_dir}\n"
        f"plot it: meridian report {opts.run_dir}"
    )
    return 0


class _Dashboard:
    """Samples, redraws and takes keys until quit, Ctrl-C or the workload's end."""

    def __init__(self, state, sampler, meter, actions, reader, live) -> None:
        self.state = state
        self.sampler = sampler
        self.meter = meter
        self.actions = actions
        self.reader = reader
        self.live = live
        self.quit = asyncio.Event()
        self._started = time.monotonic()
        self._last_plain = float("-inf")

    async def run(self, workload_task: asyncio.Task) -> None:
        loop = asyncio.get_running_loop()
        next_sample = loop.time()
        quit_wait = loop.create_task(self.quit.wait())
        try:
            while not self.quit.is_set() and not workload_task.done():
                if loop.time() >= next_sample:
                    await self._sample()
                    next_sample = max(next_sample + limits.DEMO_SAMPLE_INTERVAL_S, loop.time())
                timeout_s = max(0.0, next_sample - loop.time())
                if self.reader is None:
                    await asyncio.wait([workload_task, quit_wait], timeout=timeout_s,
                                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                    continue
                try:
                    key = await asyncio.wait_for(self.reader.queue.get(), timeout_s)
                except TimeoutError:
                    continue
                if await self._on_key(key):
                    next_sample = loop.time()  # show the change at once
                else:
                    await self.redraw()
        finally:
            quit_wait.cancel()

    async def _sample(self) -> None:
        state = self.state
        try:
            view = await asyncio.to_thread(self.sampler.sample)
            state.pairs = view.pairs
            state.select(state.selected)
            for error in view.errors:
                state.control_errors += 1
                state.note(f"! {error}")
        except ControlError as exc:
            state.control_errors += 1
            state.note(f"! replication not reachable: {exc}")
        now = time.monotonic()
        state.rates = self.meter.tick(now)
        state.elapsed_s = now - self._started
        if self.live is not None:
            await self.redraw()
        elif now - self._last_plain >= limits.DEMO_PLAIN_STATUS_INTERVAL_S:
            self._last_plain = now
            print(_plain_status(state), flush=True)

    async def redraw(self) -> None:
        if self.live is not None:
            from .view import render

            # Rendering and writing to the terminal happen off the loop.
            await asyncio.to_thread(self.live.update, render(self.state), refresh=True)

    async def _on_key(self, key: str) -> bool:
        """Act on one key; True when a link changed (the caller then samples again at once)."""
        from .keys import DOWN, UP

        state = self.state
        if key in ("q", "Q"):
            self.quit.set()
            return False
        if key.isdigit() and key != "0":
            state.select(int(key) - 1)
            return False
        if key in (UP, DOWN):
            state.select(state.selected + (1 if key == DOWN else -1))
            return False
        pair = state.selected_pair
        if pair is None or key not in ("c", "h", "s", "r"):
            return False
        link = (pair.source, pair.target)
        try:
            if key == "c":
                message = await asyncio.to_thread(self.actions.cut_link, link)
            elif key == "h":
                message = await asyncio.to_thread(self.actions.heal_link, link)
            elif key == "s":
                message = await asyncio.to_thread(self.actions.slow_link, link, pair.latency_ms)
            else:
                message = await asyncio.to_thread(self.actions.reset_link, link)
        except ControlError as exc:
            state.note(f"! {key}: {exc}")
            return False
        state.note(f"{time.strftime('%H:%M:%S')} {message}")
        return True


async def _restore_links(actions, state) -> list[str]:
    """Put back every link the demo changed; what was done, for the terminal."""
    done = []
    for link in sorted(set(actions.cut) | set(actions.slowed)):
        try:
            done.append(await asyncio.to_thread(actions.reset_link, link))
        except ControlError as exc:
            done.append(f"could not reset {link[0]}->{link[1]}: {exc}")
    for message in done:
        state.note(message)
    return done


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, ValueError, OSError):  # no stdin, or a replaced one
        return False


def _plain_status(state) -> str:
    parts = []
    for pair in state.pairs:
        window = pair.window
        p50 = f"{window.p50_ms:.1f}" if window and window.p50_ms is not None else "-"
        p99 = f"{window.p99_ms:.1f}" if window and window.p99_ms is not None else "-"
        parts.append(f"{pair.source}->{pair.target} p50 {p50} p99 {p99} ms pending {pair.pending}")
    return " | ".join(parts) or "waiting for the replicators..."


def new_seed() -> int:
    return random.SystemRandom().randrange(2**31)
