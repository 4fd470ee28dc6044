"""DynamoDB Streams through the clients users run: the ``aws`` CLI and the AWS SDK for JavaScript v3.

boto3 (``test_streams.py``) is one parser of the Streams API; these are two
more, each with its own model of the wire format: the CLI (botocore, driven
from the command line, output as JSON) and the JavaScript SDK v3
(``@aws-sdk/client-dynamodb-streams``, which checks shapes, parses dates and
binary on its own).  Both run against every mode (``endpoint``: embedded and
cluster).

The JavaScript packages come from the npm registry, installed with ``npm
install --prefix`` into ``tests/compat/.node-clients`` (gitignored) on first
use, as ``bench/setup.sh`` installs its peers.  Without ``node`` or ``npm``
the JavaScript test is skipped, unless ``MERIDIAN_REQUIRE_NODE`` is set,
which makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from helpers import unique_name
from tests.waiting import wait_until

RECORDS_TIMEOUT_S = 20.0
CLI_TIMEOUT_S = 60
NPM_TIMEOUT_S = 600
NODE_TIMEOUT_S = 120
NODE_DIR = Path(__file__).parent / ".node-clients"
NODE_SCRIPT = Path(__file__).parent / "js" / "streams_client.cjs"
NODE_PACKAGES = ("@aws-sdk/client-dynamodb", "@aws-sdk/client-dynamodb-streams")


# --- the aws CLI -----------------------------------------------------------------------------
def _aws_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    found = beside if os.path.exists(beside) else shutil.which("aws")
    if found is None:
        pytest.fail("the aws CLI is a test dependency (awscli) but is not installed")
    return found


def cli(endpoint: str, service: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")  # fmt: skip
    done = subprocess.run([_aws_binary(), service, *args, "--endpoint-url", endpoint, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT_S)  # fmt: skip
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def cli_json(endpoint: str, service: str, *args: str) -> dict:
    out = cli(endpoint, service, *args).stdout
    return json.loads(out) if out.strip() else {}


def cli_records(endpoint: str, arn: str, shard_id: str, *position: str) -> list[dict]:
    """Every record readable now from one shard, from ``position`` (TRIM_HORIZON by default)."""
    position = position or ("--shard-iterator-type", "TRIM_HORIZON")
    iterator = cli_json(endpoint, "dynamodbstreams", "get-shard-iterator", "--stream-arn", arn,
                        "--shard-id", shard_id, *position)["ShardIterator"]  # fmt: skip
    records: list[dict] = []
    while iterator:
        page = cli_json(endpoint, "dynamodbstreams", "get-records", "--shard-iterator", iterator)
        records += page["Records"]
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def test_aws_cli_reads_a_stream(endpoint):
    table = unique_name("cli-streams")
    created = cli_json(endpoint, "dynamodb", "create-table", "--table-name", table,
                       "--attribute-definitions", "AttributeName=id,AttributeType=S",
                       "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST",
                       "--stream-specification", "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES")  # fmt: skip
    arn = created["TableDescription"]["LatestStreamArn"]
    cli(endpoint, "dynamodb", "wait", "table-exists", "--table-name", table)
    key = {"id": {"S": "cli-1"}}
    first, second = key | {"v": {"N": "1"}}, key | {"v": {"N": "2"}, "tags": {"SS": ["x"]}}
    for item in (first, second):
        cli(endpoint, "dynamodb", "put-item", "--table-name", table, "--item", json.dumps(item))
    cli(endpoint, "dynamodb", "delete-item", "--table-name", table, "--key", json.dumps(key))

    listed = cli_json(endpoint, "dynamodbstreams", "list-streams", "--table-name", table)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": table, "StreamLabel": arn.rsplit("/", 1)[1]}]
    described = cli_json(endpoint, "dynamodbstreams", "describe-stream", "--stream-arn", arn)["StreamDescription"]
    assert (described["StreamStatus"], described["StreamViewType"], described["TableName"]) == (
        "ENABLED", "NEW_AND_OLD_IMAGES", table)
    shard_ids = [shard["ShardId"] for shard in described["Shards"]]

    def all_three() -> tuple[str, list[dict]] | None:
        for shard_id in shard_ids:
            records = cli_records(endpoint, arn, shard_id)
            if len(records) >= 3:
                return shard_id, records
        return None
    shard_id, records = wait_until(all_three, RECORDS_TIMEOUT_S, what="the three records through the CLI")
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    images = [(r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage")) for r in records]
    assert images == [(None, first), (first, second), (second, None)]
    for record in records:
        body = record["dynamodb"]
        assert body["Keys"] == key and body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert body["SequenceNumber"].isdecimal() and body["SizeBytes"] > 0
        # The CLI prints timestamps as it received them: epoch seconds.
        assert abs(body["ApproximateCreationDateTime"] - time.time()) < 120

    numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    at_second = cli_records(endpoint, arn, shard_id, "--shard-iterator-type", "AT_SEQUENCE_NUMBER",
                            "--sequence-number", numbers[1])  # fmt: skip
    assert [r["dynamodb"]["SequenceNumber"] for r in at_second] == numbers[1:]

    garbled = cli(endpoint, "dynamodbstreams", "get-records", "--shard-iterator", "not-an-iterator", ok=False)
    assert garbled.returncode != 0
    assert "(ValidationException) when calling the GetRecords operation: Invalid ShardIterator" in garbled.stderr
    cli(endpoint, "dynamodb", "delete-table", "--table-name", table)


# --- the AWS SDK for JavaScript v3 -----------------------------------------------------------------
def _require_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if not missing:
        return
    why = f"{' and '.join(missing)} not found"
    if os.environ.get("MERIDIAN_REQUIRE_NODE", "") not in ("", "0"):
        pytest.fail(f"MERIDIAN_REQUIRE_NODE is set but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The folder holding the AWS SDK v3 packages, installed on first use."""
    _require_node()
    modules = NODE_DIR / "node_modules"
    if not all((modules / package / "package.json").is_file() for package in NODE_PACKAGES):
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", *NODE_PACKAGES],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S)  # fmt: skip
        assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
    return modules


