"""Version stamps, last-writer-wins, and the hybrid logical clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model.stamps import (
    LOGICAL_BITS,
    HybridLogicalClock,
    VersionStamp,
    lww_wins,
    physical_ms,
    wall_clock_ms,
)

_regions = st.sampled_from(["us-east-1", "eu-west-1", "ap-south-1", "r", "région-é"])
_stamps = st.builds(VersionStamp, st.integers(0, 2**64 - 1), _regions)


@given(_stamps, st.binary(max_size=4), st.binary(max_size=4))
def test_pack_round_trip(stamp: VersionStamp, before: bytes, after: bytes) -> None:
    packed = stamp.pack()
    assert VersionStamp.unpack(packed) == (stamp, len(packed))
    assert VersionStamp.unpack(before + packed + after, len(before)) == (stamp, len(packed))


def test_pack_layout_and_limits() -> None:
    assert VersionStamp(1 << LOGICAL_BITS, "ab").pack() == b"\x00\x00\x00\x00\x00\x01\x00\x00" + b"\x02ab"
    with pytest.raises(ValueError):
        VersionStamp(1, "x" * 256).pack()
    with pytest.raises(ValueError):
        VersionStamp.unpack(VersionStamp(1, "abc").pack()[:-1])


def test_larger_clock_wins_then_region_breaks_ties() -> None:
    old = VersionStamp(100, "us-east-1")
    assert lww_wins(VersionStamp(101, "a"), old)
    assert not lww_wins(VersionStamp(99, "zz"), old)
    assert lww_wins(VersionStamp(100, "us-west-2"), old)
    assert not lww_wins(VersionStamp(100, "eu-west-1"), old)
    assert not lww_wins(old, old)  # re-applying a change is a no-op
    assert lww_wins(old, None)


@given(st.lists(_stamps, min_size=1, max_size=8))
def test_lww_is_a_total_order(stamps: list[VersionStamp]) -> None:
    for a, b in itertools.product(stamps, repeat=2):
        # exactly one of: a wins, b wins, identical
        assert lww_wins(a, b) + lww_wins(b, a) + (a == b) == 1
    for a, b, c in itertools.product(stamps, repeat=3):
        if lww_wins(a, b) and lww_wins(b, c):
            assert lww_wins(a, c)
    # every region picks the same winner whatever the arrival order
    winners = set()
    for order in itertools.islice(itertools.permutations(stamps), 24):
        current = None
        for stamp in order:
            if lww_wins(stamp, current):
                current = stamp
        winners.add(current)
    assert winners == {max(stamps)}


class _Clock:
    """A physical clock that returns whatever the test scripted."""

    def __init__(self, readings_ms: list[int]) -> None:
        self.readings_ms = readings_ms
        self.index = 0

    def __call__(self) -> int:
        reading = self.readings_ms[min(self.index, len(self.readings_ms) - 1)]
        self.index += 1
        return reading


@given(
    st.lists(st.integers(0, 2**40), min_size=1, max_size=60),
    st.lists(st.one_of(st.none(), st.integers(0, 2**56)), min_size=1, max_size=60),
)
def test_clock_is_monotonic_whatever_the_physical_clock_does(readings: list[int], events: list[int | None]) -> None:
    clock = HybridLogicalClock(_Clock(readings))
    last = 0
    for remote in events:
        reading = clock.tick() if remote is None else clock.observe(remote)
        assert reading > last
        if remote is not None:
            assert reading > remote
        last = reading
    assert clock.last == last


def test_clock_follows_physical_time_and_counts_within_a_millisecond() -> None:
    clock = HybridLogicalClock(_Clock([5, 5, 5, 7, 6]))
    assert clock.tick() == 5 << LOGICAL_BITS
    assert clock.tick() == (5 << LOGICAL_BITS) + 1
    assert clock.tick() == (5 << LOGICAL_BITS) + 2
    assert clock.tick() == 7 << LOGICAL_BITS
    assert clock.tick() == (7 << LOGICAL_BITS) + 1  # physical time went back
    assert physical_ms(clock.last) == 7


def test_observe_jumps_past_a_remote_reading() -> None:
    clock = HybridLogicalClock(_Clock([10]))
    remote = (50 << LOGICAL_BITS) + 3
    assert clock.observe(remote) == remote + 1
    assert clock.tick() == remote + 2


def test_skew_shifts_physical_time_at_run_time() -> None:
    clock = HybridLogicalClock(_Clock([1000]), skew_ms=-100)
    assert physical_ms(clock.tick()) == 900
    clock.skew_ms = 500
    assert physical_ms(clock.tick()) == 1500
    clock.skew_ms = 0  # going back keeps the clock monotonic
    assert clock.tick() == (1500 << LOGICAL_BITS) + 1


def test_wall_clock_is_milliseconds() -> None:
    assert 1_600_000_000_000 < wall_clock_ms() < 10_000_000_000_000
