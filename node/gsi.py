"""The GSI maintainer: keeps every global secondary index up to date with
the items of one node.

A global secondary index (GSI) is partitioned by its own partition key, so
an item's entry usually lives on another node than the item.  Each node runs
one maintainer, which turns the node's change log into index entries and
sends them to the nodes owning them (``owner``: the ring, by the hash of the
index partition key; the node itself in embedded mode).  Writes are never
slowed down by an index: as in DynamoDB, a GSI is eventually consistent.

Per index, the maintainer keeps in the engine's ``meta`` column family
(``Engine.gsi_position`` / ``gsi_advance``):

* a **cursor**, the change-log sequence up to which entries were sent;
* while the index is new, a **backfill position**: an index added to a
  table that may hold items is first built from the node's items (in key
  order, from a live snapshot taken round by round), and only then from the
  log, starting at the sequence durable when the index appeared;
* per base item, the **index key last sent** for it, so a change knows the
  entry it replaces (the log holds new versions only).

A round reads a bounded batch (``GSI_BATCH_*``), derives the entries (a put
for the item's new index key, a removal of the key last sent when it
differs), sends them to their owners, and only once every owner has
acknowledged them durably records the new cursor and keys, in one write.
A crash or a failed send repeats the round, which sends the same entries
again; every entry carries its base item version's stamp and an owner never
lets an older entry replace a newer one (``Engine.apply_index_entries``), so
repeating is harmless and nothing acknowledged is lost.

Why backfill then log converges: an item unchanged since the index appeared
is sent as it stands; an item that changed has all its changes after that
point in the log, replayed in order after the backfill, the last of them
sending its final entry and removing the key sent before it.  A replayed
change older than the backfilled version may briefly send a stale entry
(whose removal of the newer backfilled entry the owner refuses, by stamp);
the later changes of that item remove it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException
from meridian.model.ops import IndexEntry, index_key_hash
from meridian.model.values import item_size
from meridian.node.engine import Engine
from meridian.node.indexes import IndexPlan
from meridian.model.records import record_item_json, record_size, record_stamp

log = logging.getLogger(__name__)

_loads = orjson.loads

#: Sends entries to another node and returns once it applied them durably.
RemoteSend = Callable[[str, list[IndexEntry]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MaintainerStatistics:
    """Live counters of one node's GSI maintainer."""

    rounds: int  # rounds that sent entries or moved a cursor
    entries_sent: int  # index entries acknowledged by their owners
    failures: int  # rounds given up on (owner down, index unknown there), to be repeated
    backfills_done: int  # indexes whose backfill finished on this node
    lag_changes: dict[str, int]  # index name -> change-log entries not yet covered


