"""query_scan's measurements, one run each: a full Scan, a Query load, a server going idle, and their records."""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import threading
import time
from dataclasses import dataclass, field

import orjson

import dynamo  # bench/ is on sys.path (query_scan.py puts it there)
from query_scan_client import Connection, page_count_and_last_key, run_async, verify_page
from query_scan_data import TABLE, Layout
from targets import RunningTarget, rss_kb

#: Items per Query page (the request's ``Limit``).
QUERY_PAGE_ITEMS = 100
QUERY_CONDITION = "pk = :p"
RSS_SAMPLE_INTERVAL_S = 0.02
#: One Query page in this many is decoded in full and checked against what
#: the client read from it cheaply (see ``page_count_and_last_key``); so is
#: the first page of every scan.
VERIFY_EVERY_PAGES = 64
#: A Query run that has not ended this long after its duration has a server hung.
QUERY_OVERRUN_S = 60.0
#: After a load (or an abandoned scan), wait until the server uses less than
#: this much CPU, so a measurement does not share the core with the server's
#: own background work (RocksDB flushes and compactions): what is measured is
#: the table as loaded, not the load's tail. Up to SETTLE_TIMEOUT_S.
SETTLE_CORES_MAX = 0.05
SETTLE_WINDOW_S = 1.0
SETTLE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LoadRun:
    target: str
    table_items: int
    items: int
    seconds: float
    server_cpu_s: float
    settle_s: float


@dataclass(frozen=True)
class ScanRun:
    round: int
    target: str
    table_items: int
    items: int
    pages: int
    finished: bool
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    rss_before_kb: int
    rss_max_kb: int
    rss_samples: int


@dataclass(frozen=True)
class QueryRun:
    round: int
    target: str
    pages: int
    items: int
    errors: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    server_cpu_s: float
    client_cpu_s: float


def _client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RssSampler:
    """Peak resident memory of fixed processes, sampled by a thread until ``stop()``."""

    def __init__(self, pids: list[int], interval_s: float = RSS_SAMPLE_INTERVAL_S):
        self.pids = pids
        self.interval_s = interval_s
        self.peak_kb = rss_kb(pids)
        self.samples = 1
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"<RssSampler pids={self.pids} peak={self.peak_kb} KiB samples={self.samples}>"

    def _sample(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self.peak_kb = max(self.peak_kb, rss_kb(self.pids))
            self.samples += 1

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, rss_kb(self.pids))
        self.samples += 1


async def _scan_all(port: int, segments: int, timeout_s: float) -> tuple[int, int, bool]:
    """Items and pages read, and whether the scan finished within ``timeout_s``."""
    counts = [[0, 0] for _ in range(segments)]  # items, pages per segment

    async def segment(number: int) -> None:
        connection = await Connection.open(port)
        body: dict = {"TableName": TABLE}
        if segments > 1:
            body |= {"Segment": number, "TotalSegments": segments}
        tally = counts[number]
        try:
            while True:
                raw = await connection.call("Scan", orjson.dumps(body))
                count, last_key = page_count_and_last_key(raw)
                if tally[1] == 0:
                    verify_page(raw, count, last_key)
                tally[0] += count
                tally[1] += 1
                if last_key is None:
                    return
                body["ExclusiveStartKey"] = last_key
        finally:
            connection.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(segment(n) for n in range(segments))), timeout_s)
        finished = True
    except TimeoutError:
        finished = False
    return sum(c[0] for c in counts), sum(c[1] for c in counts), finished


def full_scan(target: RunningTarget, segments: int, timeout_s: float) -> tuple[int, int, bool, float, float, float, RssSampler]:
    """Scan the whole table, paginated (1 MB pages), giving up after ``timeout_s``.

    Items and pages read, whether it finished, seconds, server and client CPU seconds, and memory.
    """
    sampler = RssSampler(target.pids())
    server_before, client_before, started = target.cpu_seconds(), _client_cpu_s(), time.perf_counter()
    try:
        items, pages, finished = run_async(_scan_all(target.port, segments, timeout_s))
    finally:
        seconds = time.perf_counter() - started
        client_cpu_s = _client_cpu_s() - client_before
        sampler.stop()
    return items, pages, finished, seconds, target.cpu_seconds() - server_before, client_cpu_s, sampler


def settle(target: RunningTarget) -> float:
    """Wait until ``target`` is idle (below SETTLE_CORES_MAX), at most SETTLE_TIMEOUT_S; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        before = target.cpu_seconds()
        time.sleep(SETTLE_WINDOW_S)
        if target.cpu_seconds() - before < SETTLE_CORES_MAX * SETTLE_WINDOW_S:
            break
    return time.monotonic() - started


@dataclass
class _QueryTally:
    pages: int = 0
    items: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)


async def _query_client(
    port: int, layout: Layout, partitions: int, pages_max: int, deadline: float, rng: random.Random
) -> _QueryTally:
    """One closed-loop client: random partition, up to ``pages_max`` pages of it, again, until ``deadline``."""
    tally = _QueryTally()
    latencies = tally.latencies_s
    connection = await Connection.open(port)
    try:
        while time.monotonic() < deadline:
            values = {":p": {"S": layout.pk(rng.randrange(partitions))}}
            body = {
                "TableName": TABLE, "KeyConditionExpression": QUERY_CONDITION,
                "ExpressionAttributeValues": values, "Limit": QUERY_PAGE_ITEMS,
            }  # fmt: skip
            for page_no in range(pages_max):
                sent = time.perf_counter()
                try:
                    raw = await connection.call("Query", orjson.dumps(body))
                except dynamo.DynamoError:
                    tally.errors += 1
                    break
                except OSError:  # ConnectionError included: count it, reconnect, go on
                    tally.errors += 1
                    connection.close()
                    connection = await Connection.open(port)
                    break
                latencies.append(time.perf_counter() - sent)
                count, last_key = page_count_and_last_key(raw)
                if tally.pages % VERIFY_EVERY_PAGES == 0:
                    verify_page(raw, count, last_key)
                tally.pages += 1
                tally.items += count
                if count != min(QUERY_PAGE_ITEMS, layout.partition_items - page_no * QUERY_PAGE_ITEMS):
                    tally.errors += 1  # a short or long page: counted, so it shows in the table
                if last_key is None:
                    break
                body["ExclusiveStartKey"] = last_key
    finally:
        connection.close()
    return tally


def query_load(
    target: RunningTarget, layout: Layout, partitions: int, args: argparse.Namespace, duration_s: float, seed: int
) -> tuple[list[_QueryTally], float, float, float]:
    """``--clients`` closed-loop clients for ``duration_s``; tallies, wall seconds, server and client CPU."""

    async def clients() -> list[_QueryTally]:
        deadline = time.monotonic() + duration_s
        return await asyncio.wait_for(asyncio.gather(*(
            _query_client(target.port, layout, partitions, args.query_pages, deadline, random.Random(seed * 1000 + i))
            for i in range(args.clients)
        )), duration_s + QUERY_OVERRUN_S)  # fmt: skip

    server_before, client_before, started = target.cpu_seconds(), _client_cpu_s(), time.perf_counter()
    tallies = run_async(clients())
    seconds = time.perf_counter() - started
    return tallies, seconds, target.cpu_seconds() - server_before, _client_cpu_s() - client_before


def percentile_ms(sorted_s: list[float], fraction: float) -> float:
    if not sorted_s:
        return 0.0
    return sorted_s[min(len(sorted_s) - 1, int(fraction * len(sorted_s)))] * 1000
