"""Garbage-collection rules: change-log truncation and tombstone dropping."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meridian.replication.gc import (
    NO_PEERS_FLOOR_HLC,
    log_truncation_sequence,
    may_drop_tombstone,
    node_stamp_floor_hlc,
    tombstone_floor_hlc,
)


def test_the_log_is_truncated_only_as_far_as_every_peer_acknowledged() -> None:
    assert log_truncation_sequence(100, {"b": 40, "c": 70}, ["b", "c"]) == 40
    assert log_truncation_sequence(100, {"b": 40}, ["b", "c"]) == 0  # c acknowledged nothing
    assert log_truncation_sequence(100, {"b": 100, "c": 100}, ["b", "c"]) == 100
    assert log_truncation_sequence(100, {"b": 90}, ["b"], holds=[55, 80]) == 55  # e.g. a stream reader
    assert log_truncation_sequence(30, {}, []) == 30  # no peer: nothing to wait for


_sequences = st.integers(0, 1000)


@given(_sequences, st.dictionaries(st.sampled_from("bcd"), _sequences), st.lists(_sequences))
def test_truncation_never_passes_any_cursor_or_the_log_end(last: int, acked: dict, holds: list) -> None:
    peers = ["b", "c", "d"]
    through = log_truncation_sequence(last, acked, peers, holds)
    assert through <= last
    assert all(through <= acked.get(p, 0) for p in peers)
    assert all(through <= h for h in holds)


def test_a_node_floor_uses_the_log_position_only_once_the_peer_has_everything() -> None:
    # The peer acked through 10 (last shipped change stamped 500); the log ends at 12.
    assert node_stamp_floor_hlc(10, 500, 12, 900) == 500
    # The peer has everything: nothing the node logs from now on is stamped <= 900.
    assert node_stamp_floor_hlc(12, 500, 12, 900) == 900
    assert node_stamp_floor_hlc(12, 950, 12, 900) == 950


def test_tombstones_wait_for_every_peers_promise() -> None:
    assert tombstone_floor_hlc({"b": 700, "c": 300}, ["b", "c"]) == 300
    assert tombstone_floor_hlc({"b": 700}, ["b", "c"]) == 0  # c promised nothing yet
    assert tombstone_floor_hlc({}, []) == NO_PEERS_FLOOR_HLC
    assert may_drop_tombstone(300, 300)
    assert not may_drop_tombstone(301, 300)