class GsiMaintainer:
    """Sends this node's global index entries to their owners (see the module docstring)."""

    def __init__(self, engine: Engine, *, owner: Callable[[int], str], remote_send: RemoteSend | None = None) -> None:
        """``owner`` maps an index entry's partition hash to a node id;
        ``remote_send`` reaches the other nodes (None: every entry is local)."""
        self._engine = engine
        self._owner = owner
        self._remote_send = remote_send
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry_at: dict[int, float] = {}  # index id -> loop time of the next attempt
        self._backoff_s: dict[int, float] = {}
        self._rounds = 0
        self._entries_sent = 0
        self._failures = 0
        self._backfills_done = 0

    def __repr__(self) -> str:
        state = "running" if self._task is not None and not self._task.done() else "stopped"
        return f"<GsiMaintainer {self._engine.node_id} {state} rounds={self._rounds} sent={self._entries_sent}>"

    def statistics(self) -> MaintainerStatistics:
        engine = self._engine
        last = engine.last_sequence()
        lag = {}
        for plan in engine.indexes.global_indexes():
            try:
                cursor, _ = engine.gsi_position(plan.index_id)
            except ResourceNotFoundException:
                continue
            lag[plan.name] = max(0, last - cursor)
        return MaintainerStatistics(self._rounds, self._entries_sent, self._failures, self._backfills_done, lag)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start on the running loop, which must be the engine's."""
        self._engine.gsi_wakeup = self._wake.set
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"gsi-{self._engine.node_id}")

    async def stop(self) -> None:
        """Stop after the current round's send (a round cut short is repeated at the next start)."""
        self._engine.gsi_wakeup = None
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    def wake(self) -> None:
        self._wake.set()

    # --- rounds --------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            worked = False
            now = loop.time()
            for plan in self._engine.indexes.global_indexes():
                index_id = plan.index_id
                if self._retry_at.get(index_id, 0.0) > now:
                    continue
                try:
                    worked |= await self._round(plan)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the round is repeated later
                    self._failed(plan, exc, loop.time())
                else:
                    self._retry_at.pop(index_id, None)
                    self._backoff_s.pop(index_id, None)
            if worked:
                await asyncio.sleep(0)  # let requests in between rounds
                continue
            wait_s = limits.GSI_POLL_INTERVAL_S
            if self._retry_at:
                wait_s = max(0.0, min(wait_s, min(self._retry_at.values()) - loop.time()))
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation
            # that arrives as the wake-up completes, and stop() then waits forever.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((waiter,), timeout=wait_s)
            finally:
                waiter.cancel()

    def _failed(self, plan: IndexPlan, exc: Exception, now: float) -> None:
        self._failures += 1
        index_id = plan.index_id
        backoff_s = min(2 * self._backoff_s.get(index_id, limits.GSI_RETRY_BACKOFF_S_MIN / 2),
                        limits.GSI_RETRY_BACKOFF_S_MAX)
        self._backoff_s[index_id] = backoff_s
        self._retry_at[index_id] = now + backoff_s
        log.info("node %s: index %s round failed, retrying in %.2f s: %s",
                 self._engine.node_id, plan.name, backoff_s, exc)

    async def _round(self, plan: IndexPlan) -> bool:
        """One bounded round for one index; False when there was nothing to do."""
        try:
            cursor, backfill = self._engine.gsi_position(plan.index_id)
        except ResourceNotFoundException:
            return False  # dropped since the list was taken
        if backfill is not None:
            return await self._backfill_round(plan, backfill)
        return await self._log_round(plan, cursor)

    async def _backfill_round(self, plan: IndexPlan, after: bytes) -> bool:
        engine = self._engine
        rows = engine.table_items(plan.table_id, after, limits.GSI_BATCH_CHANGES_MAX, limits.GSI_BATCH_BYTES_MAX)
        if not rows:
            engine.gsi_advance(plan.index_id, {}, backfill_done=True)
            self._backfills_done += 1
            log.info("node %s: index %s backfilled", engine.node_id, plan.name)
            return True
        entries: dict[bytes, IndexEntry] = {}
        sent: dict[bytes, bytes | None] = {}
        for table_key, record in rows:
            item_json = record_item_json(record)
            entry = plan.entry(_loads(item_json), item_json, record_size(record), table_key)
            if entry is None:
                continue
            index_key, projected_json, size = entry
            entries[index_key] = IndexEntry(plan.index_id, index_key, record_stamp(record).pack(), projected_json, size)
            sent[table_key] = index_key
        await self._send(entries)
        engine.gsi_advance(plan.index_id, sent, backfill=rows[-1][0])
        self._rounds += 1
        return True

    async def _log_round(self, plan: IndexPlan, cursor: int) -> bool:
        engine = self._engine
        table_id = plan.table_id
        changes = []
        last = cursor
        batch_bytes = 0
        for change in engine.read_changes(cursor, limits.GSI_BATCH_CHANGES_MAX):
            last = change.sequence
            if change.table_id != table_id:
                continue
            changes.append(change)
            batch_bytes += len(change.key) + len(change.item_json or b"")
            if batch_bytes >= limits.GSI_BATCH_BYTES_MAX:
                break
        if last == cursor:
            return False
        entries: dict[bytes, IndexEntry] = {}
        sent = engine.gsi_sent_keys(plan.index_id, {change.key for change in changes})
        changed: dict[bytes, bytes | None] = {}
        index_id = plan.index_id
        for change in changes:  # in log order: a base item's later change is its newer version
            stamp = change.stamp.pack()
            new = None
            if not change.tombstone:
                item = _loads(change.item_json)
                size = item_size(item) if plan.projected is None else 0
                new = plan.entry(item, change.item_json, size, change.key)
            previous = sent.get(change.key)
            new_key = new[0] if new is not None else None
            if previous is not None and previous != new_key:
                entries[previous] = IndexEntry(index_id, previous, stamp, None)
            if new is not None:
                entries[new_key] = IndexEntry(index_id, new_key, stamp, new[1], new[2])
            sent[change.key] = new_key
            changed[change.key] = new_key
        await self._send(entries)
        engine.gsi_advance(index_id, changed, cursor=last)
        self._rounds += 1
        return True

    async def _send(self, entries: dict[bytes, IndexEntry]) -> None:
        """Every entry to its owner; returns once all of them acknowledged."""
        if not entries:
            return
        by_owner: dict[str, list[IndexEntry]] = {}
        owner = self._owner
        for key, entry in entries.items():
            by_owner.setdefault(owner(index_key_hash(key)), []).append(entry)
        local_id = self._engine.node_id
        remote = [(node_id, batch) for node_id, batch in by_owner.items() if node_id != local_id]
        if remote:
            if self._remote_send is None:
                raise RuntimeError(f"index entries for {[n for n, _ in remote]} but no way to reach other nodes")
            await asyncio.gather(*(self._remote_send(node_id, batch) for node_id, batch in remote))
        local = by_owner.get(local_id)
        if local:
            self._engine.apply_index_entries(local)
        self._entries_sent += len(entries)
