"""Injecting and reverting faults, each one recorded with a timestamp.

``Injector`` carries out the faults named in ``schema.FAULTS`` on a target
(``targets.py``: a ``meridian up``, the Docker lab) and remembers what each
active fault needs to be undone: a slowed link's conditions before, whether
a region's replicator was really disconnected.  Every injection and revert,
failed ones included, is one line of ``faults.jsonl``::

    {"t": unix_s, "fault": "link-cut", "target": "us-east-1<->eu-west-1",
     "phase": "inject|revert", "args": {...}, "took_ms": 3.1, "error": null}

A revert carries the name of the fault it undoes (``link-cut`` + ``revert``
is a heal), so a reader pairs them by ``fault`` and ``target``.  ``t`` is
when the action started; ``took_ms`` how long it took (a restart waits until
the process serves again).

All of this blocks (HTTP, gRPC, ``docker``): call it from a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import orjson

from meridian.cluster import limits
from meridian.lab.chaos.schema import FAULTS, ScenarioError, link_ends
from meridian.cluster.control_client import ControlClient


class FaultError(RuntimeError):
    """A fault could not be injected or reverted (recorded in faults.jsonl before this is raised)."""


class Surface(Protocol):
    """What faults act on (``targets.Target``)."""

    def control(self) -> ControlClient: ...

    def process(self, name: str, action: str) -> dict: ...

    def disconnect_region(self, region: str) -> object | None: ...

    def reconnect_region(self, region: str, saved: object | None) -> None: ...

    def skew_keys(self, region: str, zipf_s: float | None) -> None:
        """Draw ``region``'s workload keys from Zipf(``zipf_s``) from now on (None: as the workload was)."""
        ...


