"""The chaos timeline on virtual time, the injector's bookkeeping, and the pure figures
(windowed lag from histogram buckets, fault windows, catch-up) the checks are built on."""

from __future__ import annotations

import random

import orjson
import pytest

from meridian.lab.chaos import checks, sampler
from meridian.lab.chaos import scenario as sc
from meridian.lab.chaos.faults import FaultError, FaultLog, Injector
from meridian.lab.chaos.timeline import run_timeline
from tests.sim.virtual import run_virtual

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


# --- the timeline on virtual time ----------------------------------------------------


def _scenario(timeline: list[dict], duration_s: float = 40) -> sc.Scenario:
    return sc.parse({
        "name": "t", "regions": REGIONS, "duration_s": duration_s,
        "workload": {"duration_s": 10, "rate_per_s": 10, "keys": 10, "write_ratio": 0.5},
        "timeline": timeline,
    })  # fmt: skip


def test_actions_run_at_their_times_and_the_run_lasts_its_duration():
    s = _scenario([
        {"at_s": 5, "fault": "link-cut", "target": "us-east-1<->eu-west-1", "revert_at_s": 7,
         "repeat": {"count": 3, "every_s": 10}},
        {"at_s": 6, "fault": "clock-skew", "target": "eu-west-1", "args": {"ms": 500}, "revert_at_s": 30},
    ])  # fmt: skip
    actions = sc.plan(s, random.Random(3), [])
    seen: list[tuple[float, str, str]] = []

    async def main(clock):
        async def act(action):
            seen.append((clock.monotonic_s(), action.phase, action.fault))

        done = await run_timeline(actions, act, clock, s.duration_s)
        return done, clock.monotonic_s()

    done, ended_s = run_virtual(main)
    assert ended_s == pytest.approx(40)
    assert seen == [
        (5, "inject", "link-cut"), (6, "inject", "clock-skew"), (7, "revert", "link-cut"),
        (15, "inject", "link-cut"), (17, "revert", "link-cut"), (25, "inject", "link-cut"),
        (27, "revert", "link-cut"), (30, "revert", "clock-skew"),
    ]  # fmt: skip
    assert all(d.error is None and d.late_s == pytest.approx(0) for d in done)


def test_a_failing_action_is_recorded_and_the_timeline_goes_on():
    actions = [sc.Action(1, 1, "inject", "process-pause", "eu-west-1/node-0"),
               sc.Action(2, 2, "revert", "process-pause", "eu-west-1/node-0")]  # fmt: skip

    async def main(clock):
        async def act(action):
            if action.phase == "inject":
                raise RuntimeError("no such process")

        return await run_timeline(actions, act, clock, 5)

    done = run_virtual(main)
    assert [(d.action.phase, d.error) for d in done] == [("inject", "RuntimeError: no such process"), ("revert", None)]


def test_a_slow_action_delays_the_next_without_reordering():
    actions = [sc.Action(1, 1, "inject", "process-kill", "us-east-1/node-0"),
               sc.Action(2, 2, "revert", "process-kill", "us-east-1/node-0")]  # fmt: skip

    async def main(clock):
        async def act(action):
            if action.phase == "inject":
                await clock.sleep(3)  # e.g. a restart waiting for readiness

        return await run_timeline(actions, act, clock, 10), clock.monotonic_s()

    done, ended_s = run_virtual(main)
    assert [d.started_s for d in done] == [1, 4]
    assert done[1].late_s == pytest.approx(2)
    assert ended_s == pytest.approx(10)


# --- the injector's bookkeeping ---------------------------------------------------------


class LinkModel:
    """Just enough of a target for the injector: links with conditions, and a record of calls."""

    def __init__(self) -> None:
        self.conditions = {(a, b): {"latency_ms": 40.0, "jitter_ms": 2.0, "loss": 0.0}
                           for a in REGIONS for b in REGIONS if a != b}  # fmt: skip
        self.cut: set[tuple[str, str]] = set()
        self.calls: list[tuple] = []

    # the ControlClient part
    def control(self):
        return self

    def regions(self):
        return list(REGIONS)

    def links(self):
        return [{"source": a, "target": b, **c, "cut": (a, b) in self.cut, "paused": False}
                for (a, b), c in self.conditions.items()]  # fmt: skip

    def link_set(self, a, b, *, one_way=False, **settings):
        for pair in [(a, b)] if one_way else [(a, b), (b, a)]:
            self.conditions[pair].update({k: v for k, v in settings.items() if v is not None})

    def link_cut(self, a, b, *, one_way=False):
        self.cut |= {(a, b)} if one_way else {(a, b), (b, a)}

    def link_heal(self, a, b, *, one_way=False):
        self.cut -= {(a, b)} if one_way else {(a, b), (b, a)}

    def clock_skew(self, region, ms):
        self.calls.append(("skew", region, ms))

    # the process part
    def process(self, name, action):
        if name.endswith("node-9"):
            raise RuntimeError(f"no process named {name!r}")
        self.calls.append((action, name))
        return {"name": name, "state": action}

    def disconnect_region(self, region):
        return None

    def reconnect_region(self, region, saved):
        self.calls.append(("reconnect", region))


