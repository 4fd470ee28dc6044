"""Checks over a workload's writes and history: no acknowledged write lost, availability.

Each check answers a ``CheckResult`` (the shape of ``checks.json``).  The
judging is pure (``judge_key``, ``availability_figures``), so it is tested
over given data; the functions that read the regions or the history file
wrap it.

**No acknowledged write lost.**  Every region is read (BatchGetItem,
ConsistentRead) for every key the workload wrote.  A single-writer key
passes when every region holds an item of its writer whose version is at
least the last acknowledged one (nothing acknowledged was lost) and at most
the last attempted one (nothing was invented).  A conflict key (written by
every region) passes when every region holds the same item and that item is
one some region sent; when a write to it was acknowledged it must exist.
Replication takes time, so keys that fail are read again until they pass or
``settle_timeout_s`` runs out; only then do they count.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from meridian.cluster import limits
from meridian.model import limits as model_limits

from .client import DynamoClient
from .history import read_jsonl
from .spec import parse_item, writer_of


LOST_CHECK = "no-acknowledged-write-lost"
AVAILABILITY_CHECK = "availability"

Held = tuple[int, str] | None  # (version, writer region) a region holds, None when absent
T = TypeVar("T")


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- no acknowledged write lost: the judgement ----------------------------


def judge_key(
    key: str,
    held: Mapping[str, Held],
    acknowledged: tuple[int, str] | None,
    attempted: Mapping[str, int],
    regions: Iterable[str],
) -> tuple[str, str] | None:
    """Why ``key`` fails (``(kind, text)``, kind ``lost|invented|diverged``), or None when it passes.

    ``held``: what each region holds; ``acknowledged``: the last
    acknowledged ``(version, region)``; ``attempted``: per writer region,
    the highest version it sent (every lower one down to the run's first
    was sent too).
    """
    writer = writer_of(key, regions)
    if writer is None:
        return _judge_conflict_key(held, acknowledged, attempted)
    floor = acknowledged[0] if acknowledged is not None else None
    ceiling = attempted.get(writer, 0)
    for region, item in held.items():
        if item is None:
            if floor is not None:
                return "lost", f"{region} holds nothing, version {floor} was acknowledged"
            continue
        version, item_writer = item
        if item_writer != writer or version > ceiling:
            return "invented", f"{region} holds version {version} by {item_writer or '?'}, never sent (last sent {ceiling})"
        if floor is not None and version < floor:
            return "lost", f"{region} holds version {version}, version {floor} was acknowledged"
    return None


def _judge_conflict_key(
    held: Mapping[str, Held], acknowledged: tuple[int, str] | None, attempted: Mapping[str, int]
) -> tuple[str, str] | None:
    distinct = set(held.values())
    if len(distinct) > 1:
        shown = ", ".join(f"{r}={_show(item)}" for r, item in held.items())
        return "diverged", f"regions differ: {shown}"
    item = next(iter(distinct), None)
    if item is None:
        if acknowledged is not None:
            return "lost", f"absent everywhere, version {acknowledged[0]} by {acknowledged[1]} was acknowledged"
        return None
    version, writer = item
    if version > attempted.get(writer, 0):
        return "invented", f"every region holds version {version} by {writer or '?'}, never sent"
    return None


def _show(item: Held) -> str:
    return "absent" if item is None else f"{item[0]}/{item[1] or '?'}"


def lost_check_result(
    failures: Mapping[str, tuple[str, str]], keys_checked: int, regions: Iterable[str]
) -> CheckResult:
    """The check's result from the keys that still fail after settling."""
    kinds = {"lost": 0, "invented": 0, "diverged": 0, "unreadable": 0}
    for kind, _ in failures.values():
        kinds[kind] += 1
    figures = {"keys_checked": keys_checked, "regions": len(list(regions))}
    figures.update({f"keys_{kind}": n for kind, n in kinds.items()})
    if not failures:
        return CheckResult(LOST_CHECK, True, f"{keys_checked} keys checked in {figures['regions']} regions: none lost", figures)
    first = sorted(failures)[:limits.CHECK_DETAIL_KEYS_MAX]
    counted = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
    detail = f"{len(failures)} of {keys_checked} keys fail ({counted}); first: " + "; ".join(
        f"{key}: {failures[key][1]}" for key in first
    )
    return CheckResult(LOST_CHECK, False, detail, figures)


