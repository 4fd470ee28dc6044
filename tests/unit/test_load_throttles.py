"""Throttles seen by the workload, its checks, the chaos ``hot-key`` fault and ``meridian report``.

A throttled request is a refused one (HTTP 400, never applied): the
workload counts it apart (per region, per second, by reason), records its
``ThrottlingReasons`` in the history, and treats it like any other refused
write for the durability check (not acknowledged, its key kept in use).
The workload runs here against an in-process fake router whose hot
partition is spent, so the figures are exact and no server is needed.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import orjson
import pytest

from meridian.lab.chaos import scenario as sc
from meridian.lab.chaos.checks import Evidence, check_throttles
from meridian.lab.chaos.faults import FaultLog, Injector
from meridian.lab.chaos.runner import RunSurface
from meridian.lab.chaos.schema import FAULTS, ScenarioError
from meridian.lab.chaos.targets import Target, TargetError
from meridian.lab.load import Workload, WorkloadSpec, writes_from_history
from meridian.lab.load import workload as workload_module
from meridian.lab.load.checks import judge_key
from meridian.lab.load.client import Reply
from meridian.lab.load.spec import ZIPF, KeyDistribution, parse_item
from meridian.lab.load.stats import THROTTLE_ERRORS, LiveStats, PeakPerSecond
from meridian.lab.report import write_report

REGION = "us-east-1"
THROTTLED = "ProvisionedThroughputExceededException"
REASON = "TableWriteKeyRangeThroughputExceeded"


# --- the live counters ----------------------------------------------------------------


def test_throttles_are_errors_counted_apart_per_region_and_per_second(monkeypatch):
    clock = iter([100.1, 100.5, 100.9, 101.2, 101.3])
    monkeypatch.setattr("meridian.lab.load.stats.time.time", lambda: next(clock))
    live = LiveStats(["a", "b"])
    live.record("a", "put", True, None, 1.0)
    live.record("a", "put", False, "ValidationException", 1.0)  # refused, not throttled
    for _ in range(3):
        live.record("a", "put", False, THROTTLED, 1.0)  # three in second 100
    live.record("b", "get", False, "ThrottlingException", 1.0)  # second 101
    live.record("a", "put", False, "RequestLimitExceeded", 1.0)  # second 101
    assert live.throttled == 5 and live.errors[THROTTLED] == 3 and sum(live.errors.values()) == 6
    assert (live.regions["a"].throttled, live.regions["a"].errors, live.regions["a"].throttled_peak_per_s) == (4, 5, 3)
    assert (live.regions["b"].throttled, live.regions["b"].throttled_peak_per_s) == (1, 1)
    assert live.throttle_peak.peak == 3
    assert {THROTTLED, "ThrottlingException", "RequestLimitExceeded"} == THROTTLE_ERRORS


def test_the_peak_keeps_the_busiest_second_only():
    peak = PeakPerSecond()
    for second in (5, 5, 6, 6, 6, 6, 7, 9, 9):
        peak.add(second)
    assert peak.peak == 4


# --- the workload against a router whose hot partition is spent -------------------------


class _SpentPartitionRouter:
    """Stands for one region's router: PutItem/GetItem on a dict, every request for key ``#0`` throttled."""

    items: dict[str, dict] = {}

    def __init__(self, endpoint: str, region: str, **_: object) -> None:
        self.region = region

    async def call(self, action: str, payload: dict) -> Reply:
        await asyncio.sleep(0.002)
        key = (payload.get("Item") or payload.get("Key"))["pk"]["S"]
        if key.endswith("#0"):
            body = {"__type": f"com.amazonaws.dynamodb.v20120810#{THROTTLED}", "message": "exceeded",
                    "ThrottlingReasons": [{"reason": REASON, "resource": "arn:aws:dynamodb:x:0:table/t"}]}  # fmt: skip
            return Reply(False, 400, body, THROTTLED, 2.0, False)
        if action == "PutItem":
            self.items[key] = payload["Item"]
            return Reply(True, 200, {}, None, 2.0, False)
        return Reply(True, 200, {"Item": self.items[key]} if key in self.items else {}, None, 2.0, False)

    async def close(self) -> None:
        pass


class _NoLagWorkload(Workload):
    async def _sample_lag(self) -> None:  # no replication to sample here
        return None


