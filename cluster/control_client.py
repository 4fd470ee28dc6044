"""Operating Global Tables replication from Python: ``ControlClient``.

Every replication command (links, pause/resume, clock skew, lag, verify,
the event log) goes to one region's replicator.  The client reaches them in
one of two ways:

* ``endpoint``: any region's router (``http://localhost:8000``), started
  with ``--replicator``.  ``GET /meridian/replication`` names the regions;
  ``POST /meridian/control`` with ``{"region": R, "command": ...}`` is run by
  that router's replicator, which forwards it to R's replicator over its
  peer channel.  Nothing but the router needs to be reachable: this is what
  works against the Docker lab, whose replicators live on internal networks.
* ``replicators``: ``{region: "host:port"}`` of every replicator, reached
  directly over gRPC (tests, or a user on the replicators' network).

The API is synchronous (plain ``urllib`` / blocking gRPC), so it can be
used from scripts, from threads, and from ``asyncio.to_thread``.  Errors:
``ControlError`` for a command the replicators refuse (HTTP 400: unknown
region or command, bad value), ``ControlUnavailable`` (a subclass) when a
router or replicator cannot be reached (HTTP 503, connection refused,
timeout).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import grpc
import orjson

from meridian.cluster import limits
from meridian.model.keycodec import decode_item_key
from meridian.proto import replication_pb2 as rpb
from meridian.proto import replication_pb2_grpc


_CONTROL_PATH = "/meridian/control"
_REPLICATION_PATH = "/meridian/replication"
# Straight to the router: an HTTP(S)_PROXY in the environment must not capture it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ControlError(Exception):
    """A command the replicators refused (unknown region or command, bad value).

    The HTTP client's side of ``meridian.proto.errors.ControlError`` (which a
    replicator raises and a router answers with 400): this one carries the
    HTTP status the router answered with.
    """

    def __init__(self, message: str, status: int | None = 400) -> None:
        super().__init__(message)
        self.status = status


class ControlUnavailable(ControlError):
    """A router or replicator that could not be reached."""

    def __init__(self, message: str, status: int | None = 503) -> None:
        super().__init__(message, status)


class TableNotFound(ControlError):
    """``verify``: a region holds no such table."""


@dataclass
class Verification:
    """What ``verify_details`` found: are the replicas identical, and where they differ."""

    table: str
    regions: list[str]
    identical: bool
    versions: int  # item versions (tombstones included) in the first region
    differing: dict[str, dict[str, str | None]] = field(default_factory=dict)  # key -> region -> version or None


class ControlClient:
    """Synchronous control of every region's replicator (see the module docstring)."""

    def __init__(
        self, endpoint: str | None = None, replicators: dict[str, str] | None = None,
        timeout_s: float = limits.CONTROL_CALL_TIMEOUT_S,
    ) -> None:
        if (endpoint is None) == (replicators is None):
            raise ValueError("give exactly one of endpoint or replicators")
        if replicators is not None and not replicators:
            raise ValueError("replicators is empty")
        self.endpoint = endpoint.rstrip("/") if endpoint is not None else None
        self.timeout_s = timeout_s
        self._replicators = dict(replicators) if replicators is not None else None
        self._regions: list[str] | None = list(replicators) if replicators is not None else None
        self._channels: dict[str, grpc.Channel] = {}

    def __repr__(self) -> str:
        where = self.endpoint or ",".join(f"{r}={a}" for r, a in (self._replicators or {}).items())
        return f"<ControlClient {where}>"

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport ------------------------------------------------------------

    def regions(self) -> list[str]:
        """Every region, the endpoint's own first (in ``replicators`` mode: as given)."""
        if self._regions is None:
            answer = self._http("GET", _REPLICATION_PATH, None, self.timeout_s)
            own = answer["region"]
            self._regions = [own, *(r for r in answer["replicators"] if r != own)]
        return list(self._regions)

    def call(self, region: str, command: dict, *, timeout_s: float | None = None) -> dict:
        """Run one raw command (``{"command": ..., ...}``) in ``region``; its JSON answer."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if self._replicators is None:
            return self._http("POST", _CONTROL_PATH, {**command, "region": region}, timeout_s)
        address = self._replicators.get(region)
        if address is None:
            raise ControlError(f"unknown region {region!r}: the regions are {', '.join(self._replicators)}")
        return self._grpc(address, command, timeout_s)

    def _http(self, method: str, path: str, body: dict | None, timeout_s: float) -> dict:
        url = self.endpoint + path
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=timeout_s) as answer:
                return orjson.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc, path) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            raise ControlUnavailable(f"cannot reach {self.endpoint}: {getattr(exc, 'reason', exc)}", None) from None

    def _refusal(self, exc: urllib.error.HTTPError, path: str) -> ControlError:
        try:
            body = orjson.loads(exc.read())
        except (orjson.JSONDecodeError, OSError):
            body = None
        not_ours = not isinstance(body, dict) or "message" not in body or "__type" in body
        if not_ours or (path == _REPLICATION_PATH and exc.code == 404):
            return ControlError(
                f"{self.endpoint} does not take replication commands (HTTP {exc.code} on {path}): "
                "is it a router started with --replicator?",
                exc.code,
            )
        if exc.code >= 500:
            return ControlUnavailable(body["message"], exc.code)
        return ControlError(body["message"], exc.code)

    def _grpc(self, address: str, command: dict, timeout_s: float) -> dict:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.insecure_channel(address)
        stub = replication_pb2_grpc.ReplicatorStub(channel)
        try:
            reply = stub.Control(rpb.ControlRequest(json=orjson.dumps(command)), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            message = f"replicator at {address}: {code.name} {exc.details()}"  # type: ignore[attr-defined]
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise ControlError(exc.details()) from None  # type: ignore[attr-defined]
            raise ControlUnavailable(message, None) from None
        return orjson.loads(reply.json)

    # --- links ------------------------------------------------------------------

    def links(self) -> list[dict]:
        """Every directed link: ``source``, ``target``, ``latency_ms``, ``jitter_ms``, ``loss``, ``cut``, ``paused``."""
        out = []
        for region in self.regions():
            shown = self.call(region, {"command": "show"})
            paused = set(shown["statistics"]["paused"])
            for link in shown["links"]:
                out.append({
                    "source": link["source"], "target": link["target"], "latency_ms": link["latency_ms"],
                    "jitter_ms": link["jitter_ms"], "loss": link["loss"], "cut": bool(link["cut"]),
                    "paused": link["target"] in paused,
                })  # fmt: skip
        return out

    def _both_ways(self, a: str, b: str, one_way: bool, command: dict) -> None:
        for source, target in [(a, b)] if one_way else [(a, b), (b, a)]:
            self.call(source, {**command, "peer": target})

    def link_set(
        self, a: str, b: str, *, latency_ms: float | None = None, jitter_ms: float | None = None,
        loss: float | None = None, one_way: bool = False,
    ) -> None:  # fmt: skip
        """Change the conditions of a -> b (and b -> a unless ``one_way``); None leaves one as it is."""
        settings = {k: v for k, v in (("latency_ms", latency_ms), ("jitter_ms", jitter_ms), ("loss", loss)) if v is not None}
        self._both_ways(a, b, one_way, {"command": "link-set", **settings})

    def link_cut(self, a: str, b: str, *, one_way: bool = False) -> None:
        self._both_ways(a, b, one_way, {"command": "link-cut"})

    def link_heal(self, a: str, b: str, *, one_way: bool = False) -> None:
        self._both_ways(a, b, one_way, {"command": "link-heal"})

    # --- pause, resume, clocks ----------------------------------------------------

    def _pause_or_resume(self, action: str, region: str) -> None:
        regions = self.regions()
        if region not in regions:
            raise ControlError(f"unknown region {region!r}: the regions are {', '.join(regions)}")
        for other in regions:
            self.call(other, {"command": action} if other == region else {"command": action, "peer": region})

    def pause(self, region: str) -> None:
        """Stop replication to and from ``region`` (every region's replicator holds it)."""
        self._pause_or_resume("pause", region)

    def resume(self, region: str) -> None:
        self._pause_or_resume("resume", region)

    def clock_skew(self, region: str, ms: int) -> None:
        """Offset ``region``'s hybrid clocks by ``ms`` milliseconds (0 undoes it)."""
        self.call(region, {"command": "clock-skew", "ms": int(ms)})

    # --- measurements -------------------------------------------------------------

    def lag(self) -> list[dict]:
        """Replication latency per table and region pair, as the receiving regions measured it."""
        out = []
        for region in self.regions():
            for s in self.call(region, {"command": "show"})["latency"]:
                out.append({
                    "table": s.get("table") or str(s["table_id"]), "source": s["origin"], "target": s["receiver"],
                    "count": s["count"], "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"],
                    "max_ms": s["max_ms"],
                })  # fmt: skip
        return out

    def pending(self) -> dict[tuple[str, str], int]:
        """(source, target) -> changes logged in source and not yet acknowledged by target."""
        out = {}
        for region in self.regions():
            for peer, n in self.call(region, {"command": "show"})["pending"].items():
                out[(region, peer)] = int(n)
        return out

    def events(self) -> list[dict]:
        """Every region's control events (``t``, ``region``, ``command``, ``args``), oldest first."""
        merged = []
        for region in self.regions():
            merged += self.call(region, {"command": "events"})["events"]
        merged.sort(key=lambda e: e["t"])
        return merged

    # --- convergence ---------------------------------------------------------------

    def verify(self, table: str, timeout_s: float = limits.VERIFY_TIMEOUT_S) -> tuple[bool, list[str]]:
        """(are all replicas identical?, the differing keys as DynamoDB key JSON)."""
        found = self.verify_details(table, timeout_s)
        return found.identical, sorted(found.differing)

    def verify_details(self, table: str, timeout_s: float = limits.VERIFY_TIMEOUT_S) -> Verification:
        """Compare every region's digest of ``table`` until they agree or ``timeout_s`` passes.

        Raises ``TableNotFound`` when a region holds no such table.
        """
        regions = self.regions()
        digest_timeout_s = max(self.timeout_s, limits.DIGEST_TIMEOUT_S)
        deadline = time.monotonic() + timeout_s
        while True:
            digests = {
                r: self.call(r, {"command": "digest", "table": table}, timeout_s=digest_timeout_s) for r in regions
            }
            missing = [r for r, d in digests.items() if d["table_id"] is None]
            if missing:
                raise TableNotFound(f"table {table!r} not found in {', '.join(missing)}")
            first = digests[regions[0]]
            differing_leaves = sorted({
                leaf
                for d in digests.values()
                for leaf in first["leaves"].keys() | d["leaves"].keys()
                if first["leaves"].get(leaf) != d["leaves"].get(leaf)
            }, key=int)  # fmt: skip
            if not differing_leaves:
                return Verification(table, regions, True, first["count"])
            if time.monotonic() >= deadline:
                break
            time.sleep(limits.VERIFY_RETRY_INTERVAL_S)
        answers = {
            r: self.call(r, {"command": "digest", "table": table, "leaves": [int(x) for x in differing_leaves]},
                         timeout_s=digest_timeout_s)
            for r in regions
        }  # fmt: skip
        entries = {r: a["entries"] for r, a in answers.items()}
        schema = answers[regions[0]]["key_schema"]
        keys = {key for e in entries.values() for key in e if len({held.get(key) for held in entries.values()}) > 1}
        differing = {_readable_key(key, schema): {r: entries[r].get(key) for r in regions} for key in sorted(keys)}
        # Empty: the replicas converged between the two looks.
        return Verification(table, regions, not differing, first["count"], differing)


def _readable_key(key_hex: str, key_schema: list) -> str:
    """A storage key (hex) as the DynamoDB key JSON a user can paste into ``get-item --key``."""
    try:
        key = decode_item_key(bytes.fromhex(key_hex), [tuple(k) for k in key_schema])
    except (ValueError, IndexError):
        return key_hex
    return orjson.dumps(key).decode()