def timestamp(t: float) -> str:
    """``HH:MM:SS.mmm`` local time, for what the verbs print."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


class FaultLog:
    """Appends to ``faults.jsonl`` (when given a path) and prints one line per action."""

    def __init__(self, path: Path | None, echo: Callable[[str], None] | None = print) -> None:
        self.path = path
        self._echo = echo
        self._lock = threading.Lock()

    def record(
        self, t: float, fault: str, target: str, phase: str, args: dict, *, took_ms: float, error: str | None = None
    ) -> dict:
        event = {
            "t": t, "fault": fault, "target": target, "phase": phase, "args": args,
            "took_ms": round(took_ms, 1), "error": error,
        }  # fmt: skip
        with self._lock:
            if self.path is not None:
                with open(self.path, "ab") as out:
                    out.write(orjson.dumps(event) + b"\n")
            if self._echo is not None:
                shown = f" {orjson.dumps(args).decode()}" if args else ""
                outcome = f"  FAILED: {error}" if error else f"  ({took_ms:.0f} ms)"
                self._echo(f"{timestamp(t)}  {phase:<6}  {fault:<17} {target}{shown}{outcome}")
        return event


class Injector:
    """Injects and reverts faults on one target, remembering the active ones."""

    def __init__(self, surface: Surface, log: FaultLog) -> None:
        self._surface = surface
        self._log = log
        self.active: dict[tuple[str, str], object] = {}  # (fault, target) -> what its revert needs
        self.events: list[dict] = []

    def inject(self, fault: str, target: str, args: dict) -> None:
        shape = FAULTS[fault]
        if (fault, target) in self.active:
            raise ScenarioError(f"{fault} on {target} is already active")
        if shape.reversible and len(self.active) >= limits.ACTIVE_FAULTS_MAX:
            raise ScenarioError(f"more than {limits.ACTIVE_FAULTS_MAX} active faults")
        saved = self._act(fault, target, "inject", args, lambda: _INJECT[fault](self._surface, target, args))
        if shape.reversible:
            self.active[(fault, target)] = saved

    def revert(self, fault: str, target: str, args: dict | None = None) -> None:
        """Undo an active fault (or, for a fault injected elsewhere, its plain undo)."""
        saved = self.active.pop((fault, target), None)
        args = dict(args or {})
        self._act(fault, target, "revert", args, lambda: _REVERT[fault](self._surface, target, args, saved))

    def revert_all(self) -> list[str]:
        """Revert every active fault, newest first; the errors, if any."""
        errors = []
        for fault, target in reversed(list(self.active)):
            try:
                self.revert(fault, target)
            except FaultError as error:
                errors.append(str(error))
        return errors

    def _act(self, fault: str, target: str, phase: str, args: dict, work: Callable[[], object]) -> object:
        started = time.time()
        begun = time.monotonic()
        try:
            result = work()
        except Exception as error:  # recorded, then raised as FaultError
            message = f"{type(error).__name__}: {error}"
            self.events.append(self._log.record(started, fault, target, phase, args,
                                                took_ms=(time.monotonic() - begun) * 1000, error=message))
            raise FaultError(f"{phase} {fault} on {target}: {message}") from error
        self.events.append(self._log.record(started, fault, target, phase, args, took_ms=(time.monotonic() - begun) * 1000))
        return result


# --- one function per fault and phase -------------------------------------------


def _kill(surface: Surface, target: str, args: dict) -> None:
    surface.process(target, "kill")


def _restart(surface: Surface, target: str, args: dict, saved: object = None) -> None:
    surface.process(target, "restart")


def _pause(surface: Surface, target: str, args: dict) -> None:
    surface.process(target, "pause")


def _resume(surface: Surface, target: str, args: dict, saved: object) -> None:
    surface.process(target, "resume")


def _cut(surface: Surface, target: str, args: dict) -> None:
    a, b, one_way = link_ends(target)
    surface.control().link_cut(a, b, one_way=one_way or bool(args.get("one_way")))


def _heal(surface: Surface, target: str, args: dict, saved: object) -> None:
    a, b, one_way = link_ends(target)
    surface.control().link_heal(a, b, one_way=one_way or bool(args.get("one_way")))


def _directions(target: str, args: dict) -> list[tuple[str, str]]:
    a, b, one_way = link_ends(target)
    return [(a, b)] if one_way or args.get("one_way") else [(a, b), (b, a)]


def _conditions(control: ControlClient, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    links = {(link["source"], link["target"]): link for link in control.links()}
    missing = [pair for pair in pairs if pair not in links]
    if missing:
        raise ScenarioError(f"no such link(s): {', '.join(f'{a}->{b}' for a, b in missing)}")
    return {pair: {k: links[pair][k] for k in ("latency_ms", "jitter_ms", "loss")} for pair in pairs}


def _degrade(settings: Callable[[dict], dict]) -> Callable[[Surface, str, dict], dict]:
    def inject(surface: Surface, target: str, args: dict) -> dict:
        control = surface.control()
        pairs = _directions(target, args)
        before = _conditions(control, pairs)
        for a, b in pairs:
            control.link_set(a, b, one_way=True, **settings(args))
        return before

    return inject


def _restore(surface: Surface, target: str, args: dict, saved: object) -> None:
    control = surface.control()
    pairs = _directions(target, args)
    if not isinstance(saved, dict):  # reverted without an injection we saw: back to a plain link
        saved = {pair: {"latency_ms": 0.0, "jitter_ms": 0.0, "loss": 0.0} for pair in pairs}
    for (a, b), conditions in saved.items():
        control.link_set(a, b, one_way=True, **conditions)


def _isolate(surface: Surface, target: str, args: dict) -> dict:
    control = surface.control()
    for other in control.regions():
        if other != target:
            control.link_cut(target, other)
    real = surface.disconnect_region(target) if args.get("real", True) else None
    return {"real": real}


def _rejoin(surface: Surface, target: str, args: dict, saved: object) -> None:
    if not isinstance(saved, dict):  # isolated by an earlier command: undo whatever is there
        surface.reconnect_region(target, None)
    elif saved.get("real") is not None:
        surface.reconnect_region(target, saved["real"])
    control = surface.control()
    for other in control.regions():
        if other != target:
            control.link_heal(target, other)


def _skew(surface: Surface, target: str, args: dict) -> None:
    surface.control().clock_skew(target, int(args["ms"]))


def _unskew(surface: Surface, target: str, args: dict, saved: object) -> None:
    surface.control().clock_skew(target, 0)


def _replication_pause(surface: Surface, target: str, args: dict) -> None:
    surface.control().pause(target)


def _replication_resume(surface: Surface, target: str, args: dict, saved: object) -> None:
    surface.control().resume(target)


def _hot_key(surface: Surface, target: str, args: dict) -> None:
    surface.skew_keys(target, float(args["zipf_s"]))


def _spread_keys(surface: Surface, target: str, args: dict, saved: object) -> None:
    surface.skew_keys(target, None)


def _no_revert(surface: Surface, target: str, args: dict, saved: object) -> None:
    raise ScenarioError("this fault cannot be reverted")


_INJECT: dict[str, Callable[[Surface, str, dict], object]] = {
    "process-kill": _kill,
    "process-restart": lambda surface, target, args: _restart(surface, target, args),
    "process-pause": _pause,
    "link-cut": _cut,
    "link-slow": _degrade(lambda args: {"latency_ms": args["latency_ms"], "jitter_ms": args.get("jitter_ms", 0.0)}),
    "link-lossy": _degrade(lambda args: {"loss": args["loss"]}),
    "region-isolate": _isolate,
    "clock-skew": _skew,
    "replication-pause": _replication_pause,
    "hot-key": _hot_key,
}
_REVERT: dict[str, Callable[[Surface, str, dict, object], None]] = {
    "process-kill": _restart,
    "process-restart": _no_revert,
    "process-pause": _resume,
    "link-cut": _heal,
    "link-slow": _restore,
    "link-lossy": _restore,
    "region-isolate": _rejoin,
    "clock-skew": _unskew,
    "replication-pause": _replication_resume,
    "hot-key": _spread_keys,
}
assert set(_INJECT) == set(_REVERT) == set(FAULTS), "every fault in schema.FAULTS needs an inject and a revert"
