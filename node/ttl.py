"""Time to Live: the sweeper that expires a node's items.

A table has Time to Live while its catalog entry names a TTL attribute
(``ttl_attribute`` in its description: set by UpdateTimeToLive, read by
``Engine.ttl_attributes``).  Each storage node runs one ``TtlSweeper``: every
``interval_s`` (``meridian serve|node|up --ttl-interval-s``) it walks the
items of each such table, and deletes the expired ones.

**Which items expire** (DynamoDB's rule, ``expired``): those whose TTL
attribute is a Number (type N) of epoch seconds earlier than now, and not
more than five years earlier (``TTL_EXPIRED_AGE_S_MAX``).  Any other type
(a String of digits included), a missing attribute, or a value more than
five years old never expires.  "Now" is the node's physical clock, clock
skew included (``Engine.physical_now_ms``).  Until swept, an expired item is
an item like any other: reads, queries and scans return it.

**How.**  A table is read in key order in bounded chunks (``table_items``:
``TTL_SWEEP_CHUNK_ITEMS_MAX`` items or ``TTL_SWEEP_CHUNK_BYTES_MAX``), with a
return to the event loop after each, so client requests wait a few ms at
most.  The expired items of a chunk are deleted in bursts of at most
``TTL_DELETES_BURST_MAX`` paced to ``TTL_DELETES_PER_S_MAX`` on average (a
token bucket), through ``Engine.expire_many``: a delete written through the
normal write path (stamped by the node's hybrid clock, with its change-log
record, scan entry, local index entries and statistics in one write batch;
global indexes and replication follow from the log), its tombstone marked
as the service's (``model/records.py``), so stream records in every region
name ``dynamodb.amazonaws.com``.  Each delete is conditional on the version
the sweep judged: an item rewritten after the sweep read it (another stamp)
is left alone, so a write racing the sweep wins.

**Global tables: one region deletes each version.**  The sweeper expires
only items whose current version was written in its own region
(``stamp.region == engine.region``).  The region that wrote a version is
the one that deletes it when it expires; the delete replicates like any
other and the other regions apply it (last-writer-wins: it is newer than
the version it deletes), keeping the service's mark.  Were every region to
sweep, each would issue its own delete of the same version: one expiry
would become as many deletes, stream records and TimeToLiveDeletedItemCount
counts as there are regions.  The price: a version written in a region
that is down, or cut off, expires when that region is back.

Counted per table (``TableStats.ttl_deleted_count``, CloudWatch's
``TimeToLiveDeletedItemCount``) in the region that issued the delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import orjson

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.model.records import record_item_json, record_stamp
from meridian.model.stamps import VersionStamp
from meridian.node.background import BackgroundTask
from meridian.node.engine import Engine

log = logging.getLogger(__name__)

_loads = orjson.loads
_MS_PER_S = Decimal(1000)  # a unit conversion, not a bound
_AGE_S_MAX = Decimal(limits.TTL_EXPIRED_AGE_S_MAX)


def expired(value: object, now_ms: int) -> bool:
    """Whether a TTL attribute's value (an attribute value as stored, or
    None when the item has none) makes its item expired at ``now_ms``."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    number = value.get("N")
    if not isinstance(number, str):
        return False
    try:
        expires_s = Decimal(number)
    except InvalidOperation:
        return False
    if not expires_s.is_finite():
        return False
    now_s = Decimal(now_ms) / _MS_PER_S
    return now_s - _AGE_S_MAX <= expires_s < now_s


@dataclass(frozen=True, slots=True)
class SweeperStatistics:
    """Live counters of one node's TTL sweeper."""

    passes: int  # sweeps of every TTL table completed
    items_examined: int  # live items read by sweeps
    deleted: int  # expired items deleted
    skipped: int  # expired items left alone: rewritten (or gone) after the sweep read them
    failures: int  # sweeps cut short by an error (the next one starts over)


