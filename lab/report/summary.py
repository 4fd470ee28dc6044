"""The report's text: what ran, its checks, key figures, the plots, and how figures are defined."""

from __future__ import annotations

import datetime

from . import figures
from .document import Document
from .rundir import CHECKS_FILE, FAULTS_FILE, HISTORY_FILE, LAG_FILE, VISIBILITY_FILE, RunData

NOT_AVAILABLE = "n/a"


def ms(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.1f}"


def seconds(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.1f}"


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _not_recorded(file: str, why: str) -> str:
    return f"Not recorded: {file} is absent from the run dir ({why})."


def _run_section(doc: Document, data: RunData) -> None:
    run = data.run
    if run is None:
        doc.paragraph("Not recorded: run.json is absent; times are counted from the first record.")
    else:
        items = [f"kind: {run.get('kind')}"]
        if run.get("scenario"):
            items.append(f"scenario: {run['scenario']}")
        if run.get("seed") is not None:
            items.append(f"seed: {run['seed']}")
        items += [f"target: {run.get('target')}", f"table: {run.get('table')}"]
        for region, url in (run.get("regions") or {}).items():
            items.append(f"region {region}: {url}")
        doc.bullets(items)
    doc.paragraph(f"Started {_when(data.t0)}, lasted {seconds(data.duration_s)} s.")
    if data.skipped_lines:
        skipped = ", ".join(f"{n} in {name}" for name, n in sorted(data.skipped_lines.items()))
        doc.paragraph(f"Unreadable lines skipped: {skipped}.")


def _checks_section(doc: Document, data: RunData) -> None:
    doc.heading(1, "Checks")
    if data.checks is None:
        doc.paragraph(_not_recorded(CHECKS_FILE, "only chaos scenarios run checks"))
        return
    rows = [[str(c.get("name")), "pass" if c.get("passed") else "FAIL", str(c.get("detail") or "")] for c in data.checks]
    doc.table(["check", "result", "detail"], rows)
    failed = sum(1 for c in data.checks if not c.get("passed"))
    doc.paragraph(f"{len(data.checks) - failed} of {len(data.checks)} checks passed.")


def _lag_section(doc: Document, data: RunData) -> None:
    doc.heading(2, "Replication lag per region pair")
    if data.lag is None:
        doc.paragraph(_not_recorded(LAG_FILE, "no replication-latency sampler ran"))
        return
    rows = [
        [f"{p.source} → {p.target}", str(p.changes), ms(p.p50_ms), ms(p.p99_ms), ms(p.max_ms),
         NOT_AVAILABLE if p.max_pending is None else str(p.max_pending)]
        for p in figures.lag_figures(data.lag)
    ]  # fmt: skip
    if not rows:
        doc.paragraph("Not recorded: lag.jsonl holds no sample (no replication seen).")
        return
    doc.table(["pair", "changes", "p50 lag (ms)", "p99 lag (ms)", "max lag (ms)", "max pending"], rows)


def _faults_section(doc: Document, data: RunData) -> None:
    doc.heading(2, "Faults")
    if data.fault_events is None:
        doc.paragraph(_not_recorded(FAULTS_FILE, "no fault was injected"))
        return
    if not data.faults:
        doc.paragraph("faults.jsonl records no injection.")
        return
    rows = [
        [w.fault, w.target, seconds(w.start - data.t0), seconds(w.end - data.t0), seconds(w.end - w.start),
         "yes" if w.reverted else "no (lasted to the end)"]
        for w in data.faults
    ]  # fmt: skip
    doc.table(["fault", "target", "start (s)", "end (s)", "duration (s)", "reverted"], rows)


def _errors_section(doc: Document, data: RunData) -> None:
    doc.heading(2, "Requests and errors per region")
    if data.history is None:
        doc.paragraph(_not_recorded(HISTORY_FILE, "no workload ran"))
        return
    if not data.history:
        doc.paragraph("Not recorded: history.jsonl holds no request.")
        return
    rows = []
    for r in figures.region_figures(data):
        rate = r.error_rate_in_faults
        rows.append([
            r.region, str(r.requests), str(r.errors), str(r.requests_in_faults), str(r.errors_in_faults),
            NOT_AVAILABLE if rate is None else f"{100 * rate:.1f} %",
        ])  # fmt: skip
    doc.table(["region", "requests", "errors", "requests during faults", "errors during faults",
               "error rate during faults"], rows)  # fmt: skip
    types = {}
    for region, traffic in sorted(data.history.items()):
        for name, n in traffic.error_types.most_common():
            types.setdefault(name, []).append(f"{region} {n}")
    if types:
        doc.paragraph("Error types: " + "; ".join(f"{name} ({', '.join(v)})" for name, v in types.items()) + ".")


