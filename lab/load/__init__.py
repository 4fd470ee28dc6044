"""``meridian load``: a DynamoDB workload generator for the lab, chaos scenarios and demos.

    spec.py      WorkloadSpec, keys (one writer region each), key distributions, versions, items, TableBilling
    client.py    the DynamoDB JSON 1.0 client (aiohttp, keep-alive, SigV4)
    table.py     ensure_table: the table, replicated to every region, ACTIVE
    workload.py  Workload: the open-loop schedule, writes, reads, visibility probes, lag samples
    stats.py     live counters (throttles apart) and the WorkloadStats a run returns
    history.py   the run directory's files (run.json, history/visibility/lag .jsonl)
    checks.py    no acknowledged write lost, availability
    cli.py       the ``meridian load`` command: progress bar and live summary
"""

from __future__ import annotations

import importlib
from typing import Any

# The public API, imported on first use: ``meridian --help`` and the other
# commands load this package (for its argument parser) without paying for aiohttp.
_EXPORTS = {
    "CheckResult": "checks",
    "check_availability": "checks",
    "check_no_acknowledged_write_lost": "checks",
    "writes_from_history": "history",
    "KeyDistribution": "spec",
    "TableBilling": "spec",
    "WorkloadSpec": "spec",
    "WorkloadStats": "stats",
    "ensure_table": "table",
    "Workload": "workload",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
