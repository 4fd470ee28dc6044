"""Point-in-time recovery and on-demand backups: UpdateContinuousBackups,
DescribeContinuousBackups, RestoreTableToPointInTime, CreateBackup, DescribeBackup,
ListBackups, DeleteBackup, RestoreTableFromBackup.

The request-only rules run first (``router/backup_rules.py``); the checks
that need a table or a backup are here, in live DynamoDB's order where the
2026 parity catalog records it (for a restore to a point in time: PITR
enabled, then the time, then the target: DDB-TABLE-100).  The actions of
this family name a missing table ``TableNotFoundException`` "Table not
found: <name>", and so name a table still being restored into
(DDB-TABLE-447, DDB-TABLE-217).

Where things are: backups' records ``router/backup_catalog.py``, their ids
and ARNs ``backup_ids.py``, the cut across nodes ``backup_cut.py``, taking
one ``backup_take.py``, the answers ``backup_descriptions.py``; a restore's
new table ``restore_target.py``, its run ``restore.py``.

Point-in-time recovery.  Enabling it checkpoints every node first, then
stores ``pitr_enabled_s`` / ``pitr_recovery_days`` in the table record (the
nodes' PITR task reads them); disabling clears both, and the history goes,
as in DynamoDB.  The restorable window runs from the latest of: the enable
time, the nodes' oldest kept periodic checkpoints, now minus the recovery
period; to now (DynamoDB's LatestRestorableDateTime lags about five
minutes; Meridian's log is durable at once: docs/compatibility.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import (
    BackupInUseException,
    BackupNotFoundException,
    InvalidRestoreTimeException,
    PointInTimeRecoveryUnavailableException,
    TableNotFoundException,
    ValidationException,
)

from .. import restore
from ..backup_catalog import BackupCatalog, BackupRecord
from ..backup_cut import delete_everywhere, oldest_checkpoint_s, start_pitr
from ..backup_descriptions import arn_of, backup_description, backup_details, backup_summary, continuous_backups
from ..backup_ids import BackupArn, created_ms_of, iso_ms, iso_s, new_backup_id, parse_backup_arn
from ..backup_take import take_backup
from ..context import RouterContext
from ..restore_target import restored_table
from ..table_record import ACCOUNT_ID, Table
from .descriptions import table_description

_PARAM = "One or more parameter values were invalid: "
_CROSS_REGION = "Invalid Request: sseSpecificationOverride must be provided for cross-region restores"


async def _table(ctx: RouterContext, name: str) -> Table:
    """The table as stored now (another router may have changed its PITR)."""
    table = await ctx.catalog.fresh(name)
    if table is None or table.restoring:
        raise TableNotFoundException(f"Table not found: {name}")
    return table


async def _window(ctx: RouterContext, table: Table, now_s: float) -> tuple[float, float]:
    """(EarliestRestorableDateTime, LatestRestorableDateTime) of a table with PITR."""
    assert table.pitr_enabled_s is not None and table.pitr_recovery_days is not None
    period_s = datetime.timedelta(days=table.pitr_recovery_days).total_seconds()
    earliest = max(table.pitr_enabled_s, await oldest_checkpoint_s(ctx.storage), now_s - period_s)
    return min(earliest, now_s), now_s


# --- point-in-time recovery ----------------------------------------------------------
async def update_continuous_backups(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _table(ctx, body["TableName"])
    spec = body["PointInTimeRecoverySpecification"]
    days = spec.get("RecoveryPeriodInDays")
    changed = dataclasses.replace(table)  # the cached record changes only once the new one is stored
    if not spec["PointInTimeRecoveryEnabled"]:
        changed.pitr_enabled_s = changed.pitr_recovery_days = None
    elif table.pitr_enabled_s is None:
        changed.pitr_enabled_s = await start_pitr(ctx.storage)
        changed.pitr_recovery_days = days or limits.PITR_RECOVERY_DAYS_DEFAULT
    elif days is not None:
        changed.pitr_recovery_days = days  # in place, the window's start unchanged (DDB-TABLE-084, 085)
    if (changed.pitr_enabled_s, changed.pitr_recovery_days) != (table.pitr_enabled_s, table.pitr_recovery_days):
        await ctx.catalog.save(changed)
    window = await _window(ctx, changed, time.time()) if changed.pitr_enabled_s is not None else None
    return {"ContinuousBackupsDescription": continuous_backups(changed, window)}


async def describe_continuous_backups(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _table(ctx, body["TableName"])
    window = await _window(ctx, table, time.time()) if table.pitr_enabled_s is not None else None
    return {"ContinuousBackupsDescription": continuous_backups(table, window)}


async def _source_by_arn(ctx: RouterContext, arn: str, body: dict[str, Any]) -> Table:
    """RestoreTableToPointInTime's SourceTableArn (DDB-TABLE-272, 274, 447; their order is a guess)."""
    if not arn.startswith("arn:"):
        raise ValidationException(f"{_PARAM}ARNs must start with 'arn:': {arn}")
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/") or "/" in parts[5][6:]:
        raise ValidationException("sourceTableArn is not a valid ARN")
    if parts[4] != ACCOUNT_ID:
        raise ValidationException("This action is only supported by accounts that match the resource owner\u2019s account.")
    if parts[3] != ctx.region:
        if body.get("SSESpecificationOverride") is None:
            raise ValidationException(_CROSS_REGION)
        raise TableNotFoundException("Table not found")  # another region's table: not restored across regions here
    table = await ctx.catalog.fresh(parts[5][6:])
    if table is None or table.restoring:
        raise TableNotFoundException("Table not found")
    return table


