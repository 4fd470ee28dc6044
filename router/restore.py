"""Running a restore: the new table is stored CREATING, every node fills it, then it is ACTIVE.

Both restores answer at once, as DynamoDB does: the new table is in the
catalog, CREATING, with a RestoreSummary (RestoreInProgress true), before
any item is copied.  Then every storage node, in parallel, copies the
source table's items it holds into the new table id
(``Storage.restore_table``: from the backup's checkpoint, or from the
newest periodic checkpoint before the point in time plus the change log up
to it) through the replicated-apply path, so secondary indexes and
statistics follow.  Once every node is done the table is ACTIVE and its
RestoreSummary is gone (live DynamoDB drops it at ACTIVE: parity catalog
DDB-TABLE-216).

The copy runs in this router's event loop.  If a node fails, the new
table is deleted (as a DynamoDB table whose creation cannot finish
vanishes) and the failure logged.  If this router stops
mid-restore, the table stays CREATING (docs/compatibility.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from meridian.model import limits
from meridian.model.backups import RestoreRequest
from meridian.model.errors import LimitExceededException, TableAlreadyExistsException, TableInUseException

from .context import RouterContext
from .table_record import Table

log = logging.getLogger("meridian.router.restore")

#: Restores this process runs (a strong reference keeps each task alive).
_RUNNING: set[asyncio.Task[None]] = set()


async def check_target(ctx: RouterContext, target_name: str) -> None:
    """The target's name is free, and fewer than 50 restores run (DDB-TABLE-219, 275, 350).

    A table being restored into is TableInUseException (the wording of
    RestoreTableFromBackup's, used for both restores: a guess for the
    point-in-time one); any other existing table TableAlreadyExistsException.
    """
    existing = await ctx.catalog.get(target_name)
    if existing is not None and existing.restoring:
        source = existing.restore.get("SourceBackupArn") or existing.restore.get("SourceTableArn")  # type: ignore[union-attr]
        raise TableInUseException(f"Table: {target_name} is already being restored from backup: {source}")
    if existing is not None:
        raise TableAlreadyExistsException(f"Table already exists: {target_name}")
    if sum(1 for table in ctx.catalog.tables() if table.restoring) >= limits.RESTORES_IN_PROGRESS_MAX:
        raise LimitExceededException(
            f"Subscriber limit exceeded: Only {limits.RESTORES_IN_PROGRESS_MAX} restore operations can be done "
            "simultaneously"
        )


def summary(*, restore_s: float, source_table_arn: str, backup_arn: str | None = None,
            backup_id: str | None = None) -> dict[str, Any]:
    """A table's ``restore`` record while it is filled: its RestoreSummary, and
    (Meridian's own) the id of the backup it comes from, if any."""
    out: dict[str, Any] = {}
    if backup_arn is not None:
        out["SourceBackupArn"] = backup_arn
    out.update(SourceTableArn=source_table_arn, RestoreDateTime=round(restore_s, 3), RestoreInProgress=True)
    if backup_id is not None:
        out["backup_id"] = backup_id
    return out


async def start(ctx: RouterContext, target: Table, source_table_id: int, *,
                checkpoint: str | None = None, at_ms: int | None = None) -> None:
    """Store ``target`` (CREATING) and fill it in the background."""
    request = RestoreRequest(source_table_id, target.table_id, checkpoint=checkpoint, at_ms=at_ms)
    await ctx.catalog.save(target)
    task = asyncio.get_running_loop().create_task(_fill(ctx, target.name, target.table_id, request))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


async def _fill(ctx: RouterContext, name: str, table_id: int, request: RestoreRequest) -> None:
    try:
        results = await asyncio.gather(*(ctx.storage.restore_table(node_id, request) for node_id in ctx.storage.node_ids))
    except Exception as exc:  # noqa: BLE001 - any node failure ends the restore
        log.error("restore into %s failed, the table is deleted: %r", name, exc)
        table = await ctx.catalog.fresh(name)
        if table is not None and table.table_id == table_id:
            await ctx.catalog.remove(table)
            await ctx.storage.drop_table(table_id)
        return
    table = await ctx.catalog.fresh(name)
    if table is None or table.table_id != table_id:
        return
    table.restore = None
    await ctx.catalog.save(table)
    log.info("restored %s: %d items, %d bytes", name, sum(r.item_count for r in results),
             sum(r.size_bytes for r in results))


async def wait_all() -> None:
    """Wait for the restores this process runs (tests; a clean shutdown)."""
    while _RUNNING:
        await asyncio.gather(*list(_RUNNING), return_exceptions=True)


def backup_in_use(ctx: RouterContext, backup_id: str) -> Table | None:
    """A table a restore from the backup with this id still fills (BackupInUseException)."""
    for table in ctx.catalog.tables():
        if table.restoring and table.restore.get("backup_id") == backup_id:  # type: ignore[union-attr]
            return table
    return None
