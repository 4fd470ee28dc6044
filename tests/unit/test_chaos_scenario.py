"""Chaos scenarios: parsing, validation (each refusal names where), scaling, and the seeded plan."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
import yaml

from meridian.lab.chaos import scenario as sc
from meridian.lab.chaos.schema import CHECKS, FAULTS, ScenarioError

SCENARIOS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "scenarios"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
PROCESSES = [f"{r}/{p}" for r in REGIONS for p in ("node-0", "node-1", "replicator", "router")]

BASE = {
    "name": "demo",
    "description": "A demo. Second sentence.",
    "regions": REGIONS,
    "nodes_per_region": 2,
    "duration_s": 30,
    "workload": {"duration_s": 20, "rate_per_s": 50, "keys": 100, "write_ratio": 0.5},
    "timeline": [
        {"at_s": 5, "fault": "region-isolate", "target": "eu-west-1", "revert_at_s": 10},
        {"at_s": 12, "fault": "link-cut", "target": ["us-east-1", "ap-southeast-2"], "revert_at_s": 14,
         "jitter_s": 1, "repeat": {"count": 3, "every_s": 4}},
        {"at_s": 3, "fault": "process-kill", "target": "us-east-1/node-*", "revert_at_s": 8},
    ],
    "checks": {"convergence": {"timeout_s": 20}, "lag-bound": {"max_ms": 500}, "availability": None,
               "no-acknowledged-write-lost": {}},
}  # fmt: skip


def _with(**changes) -> dict:
    document = copy.deepcopy(BASE)
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        elif value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return document


_DELETE = object()


def test_a_valid_scenario_parses_with_defaults_filled_in():
    s = sc.parse(copy.deepcopy(BASE), source="demo.yaml")
    assert s.name == "demo" and s.regions == REGIONS and s.nodes_per_region == 2
    assert s.workload == {"duration_s": 20.0, "rate_per_s": 50.0, "keys": 100, "write_ratio": 0.5}
    assert [step.fault for step in s.timeline] == ["region-isolate", "link-cut", "process-kill"]
    cut = s.timeline[1]
    assert cut.target == "us-east-1<->ap-southeast-2" and cut.args == {"one_way": False}
    assert (cut.repeat_count, cut.repeat_every_s, cut.jitter_s) == (3, 4.0, 1.0)
    assert s.timeline[0].args == {"real": True}
    assert s.checks["convergence"] == {"timeout_s": 20.0}
    assert s.checks["lag-bound"] == {"max_ms": 500.0, "settle_s": 3.0}
    assert s.checks["availability"] == {"max_error_rate": 0.01, "regions": "all"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "has space"}, r"demo.yaml.name: letters, digits"),
        ({"regions": ["us-east-1"]}, r"regions: at least two distinct"),
        ({"regions": ["a", "a"]}, r"regions: at least two distinct"),
        ({"duration_s": 0}, r"duration_s: must be in \(0,"),
        ({"colour": "blue"}, r"unknown key\(s\) colour"),
        ({"workload__duration_s": 31}, r"workload.duration_s: must be in \(0, duration_s=30\]"),
        ({"workload__rate_per_s": 0}, r"workload.rate_per_s: must be positive"),
        ({"workload__write_ratio": 1.5}, r"workload.write_ratio: must be at most 1"),
        ({"workload__keys": 2.5}, r"workload.keys: expected an integer"),
        ({"workload__keys": _DELETE}, r"workload: keys required"),
        ({"workload__bogus": 1}, r"workload: unknown field\(s\) bogus"),
        ({"timeline__0__fault": "meteor"}, r"timeline\[0\].fault: unknown fault 'meteor'"),
        ({"timeline__0__target": "mars-1"}, r"timeline\[0\].target: expected one of the regions"),
        ({"timeline__1__target": ["us-east-1", "us-east-1"]}, r"timeline\[1\].target: a link joins two different"),
        ({"timeline__1__target": "us-east-1 eu-west-1"}, r"timeline\[1\].target: a link is 'A<->B'"),
        ({"timeline__2__target": "us-east-1/gateway"}, r"timeline\[2\].target: a process is"),
        ({"timeline__0__revert_at_s": 5}, r"timeline\[0\].revert_at_s: must come after at_s=5"),
        ({"timeline__0__revert_at_s": 30}, r"timeline\[0\]: its last revert may come at 30 s"),
        ({"timeline__0__args": {"ms": 5}}, r"timeline\[0\].args: unknown argument\(s\) ms"),
        ({"timeline__1__repeat": {"count": 3, "every_s": 2.5}}, r"timeline\[1\].repeat.every_s: a repetition must start"),
        ({"timeline__1__repeat": {"count": 9, "every_s": 4}}, r"timeline\[1\]: its last revert may come at 47 s"),
        ({"timeline__1__repeat": {"times": 3}}, r"timeline\[1\].repeat: expected \{count: N, every_s: S\}"),
        ({"checks__lag-bound": {}}, r"checks.lag-bound: argument 'max_ms' is required"),
        ({"checks__lag-bound": {"max_ms": -1}}, r"checks.lag-bound.max_ms: must be at least 0"),
        ({"checks__availability": {"regions": ["mars-1"]}}, r"checks.availability.regions: not regions"),
        ({"checks__availability": {"regions": "some"}}, r"checks.availability.regions: all, unfaulted"),
        ({"checks__speed": {}}, r"checks: unknown check 'speed'"),
        ({"checks__lww-winner": {"region": "mars-1"}}, r"checks.lww-winner.region: 'mars-1' is not one"),
    ],
)
def test_invalid_scenarios_are_refused_saying_where(changes, message):
    with pytest.raises(ScenarioError, match=message):
        sc.parse(_with(**changes), source="demo.yaml")


def test_a_clock_skew_needs_its_milliseconds_and_a_restart_cannot_be_reverted():
    skew = {"at_s": 1, "fault": "clock-skew", "target": "eu-west-1"}
    with pytest.raises(ScenarioError, match=r"timeline\[0\].args: argument 'ms' is required"):
        sc.parse(_with(timeline=[skew]))
    restart = {"at_s": 1, "fault": "process-restart", "target": "eu-west-1/router", "revert_at_s": 2}
    with pytest.raises(ScenarioError, match=r"process-restart cannot be reverted"):
        sc.parse(_with(timeline=[restart]))
    assert sc.parse(_with(timeline=[{**skew, "args": {"ms": -2500}}])).timeline[0].args == {"ms": -2500}


def test_the_plan_expands_repeats_orders_reverts_first_and_stays_inside_the_run():
    s = sc.parse(copy.deepcopy(BASE))
    actions = sc.plan(s, random.Random(7), PROCESSES)
    assert [a.t_s for a in actions] == sorted(a.t_s for a in actions)
    cuts = [a for a in actions if a.fault == "link-cut"]
    assert [a.phase for a in cuts] == ["inject", "revert"] * 3
    for inject, revert in zip(cuts[::2], cuts[1::2]):
        assert revert.t_s - inject.t_s == pytest.approx(2.0)  # jitter moves a repetition, not its length
    for i, inject in enumerate(cuts[::2]):
        assert 12 + 4 * i <= inject.t_s < 12 + 4 * i + 1
    kill = next(a for a in actions if a.fault == "process-kill")
    assert kill.target in ("us-east-1/node-0", "us-east-1/node-1")
    assert all(0 <= a.t_s < s.duration_s for a in actions)


def test_reverts_come_before_injections_at_the_same_instant():
    steps = [{"at_s": 2, "fault": "link-cut", "target": "us-east-1<->eu-west-1", "revert_at_s": 4,
              "repeat": {"count": 2, "every_s": 2}}]  # fmt: skip
    actions = sc.plan(sc.parse(_with(timeline=steps)), random.Random(0), PROCESSES)
    assert [(a.t_s, a.phase) for a in actions] == [(2, "inject"), (4, "revert"), (4, "inject"), (6, "revert")]


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    s = sc.parse(copy.deepcopy(BASE))

    def drawn(seed: int) -> list[tuple]:
        return [(a.t_s, a.phase, a.fault, a.target) for a in sc.plan(s, random.Random(seed), PROCESSES)]

    assert drawn(1) == drawn(1)
    assert any(drawn(1) != drawn(seed) for seed in range(2, 6))


def test_a_process_target_must_exist_in_the_cluster():
    s = sc.parse(_with(timeline=[{"at_s": 1, "fault": "process-kill", "target": "eu-west-1/node-2"}]))
    with pytest.raises(ScenarioError, match=r"no process 'eu-west-1/node-2' in this cluster"):
        sc.plan(s, random.Random(0), PROCESSES)
    s = sc.parse(_with(timeline=[{"at_s": 1, "fault": "process-pause", "target": "eu-west-1/node-*"}]))
    with pytest.raises(ScenarioError, match=r"no process matches 'eu-west-1/node-\*'"):
        sc.plan(s, random.Random(0), ["us-east-1/node-0"])


def test_scaling_multiplies_every_time_but_not_the_checks():
    s = sc.parse(copy.deepcopy(BASE)).scaled(3)
    assert s.duration_s == 90 and s.workload["duration_s"] == 60
    cut = s.timeline[1]
    assert (cut.at_s, cut.revert_at_s, cut.jitter_s, cut.repeat_every_s) == (36, 42, 3, 12)
    assert s.checks["lag-bound"]["max_ms"] == 500
    with pytest.raises(ScenarioError, match="--duration-scale"):
        s.scaled(0)


def test_unfaulted_regions_leave_out_node_and_router_faults_only():
    actions = [sc.Action(1, 1, "inject", "process-kill", "eu-west-1/node-0"),
               sc.Action(1, 2, "inject", "process-kill", "us-east-1/replicator"),
               sc.Action(1, 3, "inject", "region-isolate", "ap-southeast-2")]  # fmt: skip
    assert sc.faulted_regions(actions) == {"eu-west-1"}


@pytest.mark.parametrize("path", sorted(SCENARIOS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_is_valid_short_and_plans(path):
    s = sc.load(path)
    assert s.name == path.stem
    assert s.duration_s <= 40, "shipped scenarios must stay short enough for CI (use --duration-scale for more)"
    names = [f"{r}/{p}" for r in s.regions for p in (*(f"node-{i}" for i in range(s.nodes_per_region)), "router", "replicator")]
    actions = sc.plan(s, random.Random(1), names)
    assert actions and all(a.t_s < s.duration_s for a in actions)
    assert s.checks, "a scenario without checks proves nothing"
    assert set(s.checks) <= set(CHECKS) and {a.fault for a in actions} <= set(FAULTS)


def test_the_shipped_set_covers_the_promised_scenarios():
    assert {p.stem for p in SCENARIOS_DIR.glob("*.yaml")} >= {
        "region-partition", "node-kill", "replicator-crash", "clock-skew", "flapping-link",
    }


def test_a_file_that_is_not_yaml_or_too_big_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        sc.load(bad)
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({"description": "x" * (sc.SCENARIO_BYTES_MAX + 1)}))
    with pytest.raises(ScenarioError, match="larger than"):
        sc.load(big)
    with pytest.raises(ScenarioError, match="cannot read"):
        sc.load(tmp_path / "missing.yaml")
