"""What must hold after a chaos run: the checks of ``schema.CHECKS``, each a ``CheckResult``.

* ``no-acknowledged-write-lost`` and ``availability`` are the workload's own
  checks (``meridian.lab.load``), given the run's writes, its history and the
  fault windows.
* ``convergence``: ``ControlClient.verify`` until every region's digest of
  the table is identical, or the timeout; figures say how long it took.
* ``lag-bound``: from ``lag.jsonl`` samples (``sampler.py``).  The heal is
  the end of the last revert.  The backlog must drain (the summed pending
  count back to its pre-fault level; within ``catch_up_max_s`` if given);
  from then on, and at least ``settle_s`` after the heal, every windowed
  p99 must be at most ``max_ms``.  Figures: the worst lag while faults were
  active, the backlog at the heal, the catch-up time (until the total
  pending count is back to what it was before the first fault) and the
  catch-up rate (changes applied per second meanwhile).
* ``lww-winner``: reads every key written by every region (the workload's
  conflict keys) in every region and requires the named region's write to
  hold everywhere, for each key it wrote after its clock was skewed.  The
  figures count the keys where another region's write came later in real
  time and still lost: last-writer-wins by hybrid-clock stamp, not by wall
  time.
* ``throttles``: from ``history.jsonl``: every throttled request (a
  ``THROTTLE_ERRORS`` answer) must come from a ``hot-key`` fault's region
  and start inside its window, or within ``settle_s`` after its revert;
  each window needs at least ``min_throttled``.  A hot key is throttled,
  the same rate over every key (before, after, and in the other regions
  meanwhile) is not.  Without a ``hot-key`` fault: no throttle at all.

``FaultWindows`` turns ``faults.jsonl`` events into (start, end) windows.
All of this blocks; the runner calls it from a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meridian.cluster import limits
from meridian.cluster.control_client import ControlClient, ControlError
from meridian.lab.chaos.schema import CHECKS
from meridian.lab.load import CheckResult, check_availability, check_no_acknowledged_write_lost
from meridian.lab.load.client import DynamoClient
from meridian.lab.load.history import read_jsonl
from meridian.lab.load.spec import parse_item, writer_of
from meridian.lab.load.stats import THROTTLE_ERRORS
from meridian.model import limits as model_limits

#: Order the checks run in: convergence first (the others read what replication delivered).
ORDER = ("convergence", "no-acknowledged-write-lost", "lww-winner", "lag-bound", "availability", "throttles")


@dataclass
class Evidence:
    """Everything a run leaves for its checks."""

    regions: dict[str, str]  # region -> router URL (the scenario's regions)
    table: str
    history_path: Path
    started_at: float
    ended_at: float  # end of the timeline
    acknowledged: dict
    attempted: dict
    fault_events: list[dict]
    lag_samples: list[dict]
    faulted_regions: set[str]
    control: Callable[[], ControlClient]
    figures: dict = field(default_factory=dict)  # what checks learn for later ones (convergence time)


def fault_windows(events: list[dict], end_t: float) -> list[tuple[str, str, float, float]]:
    """(fault, target, start, end) of each successful injection; unreverted ones end at ``end_t``."""
    open_: dict[tuple[str, str], float] = {}
    windows = []
    for event in sorted(events, key=lambda e: e["t"]):
        if event.get("error"):
            continue
        key = (event["fault"], event["target"])
        if event["phase"] == "inject":
            open_.setdefault(key, event["t"])
        elif key in open_:
            windows.append((*key, open_.pop(key), event["t"] + event.get("took_ms", 0) / 1000))
    windows += [(*key, start, end_t) for key, start in open_.items()]
    return sorted(windows, key=lambda w: w[2])


def heal_time(events: list[dict], default: float) -> float:
    """When the last revert finished (``default`` when nothing was reverted)."""
    ends = [e["t"] + e.get("took_ms", 0) / 1000 for e in events if e["phase"] == "revert" and not e.get("error")]
    return max(ends, default=default)


# --- the checks -----------------------------------------------------------------


def check_convergence(evidence: Evidence, timeout_s: float) -> CheckResult:
    started = time.monotonic()
    try:
        found = evidence.control().verify_details(evidence.table, timeout_s)
    except ControlError as error:
        return CheckResult("convergence", False, f"could not compare the replicas: {error}", {})
    took_s = round(time.monotonic() - started, 2)
    figures = {"regions": len(found.regions), "item_versions": found.versions, "converged_after_s": took_s,
               "differing_keys": len(found.differing)}  # fmt: skip
    if found.identical:
        evidence.figures["converged_at"] = time.time()
        return CheckResult(
            "convergence", True,
            f"{found.versions} item versions identical in {len(found.regions)} regions after {took_s:g} s", figures,
        )  # fmt: skip
    shown = "; ".join(
        f"{key}: " + ", ".join(f"{r}={(v or 'absent')[:8]}" for r, v in held.items())
        for key, held in list(found.differing.items())[:limits.CHECK_DETAIL_KEYS_MAX]
    )
    return CheckResult(
        "convergence", False,
        f"replicas still differ in {len(found.differing)} key(s) after {timeout_s:g} s: {shown}", figures,
    )  # fmt: skip


def check_lost(evidence: Evidence) -> CheckResult:
    return check_no_acknowledged_write_lost(evidence.regions, evidence.table, evidence.acknowledged, evidence.attempted)


def check_availability_in_faults(evidence: Evidence, max_error_rate: float, regions: object) -> CheckResult:
    windows = [(start, end) for _, _, start, end in fault_windows(evidence.fault_events, evidence.ended_at)]
    if regions == "all":
        chosen = list(evidence.regions)
    elif regions == "unfaulted":
        chosen = [r for r in evidence.regions if r not in evidence.faulted_regions]
    else:
        chosen = list(regions)  # type: ignore[call-overload]
    if not chosen:
        return CheckResult("availability", True, "every region had a process fault: no region to judge", {})
    result = check_availability(evidence.history_path, windows, regions=chosen, max_error_ratio=max_error_rate)
    result.figures["judged_regions"] = chosen
    result.figures["max_error_rate"] = max_error_rate
    return result


def check_lag_bound(evidence: Evidence, max_ms: float, settle_s: float, catch_up_max_s: float | None = None) -> CheckResult:
    samples = evidence.lag_samples
    windows = fault_windows(evidence.fault_events, evidence.ended_at)
    healed = heal_time(evidence.fault_events, evidence.started_at)
    first_fault = min((start for _, _, start, _ in windows), default=None)
    figures = lag_figures(samples, windows, healed, first_fault, settle_s)
    figures["healed_after_start_s"] = round(healed - evidence.started_at, 2)
    after = lag_after(samples, healed, settle_s, figures["drained_at"])
    problems = []
    if figures["drained_at"] is None:
        problems.append("the backlog never drained back to its pre-fault level")
    if not after:
        problems.append("no replication observed once the backlog had drained (did the workload stop first?)")
    else:
        worst = max(after, key=lambda s: s["p99_ms"])
        if worst["p99_ms"] > max_ms:
            problems.append(
                f"p99 lag {worst['p99_ms']:g} ms on {worst['source']} -> {worst['target']} at "
                f"+{worst['t'] - healed:.1f} s after the heal (backlog drained) exceeds {max_ms:g} ms"
            )
    if catch_up_max_s is not None and (figures["catch_up_s"] is None or figures["catch_up_s"] > catch_up_max_s):
        problems.append(f"the backlog took {figures['catch_up_s']} s to drain, more than {catch_up_max_s:g} s")
    summary = (
        f"once caught up p99 lag at most {figures['lag_after_p99_max_ms']} ms "
        f"(bound {max_ms:g} ms); peak {figures['lag_peak_ms']} ms; "
        f"backlog at heal {figures['backlog_at_heal']}, drained in {figures['catch_up_s']} s "
        f"({figures['catch_up_changes_per_s']} changes/s)"
    )
    return CheckResult("lag-bound", not problems, "; ".join(problems + [summary]), {**figures, "max_ms": max_ms})


def lag_figures(samples: list[dict], windows: list[tuple[str, str, float, float]], healed: float,
                first_fault: float | None, settle_s: float) -> dict:  # fmt: skip
    """The lag figures of a run: during faults, backlog at heal, catch-up time and rate, after settling."""
    by_t: dict[float, list[dict]] = defaultdict(list)
    for s in samples:
        by_t[s["t"]].append(s)
    times = sorted(by_t)

    def total_pending(t: float) -> int | None:
        """Every pair's backlog summed; None unless every pair of the sample reported one."""
        values = [s["pending"] for s in by_t[t]]
        return None if any(v is None for v in values) or not values else sum(values)

    def known_pending(t: float) -> int:
        """The backlogs that were reported (a dead replicator reports none)."""
        return sum(s["pending"] for s in by_t[t] if s["pending"] is not None)

    def inside(t: float) -> bool:
        return any(start <= t <= end for _, _, start, end in windows)

    during = [s["max_ms"] for s in samples if inside(s["t"]) and s["max_ms"] is not None and s["count"] > 0]
    # The backlog's age shows when it is applied, after the heal: the peak is over everything from the first fault on.
    disturbed = [s["max_ms"] for s in samples if first_fault is not None and first_fault <= s["t"]
                 and s["max_ms"] is not None and s["count"] > 0 and s["window"] == "delta"]
    before = [p for t in times if first_fault is not None and t < first_fault and (p := total_pending(t)) is not None]
    baseline = max(before, default=0)
    around = [known_pending(t) for t in times if abs(t - healed) <= limits.HEAL_BRACKET_S]
    at_heal = max(around, default=None)
    peak = max((known_pending(t) for t in times if first_fault is not None and t >= first_fault), default=None)
    drained_at = next((t for t in times if t >= healed and (p := total_pending(t)) is not None and p <= baseline), None)
    catch_up_s = None if drained_at is None else round(max(0.0, drained_at - healed), 2)
    applied = sum(s["count"] for s in samples if healed < s["t"] <= (drained_at or healed) and s["window"] == "delta")
    rate = round(applied / catch_up_s, 1) if catch_up_s else None
    after = [s["p99_ms"] for s in lag_after(samples, healed, settle_s, drained_at)]
    return {
        "healed_at": healed,
        "drained_at": drained_at,
        "lag_during_faults_max_ms": max(during, default=None),
        "lag_peak_ms": max(disturbed, default=None),
        "pending_before_faults_max": baseline,
        "pending_peak": peak,
        "backlog_at_heal": at_heal,
        "catch_up_s": catch_up_s,
        "catch_up_changes_per_s": rate,
        "lag_after_p99_max_ms": max(after, default=None),
        "lag_after_samples": len(after),
    }