# --- no acknowledged write lost: reading the regions ------------------------


def check_no_acknowledged_write_lost(
    regions: Mapping[str, str],
    table: str,
    acknowledged: Mapping[str, tuple[int, str]],
    attempted: Mapping[str, Mapping[str, int]],
    *,
    settle_timeout_s: float = limits.CHECK_SETTLE_TIMEOUT_S,
) -> CheckResult:
    """Read every written key in every region and judge it (see the module docstring).

    ``regions``: region -> router URL; ``acknowledged`` / ``attempted`` as
    ``Workload`` (or ``history.writes_from_history``) gives them.  Blocking;
    safe to call from inside or outside an event loop (it runs its own, in
    a thread).
    """
    return _run_blocking(_check_lost(dict(regions), table, acknowledged, attempted, settle_timeout_s))


async def _check_lost(
    regions: dict[str, str],
    table: str,
    acknowledged: Mapping[str, tuple[int, str]],
    attempted: Mapping[str, Mapping[str, int]],
    settle_timeout_s: float,
) -> CheckResult:
    keys = sorted(set(acknowledged) | set(attempted))
    clients = {region: DynamoClient(url, region) for region, url in regions.items()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle_timeout_s
    try:
        pending = keys
        while True:
            held, read_errors = await _read_everywhere(clients, table, pending)
            failures: dict[str, tuple[str, str]] = {}
            for key in pending:
                per_region = held.get(key)
                if per_region is None:
                    why = ", ".join(f"{error} in {region}" for region, error in read_errors.items())
                    failures[key] = ("unreadable", f"could not be read in every region ({why or 'no answer'})")
                    continue
                verdict = judge_key(key, per_region, acknowledged.get(key), attempted.get(key, {}), regions)
                if verdict is not None:
                    failures[key] = verdict
            if not failures or loop.time() >= deadline:
                return lost_check_result(failures, len(keys), regions)
            pending = sorted(failures)
            await asyncio.sleep(limits.CHECK_READ_RETRY_INTERVAL_S)
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))


async def _read_everywhere(
    clients: dict[str, DynamoClient], table: str, keys: list[str]
) -> tuple[dict[str, dict[str, Held]], dict[str, str]]:
    """(key -> region -> held, region -> last read error); a key missing from the
    first could not be read in some region."""
    answers = await asyncio.gather(*(_read_region(client, table, keys) for client in clients.values()))
    out: dict[str, dict[str, Held]] = {}
    for key in keys:
        if all(key in found for found, _ in answers):
            out[key] = {region: found[key] for region, (found, _) in zip(clients, answers)}
    errors = {region: error for region, (_, error) in zip(clients, answers) if error is not None}
    return out, errors


async def _read_region(client: DynamoClient, table: str, keys: list[str]) -> tuple[dict[str, Held], str | None]:
    found: dict[str, Held] = {}
    last_error: str | None = None
    gate = asyncio.Semaphore(limits.CHECK_READS_IN_FLIGHT_MAX)

    async def read_batch(batch: list[str]) -> None:
        nonlocal last_error
        async with gate:
            wanted = batch
            for _ in range(limits.CHECK_READ_ATTEMPTS_MAX):
                request = {
                    "Keys": [{"pk": {"S": key}} for key in wanted],
                    "ConsistentRead": True,
                    "ProjectionExpression": "#k, #v, #w",
                    "ExpressionAttributeNames": {"#k": "pk", "#v": "v", "#w": "w"},
                }
                reply = await client.call("BatchGetItem", {"RequestItems": {table: request}})
                if not reply.ok:
                    last_error = reply.error
                    await asyncio.sleep(limits.CHECK_READ_RETRY_INTERVAL_S)
                    continue
                assert reply.body is not None
                for item in reply.body.get("Responses", {}).get(table, []):
                    found[item["pk"]["S"]] = parse_item(item)
                unprocessed = reply.body.get("UnprocessedKeys", {}).get(table)
                left = {k["pk"]["S"] for k in unprocessed["Keys"]} if unprocessed else set()
                for key in wanted:
                    if key not in left:
                        found.setdefault(key, None)
                wanted = [key for key in wanted if key in left]
                if not wanted:
                    return
                await asyncio.sleep(limits.CHECK_READ_RETRY_INTERVAL_S)

    await asyncio.gather(*(
        read_batch(keys[i : i + model_limits.BATCH_GET_KEYS_MAX]) for i in range(0, len(keys), model_limits.BATCH_GET_KEYS_MAX)
    ))  # fmt: skip
    return found, last_error