def test_a_hot_key_s_throttled_writes_are_counted_recorded_and_refused_like_any_other(tmp_path, monkeypatch):
    monkeypatch.setattr(workload_module, "DynamoClient", _SpentPartitionRouter)
    _SpentPartitionRouter.items = {}
    spec = WorkloadSpec(regions={REGION: "http://127.0.0.1:9"}, table="t", rate_per_s=400, duration_s=0.5, keys=50,
                        write_ratio=0.8, seed=3, key_distribution=ZIPF, zipf_s=3.0)  # fmt: skip
    workload = _NoLagWorkload(spec, tmp_path)
    stats = asyncio.run(workload.run())

    history = [orjson.loads(line) for line in (tmp_path / "history.jsonl").read_bytes().splitlines()]
    throttled = [r for r in history if r["error"] == THROTTLED]
    assert len(throttled) > 0.5 * len(history)  # Zipf(3): most requests name the hot key
    assert all(r["key"] == f"{REGION}#0" and r["throttle"] == [REASON] for r in throttled)
    assert all("throttle" not in r for r in history if r["error"] != THROTTLED)
    assert stats.throttled == len(throttled) and stats.errors == {THROTTLED: len(throttled)}
    assert stats.throttle_reasons == {REASON: len(throttled)}
    assert stats.regions[REGION]["throttled"] == len(throttled) and stats.throttled_peak_per_s >= 1
    assert stats.as_dict()["throttled_per_s"] > 0
    # Refused, not unknown: the hot key was never acknowledged, never retired, and kept being written.
    puts = [r for r in throttled if r["op"] == "put"]
    assert stats.retired_keys == 0 and len(puts) > 10
    assert f"{REGION}#0" not in workload.acknowledged and workload.attempted[f"{REGION}#0"][REGION] == max(
        r["version"] for r in puts
    )
    # And the durability check passes on this honest router, from the workload's figures and from the history's.
    for acknowledged, attempted in ((workload.acknowledged, workload.attempted), writes_from_history(tmp_path / "history.jsonl")):
        for key in attempted:
            held = {REGION: parse_item(_SpentPartitionRouter.items.get(key))}
            assert judge_key(key, held, acknowledged.get(key), attempted[key], [REGION]) is None, key
    assert acknowledged.keys() == workload.acknowledged.keys()


# --- the chaos side: the hot-key fault and the throttles check ------------------------------


def test_the_hot_key_fault_turns_a_running_workload_s_region_hot_and_back(tmp_path):
    spec = WorkloadSpec(regions={REGION: "http://127.0.0.1:9", "eu-west-1": "http://127.0.0.1:9"}, table="t",
                        rate_per_s=10, duration_s=1, keys=10, write_ratio=0.5)  # fmt: skip
    workload = Workload(spec)

    async def act() -> list[dict]:
        injector = Injector(RunSurface(Target(), workload, asyncio.get_running_loop()), FaultLog(tmp_path / "f.jsonl", None))
        await asyncio.to_thread(injector.inject, "hot-key", REGION, {"zipf_s": 2.5})
        hot = workload.plan.distributions[REGION]
        assert (hot.name, hot.zipf_s, workload.plan.distributions["eu-west-1"].name) == (ZIPF, 2.5, "uniform")
        await asyncio.to_thread(injector.revert, "hot-key", REGION, {"zipf_s": 2.5})
        assert workload.plan.distributions[REGION].name == "uniform"
        return injector.events

    events = asyncio.run(act())
    assert [(e["fault"], e["phase"], e["error"]) for e in events] == [("hot-key", "inject", None), ("hot-key", "revert", None)]
    assert FAULTS["hot-key"].target == "region" and FAULTS["hot-key"].reversible
    with pytest.raises(TargetError, match="only `meridian chaos run`"):
        Target().skew_keys(REGION, 2.0)  # a one-off verb has no workload to skew


_SCENARIO = {
    "name": "hot", "regions": [REGION, "eu-west-1"], "duration_s": 20,
    "workload": {"duration_s": 18, "rate_per_s": 100, "keys": 100, "write_ratio": 1.0},
    "table": {"billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 2000},
    "timeline": [{"at_s": 2, "fault": "hot-key", "target": REGION, "args": {"zipf_s": 3}, "revert_at_s": 10}],
    "checks": {"throttles": {}},
}  # fmt: skip


def test_a_scenario_names_its_table_s_billing_and_hot_keys():
    s = sc.parse(copy.deepcopy(_SCENARIO))
    assert (s.table.mode, s.table.read_capacity, s.table.write_capacity) == ("PROVISIONED", 5, 2000)
    assert s.timeline[0].args == {"zipf_s": 3.0} and s.checks["throttles"] == {"min_throttled": 1, "settle_s": 2.0}
    assert sc.parse({**copy.deepcopy(_SCENARIO), "table": None}).table.mode == "PAY_PER_REQUEST"
    for table, message in (
        ({"billing_mode": "FREE"}, r"table.billing_mode: PAY_PER_REQUEST or PROVISIONED"),
        ({"billing_mode": "PROVISIONED", "read_capacity": 5}, r"table: a PROVISIONED table needs"),
        ({"write_capacity": 0}, r"table.write_capacity: must be at least 1"),
        ({"colour": "red"}, r"table: unknown key\(s\) colour"),
    ):
        with pytest.raises(ScenarioError, match=message):
            sc.parse({**copy.deepcopy(_SCENARIO), "table": table})
    step = _SCENARIO["timeline"][0]
    for args, message in (({}, "argument 'zipf_s' is required"), ({"zipf_s": 0}, "zipf_s: must be at least")):
        with pytest.raises(ScenarioError, match=message):
            sc.parse({**copy.deepcopy(_SCENARIO), "timeline": [{**step, "args": args}]})


T0 = 1_700_000_000.0


def _write_history(path: Path, history: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in history))
    return path


