"""The table catalog as a router sees it: a cache of the region's table records.

Table metadata is durable on the storage nodes (every node keeps a copy of
every entry, in its ``meta`` column family); a router keeps an in-memory
view, refreshed from the nodes every ``limits.CATALOG_REFRESH_INTERVAL_S``
and on any miss, so that every router of a region, including one started
later or restarted, sees the same tables.  When copies differ (a node was
down during a change), the newest ``revision`` wins.  The records
themselves are ``router/table_record.py``'s; other regions' catalogs are
reached through ``router/regions.py``.

Tables are created ACTIVE at once: the CreateTable answer says CREATING (as
DynamoDB's does) and the next DescribeTable says ACTIVE, which is all the
``table-exists`` waiter needs.  DeleteTable answers DELETING and the table
is gone from the next call on.

A global index added by UpdateTable is CREATING, with ``Backfilling``, for
as long as some node still builds it from its items (``TableStats``); a
deleted one is DELETING in the UpdateTable answer and gone from the next
call on.

Global Tables: the region's replicator writes a table's ``replicas`` too
(statuses, progress, other regions' changes).  A router saving any other
change keeps the replicas it finds stored, so it never undoes the
replicator's work with a stale view.

Backups are catalog entries too (``router/backup_catalog.py``), under names
no table can have; this view skips them, so ListTables never shows them.
"""

from __future__ import annotations

import asyncio
import logging
import time

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException
from meridian.model.ops import CatalogEntry

from .backup_catalog import is_backup_entry
from .regions import RegionDirectory
from .storage import Storage
from .table_record import Index, Table

__all__ = ["Catalog", "RegionDirectory"]  # RegionDirectory: router/server.py imports it from here

log = logging.getLogger("meridian.router.catalog")


class Catalog:
    """A router's view of the region's tables."""

    def __init__(self, storage: Storage, region: str, *, shared: bool, directory: RegionDirectory | None = None) -> None:
        """``shared``: other routers may change the catalog (cluster mode), so
        refresh periodically and on misses; in embedded mode this router is
        the only writer and its view is always current.  ``directory``: the
        other regions, through this region's replicator (default: none known)."""
        self._storage = storage
        self.region = region
        self.directory = directory if directory is not None else RegionDirectory(region, None)
        self._shared = shared
        self._tables: dict[str, Table] = {}
        self._deleted: dict[str, Table] = {}  # deleted tables still listing streams, by name
        self._revisions: dict[str, int] = {}
        self._refreshed_at_s = 0.0
        self._built_indexes: set[int] = set()  # GSIs added by UpdateTable seen built on every node
        self._refresh_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._first_refresh()
        if self._shared:
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def _first_refresh(self) -> None:
        """Read the catalog once, retrying while the nodes are not up yet.

        A router is often started alongside its nodes (``meridian up``,
        docker-compose); one that gave up at the first unanswered read would
        make start order matter.  After ``CATALOG_START_TIMEOUT_S`` the last
        error is raised.
        """
        deadline = time.monotonic() + limits.CATALOG_START_TIMEOUT_S
        while True:
            try:
                await self.refresh()
                return
            except Exception as exc:  # noqa: BLE001 - any storage error: retry until the deadline
                if time.monotonic() >= deadline:
                    raise
                log.info("catalog not readable yet (%s); retrying", exc)
                await asyncio.sleep(limits.CATALOG_START_RETRY_S)

    async def stop(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            try:
                await self._refresh_task
            except asyncio.CancelledError:
                pass

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(limits.CATALOG_REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving from the last view
                log.warning("catalog refresh failed: %s", exc)

    async def refresh(self) -> None:
        entries = await self._storage.catalog_list()
        tables: dict[str, Table] = {}
        deleted: dict[str, Table] = {}
        revisions: dict[str, int] = {}
        for entry in entries:
            if is_backup_entry(entry.name):
                continue  # a backup's record (router/backup_catalog.py), not a table
            revisions[entry.name] = entry.revision
            if not entry.deleted:
                tables[entry.name] = Table.from_record(entry.description, entry.revision)
            elif entry.description.get("past_streams"):
                deleted[entry.name] = Table.from_record(entry.description, entry.revision)
        self._tables = tables
        self._deleted = deleted
        self._revisions = revisions
        self._refreshed_at_s = time.monotonic()

    # --- lookups ---------------------------------------------------------------
    def get_cached(self, name: str) -> Table | None:
        return self._tables.get(name)

    async def get(self, name: str) -> Table | None:
        """The table, refreshing once from the nodes on a miss in cluster mode."""
        table = self._tables.get(name)
        if table is None and self._shared:
            await self.refresh()
            table = self._tables.get(name)
        return table

    async def require(self, name: str, message: str = "Requested resource not found") -> Table:
        table = await self.get(name)
        if table is None:
            raise ResourceNotFoundException(message)
        return table

    async def index_built(self, table: Table, index: Index) -> bool:
        """Whether a global index may be read: not being built by some node.

        Only an index added to an existing table is ever built; once every
        node reported it built it stays so, and is not asked about again.
        """
        index_id = index.spec.index_id
        if not index.spec.backfill or index_id in self._built_indexes:
            return True
        stats = (await self._storage.table_stats(table.table_id)).indexes.get(index_id)
        if stats is None or stats.backfilling:
            return False
        self._built_indexes.add(index_id)
        return True

    def deleted(self, name: str) -> Table | None:
        """The last record of a deleted table that still lists streams
        (``router/stream_catalog.py``), unless a table of that name exists."""
        return None if name in self._tables else self._deleted.get(name)

    def deleted_tables(self) -> list[Table]:
        return [table for name, table in self._deleted.items() if name not in self._tables]

    def names(self) -> list[str]:
        return sorted(self._tables)

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    async def fresh(self, name: str) -> Table | None:
        """The table as stored now, not as last refreshed (cluster mode: the
        region's replicator changes replica statuses behind the routers)."""
        if self._shared:
            await self.refresh()
        return self._tables.get(name)

    # --- changes ---------------------------------------------------------------
    async def save(self, table: Table, *, replicas_changed: bool = False) -> None:
        """Store a table's new record.  Unless ``replicas_changed`` (the
        caller changed them on a fresh view), the replicas stored now are
        kept: the replicator may have moved them on since this view was read."""
        async with self._lock:
            if not replicas_changed:
                await self._keep_stored_replicas(table)
            table.revision = max(self._revisions.get(table.name, 0), table.revision) + 1
            await self._storage.catalog_put(CatalogEntry(table.name, table.revision, table.to_record()))
            self._revisions[table.name] = table.revision
            self._tables[table.name] = table

    async def remove(self, table: Table) -> None:
        """Delete a table here; the record keeps its replicas, so that this
        region's replicator tells the other replica regions (``replicas.py``)."""
        async with self._lock:
            await self._keep_stored_replicas(table)
            revision = max(self._revisions.get(table.name, 0), table.revision) + 1
            await self._storage.catalog_put(CatalogEntry(table.name, revision, table.to_record(), deleted=True))
            self._revisions[table.name] = revision
            self._tables.pop(table.name, None)
            if table.past_streams:
                self._deleted[table.name] = table

    async def _keep_stored_replicas(self, table: Table) -> None:
        if not self._shared:
            return  # embedded: no replicator, this view is the only writer
        for entry in await self._storage.catalog_list():
            if entry.name == table.name and not entry.deleted and entry.description.get("table_id") == table.table_id:
                table.replicas = entry.description.get("replicas") or []
                table.legacy_created_s = entry.description.get("legacy_created_s")
                return