def _run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a fresh event loop in a worker thread and wait for it."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="meridian-check") as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- availability ---------------------------------------------------------


def merge_windows(windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, non-overlapping windows covering the same time."""
    merged: list[tuple[float, float]] = []
    for t0, t1 in sorted((min(a, b), max(a, b)) for a, b in windows):
        if merged and t0 <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], t1))
        else:
            merged.append((t0, t1))
    return merged


def _inside(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(t0 <= t < t1 for t0, t1 in windows)


def availability_figures(
    records: Iterable[Mapping[str, Any]], windows: Iterable[tuple[float, float]]
) -> dict[str, Any]:
    """Per region, inside the windows and outside: requests, errors, errors/s, seconds, error types.

    A request is inside when it started inside a window.  Seconds are the
    windows' time within the history's span (first to last request start).
    """
    merged = merge_windows(windows)
    per_region: dict[str, dict[str, dict[str, Any]]] = {}
    first = last = None
    for record in records:
        t = record["t"]
        first = t if first is None or t < first else first
        last = t if last is None or t > last else last
        side = "inside" if _inside(t, merged) else "outside"
        region = per_region.setdefault(record["region"], {
            s: {"requests": 0, "errors": 0, "error_types": {}} for s in ("inside", "outside")
        })  # fmt: skip
        counts = region[side]
        counts["requests"] += 1
        if not record["ok"]:
            counts["errors"] += 1
            name = record.get("error") or "?"
            counts["error_types"][name] = counts["error_types"].get(name, 0) + 1
    span_s = (last - first) if first is not None and last is not None else 0.0
    inside_s = sum(max(0.0, min(t1, last) - max(t0, first)) for t0, t1 in merged) if span_s else 0.0
    seconds = {"inside": inside_s, "outside": max(0.0, span_s - inside_s)}
    for region in per_region.values():
        for side, counts in region.items():
            counts["seconds"] = round(seconds[side], 3)
            counts["errors_per_s"] = round(counts["errors"] / seconds[side], 3) if seconds[side] > 0 else None
    return {"span_s": round(span_s, 3), "windows": merged, "regions": per_region}


def check_availability(
    history_path: Path | str,
    windows: list[tuple[float, float]],
    *,
    regions: Iterable[str] | None = None,
    max_error_ratio: float = limits.AVAILABILITY_ERROR_RATIO_MAX,
) -> CheckResult:
    """Errors per second per region inside the windows (faults) and outside them.

    Passes when every region in ``regions`` (default: every region in the
    history) served requests inside the windows with at most
    ``max_error_ratio`` of them failing: a partitioned region must keep
    serving its local reads and writes.
    """
    figures = availability_figures(read_jsonl(Path(history_path)), windows)
    required = list(regions) if regions is not None else sorted(figures["regions"])
    if not figures["windows"]:
        return CheckResult(AVAILABILITY_CHECK, True, "no fault windows given: nothing to judge", figures)
    problems, lines = [], []
    for region in required:
        counts = figures["regions"].get(region)
        inside = counts["inside"] if counts else {"requests": 0, "errors": 0, "errors_per_s": None}
        outside = counts["outside"] if counts else {"errors_per_s": None}
        lines.append(
            f"{region}: {inside['errors']}/{inside['requests']} failed during faults "
            f"({_rate(inside['errors_per_s'])} errors/s; outside {_rate(outside['errors_per_s'])})"
        )
        if inside["requests"] == 0:
            problems.append(f"{region} served no request during the faults")
        elif inside["errors"] / inside["requests"] > max_error_ratio:
            problems.append(f"{region} failed {inside['errors'] / inside['requests']:.1%} of its requests during the faults")
    detail = "; ".join(problems + lines) if problems else "; ".join(lines)
    return CheckResult(AVAILABILITY_CHECK, not problems, detail, figures)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
