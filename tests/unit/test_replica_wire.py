"""Replication records through protobuf, and the replicator's control commands."""

from __future__ import annotations

import random

import pytest

from meridian.model.stamps import VersionStamp
from meridian.model.changes import Change
from meridian.model.changes import Ack, LogPosition, ReplicationBatch
from meridian.replication.link import SimulatedLink
from meridian.replication.peers import ControlError, ReplicatorService
from meridian.proto.replication_codec import (
    ack_from_pb,
    ack_to_pb,
    batch_from_pb,
    batch_to_pb,
    changes_from_pb,
    changes_to_pb,
    position_from_pb,
    position_to_pb,
)

PUT = Change(3, 7, b"\x00" * 7 + b"\x07k", VersionStamp(123 << 16 | 4, "eu-west-1"), False, b'{"pk":{"S":"k"}}', 9)
DELETE = Change(4, 7, b"\x00" * 7 + b"\x07j", VersionStamp(124 << 16, "eu-west-1"), True, None, 0)


def test_changes_round_trip() -> None:
    assert changes_from_pb(changes_to_pb([PUT, DELETE])) == [PUT, DELETE]


def test_an_empty_item_is_not_a_tombstone() -> None:
    empty = Change(5, 7, b"k", VersionStamp(1, "a"), False, b"", 0)
    assert changes_from_pb(changes_to_pb([empty])) == [empty]


def test_batches_acks_and_positions_round_trip() -> None:
    batch = ReplicationBatch("eu-west-1", "n1", 2, 4, (PUT, DELETE), 123, 99)
    assert batch_from_pb(batch_to_pb(batch)) == batch
    floor_only = ReplicationBatch("eu-west-1", "", 0, 0, (), 0, 1 << 63)
    assert batch_from_pb(batch_to_pb(floor_only)) == floor_only
    assert ack_from_pb(ack_to_pb(Ack("us-east-1", 2))) == Ack("us-east-1", 2)
    assert position_from_pb(position_to_pb(LogPosition(5, 77))) == LogPosition(5, 77)


class _Replicator:
    region = "a"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def pause(self, peer: str) -> None:
        self.calls.append(("pause", peer))


class _Clock:
    def wall_ms(self) -> int:
        return 0

    def monotonic_s(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


def _service() -> tuple[ReplicatorService, _Replicator, SimulatedLink]:
    replicator = _Replicator()
    link = SimulatedLink("a", "b", transport=None, clock=_Clock(), rng=random.Random(0))
    return ReplicatorService(replicator, {"b": link}, nodes=None), replicator, link


async def test_control_rejects_unknown_peers_commands_and_values() -> None:
    service, _, _ = _service()
    with pytest.raises(ControlError, match="not a peer"):
        await service.control({"command": "link-cut", "peer": "zz"})
    with pytest.raises(ControlError, match="unknown control command"):
        await service.control({"command": "explode"})
    with pytest.raises(ControlError, match="loss"):
        await service.control({"command": "link-set", "peer": "b", "loss": 2})


async def test_control_changes_links_and_pauses(monkeypatch) -> None:
    service, replicator, link = _service()

    async def show() -> dict:
        return {}

    monkeypatch.setattr(service, "show", show)
    await service.control({"command": "link-set", "peer": "b", "latency_ms": 80, "jitter_ms": None})
    assert (link.conditions.latency_ms, link.conditions.jitter_ms) == (80, 0)
    await service.control({"command": "link-cut", "peer": "b"})
    assert link.conditions.cut
    await service.control({"command": "link-heal", "peer": "b"})
    assert not link.conditions.cut
    await service.control({"command": "pause"})
    assert replicator.calls == [("pause", "b")]
