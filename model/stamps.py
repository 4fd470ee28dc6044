"""Version stamps and the hybrid logical clock behind last-writer-wins.

Every stored item version (tombstones included) carries a ``VersionStamp``:
the writer's hybrid logical clock reading and the writer's region id.  Every
region compares stamps the same way - larger clock first, then the region id
as a string - so after replication all regions keep the same version of every
key, whatever order the versions arrived in.

The clock reading packs physical milliseconds and a 16-bit logical counter
into one integer (``ms << 16 | counter``), so stamps compare as integers and
stay close to wall time, yet strictly increase on one clock even when the
physical clock stalls or steps back, and jump past any stamp the clock has
observed from another region (causality: a write made after seeing another
write always wins over it).

    packed stamp:  +---------------------+-----+------------------+
                   | hlc (8 bytes, BE)   | len | region (UTF-8)   |
                   +---------------------+-----+------------------+
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
REGION_BYTES_MAX = 255  # one length byte

_HLC = struct.Struct(">Q")


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch: the default physical clock."""
    return time.time_ns() // 1_000_000


def physical_ms(hlc: int) -> int:
    """The physical milliseconds part of a clock reading."""
    return hlc >> LOGICAL_BITS


@dataclass(frozen=True, slots=True, order=True)
class VersionStamp:
    """When (``hlc``) and where (``region``) an item version was written.

    Field order makes the generated comparisons exactly last-writer-wins
    order: by ``hlc``, then by ``region`` (string order, which is also the
    order of the regions' UTF-8 bytes).
    """

    hlc: int
    region: str

    def pack(self) -> bytes:
        region = self.region.encode("utf-8")
        if len(region) > REGION_BYTES_MAX:
            raise ValueError(f"region id longer than {REGION_BYTES_MAX} bytes: {self.region!r}")
        return _HLC.pack(self.hlc) + bytes((len(region),)) + region

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> tuple[VersionStamp, int]:
        """Read a packed stamp at ``offset``; return it and the bytes it took."""
        (hlc,) = _HLC.unpack_from(data, offset)
        length = data[offset + _HLC.size]
        start = offset + _HLC.size + 1
        if start + length > len(data):
            raise ValueError("truncated version stamp")
        return cls(hlc, bytes(data[start : start + length]).decode("utf-8")), _HLC.size + 1 + length


def lww_wins(candidate: VersionStamp, stored: VersionStamp | None) -> bool:
    """Whether ``candidate`` replaces ``stored`` under last-writer-wins.

    An equal stamp does not win, so re-applying the same change is a no-op.
    """
    return stored is None or candidate > stored


class HybridLogicalClock:
    """A hybrid logical clock (Kulkarni et al., 2014) over an injected physical clock.

    ``skew_ms`` is added to every physical reading; chaos experiments change
    it at run time to model a region whose clock runs fast or slow.
    Thread-safe: storage work runs on executor threads.
    """

    def __init__(self, now_ms: Callable[[], int], skew_ms: int = 0) -> None:
        self._now_ms = now_ms
        self.skew_ms = skew_ms
        self._last = 0
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        """The latest reading issued (0 before the first)."""
        return self._last

    def _physical(self) -> int:
        return (self._now_ms() + self.skew_ms) << LOGICAL_BITS

    def tick(self) -> int:
        """A reading for a local event, greater than every earlier reading."""
        physical = self._physical()
        with self._lock:
            # A counter that fills up carries into the milliseconds: readings
            # run a little ahead of wall time but never repeat.
            self._last = physical if physical > self._last else self._last + 1
            return self._last

    def observe(self, remote_hlc: int) -> int:
        """Merge a reading received from elsewhere; return a reading greater than both."""
        physical = self._physical()
        with self._lock:
            latest = max(self._last, remote_hlc)
            self._last = physical if physical > latest else latest + 1
            return self._last
