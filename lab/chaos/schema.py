"""The vocabulary of chaos: every fault and check by name, with the shape of its arguments.

Scenario files (``scenario.py``), the one-off verbs (``cli.py``), the code
that injects faults (``faults.py``) and the checks (``checks.py``) all take
their names from here, so a name means one thing everywhere and a typo in a
scenario is refused before anything runs.

Fault targets come in three kinds:

* ``process``  ``<region>/node-<i>``, ``<region>/router``, ``<region>/replicator``
               (in a scenario ``<region>/node-*`` picks one node with the seeded RNG);
* ``link``     ``A<->B`` (both directions) or ``A->B`` (one direction);
               a scenario may also write ``[A, B]``;
* ``region``   a region name.

``hot-key`` is a fault of the load rather than of the cluster: it makes one
region's workload concentrate on a few keys (``meridian.lab.load``'s Zipf
key distribution) until it is reverted, so a scenario can show a hot
partition throttled while the same rate spread over every key is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meridian.cluster import limits
from meridian.lab.load.spec import ZIPF_S_MAX, ZIPF_S_MIN

#: The ``throttles`` check's default grace after a hot key is reverted: the
#: drained partition may still owe what its last admitted writes overdrew.
THROTTLES_SETTLE_S = 2.0

PROCESS_ROLES = ("node", "router", "replicator")
_PROCESS_NAME = re.compile(r"^(?P<region>[A-Za-z0-9_.-]+)/(?P<role>node-(?:\d+|\*)|router|replicator)$")


class ScenarioError(ValueError):
    """A scenario (or a one-off fault) that does not make sense; says where."""


@dataclass(frozen=True)
class Arg:
    """One argument: its type, whether it must be given, its default and bounds."""

    kind: type
    required: bool = False
    default: object = None
    min: float | None = None
    max: float | None = None
    help: str = ""


@dataclass(frozen=True)
class FaultShape:
    name: str
    target: str  # "process" | "link" | "region"
    reversible: bool
    help: str
    args: dict[str, Arg] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckShape:
    name: str
    help: str
    args: dict[str, Arg] = field(default_factory=dict)


_ONE_WAY = Arg(bool, default=False, help="only the direction A -> B (same as writing A->B)")

FAULTS: dict[str, FaultShape] = {
    shape.name: shape
    for shape in (
        FaultShape("process-kill", "process", True, "SIGKILL a process (docker kill); revert: restart it"),
        FaultShape("process-restart", "process", False, "stop a process and start it again (same arguments and data)"),
        FaultShape("process-pause", "process", True, "freeze a process (SIGSTOP, docker pause); revert: resume it"),
        FaultShape("link-cut", "link", True, "partition two regions on the simulated link; revert: heal",
                   {"one_way": _ONE_WAY}),
        FaultShape("link-slow", "link", True, "add latency (and jitter) to a link; revert: the conditions before",
                   {"latency_ms": Arg(float, required=True, min=0.0), "jitter_ms": Arg(float, default=0.0, min=0.0),
                    "one_way": _ONE_WAY}),
        FaultShape("link-lossy", "link", True, "lose a share of transmissions on a link; revert: the conditions before",
                   {"loss": Arg(float, required=True, min=0.0, max=limits.LINK_LOSS_ARG_MAX), "one_way": _ONE_WAY}),
        FaultShape("region-isolate", "region", True,
                   "cut every link of a region (in the Docker lab also disconnect its replicator from the "
                   "inter-region network); revert: heal them",
                   {"real": Arg(bool, default=True, help="in the Docker lab, also a real network disconnect")}),
        FaultShape("clock-skew", "region", True, "offset a region's hybrid clocks; revert: skew 0",
                   {"ms": Arg(int, required=True, help="milliseconds added (negative: behind)")}),
        FaultShape("replication-pause", "region", True, "stop replication to and from a region; revert: resume"),
        FaultShape("hot-key", "region", True,
                   "draw a region's workload keys from a Zipf distribution (its first keys hot, at the same rate); "
                   "revert: the workload's own distribution",
                   {"zipf_s": Arg(float, required=True, min=ZIPF_S_MIN, max=ZIPF_S_MAX,
                                  help="the exponent: the larger, the hotter the first keys")}),
    )
}  # fmt: skip

CHECKS: dict[str, CheckShape] = {
    shape.name: shape
    for shape in (
        CheckShape("no-acknowledged-write-lost",
                   "every region holds each key's last acknowledged version, or a later one"),
        CheckShape("convergence", "every region holds identical contents (meridian verify)",
                   {"timeout_s": Arg(float, default=limits.CONVERGENCE_TIMEOUT_S, min=0.0,
                                     help="how long replicas may take to agree")}),
        CheckShape("lag-bound", "after the last heal the backlog drains and replication lag is back under max_ms",
                   {"max_ms": Arg(float, required=True, min=0.0, help="p99 replication latency allowed once caught up"),
                    "settle_s": Arg(float, default=limits.LAG_BOUND_SETTLE_S, min=0.0,
                                    help="time after the heal never held to max_ms"),
                    "catch_up_max_s": Arg(float, min=0.0, help="the backlog must drain within this after the heal")}),
        CheckShape("availability", "error rate per region while faults are active stays under max_error_rate",
                   {"max_error_rate": Arg(float, default=limits.AVAILABILITY_ERROR_RATIO_MAX, min=0.0, max=1.0),
                    "regions": Arg(object, default="all",
                                   help="all | unfaulted (no process fault in it) | a list of regions")}),
        CheckShape("throttles",
                   "requests are throttled only in a hot-key fault's region while it is active, and there at least "
                   "min_throttled times",
                   {"min_throttled": Arg(int, default=1, min=0, help="throttles each hot-key window must see"),
                    "settle_s": Arg(float, default=THROTTLES_SETTLE_S, min=0.0,
                                    help="time after a revert whose throttles still count as the hot key's")}),
        CheckShape("lww-winner",
                   "on keys every region writes, the given region's write wins everywhere (clock-skew demo)",
                   {"region": Arg(str, required=True, help="the region whose writes must win")}),
    )
}  # fmt: skip


def check_args(shape_args: dict[str, Arg], given: object, where: str) -> dict:
    """``given`` validated against ``shape_args``, defaults filled in."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ScenarioError(f"{where}: expected a mapping of arguments, got {type(given).__name__}")
    unknown = sorted(set(given) - set(shape_args))
    if unknown:
        raise ScenarioError(f"{where}: unknown argument(s) {', '.join(unknown)}; known: {', '.join(shape_args) or 'none'}")
    out = {}
    for name, arg in shape_args.items():
        if name not in given:
            if arg.required:
                raise ScenarioError(f"{where}: argument {name!r} is required")
            if arg.default is not None:
                out[name] = arg.default
            continue
        value = given[name]
        if arg.kind is bool:
            if not isinstance(value, bool):
                raise ScenarioError(f"{where}.{name}: expected true or false, got {value!r}")
        elif arg.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (arg.kind is int and value != int(value)):
                raise ScenarioError(f"{where}.{name}: expected {'an integer' if arg.kind is int else 'a number'}, got {value!r}")
            value = arg.kind(value)
            if arg.min is not None and value < arg.min:
                raise ScenarioError(f"{where}.{name}: must be at least {arg.min:g}, got {value:g}")
            if arg.max is not None and value > arg.max:
                raise ScenarioError(f"{where}.{name}: must be at most {arg.max:g}, got {value:g}")
        elif arg.kind is str and not isinstance(value, str):
            raise ScenarioError(f"{where}.{name}: expected a string, got {value!r}")
        out[name] = value
    return out


