"""Link conditions between regions at start: real-world latencies and ``--link``.

``ROUND_TRIP_MS`` holds approximate round-trip times between AWS regions,
rounded from commonly published inter-region ping measurements (public
dashboards of EC2-to-EC2 pings, medians over time).  They move with routing
and time of day, by 10 % or more; they are here so a lab's links look like
the real thing, not as a promise about any network.  A simulated link is
one direction, so ``one_way_latency_ms`` is half the round trip.

``parse_links`` reads ``meridian replicator --link
PEER=LATENCY_MS[:JITTER_MS[:LOSS]],...``, a per-peer override of
``--latency-ms`` / ``--jitter-ms`` / ``--loss``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from meridian.replication.link import LinkConditions

#: Approximate round trips in milliseconds between AWS regions (each pair once).
ROUND_TRIP_MS: dict[frozenset[str], float] = {
    frozenset(pair): rtt
    for pair, rtt in (
        (("us-east-1", "us-east-2"), 12.0),
        (("us-east-1", "us-west-2"), 68.0),
        (("us-east-1", "eu-west-1"), 70.0),
        (("us-east-1", "eu-central-1"), 90.0),
        (("us-east-1", "ap-northeast-1"), 148.0),
        (("us-east-1", "ap-southeast-2"), 200.0),
        (("us-east-2", "us-west-2"), 50.0),
        (("us-east-2", "eu-west-1"), 82.0),
        (("us-east-2", "eu-central-1"), 98.0),
        (("us-east-2", "ap-northeast-1"), 135.0),
        (("us-east-2", "ap-southeast-2"), 190.0),
        (("us-west-2", "eu-west-1"), 122.0),
        (("us-west-2", "eu-central-1"), 142.0),
        (("us-west-2", "ap-northeast-1"), 98.0),
        (("us-west-2", "ap-southeast-2"), 140.0),
        (("eu-west-1", "eu-central-1"), 24.0),
        (("eu-west-1", "ap-northeast-1"), 205.0),
        (("eu-west-1", "ap-southeast-2"), 256.0),
        (("eu-central-1", "ap-northeast-1"), 225.0),
        (("eu-central-1", "ap-southeast-2"), 250.0),
        (("ap-northeast-1", "ap-southeast-2"), 106.0),
    )
}

#: Every region the table knows.
KNOWN_REGIONS: frozenset[str] = frozenset(region for pair in ROUND_TRIP_MS for region in pair)


def one_way_latency_ms(a: str, b: str) -> float:
    """Approximate one-way latency between two AWS regions (half the round trip).

    0 for a region and itself; ``KeyError`` naming the known regions otherwise.
    """
    if a == b:
        return 0.0
    rtt = ROUND_TRIP_MS.get(frozenset((a, b)))
    if rtt is None:
        unknown = sorted({a, b} - KNOWN_REGIONS) or [f"{a} <-> {b}"]
        raise KeyError(f"no real-world latency known for {', '.join(unknown)}; known regions: {', '.join(sorted(KNOWN_REGIONS))}")
    return rtt / 2


def realistic_links(region: str, peers: Iterable[str]) -> str:
    """The ``--link`` value giving ``region``'s links to ``peers`` their real-world one-way latency."""
    return ",".join(f"{peer}={one_way_latency_ms(region, peer):g}" for peer in peers)


@dataclass(frozen=True, slots=True)
class LinkOverride:
    """One ``--link`` entry; None leaves a setting at the replicator's default."""

    latency_ms: float
    jitter_ms: float | None = None
    loss: float | None = None


def parse_links(text: str) -> dict[str, LinkOverride]:
    """``"eu-west-1=35:2:0.01,ap-southeast-2=100"`` -> per-peer overrides (``ValueError`` if malformed)."""
    out: dict[str, LinkOverride] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        peer, sep, spec = entry.partition("=")
        peer = peer.strip()
        fields = spec.split(":")
        if not sep or not peer or not spec or len(fields) > 3:
            raise ValueError(f"expected PEER=LATENCY_MS[:JITTER_MS[:LOSS]], got {entry!r}")
        if peer in out:
            raise ValueError(f"{peer} is given twice in --link")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise ValueError(f"not a number in {entry!r}") from None
        out[peer] = LinkOverride(*values)
        LinkConditions(*values)  # validates ranges (negative, loss too high)
    return out


def link_conditions(
    peers: Iterable[str], default: LinkConditions, overrides: Mapping[str, LinkOverride]
) -> dict[str, LinkConditions]:
    """Each peer's starting conditions: ``default``, with its ``--link`` entry laid over it."""
    peers = list(peers)
    strangers = sorted(set(overrides) - set(peers))
    if strangers:
        raise ValueError(f"--link names {', '.join(strangers)}, not among the peers ({', '.join(peers)})")
    out = {}
    for peer in peers:
        o = overrides.get(peer)
        if o is None:
            out[peer] = default
        else:
            out[peer] = LinkConditions(
                latency_ms=o.latency_ms,
                jitter_ms=default.jitter_ms if o.jitter_ms is None else o.jitter_ms,
                loss=default.loss if o.loss is None else o.loss,
            )
    return out
