"""The README's hands-on challenge, done with the real ``aws`` CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import unique_name


def _aws_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    found = beside if os.path.exists(beside) else shutil.which("aws")
    if found is None:
        pytest.fail("the aws CLI is a test dependency (awscli) but is not installed")
    return found


def aws(endpoint: str, *args: str) -> dict:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")
    done = subprocess.run([_aws_binary(), "dynamodb", *args, "--endpoint-url", endpoint, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_readme_challenge_devops_inventory(endpoint):
    # The README uses the table name DevOpsInventory; a suffix keeps test runs independent.
    table = f"DevOpsInventory-{unique_name('cli')}"
    created = aws(endpoint, "create-table", "--table-name", table,
                  "--attribute-definitions", "AttributeName=ResourceID,AttributeType=S",
                  "--key-schema", "AttributeName=ResourceID,KeyType=HASH",
                  "--billing-mode", "PAY_PER_REQUEST")
    assert created["TableDescription"]["TableName"] == table
    aws(endpoint, "wait", "table-exists", "--table-name", table)
    item = {
        "ResourceID": {"S": "i-12345"},
        "ResourceType": {"S": "EC2Instance"},
        "InstanceType": {"S": "t3.micro"},
        "Region": {"S": "us-east-1"},
        "State": {"S": "running"},
        "Tags": {"M": {"Team": {"S": "platform"}, "Env": {"S": "dev"}}},
        "LaunchedAt": {"S": "2026-11-24T08:00:00Z"},
        "vCPUs": {"N": "2"},
    }
    aws(endpoint, "put-item", "--table-name", table, "--item", json.dumps(item))
    got = aws(endpoint, "get-item", "--table-name", table, "--key", '{"ResourceID": {"S": "i-12345"}}')
    assert got["Item"] == item
    listed = aws(endpoint, "list-tables")
    assert table in listed["TableNames"]
    aws(endpoint, "delete-table", "--table-name", table)
    aws(endpoint, "wait", "table-not-exists", "--table-name", table)
