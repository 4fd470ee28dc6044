"""Where backup records live: the region's catalog, under names no table can have.

A backup outlives its table (DeleteTable, even a same-name re-creation:
parity catalog DDB-BACKUP-007, DDB-BACKUP-016) and every restart, and every
router of the region must see it.  The table catalog already has all three
properties (a copy on every node, newest revision wins, ``router/catalog.py``),
so each backup is one catalog entry named ``#backup/<id>``: ``#`` is outside
table names' ``[a-zA-Z0-9_.-]``, so no table collides with it, and the
router's table view (``Catalog.refresh``) skips such entries, so ListTables
never shows them.  The entry's description nests the backup under
``"backup"`` and has none of the members storage nodes and replicators read
(``table_id``, ``key_schema``, ``indexes``, ``replicas``, ``ttl_*``,
``pitr_*``): to them it is not a table.  A deleted backup is a deleted entry,
like a deleted table.

The record keeps the source table's catalog record as it was when the
backup was taken: what DescribeBackup shows of it and what a restore
rebuilds (``router/restore_target.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meridian.model.ops import CatalogEntry

from .storage import Storage
from .table_record import Table

BACKUP_ENTRY_PREFIX = "#backup/"


def is_backup_entry(name: str) -> bool:
    """Whether a catalog entry's name is a backup's, not a table's."""
    return name.startswith(BACKUP_ENTRY_PREFIX)


@dataclass(slots=True)
class BackupRecord:
    """One backup: DescribeBackup's BackupDetails plus its source table's record."""

    backup_id: str
    name: str
    backup_type: str  # USER or SYSTEM
    created_s: float  # BackupCreationDateTime (the request's time, ms precision)
    table: dict[str, Any]  # the source table's ``Table.to_record()`` when the backup was taken
    size_bytes: int = 0
    item_count: int = 0
    expiry_s: float | None = None  # SYSTEM backups only
    revision: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def source(self) -> Table:
        return Table.from_record(self.table, 0)

    @property
    def table_name(self) -> str:
        return self.table["name"]

    def to_description(self) -> dict[str, Any]:
        return {"backup": {
            "backup_id": self.backup_id, "name": self.name, "backup_type": self.backup_type,
            "created_s": self.created_s, "size_bytes": self.size_bytes, "item_count": self.item_count,
            "expiry_s": self.expiry_s, "table": self.table, **self.extra,
        }}

    @classmethod
    def from_entry(cls, entry: CatalogEntry) -> "BackupRecord":
        fields = dict(entry.description["backup"])
        known = {name: fields.pop(name) for name in
                 ("backup_id", "name", "backup_type", "created_s", "size_bytes", "item_count", "expiry_s", "table")}
        return cls(revision=entry.revision, extra=fields, **known)


class BackupCatalog:
    """The region's backups, read from and written to the storage nodes' catalog copies.

    Nothing is cached: backups change rarely and every call reads what the
    nodes hold now, so every router sees a backup the moment it is stored.
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def all(self) -> list[BackupRecord]:
        """Every backup not deleted (expired SYSTEM backups included), oldest first."""
        records = [BackupRecord.from_entry(entry) for entry in await self._storage.catalog_list()
                   if is_backup_entry(entry.name) and not entry.deleted]
        return sorted(records, key=lambda record: (record.created_s, record.backup_id))

    async def get(self, backup_id: str) -> BackupRecord | None:
        for entry in await self._storage.catalog_list():
            if entry.name == BACKUP_ENTRY_PREFIX + backup_id:
                return None if entry.deleted else BackupRecord.from_entry(entry)
        return None

    async def put(self, record: BackupRecord) -> None:
        record.revision += 1
        await self._storage.catalog_put(
            CatalogEntry(BACKUP_ENTRY_PREFIX + record.backup_id, record.revision, record.to_description())
        )

    async def remove(self, record: BackupRecord) -> None:
        await self._storage.catalog_put(CatalogEntry(
            BACKUP_ENTRY_PREFIX + record.backup_id, record.revision + 1, record.to_description(), deleted=True
        ))
