"""The ``meridian chaos`` command line.

    meridian chaos run FILE|NAME --seed N [--cluster-dir D | --lab | --swarm] [--run-dir DIR] [--duration-scale F]
    meridian chaos list
    meridian chaos kill PROCESS                 SIGKILL (docker kill)
    meridian chaos restart PROCESS              start again (after kill), or stop and start
    meridian chaos pause PROCESS|REGION         SIGSTOP a process, or stop a region's replication
    meridian chaos resume PROCESS|REGION        undo pause
    meridian chaos cut A B [--one-way]          partition two regions
    meridian chaos heal A B [--one-way]         undo cut;  heal REGION: undo isolate
    meridian chaos slow A B --latency-ms X [--jitter-ms J] [--one-way]
    meridian chaos lossy A B --loss P [--one-way]
    meridian chaos isolate REGION [--no-real]   cut every link of a region
    meridian chaos skew REGION --ms N           offset a region's clocks (0 undoes it)

PROCESS is ``<region>/node-<i>``, ``<region>/router`` or ``<region>/replicator``.
The one-off verbs act on a running ``meridian up`` (``--cluster-dir``, default
``./meridian-cluster``, its ``--data-dir``) or on the Docker lab (``--lab``, or
``--swarm`` for its swarm stack: ``lab/chaos/swarm_target.py``);
each prints what it did with a timestamp, and with ``--run-dir`` also appends
it to that directory's ``faults.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meridian.cluster import limits
from meridian.lab.chaos.schema import FAULTS, ScenarioError, link_target, process_target

#: Where ``up`` keeps its data by default (``meridian up --data-dir``).
DEFAULT_CLUSTER_DIR = "./meridian-cluster"


def scenarios_dir() -> Path:
    """The shipped scenarios: ``deploy/scenarios`` of the source tree (or of the current directory)."""
    for candidate in (Path(__file__).resolve().parents[2] / "deploy" / "scenarios", Path("deploy") / "scenarios"):
        if candidate.is_dir():
            return candidate
    return Path("deploy") / "scenarios"


def _where(parser: argparse.ArgumentParser, *, default_cluster_dir: str | None) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--cluster-dir", metavar="D", default=default_cluster_dir,
        help="a running `meridian up --data-dir D` (its D/up.json)"
        + (f" (default {default_cluster_dir})" if default_cluster_dir else
           "; default: start a meridian up of the run's own and stop it afterwards"),
    )  # fmt: skip
    group.add_argument("--lab", action="store_true", help="the Docker lab (meridian lab up)")
    group.add_argument("--swarm", action="store_true", help="the Docker lab as a swarm stack (meridian lab up --swarm)")


def add_arguments(sub: argparse._SubParsersAction) -> None:
    chaos = sub.add_parser(
        "chaos", help="inject faults; run chaos scenarios and check what survives",
        description=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    verbs = chaos.add_subparsers(dest="chaos_command", required=True)

    p = verbs.add_parser("run", help="run a scenario (YAML) under load, then check it")
    p.add_argument("scenario", help="a scenario file, or the name of a shipped one (meridian chaos list)")
    p.add_argument("--seed", type=int, required=True, help="fault times, targets and the workload follow from it")
    _where(p, default_cluster_dir=None)
    p.add_argument("--run-dir", type=Path, help="where the run's files go (default meridian-runs/<name>-seed<N>-<time>)")
    p.add_argument("--duration-scale", type=float, default=1.0,
                   help="multiply every time of the scenario (e.g. 5 for a longer run; default 1)")

    verbs.add_parser("list", help="the shipped scenarios").add_argument("--dir", type=Path, help="another directory")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        q = verbs.add_parser(name, help=text)
        _where(q, default_cluster_dir=DEFAULT_CLUSTER_DIR)
        q.add_argument("--run-dir", type=Path, help="also append what was done to DIR/faults.jsonl")
        return q

    verb("kill", "SIGKILL a process (docker kill)").add_argument("process")
    verb("restart", "start a process again (same arguments and data)").add_argument("process")
    verb("pause", "freeze a process (SIGSTOP), or stop a region's replication").add_argument("what", metavar="PROCESS|REGION")
    verb("resume", "undo pause").add_argument("what", metavar="PROCESS|REGION")
    for name, text in (("cut", "partition two regions"), ("heal", "undo cut (or, with one region, undo isolate)"),
                       ("slow", "set a link's latency"), ("lossy", "set a link's loss")):  # fmt: skip
        q = verb(name, text)
        q.add_argument("a", metavar="A" if name != "heal" else "A|REGION")
        q.add_argument("b", metavar="B", nargs="?" if name == "heal" else None)
        q.add_argument("--one-way", action="store_true", help="only A -> B")
        if name == "slow":
            q.add_argument("--latency-ms", type=float, required=True)
            q.add_argument("--jitter-ms", type=float, default=0.0)
        if name == "lossy":
            q.add_argument("--loss", type=float, required=True, help=f"share of transmissions lost, 0 to {limits.LINK_LOSS_ARG_MAX:g}")
    q = verb("isolate", "cut every link of a region")
    q.add_argument("region")
    q.add_argument("--no-real", action="store_true", help="in the Docker lab, do not disconnect the network too")
    q = verb("skew", "offset a region's hybrid clocks")
    q.add_argument("region")
    q.add_argument("--ms", type=int, required=True, help="milliseconds (negative: behind; 0 undoes a skew)")


def run(ns: argparse.Namespace) -> int:
    try:
        if ns.chaos_command == "run":
            return _run_scenario(ns)
        if ns.chaos_command == "list":
            return _list(ns.dir or scenarios_dir())
        return _one_off(ns)
    except ScenarioError as error:
        print(f"meridian chaos: {error}", file=sys.stderr)
        return 2


def _scenario_path(text: str) -> Path:
    path = Path(text)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in text:
        return path
    return scenarios_dir() / f"{text}.yaml"


def _run_scenario(ns: argparse.Namespace) -> int:
    from meridian.lab.chaos import runner, scenario
    from meridian.lab.chaos.targets import TargetError

    loaded = scenario.load(_scenario_path(ns.scenario)).scaled(ns.duration_scale)
    run_dir = ns.run_dir or runner.default_run_dir(loaded, ns.seed)
    try:
        return runner.run(loaded, ns.seed, run_dir, lab=ns.lab, cluster_dir=ns.cluster_dir, swarm=ns.swarm)
    except TargetError as error:
        print(f"meridian chaos: {error}", file=sys.stderr)
        return 2


def _list(directory: Path) -> int:
    from meridian.lab.chaos import scenario

    files = scenario.scenario_files(directory)
    if not files:
        print(f"no scenarios in {directory}", file=sys.stderr)
        return 1
    for path in files:
        try:
            loaded = scenario.load(path)
        except ScenarioError as error:
            print(f"{path.stem:<20} INVALID: {error}")
            continue
        faults = sorted({step.fault for step in loaded.timeline})
        first = loaded.description.split(". ")[0].rstrip(".")
        print(f"{loaded.name:<20} {loaded.duration_s:>4g} s  {', '.join(faults):<40} {first}")
    print(f"(in {directory}; run one: meridian chaos run NAME --seed N)")
    return 0


def _one_off(ns: argparse.Namespace) -> int:
    from meridian.lab.chaos.faults import FaultError, FaultLog, Injector
    from meridian.lab.chaos.targets import LabTarget, TargetError, UpTarget

    try:
        if ns.swarm:
            from meridian.lab.chaos.swarm_target import SwarmTarget

            target = SwarmTarget()
        else:
            target = LabTarget() if ns.lab else UpTarget(ns.cluster_dir)
    except TargetError as error:
        print(f"meridian chaos: {error}", file=sys.stderr)
        return 2
    with target:
        regions = list(target.regions)
        run_dir = ns.run_dir
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
        injector = Injector(target, FaultLog(run_dir / "faults.jsonl" if run_dir else None))
        try:
            phase, fault, subject, args = _what(ns, regions, target)
            if phase == "inject":
                injector.inject(fault, subject, args)
            else:
                injector.revert(fault, subject, args)
        except (FaultError, TargetError) as error:
            print(f"meridian chaos: {error}", file=sys.stderr)
            return 1
        if FAULTS[fault].target == "process":
            state = next((p["state"] for p in target.processes() if p["name"] == subject), "?")
            print(f"{subject}: {state}")
    return 0


def _what(ns: argparse.Namespace, regions: list[str], target) -> tuple[str, str, str, dict]:
    """(phase, fault, target, args) of a one-off verb."""
    verb = ns.chaos_command
    if verb == "kill":
        return "inject", "process-kill", process_target(ns.process, regions, "process"), {}
    if verb == "restart":
        name = process_target(ns.process, regions, "process")
        state = next((p["state"] for p in target.processes() if p["name"] == name), None)
        if state is None:
            raise ScenarioError(f"no process {name!r} in this cluster")
        # After a kill, a restart is its revert; otherwise a restart of its own.
        return ("revert", "process-kill", name, {}) if state in ("killed", "exited") else ("inject", "process-restart", name, {})
    if verb in ("pause", "resume"):
        phase = "inject" if verb == "pause" else "revert"
        if "/" in ns.what:
            return phase, "process-pause", process_target(ns.what, regions, "process"), {}
        if ns.what not in regions:
            raise ScenarioError(f"{ns.what!r} is neither a process (<region>/<role>) nor one of the regions {', '.join(regions)}")
        return phase, "replication-pause", ns.what, {}
    if verb == "isolate":
        if ns.region not in regions:
            raise ScenarioError(f"{ns.region!r} is not one of the regions {', '.join(regions)}")
        return "inject", "region-isolate", ns.region, {"real": not ns.no_real}
    if verb == "skew":
        if ns.region not in regions:
            raise ScenarioError(f"{ns.region!r} is not one of the regions {', '.join(regions)}")
        return ("revert", "clock-skew", ns.region, {}) if ns.ms == 0 else ("inject", "clock-skew", ns.region, {"ms": ns.ms})
    if verb == "heal" and ns.b is None:
        if ns.a not in regions:
            raise ScenarioError(f"{ns.a!r} is not one of the regions {', '.join(regions)}")
        return "revert", "region-isolate", ns.a, {}
    link = link_target(f"{ns.a}{'->' if ns.one_way else '<->'}{ns.b}", regions, "link")
    if verb == "cut":
        return "inject", "link-cut", link, {}
    if verb == "heal":
        return "revert", "link-cut", link, {}
    if verb == "slow":
        if ns.latency_ms < 0 or ns.jitter_ms < 0:
            raise ScenarioError("--latency-ms and --jitter-ms must not be negative")
        return "inject", "link-slow", link, {"latency_ms": ns.latency_ms, "jitter_ms": ns.jitter_ms}
    if verb == "lossy":
        if not 0 <= ns.loss <= limits.LINK_LOSS_ARG_MAX:
            raise ScenarioError(f"--loss must be between 0 and {limits.LINK_LOSS_ARG_MAX:g}, got {ns.loss:g}")
        return "inject", "link-lossy", link, {"loss": ns.loss}
    raise AssertionError(verb)
