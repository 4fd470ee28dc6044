"""Chaos scenarios: small YAML files, validated, scaled in time, and planned from a seed.

A scenario (``deploy/scenarios/*.yaml``)::

    name: region-partition
    description: ...
    regions: [us-east-1, eu-west-1, ap-southeast-2]
    nodes_per_region: 1        # only for the cluster chaos starts itself
    duration_s: 30             # the timeline; the workload runs inside it
    workload:                  # meridian.lab.load.WorkloadSpec fields
      duration_s: 24
      rate_per_s: 60
      keys: 300
      write_ratio: 0.6
      conflict_keys: 0
      item_bytes: 100
      visibility_probe_every: 20
    table:                     # optional: the table's billing (default on-demand)
      billing_mode: PROVISIONED
      read_capacity: 100
      write_capacity: 20000
    timeline:
      - at_s: 6
        jitter_s: 2            # the fault (and its revert) move by U(0, jitter_s), seeded
        fault: region-isolate
        target: ap-southeast-2
        revert_at_s: 16        # optional; without it the fault stays until the run's end
        repeat: {count: 3, every_s: 5}   # optional: the same step again every every_s
    checks:
      no-acknowledged-write-lost: {}
      convergence: {timeout_s: 30}
      lag-bound: {max_ms: 2000, settle_s: 3}
      availability: {max_error_rate: 0.02, regions: all}

Fault and check names and their arguments are in ``schema.py``.  The plan
(``plan``) is a pure function of the scenario, the process names and the
RNG: the same seed gives the same fault times and targets.
"""

from __future__ import annotations

import fnmatch
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from meridian.cluster import limits
from meridian.cluster.limits import SCENARIO_BYTES_MAX  # also read here by tests
from meridian.lab.chaos.schema import CHECKS, FAULTS, ScenarioError, check_args, process_region, process_role, target_of
from meridian.lab.load.spec import BILLING_MODES, TableBilling


#: The WorkloadSpec fields a scenario may set, with their type and lower bound.
WORKLOAD_FIELDS: dict[str, tuple[type, float]] = {
    "duration_s": (float, 0.0),
    "rate_per_s": (float, 0.0),
    "keys": (int, 1),
    "write_ratio": (float, 0.0),
    "conflict_keys": (int, 0),
    "item_bytes": (int, 1),
    "visibility_probe_every": (int, 0),
}
_REQUIRED_WORKLOAD = ("duration_s", "rate_per_s", "keys", "write_ratio")
_TOP_LEVEL = ("name", "description", "regions", "nodes_per_region", "duration_s", "workload", "table", "timeline", "checks")
#: The table settings a scenario may give (``TableBilling``).
_TABLE_KEYS = ("billing_mode", "read_capacity", "write_capacity")
_STEP_KEYS = ("at_s", "fault", "target", "args", "revert_at_s", "jitter_s", "repeat")


@dataclass(frozen=True)
class Step:
    """One timeline entry as written (``repeat`` not yet expanded)."""

    at_s: float
    fault: str
    target: str
    args: dict
    revert_at_s: float | None = None
    jitter_s: float = 0.0
    repeat_count: int = 1
    repeat_every_s: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    regions: list[str]
    nodes_per_region: int
    duration_s: float
    workload: dict
    timeline: list[Step]
    checks: dict[str, dict]
    source: str = ""
    table: TableBilling = field(default_factory=TableBilling)

    def scaled(self, factor: float) -> Scenario:
        """Every time of the scenario multiplied by ``factor`` (``--duration-scale``)."""
        if not 0 < factor <= limits.DURATION_SCALE_MAX:
            raise ScenarioError(f"--duration-scale must be in (0, {limits.DURATION_SCALE_MAX:g}], got {factor:g}")
        if factor == 1:
            return self
        steps = [
            replace(
                s, at_s=s.at_s * factor, jitter_s=s.jitter_s * factor, repeat_every_s=s.repeat_every_s * factor,
                revert_at_s=None if s.revert_at_s is None else s.revert_at_s * factor,
            )
            for s in self.timeline
        ]  # fmt: skip
        workload = {**self.workload, "duration_s": self.workload["duration_s"] * factor}
        return replace(self, duration_s=self.duration_s * factor, workload=workload, timeline=steps)


@dataclass(frozen=True, order=True)
class Action:
    """One thing to do at ``t_s`` seconds into the run: inject or revert one fault."""

    t_s: float
    order: int  # reverts before injections at the same instant, then in file order
    phase: str = field(compare=False)  # "inject" | "revert"
    fault: str = field(compare=False)
    target: str = field(compare=False)
    args: dict = field(compare=False, default_factory=dict)


# --- loading and validation ----------------------------------------------------