def link_target(value: object, regions: list[str], where: str) -> str:
    """``[A, B]``, ``A<->B`` or ``A->B`` as the canonical ``A<->B`` / ``A->B``."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, str) for v in value):
            raise ScenarioError(f"{where}: a link is two region names, got {value!r}")
        a, b, arrow = value[0], value[1], "<->"
    elif isinstance(value, str) and ("<->" in value or "->" in value):
        arrow = "<->" if "<->" in value else "->"
        a, _, b = (part.strip() for part in value.partition(arrow))
    else:
        raise ScenarioError(f"{where}: a link is 'A<->B', 'A->B' or [A, B], got {value!r}")
    for region in (a, b):
        if region not in regions:
            raise ScenarioError(f"{where}: {region!r} is not one of the regions {', '.join(regions)}")
    if a == b:
        raise ScenarioError(f"{where}: a link joins two different regions, got {a!r} twice")
    return f"{a}{arrow}{b}"


def link_ends(target: str) -> tuple[str, str, bool]:
    """``A<->B`` -> (A, B, False); ``A->B`` -> (A, B, True) (one way)."""
    if "<->" in target:
        a, _, b = target.partition("<->")
        return a, b, False
    a, _, b = target.partition("->")
    return a, b, True


def region_target(value: object, regions: list[str], where: str) -> str:
    if not isinstance(value, str) or value not in regions:
        raise ScenarioError(f"{where}: expected one of the regions {', '.join(regions)}, got {value!r}")
    return value


def process_target(value: object, regions: list[str], where: str) -> str:
    """``<region>/node-<i>|node-*|router|replicator``, region checked."""
    match = _PROCESS_NAME.match(value) if isinstance(value, str) else None
    if match is None:
        raise ScenarioError(
            f"{where}: a process is <region>/node-<i>, <region>/node-*, <region>/router or <region>/replicator, "
            f"got {value!r}"
        )
    if match["region"] not in regions:
        raise ScenarioError(f"{where}: {match['region']!r} is not one of the regions {', '.join(regions)}")
    return value


def target_of(shape: FaultShape, value: object, regions: list[str], where: str) -> str:
    """A fault's target, validated and in canonical form."""
    if shape.target == "link":
        return link_target(value, regions, where)
    if shape.target == "region":
        return region_target(value, regions, where)
    return process_target(value, regions, where)


def process_region(name: str) -> str:
    return name.partition("/")[0]


def process_role(name: str) -> str:
    """``node``, ``router`` or ``replicator``."""
    return name.partition("/")[2].split("-")[0]