def test_javascript_sdk_v3_reads_a_stream(node_modules, endpoint):
    table = unique_name("js-streams")
    done = subprocess.run(["node", str(NODE_SCRIPT), endpoint, table], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, env=dict(os.environ, NODE_PATH=str(node_modules)))  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    arn = out["createdStreamArn"]
    assert arn.endswith(f"table/{table}/stream/{out['createdStreamLabel']}")
    assert out["listed"] == [{"StreamArn": arn, "TableName": table, "StreamLabel": out["createdStreamLabel"]}]
    described = out["description"]
    assert (described["StreamArn"], described["StreamStatus"], described["StreamViewType"]) == (
        arn, "ENABLED", "NEW_AND_OLD_IMAGES")
    assert described["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert abs(datetime.fromisoformat(described["CreationRequestDateTime"]).timestamp() - time.time()) < 120
    shard_ids = [shard["ShardId"] for shard in out["shards"]]
    assert shard_ids and shard_ids == sorted(shard_ids) and len(set(shard_ids)) == len(shard_ids)

    records = out["records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    key = {"id": {"S": "js-1"}}
    item = key | {"n": {"N": "42"}, "b": {"B": {"base64": "bWVyaWRpYW4="}}, "tags": {"SS": ["a", "b"]},
                  "nested": {"M": {"list": {"L": [{"N": "1"}, {"S": "two"}, {"BOOL": True}, {"NULL": True}]}}}}
    updated = item | {"n": {"N": "43"}}
    images = [(r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage")) for r in records]
    assert images == [(None, item), (item, updated), (updated, None)]
    for record in records:
        assert (record["eventVersion"], record["eventSource"], record["awsRegion"]) == ("1.1", "aws:dynamodb",
                                                                                      "us-east-1")
        body = record["dynamodb"]
        assert body["Keys"] == key and body["StreamViewType"] == "NEW_AND_OLD_IMAGES" and body["SizeBytes"] > 0
        assert abs(datetime.fromisoformat(body["ApproximateCreationDateTime"]).timestamp() - time.time()) < 120
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    assert [r["eventName"] for r in out["afterFirst"]] == ["MODIFY", "REMOVE"]

    errors = out["errors"]
    assert errors["garbledIterator"] == {"name": "ValidationException", "message": "Invalid ShardIterator",
                                         "status": 400}  # fmt: skip
    assert errors["unknownStream"]["name"] == "ResourceNotFoundException"
    assert errors["unknownStream"]["message"].startswith("Requested resource not found: Stream: ")
