"""query_scan's rounds: start the targets, grow the table on each, and run the Scan and Query rounds."""

from __future__ import annotations

import argparse
import http.client
import time
from collections.abc import Callable
from pathlib import Path

import dynamo  # bench/ is on sys.path (query_scan.py puts it there)
from query_scan_data import TABLE, Layout, load, say
from query_scan_measure import LoadRun, QueryRun, ScanRun, full_scan, percentile_ms, query_load, settle
from targets import TARGETS, RunningTarget, TargetUnavailable, rss_kb, start_target

READY_TIMEOUT_S = 60.0


class Bench:
    """The running targets, and what was measured on them so far."""

    def __init__(self, args: argparse.Namespace, layout: Layout):
        self.args = args
        self.layout = layout
        self.running: dict[str, RunningTarget] = {}
        self.skipped: dict[str, str] = {}
        self.loads: list[LoadRun] = []
        self.scans: list[ScanRun] = []
        self.queries: list[QueryRun] = []

    def __repr__(self) -> str:
        done = f"loads={len(self.loads)} scans={len(self.scans)} queries={len(self.queries)}"
        return f"<Bench running={list(self.running)} {done}>"

    def names(self) -> list[str]:
        return [n for n in self.args.targets if n in self.running]

    def rotated(self, round_no: int) -> list[str]:
        names = self.names()
        shift = (round_no - 1) % max(len(names), 1)
        return names[shift:] + names[:shift]

    def guarded(self, name: str, what: str, work: Callable[[RunningTarget], None]) -> None:
        """Run ``work``; a target that fails (or dies) is stopped and dropped, the others go on."""
        target = self.running[name]
        try:
            work(target)
            if target.alive:
                return
            error: object = "exited"
        except (dynamo.DynamoError, OSError, http.client.HTTPException, RuntimeError, KeyError, ValueError) as failure:
            error = failure
        self.skipped[name] = f"failed during {what}: {error}; log {target.log_path}:\n{target.log_tail()}"
        say(f"dropping {name}: {self.skipped[name]}")
        target.stop()
        del self.running[name]

    def start(self, name: str, work_dir: Path, log_dir: Path, server_cpus: str | None) -> None:
        data_dir = work_dir / name
        data_dir.mkdir()
        target = start_target(TARGETS[name], data_dir, log_dir, server_cpus)
        client = dynamo.DynamoClient(target.port)
        try:
            dynamo.wait_ready(client, READY_TIMEOUT_S)
            dynamo.create_table(client, TABLE, READY_TIMEOUT_S, sort_key_type="N")
        except BaseException as error:
            target.stop()
            if isinstance(error, Exception):
                raise TargetUnavailable(f"{name}: {error}\nlog {target.log_path}:\n{target.log_tail()}") from error
            raise
        finally:
            client.close()
        self.running[name] = target
        say(f"{name} ready on port {target.port} (pid {target.pid})")

    def grow(self, table_items: int, loaded_items: int) -> None:
        """Load every target from ``loaded_items`` to ``table_items``, one target at a time."""
        partitions = range(loaded_items // self.layout.partition_items, table_items // self.layout.partition_items)
        for name in self.names():

            def work(target: RunningTarget) -> None:
                server_before, started = target.cpu_seconds(), time.perf_counter()
                load(target.port, self.layout, partitions, self.args.loaders)
                seconds, server_cpu_s = time.perf_counter() - started, target.cpu_seconds() - server_before
                run = LoadRun(name, table_items, table_items - loaded_items, seconds, server_cpu_s, settle(target))
                self.loads.append(run)
                say(f"loaded {name} to {table_items:,} items: {run.items:,} in {run.seconds:.1f} s "
                     f"({run.items / run.seconds:,.0f} items/s), then idle after {run.settle_s:.1f} s")  # fmt: skip

            self.guarded(name, f"load to {table_items:,} items", work)

    def scan_rounds(self, table_items: int) -> None:
        """``--rounds`` full scans per target; a target whose scan times out is not scanned again at this size."""
        timed_out: set[str] = set()
        for round_no in range(1, self.args.rounds + 1):
            for name in [n for n in self.rotated(round_no) if n not in timed_out]:

                def work(target: RunningTarget) -> None:
                    rss_before = rss_kb(target.pids())
                    scanned = full_scan(target, self.args.scan_segments, self.args.scan_timeout_s)
                    items, pages, finished, seconds, server_cpu_s, client_cpu_s, sampler = scanned
                    run = ScanRun(round_no, name, table_items, items, pages, finished, seconds, server_cpu_s,
                                  client_cpu_s, rss_before, sampler.peak_kb, sampler.samples)  # fmt: skip
                    self.scans.append(run)
                    say(f"scan {table_items:>9,} round {round_no} {name:<17} {items / seconds:>9,.0f} items/s  "
                         f"{pages} pages  RSS {rss_before / 1024:.0f} -> max {sampler.peak_kb / 1024:.0f} MB"
                         + ("" if items == table_items else f"  INCOMPLETE: {items:,} items")
                         + ("" if finished else f" (timed out after {seconds:.0f} s)"))  # fmt: skip
                    if not finished:
                        timed_out.add(name)
                        settle(target)  # the page it was serving when abandoned

                self.guarded(name, f"scan of {table_items:,} items", work)

    def query_once(self, name: str, duration_s: float, round_no: int | None) -> None:
        def work(target: RunningTarget) -> None:
            partitions = self.args.items // self.layout.partition_items
            tallies, seconds, server_cpu_s, client_cpu_s = query_load(
                target, self.layout, partitions, self.args, duration_s, self.args.seed * 1000 + (round_no or 0)
            )
            if round_no is None:
                return
            latencies = sorted(s for t in tallies for s in t.latencies_s)
            run = QueryRun(
                round_no, name, sum(t.pages for t in tallies), sum(t.items for t in tallies),
                sum(t.errors for t in tallies), seconds, percentile_ms(latencies, 0.50),
                percentile_ms(latencies, 0.99), server_cpu_s, client_cpu_s,
            )  # fmt: skip
            self.queries.append(run)
            say(f"query round {round_no} {name:<17} {run.pages / seconds:>7,.0f} pages/s  "
                 f"{run.items / seconds:>9,.0f} items/s  p50 {run.latency_p50_ms:.2f} ms  "
                 f"client {client_cpu_s / seconds:.2f} cores  errors {run.errors}")  # fmt: skip

        self.guarded(name, "Query", work)

    def query_rounds(self) -> None:
        if self.args.warmup_s > 0:
            for name in self.names():
                self.query_once(name, self.args.warmup_s, None)
        for round_no in range(1, self.args.rounds + 1):
            for name in self.rotated(round_no):
                self.query_once(name, self.args.query_s, round_no)
