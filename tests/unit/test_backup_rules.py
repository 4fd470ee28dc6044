"""The backup and PITR actions' request validation (botocore's shapes, then router/backup_rules.py)."""

from __future__ import annotations

import pytest

from meridian.model.errors import ValidationException
from meridian.router.backup_rules import BOTH_SOURCES, BOTH_TIMES, NO_PERIOD_WHEN_DISABLING, NO_SOURCE, NO_TIME, TIME_RANGE
from meridian.router.validation import validate_request


def _message(action: str, body: dict) -> str:
    with pytest.raises(ValidationException) as info:
        validate_request(action, body)
    return info.value.message


def _pitr(**spec) -> dict:
    return {"TableName": "tbl", "PointInTimeRecoverySpecification": spec}


def test_update_continuous_backups():
    validate_request("UpdateContinuousBackups", _pitr(PointInTimeRecoveryEnabled=True, RecoveryPeriodInDays=7))
    validate_request("UpdateContinuousBackups", _pitr(PointInTimeRecoveryEnabled=False))
    assert _message("UpdateContinuousBackups", _pitr(PointInTimeRecoveryEnabled=False, RecoveryPeriodInDays=35)) \
        == NO_PERIOD_WHEN_DISABLING
    assert _message("UpdateContinuousBackups", _pitr(PointInTimeRecoveryEnabled=True, RecoveryPeriodInDays=36)) == (
        "1 validation error detected: Value '36' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' "
        "failed to satisfy constraint: Member must have value less than or equal to 35"
    )


def _restore(**body) -> dict:
    return {"TargetTableName": "dst", **body}


def test_restore_to_point_in_time_times_then_source():
    now = 1_800_000_000
    validate_request("RestoreTableToPointInTime", _restore(SourceTableName="src", UseLatestRestorableTime=True))
    validate_request("RestoreTableToPointInTime", _restore(SourceTableName="src", RestoreDateTime=now,
                                                           UseLatestRestorableTime=False))
    assert _message("RestoreTableToPointInTime", _restore(SourceTableName="src", RestoreDateTime=now,
                                                          UseLatestRestorableTime=True)) == BOTH_TIMES
    assert _message("RestoreTableToPointInTime", _restore(SourceTableName="src")) == NO_TIME
    assert _message("RestoreTableToPointInTime", _restore(SourceTableName="src", UseLatestRestorableTime=False)) \
        == NO_TIME
    assert _message("RestoreTableToPointInTime", _restore()) == NO_TIME  # the times come first
    assert _message("RestoreTableToPointInTime", _restore(UseLatestRestorableTime=True)) == NO_SOURCE
    assert _message("RestoreTableToPointInTime", _restore(
        SourceTableName="src", SourceTableArn="arn:aws:dynamodb:us-east-1:000000000000:table/src",
        UseLatestRestorableTime=True)) == BOTH_SOURCES
    assert _message("RestoreTableToPointInTime", _restore(SourceTableName="src", UseLatestRestorableTime=True,
                                                          TargetTableName="bad name!")) == (
        "1 validation error detected: Value 'bad name!' at 'targetTableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    )


def test_list_backups():
    validate_request("ListBackups", {"TimeRangeLowerBound": 5, "TimeRangeUpperBound": 5, "Limit": 100})
    assert _message("ListBackups", {"TimeRangeLowerBound": 6, "TimeRangeUpperBound": 5}) == TIME_RANGE
    assert _message("ListBackups", {"Limit": 101}) == (
        "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    )
    assert "Member must satisfy enum value set: [USER, SYSTEM, AWS_BACKUP, ALL]" in _message(
        "ListBackups", {"BackupType": "user"})


def test_backup_names_and_arns():
    assert _message("CreateBackup", {"TableName": "tbl", "BackupName": "b!"}) == (
        "2 validation errors detected: Value 'b!' at 'backupName' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [a-zA-Z0-9_.-]+; Value 'b!' at 'backupName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )
    assert _message("DescribeBackup", {"BackupArn": "arn:short"}) == (
        "1 validation error detected: Value 'arn:short' at 'backupArn' failed to satisfy constraint: "
        "Member must have length greater than or equal to 37"
    )
