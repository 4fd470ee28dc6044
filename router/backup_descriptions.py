"""What the backup and PITR actions answer: BackupDetails, BackupDescription, BackupSummary,
ContinuousBackupsDescription.

Shapes as live DynamoDB fills them (parity catalog DDB-BACKUP-004, 006, 009,
015, 021; DDB-TABLE-083, 084):

* CreateBackup answers a bare ``BackupDetails`` (status CREATING); Describe
  and DeleteBackup wrap it in ``BackupDescription`` with the source table's
  details and features; a USER backup has no ``BackupExpiryDateTime``.
* ``SourceTableFeatureDetails`` names the indexes (``*Info`` shapes: name,
  keys, projection, a GSI's throughput), the stream and Time to Live only
  when the table had them, and is ``{}`` for a plain table and for every
  SYSTEM backup.  Tags, PITR, table class, deletion protection are never
  recorded.
* ``PointInTimeRecoveryDescription`` holds only its status while PITR is
  disabled; ``ContinuousBackupsStatus`` is ENABLED for every table (live
  DynamoDB turns it on by itself seconds after a table is ACTIVE).
"""

from __future__ import annotations

from typing import Any

from meridian.model.ops import PROJECTION_INCLUDE

from .backup_catalog import BackupRecord
from .backup_ids import backup_arn
from .table_record import Index, Table


def _key_schema(key_schema: Any) -> list[dict[str, str]]:
    return [{"AttributeName": name, "KeyType": role} for (name, _), role in zip(key_schema, ("HASH", "RANGE"))]


def _index_info(index: Index) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.spec.projection_type}
    if index.spec.projection_type == PROJECTION_INCLUDE:
        projection["NonKeyAttributes"] = sorted(index.spec.non_key_attributes)
    out: dict[str, Any] = {"IndexName": index.name, "KeySchema": index.spec.key_schema_elements(),
                           "Projection": projection}
    if index.is_global:
        out["ProvisionedThroughput"] = {"ReadCapacityUnits": index.read_capacity,
                                        "WriteCapacityUnits": index.write_capacity}
    return out


def arn_of(record: BackupRecord) -> str:
    return backup_arn(record.table.get("region", ""), record.table_name, record.backup_id)


def backup_details(record: BackupRecord, status: str = "AVAILABLE", arn: str | None = None) -> dict[str, Any]:
    """``BackupDetails``; ``arn``: the ARN the client named, echoed as DynamoDB does (DDB-BACKUP-012)."""
    out: dict[str, Any] = {
        "BackupArn": arn or arn_of(record),
        "BackupName": record.name,
        "BackupSizeBytes": record.size_bytes,
        "BackupStatus": status,
        "BackupType": record.backup_type,
        "BackupCreationDateTime": record.created_s,
    }
    if record.expiry_s is not None:
        out["BackupExpiryDateTime"] = record.expiry_s
    return out


def _source_details(record: BackupRecord, table: Table) -> dict[str, Any]:
    return {
        "TableName": table.name,
        "TableId": table.uuid,
        "TableArn": table.arn,
        "TableSizeBytes": record.size_bytes,
        "KeySchema": _key_schema(table.key_schema),
        "TableCreationDateTime": table.created_s,
        "ProvisionedThroughput": {"ReadCapacityUnits": table.read_capacity, "WriteCapacityUnits": table.write_capacity},
        "ItemCount": record.item_count,
        "BillingMode": table.billing_mode,
    }


def _features(record: BackupRecord, table: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if record.backup_type == "SYSTEM":
        return out
    if table.local_indexes:
        out["LocalSecondaryIndexes"] = [_index_info(index) for index in table.local_indexes]
    if table.global_indexes:
        out["GlobalSecondaryIndexes"] = [_index_info(index) for index in table.global_indexes]
    if table.stream is not None and table.stream.get("StreamEnabled"):
        out["StreamDescription"] = dict(table.stream)
    if table.ttl_attribute is not None:
        out["TimeToLiveDescription"] = {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}
    return out


def backup_description(record: BackupRecord, status: str = "AVAILABLE", arn: str | None = None) -> dict[str, Any]:
    """``BackupDescription``: the details, the source table's, its features."""
    table = record.source()
    return {
        "BackupDetails": backup_details(record, status, arn),
        "SourceTableDetails": _source_details(record, table),
        "SourceTableFeatureDetails": _features(record, table),
    }


def backup_summary(record: BackupRecord) -> dict[str, Any]:
    """One ``BackupSummary`` of ListBackups."""
    out: dict[str, Any] = {
        "TableName": record.table_name,
        "TableId": record.table["uuid"],
        "TableArn": record.source().arn,
        "BackupArn": arn_of(record),
        "BackupName": record.name,
        "BackupCreationDateTime": record.created_s,
    }
    if record.expiry_s is not None:
        out["BackupExpiryDateTime"] = record.expiry_s
    out.update(BackupStatus="AVAILABLE", BackupType=record.backup_type, BackupSizeBytes=record.size_bytes)
    return out


def continuous_backups(table: Table, window: tuple[float, float] | None) -> dict[str, Any]:
    """``ContinuousBackupsDescription``; ``window``: (earliest, latest) restorable
    times while PITR is enabled."""
    pitr: dict[str, Any] = {"PointInTimeRecoveryStatus": "DISABLED"}
    if table.pitr_enabled_s is not None and window is not None:
        pitr = {
            "PointInTimeRecoveryStatus": "ENABLED",
            "RecoveryPeriodInDays": table.pitr_recovery_days,
            "EarliestRestorableDateTime": round(window[0], 3),
            "LatestRestorableDateTime": round(window[1], 3),
        }
    return {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": pitr}
