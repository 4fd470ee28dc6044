"""The run directory's files: writing them without blocking the loop, reading them back.

A run writes (``docs/lab.md`` describes each field):

* ``run.json``          what ran, where, when (``write_run_json``);
* ``history.jsonl``     one line per client request;
* ``visibility.jsonl``  one line per cross-region visibility probe;
* ``lag.jsonl``         replication latency per region pair, every second.

The event loop only serialises a record (orjson, about a microsecond) and
appends it to a buffer; full buffers go to one writer thread through a
bounded queue, so file writes never run on the loop.  Should the disk fall
so far behind that the queue is full, the loop waits for room (counted in
``stalls``): history is never dropped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from meridian.cluster import limits

HISTORY_FILE = "history.jsonl"
VISIBILITY_FILE = "visibility.jsonl"
LAG_FILE = "lag.jsonl"
RUN_FILE = "run.json"
CHECKS_FILE = "checks.json"

# Read through this module's names when used, so a test can shrink them here.
BUFFER_BYTES_MAX = limits.HISTORY_BUFFER_BYTES_MAX
WRITE_QUEUE_BUFFERS_MAX = limits.HISTORY_WRITE_QUEUE_BUFFERS_MAX


class JsonlFile:
    """One JSON-lines file of the run, appended through a ``RunWriter``."""

    def __init__(self, writer: RunWriter, handle: BinaryIO) -> None:
        self._writer = writer
        self._handle = handle
        self._buffer = bytearray()
        self.lines = 0

    def append(self, record: dict[str, Any]) -> None:
        self._buffer += orjson.dumps(record)
        self._buffer += b"\n"
        self.lines += 1
        if len(self._buffer) >= BUFFER_BYTES_MAX:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            self._writer.submit(self._handle, data)


class RunWriter:
    """The JSON-lines files of one run directory and the thread that writes them."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.stalls = 0
        self._queue: queue.Queue[tuple[BinaryIO, bytes] | None] = queue.Queue(WRITE_QUEUE_BUFFERS_MAX)
        self._handles = [open(run_dir / name, "ab") for name in (HISTORY_FILE, VISIBILITY_FILE, LAG_FILE)]
        self.history, self.visibility, self.lag = (JsonlFile(self, h) for h in self._handles)
        self._thread = threading.Thread(target=self._drain, name="meridian-load-history", daemon=True)
        self._thread.start()

    def submit(self, handle: BinaryIO, data: bytes) -> None:
        try:
            self._queue.put_nowait((handle, data))
        except queue.Full:
            self.stalls += 1
            self._queue.put((handle, data))  # blocks the loop: the disk is the bottleneck, keep every line

    def flush(self) -> None:
        """Hand every buffered line to the writer thread (without waiting for the disk)."""
        for file in (self.history, self.visibility, self.lag):
            file.flush()

    def _drain(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            handle, data = job
            handle.write(data)
            if self._queue.empty():
                handle.flush()

    def close(self) -> None:
        """Write everything still buffered, stop the thread, close the files (blocking: call off the loop)."""
        self.flush()
        self._queue.put(None)
        self._thread.join()
        for handle in self._handles:
            handle.close()

    def __repr__(self) -> str:
        return f"<RunWriter {self.run_dir} history={self.history.lines} queued={self._queue.qsize()} stalls={self.stalls}>"


def write_json(path: Path, document: Any) -> None:
    """Write a JSON document atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    partial.replace(path)


def write_run_json(
    run_dir: Path,
    *,
    kind: str,
    scenario: str | None,
    seed: int | None,
    started_at: float,
    ended_at: float | None,
    regions: dict[str, str],
    target: str,
    table: str,
    args: dict[str, Any],
) -> None:
    """``run.json`` as the run directory format (I4) has it."""
    write_json(run_dir / RUN_FILE, {
        "kind": kind,
        "scenario": scenario,
        "seed": seed,
        "started_at": started_at,
        "ended_at": ended_at,
        "regions": regions,
        "target": target,
        "table": table,
        "args": args,
    })  # fmt: skip


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a JSON-lines file, one at a time (a torn last line is skipped)."""
    with open(path, "rb") as handle:
        for line in handle:
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue


#: Reading a history, a write counts as still in flight when another was
#: sent if it was answered less than this before (times are rounded to the
#: microsecond and taken a few microseconds off the wire): in doubt, the
#: floor is the lower one, never a false alarm.
IN_FLIGHT_MARGIN_S = 0.001


def writes_from_history(path: Path) -> tuple[dict[str, tuple[int, str]], dict[str, dict[str, int]]]:
    """``(acknowledged, attempted)`` as ``Workload`` keeps them (``spec.Versions``), rebuilt from ``history.jsonl``.

    Every sent put is in the history with its version, acknowledged or not,
    so a run's writes can be checked after the workload process is gone.
    Two passes (memory per key, not per line): the first finds each key and
    region's highest acknowledged write and when it was sent; the second
    lowers its floor to every write of the key from that region still
    unanswered then (sent before it, answered after it was sent).  Of
    several regions' floors (a conflict key), ``acknowledged`` keeps the one
    answered last (start time plus latency).
    """
    attempted: dict[str, dict[str, int]] = {}
    highest: dict[tuple[str, str], tuple[int, float, float]] = {}  # (key, region) -> (version, sent, answered)
    for record in read_jsonl(path):
        if record.get("op") != "put" or record.get("version") is None:
            continue
        key, region, version = record["key"], record["region"], int(record["version"])
        per_region = attempted.setdefault(key, {})
        if version > per_region.get(region, 0):
            per_region[region] = version
        if record["ok"] and version > highest.get((key, region), (0, 0.0, 0.0))[0]:
            highest[(key, region)] = (version, record["t"], record["t"] + record["latency_ms"] / 1000.0)
    floors = {pair: version for pair, (version, _, _) in highest.items()}
    for record in read_jsonl(path):
        if record.get("op") != "put" or record.get("version") is None:
            continue
        pair = (record["key"], record["region"])
        found = highest.get(pair)
        if found is None:
            continue
        sent_at = found[1]
        answered_at = record["t"] + record["latency_ms"] / 1000.0
        if record["t"] <= sent_at < answered_at + IN_FLIGHT_MARGIN_S:
            floors[pair] = min(floors[pair], int(record["version"]))
    acknowledged: dict[str, tuple[int, str]] = {}
    last_answer: dict[str, float] = {}
    for (key, region), (_, _, answered_at) in highest.items():
        if answered_at >= last_answer.get(key, float("-inf")):
            last_answer[key] = answered_at
            acknowledged[key] = (floors[(key, region)], region)
    return acknowledged, attempted