def lag_after(samples: list[dict], healed: float, settle_s: float, drained_at: float | None) -> list[dict]:
    """The windowed samples held to the bound: at least ``settle_s`` after the heal, and after the
    sample that saw the backlog drained (the windows before it still carry backlog)."""
    return [
        s for s in samples
        if s["t"] >= healed + settle_s and (drained_at is None or s["t"] > drained_at)
        and s["window"] == "delta" and s["count"] > 0
    ]  # fmt: skip


def check_lww_winner(evidence: Evidence, region: str) -> CheckResult:
    skewed_at = min(
        (e["t"] for e in evidence.fault_events
         if e["fault"] == "clock-skew" and e["target"] == region and e["phase"] == "inject" and not e.get("error")),
        default=evidence.started_at,
    )  # fmt: skip
    last_put: dict[str, dict[str, float]] = defaultdict(dict)  # conflict key -> region -> last acknowledged put start
    for record in read_jsonl(evidence.history_path):
        if record.get("op") == "put" and record.get("ok") and writer_of(record["key"], evidence.regions) is None:
            seen = last_put[record["key"]]
            seen[record["region"]] = max(seen.get(record["region"], 0.0), record["t"])
    keys = sorted(k for k, by in last_put.items() if by.get(region, 0.0) >= skewed_at)
    if not keys:
        return CheckResult("lww-winner", False, f"{region} acknowledged no write to a shared key after its clock skew", {})
    held = asyncio.run(_read_everywhere(evidence.regions, evidence.table, keys))
    wrong = {k: h for k, h in held.items() if any(item is None or item[1] != region for item in h.values())}
    later = [k for k in keys if any(t > last_put[k][region] for r, t in last_put[k].items() if r != region)]
    figures = {"keys_checked": len(keys), "keys_won": len(keys) - len(wrong), "keys_lost": len(wrong),
               "keys_won_though_another_region_wrote_later": len([k for k in later if k not in wrong]),
               "skewed_at": skewed_at}  # fmt: skip
    if wrong:
        shown = "; ".join(
            f"{k}: " + ", ".join(f"{r}={'absent' if i is None else i[1]}" for r, i in h.items())
            for k, h in list(wrong.items())[:limits.CHECK_DETAIL_KEYS_MAX]
        )
        return CheckResult("lww-winner", False, f"{len(wrong)} of {len(keys)} shared keys not won by {region}: {shown}", figures)
    return CheckResult(
        "lww-winner", True,
        f"{region}'s write holds in every region on all {len(keys)} shared keys it wrote while skewed; on "
        f"{figures['keys_won_though_another_region_wrote_later']} of them another region wrote later in real time "
        f"and lost",
        figures,
    )  # fmt: skip


