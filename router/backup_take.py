"""Taking a backup: a consistent cut on every node, then the record that names it.

CreateBackup takes USER backups; DeleteTable of a table with point-in-time
recovery keeps a SYSTEM one, named ``<table>$DeletedTableBackup``, expiring
after 35 days, which nobody can delete (parity catalog DDB-BACKUP-015), so
the deleted table can still be restored.  The checkpoints are taken first,
the record stored last: a record never names checkpoints that do not exist.
A backup's size and item count are the table's statistics when it was taken
(DynamoDB's lag behind the data, DDB-BACKUP-008; Meridian's do not).
"""

from __future__ import annotations

import datetime
import time

from meridian.model import limits

from .backup_catalog import BackupCatalog, BackupRecord
from .backup_cut import delete_everywhere, take_cut
from .backup_ids import new_backup_id
from .context import RouterContext
from .table_record import Table


async def take_backup(
    ctx: RouterContext, table: Table, backup_id: str, name: str, backup_type: str, created_s: float,
    expiry_s: float | None = None,
) -> BackupRecord:
    """Checkpoint every node under ``backup_id`` and store the backup's record."""
    stats = await ctx.storage.table_stats(table.table_id)
    await take_cut(ctx.storage, backup_id)
    record = BackupRecord(
        backup_id=backup_id, name=name, backup_type=backup_type, created_s=created_s, table=table.to_record(),
        size_bytes=stats.size_bytes, item_count=stats.item_count, expiry_s=expiry_s,
    )
    try:
        await BackupCatalog(ctx.storage).put(record)
    except BaseException:
        await delete_everywhere(ctx.storage, backup_id)
        raise
    return record


async def keep_system_backup(ctx: RouterContext, table: Table) -> BackupRecord:
    """The SYSTEM backup DeleteTable keeps of a table with point-in-time recovery."""
    created_ms = int(time.time() * 1000)
    catalog = BackupCatalog(ctx.storage)
    # A SYSTEM id is its creation ms and zeros: another table deleted in the
    # same millisecond takes the next one.
    while await catalog.get(new_backup_id(created_ms, system=True)) is not None:
        created_ms += 1
    created_s = created_ms / 1000
    retention_s = datetime.timedelta(days=limits.SYSTEM_BACKUP_RETENTION_DAYS).total_seconds()
    return await take_backup(
        ctx, table, new_backup_id(created_ms, system=True), f"{table.name}$DeletedTableBackup", "SYSTEM", created_s,
        created_s + retention_s,
    )
