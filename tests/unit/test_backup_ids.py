"""Backup ids and ARNs (router/backup_ids.py): DynamoDB's forms, and its answers to bad ARNs."""

from __future__ import annotations

import pytest

from meridian.model.errors import AccessDeniedException, ValidationException
from meridian.router.backup_ids import (
    BACKUP_ARN_NOT_VALID,
    INVALID_BACKUP_ARN,
    backup_arn,
    created_ms_of,
    iso_s,
    new_backup_id,
    parse_backup_arn,
)

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Music/backup/01791504762511-2779fadd"


def test_an_id_is_the_creation_ms_and_8_hex_digits():
    backup_id = new_backup_id(1791504762511)
    assert backup_id.startswith("01791504762511-") and len(backup_id) == 23
    int(backup_id[-8:], 16)
    assert created_ms_of(backup_id) == 1791504762511
    assert new_backup_id(1791504762511) != backup_id  # random suffix
    assert new_backup_id(1791502292805, system=True) == "01791502292805-00000000"
    assert created_ms_of("not-an-id") == 0


def test_arn_round_trip():
    arn = backup_arn("us-east-1", "Music", "01791504762511-2779fadd")
    assert arn == ARN
    parsed = parse_backup_arn(arn)
    assert (parsed.region, parsed.table_name, parsed.backup_id) == ("us-east-1", "Music", "01791504762511-2779fadd")


def test_another_region_parses():  # looked up by id: the region is only echoed (DDB-BACKUP-012)
    assert parse_backup_arn(ARN.replace("us-east-1", "eu-west-1")).region == "eu-west-1"


@pytest.mark.parametrize("arn, error, message", [
    ("x" * 48, ValidationException, INVALID_BACKUP_ARN),
    ("arn:aws:dynamodb:us-east-1:000000000000:table/Music", ValidationException, INVALID_BACKUP_ARN),
    (ARN.replace("000000000000", "123456789012"), AccessDeniedException, "Access is denied"),
    (ARN.replace("us-east-1", ""), AccessDeniedException, "Access is denied"),
    (ARN.replace("us-east-1", "xx-fake"), ValidationException, BACKUP_ARN_NOT_VALID),
    (ARN.replace("arn:aws:", "arn:nope:"), ValidationException, BACKUP_ARN_NOT_VALID),
    (ARN.replace(":dynamodb:", ":s3:"), ValidationException, BACKUP_ARN_NOT_VALID),
])
def test_bad_arns(arn, error, message):
    with pytest.raises(error) as info:
        parse_backup_arn(arn)
    assert info.value.message == message


def test_iso_seconds():
    assert iso_s(1791500192.7) == "2026-10-08T22:56:32Z"  # truncated to the second