async def restore_table_to_point_in_time(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = body.get("SourceTableArn")
    source = await _source_by_arn(ctx, arn, body) if arn is not None else await _table(ctx, body["SourceTableName"])
    if source.pitr_enabled_s is None:
        raise PointInTimeRecoveryUnavailableException(f"Point in time recovery is not enabled for table '{source.name}'")
    now_s = time.time()
    earliest, latest = await _window(ctx, source, now_s)
    at_s = latest if body.get("UseLatestRestorableTime") else float(body["RestoreDateTime"])
    if not earliest <= at_s <= latest:
        # The message's end, past "LatestRestor", is a guess (DDB-TABLE-100 cuts it there).
        raise InvalidRestoreTimeException(
            f"RestoreDateTime '{iso_s(at_s)}' must be within EarliestRestorableDateTime '{iso_s(earliest)}' "
            f"and LatestRestorableDateTime '{iso_s(latest)}'"
        )
    target_name = body["TargetTableName"]
    await restore.check_target(ctx, target_name)
    summary = restore.summary(restore_s=at_s, source_table_arn=source.arn)
    target = restored_table(source, body, target_name, ctx.region, now_s, summary)
    await restore.start(ctx, target, source.table_id, at_ms=int(at_s * 1000))
    return {"TableDescription": table_description(target, "CREATING")}


# --- on-demand backups ------------------------------------------------------------------
async def create_backup(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _table(ctx, body["TableName"])
    created_ms = int(time.time() * 1000)
    record = await take_backup(ctx, table, new_backup_id(created_ms), body["BackupName"], "USER", created_ms / 1000)
    # CREATING in this answer only: the next DescribeBackup says AVAILABLE (DDB-BACKUP-003).
    return {"BackupDetails": backup_details(record, "CREATING")}


def _expired(record: BackupRecord, now_s: float) -> bool:
    return record.expiry_s is not None and record.expiry_s <= now_s


async def _backup(ctx: RouterContext, arn: BackupArn) -> BackupRecord:
    """The backup an ARN names (by its id: DDB-BACKUP-012), or BackupNotFoundException."""
    record = await BackupCatalog(ctx.storage).get(arn.backup_id)
    if record is None or _expired(record, time.time()):
        raise BackupNotFoundException(f"Backup not found: {arn.arn}")
    return record


async def describe_backup(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = parse_backup_arn(body["BackupArn"])
    return {"BackupDescription": backup_description(await _backup(ctx, arn), arn=arn.arn)}


async def delete_backup(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = parse_backup_arn(body["BackupArn"])
    record = await _backup(ctx, arn)
    if record.backup_type == "SYSTEM":  # DDB-BACKUP-015 (the expiry date's format is a guess)
        raise ValidationException(
            f"Invalid Request: User is not allowed to delete the system backup with arn {arn.arn}. "
            f"It will automatically expire on {iso_ms(record.expiry_s or 0.0)}"
        )
    if restore.backup_in_use(ctx, record.backup_id) is not None:  # DDB-BACKUP-010
        raise BackupInUseException(f"Backup is being used to restore table: {arn.arn}")
    await BackupCatalog(ctx.storage).remove(record)
    await delete_everywhere(ctx.storage, record.backup_id)
    return {"BackupDescription": backup_description(record, "DELETED", arn=arn.arn)}


def _type_matches(record: BackupRecord, wanted: str) -> bool:
    """BackupType: USER by default, SYSTEM, ALL; AWS_BACKUP has none here (DDB-BACKUP-014)."""
    return wanted == "ALL" or record.backup_type == wanted


def _ms(at_s: float) -> float:
    """A time at millisecond precision, the precision ListBackups compares at (a
    client's bound may be any number, even past what an int of ms holds)."""
    at_ms = at_s * 1000
    return float(round(at_ms)) if math.isfinite(at_ms) else at_ms


def _position(backup_id: str) -> tuple[int, str]:
    return created_ms_of(backup_id), backup_id


async def _purge_expired(ctx: RouterContext, records: list[BackupRecord]) -> None:
    """SYSTEM backups past their expiry go, with their checkpoints."""
    catalog = BackupCatalog(ctx.storage)
    for record in records:
        await catalog.remove(record)
        await delete_everywhere(ctx.storage, record.backup_id)


async def list_backups(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    """Oldest first; the time range is [lower, upper) at millisecond precision (DDB-BACKUP-014)."""
    start = body.get("ExclusiveStartBackupArn")
    after = None
    if start is not None:
        cursor = parse_backup_arn(start)
        if cursor.region != ctx.region:
            raise ValidationException("Invalid Request: The supplied ExclusiveStartBackupArn does not match the region")
        after = _position(cursor.backup_id)
    now_s = time.time()
    records = await BackupCatalog(ctx.storage).all()
    await _purge_expired(ctx, [r for r in records if _expired(r, now_s)])
    name, wanted = body.get("TableName"), body.get("BackupType", "USER")
    lower, upper = body.get("TimeRangeLowerBound"), body.get("TimeRangeUpperBound")
    matching = [
        r for r in records
        if not _expired(r, now_s) and _type_matches(r, wanted)
        and (name is None or r.table_name == name)
        and (lower is None or _ms(r.created_s) >= _ms(lower))
        and (upper is None or _ms(r.created_s) < _ms(upper))
        and (after is None or _position(r.backup_id) > after)
    ]
    limit = body.get("Limit", limits.LIST_BACKUPS_LIMIT_MAX)
    page = matching[:limit]
    out: dict[str, Any] = {"BackupSummaries": [backup_summary(r) for r in page]}
    if len(matching) > limit:
        out["LastEvaluatedBackupArn"] = arn_of(page[-1])
    return out


async def restore_table_from_backup(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = parse_backup_arn(body["BackupArn"])
    if arn.region != ctx.region and body.get("SSESpecificationOverride") is None:  # DDB-TABLE-274
        raise ValidationException(_CROSS_REGION)
    record = await _backup(ctx, arn)
    target_name = body["TargetTableName"]
    await restore.check_target(ctx, target_name)
    if restore.backup_in_use(ctx, record.backup_id) is not None:  # DDB-BACKUP-010
        raise BackupInUseException(f"Backup is being used to restore another table: {arn.arn}")
    source = record.source()
    summary = restore.summary(restore_s=record.created_s, source_table_arn=source.arn, backup_arn=arn.arn,
                              backup_id=record.backup_id)
    target = restored_table(source, body, target_name, ctx.region, time.time(), summary)
    await restore.start(ctx, target, source.table_id, checkpoint=record.backup_id)
    return {"TableDescription": table_description(target, "CREATING")}


ACTIONS = {
    "UpdateContinuousBackups": update_continuous_backups,
    "DescribeContinuousBackups": describe_continuous_backups,
    "RestoreTableToPointInTime": restore_table_to_point_in_time,
    "CreateBackup": create_backup,
    "DescribeBackup": describe_backup,
    "ListBackups": list_backups,
    "DeleteBackup": delete_backup,
    "RestoreTableFromBackup": restore_table_from_backup,
}
