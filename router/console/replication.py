"""The console's view of replication: links, latency, backlog, control events.

Everything comes from the router's own region's replicator over its
``Control`` RPC.  A command naming another region is forwarded by that
replicator to the region's one over the peer channel (``replication/peers.py``,
the same path as ``POST /meridian/control``), so a router that only reaches
its own replicator - as in the Docker lab - still shows every region.

The router keeps nothing between calls: the page polls every second and
turns the replicators' cumulative latency summaries into a live series
itself.  A region that does not answer is named in ``errors``; the others
are still shown.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any


from meridian.model import limits

from ..catalog import Catalog

#: What the link controls may do, and the replicator command for each.
LINK_ACTIONS = {"cut": "link-cut", "heal": "link-heal", "set": "link-set"}
_LINK_SETTINGS = ("latency_ms", "jitter_ms", "loss")


class ConsoleError(Exception):
    """Answered as ``{"message": ...}`` with ``status`` (400: bad request, 503: unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ReplicationView:
    """Reads and changes replication through one region's replicator."""

    def __init__(self, region: str, replicator: str, catalog: Catalog) -> None:
        self.region = region
        self.replicator = replicator
        self._catalog = catalog
        self._regions: list[str] | None = None  # peers are fixed for a replicator's life

    async def command(self, region: str, command: dict[str, Any]) -> dict[str, Any]:
        """Run ``command`` in ``region`` (forwarded by this region's replicator when another)."""
        # Loaded on first use: a router without a replicator (``meridian
        # serve``) never needs gRPC, and importing it costs start-up time.
        from meridian.proto.errors import RPC_FAILURES
        from meridian.replication.peers import ControlError, control

        try:
            return await control(self.replicator, {**command, "region": region}, timeout_s=limits.CONSOLE_CONTROL_TIMEOUT_S)
        except ControlError as exc:
            raise ConsoleError(400, str(exc) or "invalid command") from None
        except RPC_FAILURES as exc:  # the replicator, or the region it forwards to, failed
            raise ConsoleError(503, f"{region}: via the replicator of {self.region} at {self.replicator}: {exc}") from None

    async def regions(self) -> list[str]:
        """Every region, this one first."""
        if self._regions is None:
            answer = await self.command(self.region, {"command": "peers"})
            self._regions = [self.region, *sorted(r for r in answer["replicators"] if r != self.region)]
        return self._regions

    async def _each(self, regions: list[str], command: dict[str, Any]) -> tuple[dict[str, dict], dict[str, str]]:
        """``command`` in every region at once: answers and errors by region."""
        results = await asyncio.gather(*(self.command(r, command) for r in regions), return_exceptions=True)
        answers, errors = {}, {}
        for region, result in zip(regions, results):
            if isinstance(result, ConsoleError):
                errors[region] = result.message
            elif isinstance(result, BaseException):
                raise result
            else:
                answers[region] = result
        return answers, errors

    async def state(self) -> dict[str, Any]:
        """Every link (conditions, cut, paused), backlog and latency summary, per ordered region pair."""
        regions = await self.regions()
        shown, errors = await self._each(regions, {"command": "show"})
        names = {table.table_id: table.name for table in self._catalog.tables()}
        paused = {region: set(answer["statistics"]["paused"]) for region, answer in shown.items()}
        links = []
        for source, answer in shown.items():
            pending = answer.get("pending", {})
            for link in answer["links"]:
                target = link["target"]
                links.append({
                    "source": source,
                    "target": target,
                    "latency_ms": link["latency_ms"],
                    "jitter_ms": link["jitter_ms"],
                    "loss": link["loss"],
                    "cut": bool(link["cut"]),
                    "paused": target in paused[source] or source in paused.get(target, ()),
                    "pending": pending.get(target, 0),
                    "in_flight": answer["statistics"]["in_flight"].get(target, 0),
                })  # fmt: skip
        latency = []
        for receiver, answer in shown.items():
            for s in answer["latency"]:
                latency.append({
                    "table": s.get("table") or names.get(s["table_id"]) or str(s["table_id"]),
                    "source": s["origin"],
                    "target": s["receiver"],
                    "count": s["count"],
                    "mean_ms": _finite(s["mean_ms"]),
                    "p50_ms": _finite(s["p50_ms"]),
                    "p95_ms": _finite(s["p95_ms"]),
                    "p99_ms": _finite(s["p99_ms"]),
                    "max_ms": _finite(s["max_ms"]),
                })  # fmt: skip
        return {"configured": True, "region": self.region, "regions": regions, "links": links,
                "latency": latency, "errors": errors}  # fmt: skip

    async def events(self) -> dict[str, Any]:
        """Every region's control events, oldest first, the newest ``limits.CONSOLE_EVENTS_MAX``."""
        regions = await self.regions()
        answers, errors = await self._each(regions, {"command": "events"})
        events = sorted((e for answer in answers.values() for e in answer["events"]), key=lambda e: e["t"])
        return {"events": events[-limits.CONSOLE_EVENTS_MAX:], "errors": errors}

    async def change_link(self, body: Any) -> dict[str, Any]:
        """``{"action": cut|heal|set, "source", "target", "one_way"?, "latency_ms"?, "jitter_ms"?, "loss"?}``.

        Both directions unless ``one_way``; answers the links afterwards.
        """
        if not isinstance(body, dict):
            raise ConsoleError(400, "the body must be a JSON object")
        action = body.get("action")
        if action not in LINK_ACTIONS:
            raise ConsoleError(400, f"action must be one of {', '.join(LINK_ACTIONS)}")
        regions = await self.regions()
        source, target = body.get("source"), body.get("target")
        if source not in regions or target not in regions or source == target:
            raise ConsoleError(400, f"source and target must be two different regions of {', '.join(regions)}")
        command: dict[str, Any] = {"command": LINK_ACTIONS[action]}
        if action == "set":
            for name in _LINK_SETTINGS:
                value = body.get(name)
                if value is None or value == "":
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ConsoleError(400, f"{name} must be a number")
                command[name] = value
            if len(command) == 1:
                raise ConsoleError(400, "set needs latency_ms, jitter_ms or loss")
        pairs = [(source, target)] if body.get("one_way") else [(source, target), (target, source)]
        for a, b in pairs:
            await self.command(a, {**command, "peer": b})
        return await self.state()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