def _throttles_section(doc: Document, data: RunData) -> None:
    doc.heading(2, "Throttling")
    if data.history is None:
        doc.paragraph(_not_recorded(HISTORY_FILE, "no workload ran"))
        return
    rows = figures.throttle_figures(data)
    if not any(r.throttled for r in rows):
        doc.paragraph("No request was throttled.")
        return
    doc.table(["region", "requests", "throttled", "share", "peak (per s)", "first (s)", "last (s)"], [
        [r.region, str(r.requests), str(r.throttled), f"{100 * r.share:.1f} %" if r.share is not None else NOT_AVAILABLE,
         str(r.peak_per_s), seconds(r.first_s), seconds(r.last_s)]
        for r in rows
    ])  # fmt: skip
    reasons: dict[str, list[str]] = {}
    for region, traffic in sorted(data.history.items()):
        for name, n in traffic.throttle_reasons.most_common():
            reasons.setdefault(name, []).append(f"{region} {n}")
    doc.paragraph("Throttling reasons: " + "; ".join(f"{name} ({', '.join(v)})" for name, v in reasons.items()) + ".")


def _catch_up_section(doc: Document, data: RunData) -> None:
    doc.heading(2, "Catch-up after the last heal")
    if data.fault_events is None:
        doc.paragraph(_not_recorded(FAULTS_FILE, "nothing was healed"))
        return
    result = figures.catch_up(data)
    if result.last_heal_t is None:
        doc.paragraph("No fault was reverted, so there is no heal to catch up from.")
    elif not result.pending_at_end:
        doc.paragraph(f"Last heal at {seconds(result.last_heal_t - data.t0)} s; pending counts not recorded "
                      f"({LAG_FILE} absent or without pending), so catch-up cannot be measured.")  # fmt: skip
    elif result.caught_up_t is None:
        left = ", ".join(f"{a} → {b}: {n}" for (a, b), n in sorted(result.pending_at_end.items()))
        doc.paragraph(f"Last heal at {seconds(result.last_heal_t - data.t0)} s; not caught up by the end of the "
                      f"run (pending at the end: {left}).")  # fmt: skip
    else:
        doc.paragraph(f"Caught up {seconds(result.seconds)} s after the last heal "
                      f"(heal at {seconds(result.last_heal_t - data.t0)} s, every pair back to its pre-fault "
                      f"pending level at {seconds(result.caught_up_t - data.t0)} s).")  # fmt: skip
    per_fault = figures.catch_up_per_fault(data)
    if len(per_fault) > 1:
        rows = [
            [w.fault, w.target, seconds(w.end - data.t0), NOT_AVAILABLE if after is None else seconds(after)]
            for w, after in per_fault
        ]  # fmt: skip
        doc.table(["fault", "target", "reverted at (s)", "caught up after (s)"], rows)


def _read_latency_section(doc: Document, data: RunData) -> None:
    doc.heading(2, "Local reads vs cross-region visibility")
    if data.history is None:
        doc.paragraph(_not_recorded(HISTORY_FILE, "no workload ran"))
    elif not data.history:
        doc.paragraph("Not recorded: history.jsonl holds no request.")
    else:
        rows = [[r.region, str(r.gets), ms(r.get_p50_ms), ms(r.get_p99_ms)] for r in figures.region_figures(data)]
        doc.table(["region (local gets)", "gets", "p50 (ms)", "p99 (ms)"], rows)
    if data.visibility is None:
        doc.paragraph(_not_recorded(VISIBILITY_FILE, "the workload ran without visibility probes"))
    elif not data.visibility:
        doc.paragraph("Not recorded: visibility.jsonl holds no probe (the workload ran without visibility probes).")
    else:
        rows = [
            [f"{v.source} → {v.target}", str(v.probes), str(v.not_seen), ms(v.p50_ms), ms(v.p99_ms)]
            for v in figures.visibility_figures(data)
        ]
        doc.table(["pair (write acked → visible)", "probes", "not seen in time", "p50 (ms)", "p99 (ms)"], rows)


_DEFINITIONS = [
    "p50/p99 lag: from lag.jsonl; per-second (delta) samples are merged by weighting each sample's percentile "
    "with its change count; cumulative (total) samples use the last one.",
    "max pending: the largest pending-change count (PendingReplicationCount) a pair reported.",
    "errors during faults: failed requests that started between a fault's injection and its revert.",
    "throttled: requests answered ProvisionedThroughputExceededException, ThrottlingException or "
    "RequestLimitExceeded (never applied), per region; peak: the busiest 1-second bin by request start; reasons: "
    "the ThrottlingReasons of the answers, as history.jsonl records them.",
    "catch-up: from the last revert to the first sample where every pair's pending count was back at or below "
    "its largest value before the first fault.",
    "local read latency: latency of successful gets in history.jsonl, per region; cross-region visibility: "
    "visible_ms of visibility.jsonl, from a write's acknowledgement to its first sighting in the other region.",
]


def build(data: RunData, plots: dict[str, str | None]) -> Document:
    """The report; ``plots`` maps each plot's title to its PNG file name (None: nothing to plot)."""
    doc = Document(f"Meridian run report: {data.path.name}")
    _run_section(doc, data)
    _checks_section(doc, data)
    doc.heading(1, "Key figures")
    _lag_section(doc, data)
    _faults_section(doc, data)
    _errors_section(doc, data)
    _throttles_section(doc, data)
    _catch_up_section(doc, data)
    _read_latency_section(doc, data)
    doc.heading(1, "Plots")
    for title, file in plots.items():
        doc.heading(2, title)
        if file is None:
            doc.paragraph("Not recorded: the run dir holds no data for this plot.")
        else:
            doc.image(file, title)
    doc.heading(1, "How the figures are computed")
    doc.bullets(_DEFINITIONS)
    return doc