def _evidence(tmp_path: Path, history: list[dict], hot: tuple[float, float] | None) -> Evidence:
    path = _write_history(tmp_path / "history.jsonl", history)
    events = []
    if hot is not None:
        events = [{"t": T0 + hot[0], "fault": "hot-key", "target": REGION, "phase": "inject", "took_ms": 0},
                  {"t": T0 + hot[1], "fault": "hot-key", "target": REGION, "phase": "revert", "took_ms": 0}]  # fmt: skip
    return Evidence(regions={REGION: "", "eu-west-1": ""}, table="t", history_path=path, started_at=T0,
                    ended_at=T0 + 20, acknowledged={}, attempted={}, fault_events=events, lag_samples=[],
                    faulted_regions=set(), control=lambda: None)  # fmt: skip


def _request(t_s: float, region: str, throttled: bool) -> dict:
    return {"t": T0 + t_s, "region": region, "op": "put", "key": f"{region}#0", "ok": not throttled,
            "error": THROTTLED if throttled else None, "latency_ms": 1.0, "version": 1,
            **({"throttle": [REASON]} if throttled else {})}  # fmt: skip


def _steady(throttled_at: set[tuple[str, float]]) -> list[dict]:
    """Both regions, 10 requests a second for 20 s; the given (region, t) throttled."""
    return [_request(s / 10, region, (region, s / 10) in throttled_at) for s in range(200) for region in (REGION, "eu-west-1")]


def test_the_throttles_check_wants_them_in_the_hot_key_s_window_and_region_only(tmp_path):
    inside = {(REGION, t / 10) for t in range(50, 100)} | {(REGION, 11.0)}  # 11.0: within 2 s of the revert
    result = check_throttles(_evidence(tmp_path, _steady(inside), hot=(2.0, 10.0)), min_throttled=10, settle_s=2.0)
    assert result.passed, result.detail
    window = result.figures["windows"][0]
    assert (window["region"], window["throttled"], window["requests"]) == (REGION, 51, 101)
    assert result.figures["elsewhere"]["eu-west-1"] == {"requests": 200, "throttled": 0}
    assert result.figures["reasons"] == {REASON: 51}
    assert "51 of 101 requests throttled" in result.detail and "elsewhere and elsewhen: 0 of" in result.detail

    spread_too = inside | {("eu-west-1", 6.0), (REGION, 15.0)}
    failed = check_throttles(_evidence(tmp_path, _steady(spread_too), hot=(2.0, 10.0)), min_throttled=10, settle_s=2.0)
    assert not failed.passed and "2 requests throttled outside any hot key" in failed.detail
    assert failed.figures["unexpected_examples"] == [
        f"eu-west-1 put eu-west-1#0 at {T0 + 6:.3f}", f"{REGION} put {REGION}#0 at {T0 + 15:.3f}",
    ]

    cold = check_throttles(_evidence(tmp_path, _steady(set()), hot=(2.0, 10.0)), min_throttled=1, settle_s=2.0)
    assert not cold.passed and "had 0 throttles, fewer than 1" in cold.detail
    calm = check_throttles(_evidence(tmp_path, _steady(set()), hot=None), min_throttled=1, settle_s=2.0)
    assert calm.passed and calm.figures["windows"] == []


# --- the report ---------------------------------------------------------------------------


def test_the_report_plots_throttles_per_second_and_names_their_reasons(tmp_path):
    inside = {(REGION, t / 10) for t in range(50, 100)}
    run = {"kind": "scenario", "scenario": "hot", "seed": 1, "started_at": T0, "ended_at": T0 + 20,
           "regions": {REGION: "http://127.0.0.1:1", "eu-west-1": "http://127.0.0.1:2"}, "target": "up",
           "table": "t", "args": {}}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(run))
    _write_history(tmp_path / "history.jsonl", _steady(inside))
    (tmp_path / "faults.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in (
        {"t": T0 + 2, "fault": "hot-key", "target": REGION, "phase": "inject", "args": {"zipf_s": 3}},
        {"t": T0 + 10, "fault": "hot-key", "target": REGION, "phase": "revert", "args": {"zipf_s": 3}},
    )))  # fmt: skip
    files = write_report(tmp_path)
    assert "throttles.png" in {p.name for p in files.images} and (tmp_path / "throttles.png").stat().st_size > 0
    md = files.markdown.read_text()
    # us-east-1: 50 throttled of 200 (seconds 5.0 to 9.9: ten a second), the first in bin 5, the last in bin 9.
    assert f"| {REGION} | 200 | 50 | 25.0 % | 10 | 5.0 | 9.0 |" in md
    assert "| eu-west-1 | 200 | 0 | 0.0 % | 0 | n/a | n/a |" in md
    assert f"Throttling reasons: {REASON} ({REGION} 50)." in md
    assert "](throttles.png)" in md and "| hot-key | us-east-1 | 2.0 | 10.0 | 8.0 | yes |" in md

    _write_history(tmp_path / "history.jsonl", _steady(set()))
    calm = write_report(tmp_path)
    assert "throttles.png" not in {p.name for p in calm.images} and not (tmp_path / "throttles.png").exists()
    assert "No request was throttled." in calm.markdown.read_text()