def test_slow_and_lossy_are_reverted_to_the_conditions_before(tmp_path):
    model = LinkModel()
    log = tmp_path / "faults.jsonl"
    injector = Injector(model, FaultLog(log, echo=None))
    before = {pair: dict(c) for pair, c in model.conditions.items()}
    injector.inject("link-slow", "us-east-1->eu-west-1", {"latency_ms": 900.0, "jitter_ms": 50.0})
    injector.inject("link-lossy", "eu-west-1<->ap-southeast-2", {"loss": 0.3})
    assert model.conditions[("us-east-1", "eu-west-1")] == {"latency_ms": 900.0, "jitter_ms": 50.0, "loss": 0.0}
    assert model.conditions[("eu-west-1", "us-east-1")] == before[("eu-west-1", "us-east-1")]  # one way only
    assert model.conditions[("ap-southeast-2", "eu-west-1")]["loss"] == 0.3
    assert injector.revert_all() == []
    assert model.conditions == before
    events = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [(e["fault"], e["phase"]) for e in events] == [
        ("link-slow", "inject"), ("link-lossy", "inject"), ("link-lossy", "revert"), ("link-slow", "revert"),
    ]  # fmt: skip
    assert all(e["error"] is None and e["t"] > 0 and e["took_ms"] >= 0 for e in events)
    assert injector.active == {}


def test_isolate_cuts_every_link_of_the_region_and_heal_restores_them(tmp_path):
    model = LinkModel()
    injector = Injector(model, FaultLog(None, echo=None))
    injector.inject("region-isolate", "eu-west-1", {"real": True})
    assert model.cut == {(a, b) for a in REGIONS for b in REGIONS if a != b and "eu-west-1" in (a, b)}
    injector.revert("region-isolate", "eu-west-1")
    assert model.cut == set()
    # A heal of an isolation this injector did not see (the one-off verbs) also reconnects.
    injector.revert("region-isolate", "ap-southeast-2")
    assert ("reconnect", "ap-southeast-2") in model.calls


def test_a_failed_fault_is_recorded_with_its_error_and_raised(tmp_path):
    log = tmp_path / "faults.jsonl"
    printed: list[str] = []
    injector = Injector(LinkModel(), FaultLog(log, echo=printed.append))
    with pytest.raises(FaultError, match=r"inject process-kill on eu-west-1/node-9: RuntimeError: no process named"):
        injector.inject("process-kill", "eu-west-1/node-9", {})
    (event,) = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert event["error"].startswith("RuntimeError") and event["phase"] == "inject"
    assert "FAILED" in printed[0] and "eu-west-1/node-9" in printed[0]
    assert injector.active == {}


def test_skew_reverts_to_zero_and_a_fault_cannot_be_injected_twice():
    model = LinkModel()
    injector = Injector(model, FaultLog(None, echo=None))
    injector.inject("clock-skew", "eu-west-1", {"ms": 60000})
    with pytest.raises(ValueError, match="already active"):
        injector.inject("clock-skew", "eu-west-1", {"ms": 1})
    injector.revert_all()
    assert model.calls == [("skew", "eu-west-1", 60000), ("skew", "eu-west-1", 0)]


# --- windowed lag from cumulative buckets -------------------------------------------------

BOUNDS = [1.0, 10.0, 100.0, 1000.0, 5000.0, float("inf")]


def _cumulative(counts: list[int]) -> list[tuple[float, float]]:
    total, out = 0, []
    for bound, n in zip(BOUNDS, counts):
        total += n
        out.append((bound, float(total)))
    return out


def test_window_percentiles_come_from_the_bucket_differences():
    before = _cumulative([10, 0, 0, 0, 0, 0])
    now = _cumulative([10, 90, 9, 1, 0, 0])  # this window: 90 <= 10 ms, 9 <= 100 ms, 1 <= 1000 ms
    figures = sampler.window_figures(before, now, 0.9, 640.0)
    assert figures == {"count": 100, "p50_ms": 10.0, "p99_ms": 100.0, "max_ms": 640.0}  # max grew: exact


def test_a_window_above_the_last_bucket_reports_the_maximum_and_an_empty_window_nothing():
    before = _cumulative([5, 5, 0, 0, 0, 0])
    now = _cumulative([5, 5, 0, 0, 0, 40])  # a backlog 10 s old
    assert sampler.window_figures(before, now, 9.0, 10212.0) == {
        "count": 40, "p50_ms": 10212.0, "p99_ms": 10212.0, "max_ms": 10212.0,
    }  # fmt: skip
    assert sampler.window_figures(now, now, 10212.0, 10212.0) == {
        "count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None,
    }  # fmt: skip
    # The cumulative max did not grow: the window's max is its highest bucket's bound.
    later = _cumulative([5, 7, 0, 0, 0, 40])
    assert sampler.window_figures(now, later, 10212.0, 10212.0)["max_ms"] == 10.0


