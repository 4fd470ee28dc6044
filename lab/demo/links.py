"""The dashboard's link keys: cut, heal, slow and reset one directed link, each recorded.

Every action goes through ``ControlClient`` (blocking: call from a thread)
and is appended to ``faults.jsonl`` in the format ``meridian chaos`` uses,
so ``meridian report`` marks it on the plots::

    {"t": unix_s, "fault": "link-cut", "target": "us-east-1->eu-west-1",
     "phase": "inject|revert", "args": {...}, "took_ms": 3.1, "error": null}

A link here is one direction (``A->B``, the dashboard's row): cutting it
stops A's changes reaching B while B's still reach A. ``slow`` adds
``SLOW_STEP_MS`` of latency per press (recorded as the revert of the
previous ``link-slow`` and the injection of the new one, so every window
in the file carries its latency); ``reset`` puts back the conditions the
link had when the demo started, healing it if cut.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from meridian.cluster.control_client import ControlClient

#: Latency one ``slow`` press adds to a link.
SLOW_STEP_MS = 100.0


@dataclass(frozen=True, slots=True)
class Conditions:
    latency_ms: float
    jitter_ms: float
    loss: float


def link_target(source: str, target: str) -> str:
    return f"{source}->{target}"


class LinkActions:
    """Cut / heal / slow / reset directed links; remembers each link's starting conditions."""

    def __init__(self, control: ControlClient, faults_path: Path | None) -> None:
        self._control = control
        self._faults_path = faults_path
        self._lock = threading.Lock()  # one action at a time, whichever thread asks
        self.initial: dict[tuple[str, str], Conditions] = {}
        self.cut: set[tuple[str, str]] = set()  # cut by us
        self.slowed: dict[tuple[str, str], float] = {}  # link -> latency we set

    def remember_initial(self, links: list[dict]) -> None:
        """Note the starting conditions of links not seen before (from ``ControlClient.links()``)."""
        for link in links:
            pair = (link["source"], link["target"])
            if pair not in self.initial:
                self.initial[pair] = Conditions(link["latency_ms"], link["jitter_ms"], link["loss"])

    def _record(self, t: float, fault: str, pair: tuple[str, str], phase: str, args: dict, began: float,
                error: str | None = None) -> None:  # fmt: skip
        if self._faults_path is None:
            return
        line = {"t": t, "fault": fault, "target": link_target(*pair), "phase": phase, "args": args,
                "took_ms": round((time.monotonic() - began) * 1000, 3), "error": error}  # fmt: skip
        with open(self._faults_path, "ab") as out:
            out.write(orjson.dumps(line) + b"\n")

    def _act(self, fault: str, pair: tuple[str, str], phase: str, args: dict, work) -> None:
        t, began = time.time(), time.monotonic()
        try:
            work()
        except Exception as exc:
            self._record(t, fault, pair, phase, args, began, error=str(exc))
            raise
        self._record(t, fault, pair, phase, args, began)

    def cut_link(self, pair: tuple[str, str]) -> str:
        with self._lock:
            if pair in self.cut:
                return f"{link_target(*pair)} is already cut"
            self._act("link-cut", pair, "inject", {}, lambda: self._control.link_cut(*pair, one_way=True))
            self.cut.add(pair)
            return f"cut {link_target(*pair)}"

    def heal_link(self, pair: tuple[str, str]) -> str:
        with self._lock:
            self._act("link-cut", pair, "revert", {}, lambda: self._control.link_heal(*pair, one_way=True))
            self.cut.discard(pair)
            return f"healed {link_target(*pair)}"

    def slow_link(self, pair: tuple[str, str], current_latency_ms: float) -> str:
        with self._lock:
            before = self.slowed.get(pair)
            latency_ms = (before if before is not None else current_latency_ms) + SLOW_STEP_MS
            if before is not None:
                self._record(time.time(), "link-slow", pair, "revert", {"latency_ms": before}, time.monotonic())
            self._act("link-slow", pair, "inject", {"latency_ms": latency_ms},
                      lambda: self._control.link_set(*pair, latency_ms=latency_ms, one_way=True))  # fmt: skip
            self.slowed[pair] = latency_ms
            return f"slowed {link_target(*pair)} to {latency_ms:g} ms"

    def reset_link(self, pair: tuple[str, str]) -> str:
        with self._lock:
            start = self.initial.get(pair, Conditions(0.0, 0.0, 0.0))
            if pair in self.slowed:
                self._act("link-slow", pair, "revert", {"latency_ms": self.slowed[pair]},
                          lambda: self._set(pair, start))  # fmt: skip
                del self.slowed[pair]
            else:
                self._set(pair, start)
            if pair in self.cut:
                self._act("link-cut", pair, "revert", {}, lambda: self._control.link_heal(*pair, one_way=True))
                self.cut.discard(pair)
            else:
                self._control.link_heal(*pair, one_way=True)  # cut by someone else: a reset heals it too
            return f"reset {link_target(*pair)} to {start.latency_ms:g} ms, not cut"

    def _set(self, pair: tuple[str, str], conditions: Conditions) -> None:
        self._control.link_set(*pair, latency_ms=conditions.latency_ms, jitter_ms=conditions.jitter_ms,
                               loss=conditions.loss, one_way=True)  # fmt: skip