class TtlSweeper(BackgroundTask):
    """Expires the items of one node (see the module docstring)."""

    task_prefix = "ttl"

    def __init__(
        self,
        engine: Engine,
        *,
        interval_s: float = limits.TTL_SWEEP_INTERVAL_S_DEFAULT,
        now_ms: Callable[[], int] | None = None,
        deletes_per_s_max: float = limits.TTL_DELETES_PER_S_MAX,
        burst_max: int = limits.TTL_DELETES_BURST_MAX,
        monotonic_s: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``now_ms``: epoch milliseconds (default: the engine's physical
        clock); ``monotonic_s`` and ``sleep`` pace the deletes (default: the
        running loop's clock and ``asyncio.sleep``): tests inject twins."""
        if interval_s <= 0:
            raise ValueError(f"the TTL sweep interval must be positive, got {interval_s}")
        if deletes_per_s_max <= 0 or not 1 <= burst_max <= limits.GROUP_COMMIT_WRITES_MAX:
            raise ValueError(f"bad TTL deletion rate: {deletes_per_s_max}/s in bursts of {burst_max}")
        self._engine = engine
        self._interval_s = interval_s
        self._now_ms = now_ms or engine.physical_now_ms
        self._rate = deletes_per_s_max
        self._burst = burst_max
        self._monotonic_s = monotonic_s
        self._sleep = sleep
        self._allowed_at = 0.0  # token bucket: when the deletes granted so far are paid for
        self._passes = 0
        self._examined = 0
        self._deleted = 0
        self._skipped = 0
        self._failures = 0

    def __repr__(self) -> str:
        state = self._state()
        return (
            f"<TtlSweeper {self._engine.node_id} {state} every {self._interval_s}s passes={self._passes} "
            f"deleted={self._deleted} skipped={self._skipped}>"
        )

    def statistics(self) -> SweeperStatistics:
        return SweeperStatistics(self._passes, self._examined, self._deleted, self._skipped, self._failures)

    # --- lifecycle -----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except DynamoError as err:  # the engine failed: every later write fails too
                self._failures += 1
                log.warning("node %s: TTL sweep failed: %s", self._engine.node_id, err)
            except Exception:  # noqa: BLE001 - the next sweep starts over
                self._failures += 1
                log.exception("node %s: TTL sweep failed", self._engine.node_id)
            await asyncio.sleep(self._interval_s)

    # --- sweeps --------------------------------------------------------------

    async def sweep(self) -> int:
        """One pass over every table with TTL; returns the items it deleted."""
        deleted = 0
        for table_id, attribute in list(self._engine.ttl_attributes().items()):
            deleted += await self._sweep_table(table_id, attribute)
        self._passes += 1
        return deleted

    async def _sweep_table(self, table_id: int, attribute: str) -> int:
        engine = self._engine
        region = engine.region
        needle = orjson.dumps(attribute)  # the name as it appears in stored item JSON
        deleted = 0
        after = b""
        while True:
            rows = engine.table_items(
                table_id, after, limits.TTL_SWEEP_CHUNK_ITEMS_MAX, limits.TTL_SWEEP_CHUNK_BYTES_MAX
            )
            if not rows:
                return deleted
            after = rows[-1][0]
            self._examined += len(rows)
            now_ms = self._now_ms()
            due: list[tuple[int, bytes, VersionStamp]] = []
            for key, record in rows:
                stamp = record_stamp(record)
                if stamp.region != region:
                    continue  # the region that wrote this version expires it
                item_json = record_item_json(record)
                if needle in item_json and expired(_loads(item_json).get(attribute), now_ms):
                    due.append((table_id, key, stamp))
            for start in range(0, len(due), self._burst):
                burst = await self._expire(table_id, attribute, due[start : start + self._burst])
                if burst is None:
                    return deleted  # TTL was disabled, or moved to another attribute
                deleted += burst
            await asyncio.sleep(0)  # let requests in between chunks
            if engine.ttl_attributes().get(table_id) != attribute:
                return deleted

    async def _expire(self, table_id: int, attribute: str, due: list[tuple[int, bytes, VersionStamp]]) -> int | None:
        """Delete one paced burst; None (nothing deleted) when the table's
        TTL setting changed while the burst waited for its turn: a pass
        stops the moment TTL is disabled, as ``router/actions/ttl.py`` says."""
        await self._pace(len(due))
        if self._engine.ttl_attributes().get(table_id) != attribute:
            return None
        deleted, durable = self._engine.expire_many(due)
        self._deleted += deleted
        self._skipped += len(due) - deleted
        if durable is not None:
            await asyncio.shield(durable)  # a stopped sweeper must not cancel the group
        return deleted

    async def _pace(self, n: int) -> None:
        """Wait until ``n`` more deletes keep within the rate (a token bucket
        holding ``burst_max``: never more than ``burst_max + rate * t`` deletes
        in any ``t`` seconds)."""
        now = self._monotonic_s() if self._monotonic_s is not None else asyncio.get_running_loop().time()
        allowed_at = max(self._allowed_at, now) + n / self._rate
        self._allowed_at = allowed_at
        wait_s = allowed_at - now - self._burst / self._rate
        if wait_s > 0:
            await self._sleep(wait_s)