def test_buckets_are_read_from_metrics_text_for_one_table():
    text = "\n".join([
        "# HELP meridian_replication_latency_ms x", "# TYPE meridian_replication_latency_ms histogram",
        'meridian_replication_latency_ms_bucket{ReceivingRegion="b",SendingRegion="a",TableName="t",le="1.0"} 2.0',
        'meridian_replication_latency_ms_bucket{ReceivingRegion="b",SendingRegion="a",TableName="t",le="+Inf"} 3.0',
        'meridian_replication_latency_ms_count{ReceivingRegion="b",SendingRegion="a",TableName="t"} 3.0',
        'meridian_replication_latency_ms_sum{ReceivingRegion="b",SendingRegion="a",TableName="t"} 9.0',
        'meridian_replication_latency_ms_bucket{ReceivingRegion="b",SendingRegion="a",TableName="u",le="1.0"} 7.0',
    ]) + "\n"  # fmt: skip
    assert sampler._buckets(text, "t") == {"a": [(1.0, 2.0), (float("inf"), 3.0)]}


# --- fault windows and catch-up figures ------------------------------------------------------


def _event(t, phase, fault="link-cut", target="a<->b", took_ms=0.0, error=None):
    return {"t": t, "fault": fault, "target": target, "phase": phase, "args": {}, "took_ms": took_ms, "error": error}


def test_fault_windows_pair_injections_with_reverts_and_skip_failures():
    events = [_event(10, "inject"), _event(12, "inject", "process-kill", "a/node-0"),
              _event(15, "revert", took_ms=500), _event(16, "inject", "clock-skew", "a", error="boom"),
              _event(18, "inject")]  # fmt: skip
    assert checks.fault_windows(events, 30) == [
        ("link-cut", "a<->b", 10, 15.5), ("process-kill", "a/node-0", 12, 30), ("link-cut", "a<->b", 18, 30),
    ]  # fmt: skip
    assert checks.heal_time(events, 0) == 15.5
    assert checks.heal_time([_event(3, "inject")], 1.0) == 1.0


def _sample(t, pending, count=0, p99=None, window="delta", source="a", target="b"):
    return {"t": t, "source": source, "target": target, "table": "t", "p50_ms": p99, "p99_ms": p99, "max_ms": p99,
            "count": count, "pending": pending, "window": window}  # fmt: skip


def test_lag_figures_measure_the_backlog_its_drain_and_the_lag_after():
    samples = [
        _sample(1, 2, 20, 30), _sample(2, 3, 20, 40),  # before the fault: baseline backlog 3
        _sample(6, 150), _sample(8, 300),  # cut: backlog grows, nothing applied
        _sample(10, 310, 0), _sample(11, 40, 270, 9000), _sample(12, 2, 60, 80),  # healed at 10.5
        _sample(15, 1, 20, 60), _sample(16, 0, 20, 90),
    ]
    windows = [("link-cut", "a<->b", 5.0, 10.5)]
    figures = checks.lag_figures(samples, windows, healed=10.5, first_fault=5.0, settle_s=3)
    assert figures["pending_before_faults_max"] == 3
    assert figures["backlog_at_heal"] == 310
    assert figures["pending_peak"] == 310
    assert figures["catch_up_s"] == 1.5  # the first sample back at the baseline (t=12)
    assert figures["catch_up_changes_per_s"] == round((270 + 60) / 1.5, 1)
    assert figures["lag_peak_ms"] == 9000
    assert figures["lag_after_p99_max_ms"] == 90 and figures["lag_after_samples"] == 2


def test_a_replicator_that_does_not_answer_leaves_its_backlog_out_but_not_the_others():
    samples = [
        _sample(1, 1, 10, 20), _sample(1, 0, 10, 20, source="b", target="a"),
        _sample(6, None, 0, source="a", target="b"), _sample(6, 80, 0, source="b", target="a"),  # a's replicator down
        _sample(9, 200, 0), _sample(9, 90, 0, source="b", target="a"),  # back: a's own backlog shows
        _sample(10, 0, 290, 8000), _sample(10, 1, 90, 8000, source="b", target="a"),
    ]
    windows = [("process-kill", "a/replicator", 5.0, 8.5)]
    figures = checks.lag_figures(samples, windows, healed=8.5, first_fault=5.0, settle_s=3)
    assert figures["backlog_at_heal"] == 290 and figures["pending_peak"] == 290
    assert figures["catch_up_s"] == 1.5  # t=10: back at the baseline of 1