def throttle_figures(records, windows: list[tuple[str, float, float]], settle_s: float) -> dict:
    """Requests and throttles per hot-key window (``(region, start, end)``, its region only, up to
    ``settle_s`` after its end) and elsewhere, per region; the throttling reasons seen."""
    per_window = [{"region": region, "start": start, "end": end, "requests": 0, "throttled": 0}
                  for region, start, end in windows]  # fmt: skip
    elsewhere: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    examples: list[str] = []
    for record in records:
        t, region = record["t"], record["region"]
        throttled = record.get("error") in THROTTLE_ERRORS
        if throttled:
            for reason in record.get("throttle") or ["(none given)"]:
                reasons[reason] = reasons.get(reason, 0) + 1
        window = next((w for w in per_window if w["region"] == region and w["start"] <= t <= w["end"] + settle_s), None)
        counts = window if window is not None else elsewhere.setdefault(region, {"requests": 0, "throttled": 0})
        counts["requests"] += 1
        if throttled:
            counts["throttled"] += 1
            if window is None and len(examples) < limits.CHECK_DETAIL_KEYS_MAX:
                examples.append(f"{region} {record.get('op')} {record.get('key')} at {t:.3f}")
    return {"windows": per_window, "elsewhere": elsewhere, "reasons": reasons, "unexpected_examples": examples,
            "settle_s": settle_s}  # fmt: skip


