"""Step 3 of request validation for the backup and PITR actions: their request-only rules.

Run by ``router/validation.py`` (registered in ``validation_rules.RULES``)
after the shape checks, before anything that needs a table or a backup.
Messages are live DynamoDB's (parity catalog DDB-TABLE-084, 100, 272;
DDB-BACKUP-014; the ValidationException catalogue DDB-TABLE-442); where the
catalog cut a message short, the rest is marked as a guess.
"""

from __future__ import annotations

from typing import Any, Callable

from meridian.model.errors import ValidationException

_INVALID = "Invalid Request: "

NO_PERIOD_WHEN_DISABLING = f"{_INVALID}Cannot specify RecoveryPeriodInDays when disabling point-in-time recovery."
BOTH_TIMES = (
    f"{_INVALID}Both RestoreDateTime and UseLatestRestorableTime cannot be set for point-in-time restore request. "
    # guess: the catalog cuts the message at "Pleas"; the rest as another emulator words it.
    "Please specify either RestoreDateTime time or UseLatestRestorableTime"
)
NO_TIME = f"{_INVALID}Either one of RestoreDateTime or UseLatestRestorableTime must be specified, but not both"
BOTH_SOURCES = "Must provide exactly one of: sourceTableArn, sourceTableName"
NO_SOURCE = "The parameter 'TableName' is required but was not present in the request"
TIME_RANGE = "One or more parameter values were invalid: Time range lower bound must be less than or equal to upper bound"


def _update_continuous_backups(body: dict[str, Any]) -> None:
    spec = body["PointInTimeRecoverySpecification"]
    if not spec["PointInTimeRecoveryEnabled"] and spec.get("RecoveryPeriodInDays") is not None:
        raise ValidationException(NO_PERIOD_WHEN_DISABLING)


def _restore_table_to_point_in_time(body: dict[str, Any]) -> None:
    """The time flags first ("checked before anything else": DDB-TABLE-100), then the source."""
    latest = body.get("UseLatestRestorableTime") is True
    at = body.get("RestoreDateTime")
    if latest and at is not None:
        raise ValidationException(BOTH_TIMES)
    if not latest and at is None:
        raise ValidationException(NO_TIME)
    arn, name = body.get("SourceTableArn"), body.get("SourceTableName")
    if arn is not None and name is not None:
        raise ValidationException(BOTH_SOURCES)
    if arn is None and name is None:
        raise ValidationException(NO_SOURCE)


def _list_backups(body: dict[str, Any]) -> None:
    lower, upper = body.get("TimeRangeLowerBound"), body.get("TimeRangeUpperBound")
    if lower is not None and upper is not None and lower > upper:
        raise ValidationException(TIME_RANGE)


#: Action name -> its request-only rules.
BACKUP_RULES: dict[str, Callable[[dict[str, Any]], None]] = {
    "UpdateContinuousBackups": _update_continuous_backups,
    "RestoreTableToPointInTime": _restore_table_to_point_in_time,
    "ListBackups": _list_backups,
}