def load(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > SCENARIO_BYTES_MAX:
        raise ScenarioError(f"{path}: larger than {SCENARIO_BYTES_MAX} bytes; a scenario is a small file")
    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse(document, source=str(path))


def _number(value: object, where: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
        raise ScenarioError(f"{where}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{where}: must be at least {minimum:g}, got {value:g}")
    return int(value) if integer else float(value)


def parse(document: object, source: str = "") -> Scenario:
    """A scenario from its parsed YAML; ``ScenarioError`` naming the first problem."""
    where = source or "scenario"
    if not isinstance(document, dict):
        raise ScenarioError(f"{where}: expected a mapping at the top level")
    unknown = sorted(set(document) - set(_TOP_LEVEL))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(_TOP_LEVEL)}")
    for key in ("name", "regions", "duration_s", "workload"):
        if key not in document:
            raise ScenarioError(f"{where}: {key!r} is required")
    name = document["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ScenarioError(f"{where}.name: letters, digits, '-', '_' or '.', got {name!r}")
    regions = document["regions"]
    if (
        not isinstance(regions, list) or len(regions) < 2 or not all(isinstance(r, str) and r for r in regions)
        or len(set(regions)) != len(regions)
    ):  # fmt: skip
        raise ScenarioError(f"{where}.regions: at least two distinct region names, got {regions!r}")
    nodes = int(_number(document.get("nodes_per_region", 1), f"{where}.nodes_per_region", minimum=1, integer=True))
    duration_s = _number(document["duration_s"], f"{where}.duration_s")
    if not 0 < duration_s <= limits.SCENARIO_DURATION_S_MAX:
        raise ScenarioError(f"{where}.duration_s: must be in (0, {limits.SCENARIO_DURATION_S_MAX:g}], got {duration_s:g}")
    workload = _parse_workload(document["workload"], f"{where}.workload", duration_s)
    timeline = _parse_timeline(document.get("timeline") or [], f"{where}.timeline", regions, duration_s)
    checks = _parse_checks(document.get("checks") or {}, f"{where}.checks", regions)
    table = _parse_table(document.get("table") or {}, f"{where}.table")
    description = document.get("description") or ""
    if not isinstance(description, str):
        raise ScenarioError(f"{where}.description: expected text")
    return Scenario(
        name, description.strip(), list(regions), nodes, duration_s, workload, timeline, checks, source, table
    )  # fmt: skip


def _parse_table(value: object, where: str) -> TableBilling:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping")
    unknown = sorted(set(value) - set(_TABLE_KEYS))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(_TABLE_KEYS)}")
    mode = value.get("billing_mode", "PAY_PER_REQUEST")
    if mode not in BILLING_MODES:
        raise ScenarioError(f"{where}.billing_mode: {' or '.join(BILLING_MODES)}, got {mode!r}")
    units = {
        key: int(_number(value[key], f"{where}.{key}", minimum=1, integer=True))
        for key in ("read_capacity", "write_capacity") if key in value
    }  # fmt: skip
    try:
        return TableBilling(mode, units.get("read_capacity"), units.get("write_capacity"))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _parse_workload(value: object, where: str, duration_s: float) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping")
    unknown = sorted(set(value) - set(WORKLOAD_FIELDS))
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; known: {', '.join(WORKLOAD_FIELDS)}")
    missing = [k for k in _REQUIRED_WORKLOAD if k not in value]
    if missing:
        raise ScenarioError(f"{where}: {', '.join(missing)} required")
    out = {}
    for key, given in value.items():
        kind, minimum = WORKLOAD_FIELDS[key]
        out[key] = _number(given, f"{where}.{key}", minimum=minimum, integer=kind is int)
    if not 0 < out["duration_s"] <= duration_s:
        raise ScenarioError(f"{where}.duration_s: must be in (0, duration_s={duration_s:g}], got {out['duration_s']:g}")
    if out["rate_per_s"] <= 0:
        raise ScenarioError(f"{where}.rate_per_s: must be positive")
    if out["write_ratio"] > 1:
        raise ScenarioError(f"{where}.write_ratio: must be at most 1, got {out['write_ratio']:g}")
    return out


def _parse_timeline(value: object, where: str, regions: list[str], duration_s: float) -> list[Step]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: expected a list of steps")
    steps = []
    expanded = 0
    for i, entry in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ScenarioError(f"{here}: expected a mapping")
        unknown = sorted(set(entry) - set(_STEP_KEYS))
        if unknown:
            raise ScenarioError(f"{here}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(_STEP_KEYS)}")
        for key in ("at_s", "fault", "target"):
            if key not in entry:
                raise ScenarioError(f"{here}: {key!r} is required")
        shape = FAULTS.get(entry["fault"])
        if shape is None:
            raise ScenarioError(f"{here}.fault: unknown fault {entry['fault']!r}; known: {', '.join(FAULTS)}")
        target = target_of(shape, entry["target"], regions, f"{here}.target")
        args = check_args(shape.args, entry.get("args"), f"{here}.args")
        at_s = _number(entry["at_s"], f"{here}.at_s")
        jitter_s = _number(entry.get("jitter_s", 0), f"{here}.jitter_s")
        revert_at_s = None
        if entry.get("revert_at_s") is not None:
            if not shape.reversible:
                raise ScenarioError(f"{here}.revert_at_s: {shape.name} cannot be reverted")
            revert_at_s = _number(entry["revert_at_s"], f"{here}.revert_at_s")
            if revert_at_s <= at_s:
                raise ScenarioError(f"{here}.revert_at_s: must come after at_s={at_s:g}, got {revert_at_s:g}")
        count, every_s = _parse_repeat(entry.get("repeat"), f"{here}.repeat")
        last_end_s = (revert_at_s if revert_at_s is not None else at_s) + (count - 1) * every_s + jitter_s
        if last_end_s >= duration_s:
            raise ScenarioError(
                f"{here}: its last {'revert' if revert_at_s is not None else 'injection'} may come at "
                f"{last_end_s:g} s (with repeats and jitter), not before the end of the run at duration_s={duration_s:g}"
            )
        if count > 1:
            span_s = (revert_at_s - at_s) if revert_at_s is not None else 0.0
            if span_s + jitter_s > every_s:
                raise ScenarioError(
                    f"{here}.repeat.every_s: a repetition must start after the previous one ended; "
                    f"{every_s:g} s < {span_s:g} s of fault + {jitter_s:g} s of jitter"
                )
        expanded += count
        if expanded > limits.TIMELINE_STEPS_MAX:
            raise ScenarioError(f"{where}: more than {limits.TIMELINE_STEPS_MAX} steps once repeats are expanded")
        steps.append(Step(at_s, shape.name, target, args, revert_at_s, jitter_s, count, every_s))
    return steps


def _parse_repeat(value: object, where: str) -> tuple[int, float]:
    if value is None:
        return 1, 0.0
    if not isinstance(value, dict) or set(value) != {"count", "every_s"}:
        raise ScenarioError(f"{where}: expected {{count: N, every_s: S}}, got {value!r}")
    count = int(_number(value["count"], f"{where}.count", minimum=1, integer=True))
    every_s = _number(value["every_s"], f"{where}.every_s")
    if count > 1 and every_s <= 0:
        raise ScenarioError(f"{where}.every_s: must be positive")
    return count, every_s


def _parse_checks(value: object, where: str, regions: list[str]) -> dict[str, dict]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping of check name to arguments")
    out = {}
    for name, given in value.items():
        shape = CHECKS.get(name)
        if shape is None:
            raise ScenarioError(f"{where}: unknown check {name!r}; known: {', '.join(CHECKS)}")
        args = check_args(shape.args, given, f"{where}.{name}")
        if name == "availability":
            chosen = args["regions"]
            if isinstance(chosen, list):
                bad = [r for r in chosen if r not in regions]
                if bad or not chosen:
                    raise ScenarioError(f"{where}.{name}.regions: not regions of this scenario: {bad or chosen}")
            elif chosen not in ("all", "unfaulted"):
                raise ScenarioError(f"{where}.{name}.regions: all, unfaulted or a list of regions, got {chosen!r}")
        if name == "lww-winner" and args["region"] not in regions:
            raise ScenarioError(f"{where}.{name}.region: {args['region']!r} is not one of the regions")
        out[name] = args
    return out


# --- planning ------------------------------------------------------------------


def plan(scenario: Scenario, rng: random.Random, process_names: list[str]) -> list[Action]:
    """The run's actions, in time order, drawn from ``rng`` (jitter, ``node-*`` choices).

    ``process_names`` are the processes of the cluster the run acts on; a
    process target must name one of them (or match one with ``*``).
    """
    actions = []
    order = 0
    for i, step in enumerate(scenario.timeline):
        for repetition in range(step.repeat_count):
            shift_s = repetition * step.repeat_every_s + (rng.uniform(0, step.jitter_s) if step.jitter_s else 0.0)
            target = step.target
            if FAULTS[step.fault].target == "process":
                target = _resolve_process(step.target, process_names, rng, f"timeline[{i}].target")
            order += 1
            actions.append(Action(step.at_s + shift_s, 2 * order + 1, "inject", step.fault, target, step.args))
            if step.revert_at_s is not None:
                actions.append(Action(step.revert_at_s + shift_s, 2 * order, "revert", step.fault, target, step.args))
    return sorted(actions, key=lambda a: (a.t_s, 0 if a.phase == "revert" else 1, a.order))


def _resolve_process(pattern: str, process_names: list[str], rng: random.Random, where: str) -> str:
    if "*" not in pattern:
        if pattern not in process_names:
            raise ScenarioError(f"{where}: no process {pattern!r} in this cluster; it has {', '.join(process_names)}")
        return pattern
    matches = sorted(n for n in process_names if fnmatch.fnmatchcase(n, pattern))
    if not matches:
        raise ScenarioError(f"{where}: no process matches {pattern!r}; the cluster has {', '.join(process_names)}")
    return rng.choice(matches)


def faulted_regions(actions: list[Action]) -> set[str]:
    """Regions where a fault hits what clients talk to: a node or router process fault.

    ``availability`` with ``regions: unfaulted`` leaves them out; a killed
    replicator or a cut link is not a client-facing fault (the region serves on).
    """
    return {
        process_region(a.target) for a in actions
        if FAULTS[a.fault].target == "process" and process_role(a.target) in ("node", "router")
    }  # fmt: skip


def scenario_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())
