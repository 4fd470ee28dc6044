"""Backup ids and ARNs as DynamoDB forms them, and the reading of the ARNs clients send.

A backup's ARN is ``arn:aws:dynamodb:<region>:<account>:table/<table>/backup/<id>``.
Its id is the creation time in epoch milliseconds, zero-padded to 14 digits,
a dash and 8 hex digits (``01791504762511-2779fadd``, parity catalog
DDB-BACKUP-006); a SYSTEM backup's (the one DeleteTable keeps of a table with
point-in-time recovery) ends in ``-00000000`` (DDB-BACKUP-015).  The id is
also the name of the checkpoint every storage node keeps for the backup.

Live DynamoDB looks a backup up by its id only: Describe/DeleteBackup accept
an ARN whose region or table name was rewritten, and echo it back
(DDB-BACKUP-012); so does Meridian.  Times in messages are ISO 8601 UTC.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass

from meridian.model.errors import AccessDeniedException, ValidationException

from .table_record import ACCOUNT_ID

_ID = re.compile(r"(\d{14})-([0-9a-f]{8})")
# An AWS-style region name (``us-east-1``, ``ap-southeast-2``, ``us-gov-west-1``).
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov"})
_SYSTEM_SUFFIX = "00000000"
_FIRST_S = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
_LAST_S = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc).timestamp()

INVALID_BACKUP_ARN = "Invalid Backup ARN"
BACKUP_ARN_NOT_VALID = "Invalid Request: BackupArn is not valid"


def new_backup_id(created_ms: int, *, system: bool = False) -> str:
    """A fresh backup id for a backup created at ``created_ms`` (epoch ms)."""
    suffix = _SYSTEM_SUFFIX if system else os.urandom(4).hex()
    return f"{created_ms:014d}-{suffix}"


def backup_arn(region: str, table_name: str, backup_id: str) -> str:
    return f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table_name}/backup/{backup_id}"


def created_ms_of(backup_id: str) -> int:
    """The creation time (epoch ms) a backup id carries; 0 for a malformed id."""
    match = _ID.fullmatch(backup_id)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True, slots=True)
class BackupArn:
    """The parts of a backup ARN a client sent."""

    arn: str
    region: str
    table_name: str
    backup_id: str


def parse_backup_arn(arn: str) -> BackupArn:
    """The backup ARN ``arn`` names, or DynamoDB's error for it (DDB-BACKUP-012).

    A non-ARN or a table's ARN is "Invalid Backup ARN"; another account's
    ARN (or one with no region) AccessDeniedException; an unknown partition,
    service or region "BackupArn is not valid".  The order of these checks
    is a guess (account first, as another emulator's capture notes say).
    """
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise ValidationException(INVALID_BACKUP_ARN)
    _, partition, service, region, account, resource = parts
    if account != ACCOUNT_ID or not region:
        raise AccessDeniedException("Access is denied")
    if partition not in _PARTITIONS or service != "dynamodb" or _REGION.fullmatch(region) is None:
        raise ValidationException(BACKUP_ARN_NOT_VALID)
    path = resource.split("/")
    if len(path) != 4 or path[0] != "table" or path[2] != "backup" or not path[1] or not path[3]:
        raise ValidationException(INVALID_BACKUP_ARN)
    return BackupArn(arn, region, path[1], path[3])


def _printable(at_s: float) -> float:
    """``at_s`` within the years 1..9999 (a client may send any number as a time)."""
    return min(max(at_s, _FIRST_S), _LAST_S)


def iso_s(at_s: float) -> str:
    """``2026-10-06T23:16:32Z``: how InvalidRestoreTimeException quotes times (DDB-TABLE-100)."""
    return datetime.datetime.fromtimestamp(_printable(at_s), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(at_s: float) -> str:
    """``2026-11-13T10:01:02.345Z`` (a guess for DeleteBackup's expiry date of a SYSTEM backup)."""
    at_s = _printable(at_s)
    return iso_s(at_s)[:-1] + f".{int(at_s * 1000) % 1000:03d}Z"