def check_throttles(evidence: Evidence, min_throttled: int, settle_s: float) -> CheckResult:
    windows = [(target, start, end) for fault, target, start, end in fault_windows(evidence.fault_events, evidence.ended_at)
               if fault == "hot-key"]  # fmt: skip
    figures = throttle_figures(read_jsonl(evidence.history_path), windows, settle_s)
    problems, lines = [], []
    for w in figures["windows"]:
        span = f"{w['start'] - evidence.started_at:.1f}-{w['end'] - evidence.started_at:.1f} s"
        lines.append(f"hot key in {w['region']} ({span}): {w['throttled']} of {w['requests']} requests throttled")
        if w["throttled"] < min_throttled:
            problems.append(f"the hot key in {w['region']} ({span}) had {w['throttled']} throttles, fewer than {min_throttled}")
    unexpected = sum(c["throttled"] for c in figures["elsewhere"].values())
    spread = sum(c["requests"] for c in figures["elsewhere"].values())
    lines.append(f"elsewhere and elsewhen: {unexpected} of {spread} requests throttled")
    if unexpected:
        problems.append(f"{unexpected} requests throttled outside any hot key (first: {'; '.join(figures['unexpected_examples'])})")
    if figures["reasons"]:
        lines.append("reasons: " + ", ".join(f"{name} {n}" for name, n in sorted(figures["reasons"].items())))
    return CheckResult("throttles", not problems, "; ".join(problems + lines), figures)


async def _read_everywhere(regions: dict[str, str], table: str, keys: list[str]) -> dict[str, dict[str, tuple | None]]:
    """key -> region -> (version, writer) or None, read with ConsistentRead in every region."""
    clients = {region: DynamoClient(url, region) for region, url in regions.items()}
    out: dict[str, dict[str, tuple | None]] = {key: {} for key in keys}
    try:
        for region, client in clients.items():
            for i in range(0, len(keys), model_limits.BATCH_GET_KEYS_MAX):
                wanted = keys[i : i + model_limits.BATCH_GET_KEYS_MAX]
                for _ in range(limits.CHECK_READ_ATTEMPTS_MAX):
                    request = {"Keys": [{"pk": {"S": k}} for k in wanted], "ConsistentRead": True}
                    reply = await client.call("BatchGetItem", {"RequestItems": {table: request}})
                    if not reply.ok or reply.body is None:
                        await asyncio.sleep(limits.CHECK_READ_RETRY_INTERVAL_S)
                        continue
                    for item in reply.body.get("Responses", {}).get(table, []):
                        out[item["pk"]["S"]][region] = parse_item(item)
                    left = reply.body.get("UnprocessedKeys", {}).get(table)
                    left_keys = {k["pk"]["S"] for k in left["Keys"]} if left else set()
                    for k in wanted:
                        if k not in left_keys:
                            out[k].setdefault(region, None)
                    wanted = [k for k in wanted if k in left_keys]
                    if not wanted:
                        break
                for k in wanted:  # never read: counts as not holding the write
                    out[k][region] = None
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))
    return out


CHECK_FUNCTIONS: dict[str, Callable[..., CheckResult]] = {
    "convergence": check_convergence,
    "no-acknowledged-write-lost": check_lost,
    "lww-winner": check_lww_winner,
    "lag-bound": check_lag_bound,
    "availability": check_availability_in_faults,
    "throttles": check_throttles,
}
assert set(CHECK_FUNCTIONS) == set(ORDER) == set(CHECKS), "every check in schema.CHECKS needs a function here"


def run_check(name: str, args: dict, evidence: Evidence) -> CheckResult:
    """One check; an unexpected exception fails it (with the error as detail) rather than the run."""
    try:
        return CHECK_FUNCTIONS[name](evidence, **args)
    except Exception as error:  # noqa: BLE001 - a check that cannot run has not passed
        return CheckResult(name, False, f"the check could not run: {type(error).__name__}: {error}", {})
