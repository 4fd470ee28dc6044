"""Reading DynamoDB Streams with boto3, for the compatibility tests (``test_streams.py``).

Records are only ever waited for, never assumed: a change becomes readable
once its node made it durable, so the readers here return what is readable
now and ``wait_for_key`` waits until a key has as many records as asked.
"""

from __future__ import annotations

import json

import boto3

from helpers import create_table
from rawhttp import Connection
from tests.conftest import CLIENT_CONFIG
from tests.waiting import wait_until

RECORDS_TIMEOUT_S = 20.0


def streams_client(endpoint: str):
    return boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=CLIENT_CONFIG)  # fmt: skip


def stream_table(ddb, view_type: str = "NEW_AND_OLD_IMAGES", **extra) -> tuple[str, str]:
    spec = {"StreamEnabled": True, "StreamViewType": view_type}
    name = create_table(ddb, StreamSpecification=spec, **extra)
    return name, ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def shards_of(streams, arn: str, limit: int | None = None) -> list[dict]:
    shards, start = [], None
    while True:
        kwargs = {"StreamArn": arn} | ({"Limit": limit} if limit else {}) | (
            {"ExclusiveStartShardId": start} if start else {})
        page = streams.describe_stream(**kwargs)["StreamDescription"]
        shards += page["Shards"]
        start = page.get("LastEvaluatedShardId")
        if start is None:
            return shards


def read_shard(streams, arn: str, shard_id: str, kind: str = "TRIM_HORIZON", **extra) -> tuple[list[dict], bool]:
    """Every record readable now from one shard; and whether its end was reached (no NextShardIterator)."""
    return read_from(streams, iterator_of(streams, arn, shard_id, kind, **extra))


def read_from(streams, iterator: str) -> tuple[list[dict], bool]:
    """Every record readable now from an iterator on; and whether its shard's end was reached."""
    records = []
    while True:
        page = streams.get_records(ShardIterator=iterator)
        records += page["Records"]
        if "NextShardIterator" not in page:
            return records, True
        if not page["Records"]:
            return records, False
        iterator = page["NextShardIterator"]


def read_stream(streams, arn: str) -> list[dict]:
    """Every record of the stream readable now, shard after shard (a key's in its order)."""
    return [record for shard in shards_of(streams, arn) for record in read_shard(streams, arn, shard["ShardId"])[0]]


def by_key(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in records:
        out.setdefault(json.dumps(record["dynamodb"]["Keys"], sort_keys=True), []).append(record)
    return out


def key_of(pk: str) -> str:
    return json.dumps({"id": {"S": pk}}, sort_keys=True)


def item(pk: str, **attrs) -> dict:
    return {"id": {"S": pk}} | {k: ({"N": str(v)} if isinstance(v, int) else {"S": v}) for k, v in attrs.items()}


def shard_of_key(streams, arn: str, pk: str) -> tuple[str, list[dict]]:
    """The shard of a key's newest record ("" if none), and all its records in order."""
    newest, found = "", []
    for shard in shards_of(streams, arn):
        mine = [r for r in read_shard(streams, arn, shard["ShardId"])[0] if r["dynamodb"]["Keys"] == {"id": {"S": pk}}]
        if mine:
            newest, found = shard["ShardId"], found + mine
    return newest, found


def wait_for_key(streams, arn: str, pk: str, count: int = 1) -> tuple[str, list[dict]]:
    """The shard holding a key's records, and them, once there are ``count``."""
    def found() -> tuple[str, list[dict]] | None:
        shard, records = shard_of_key(streams, arn, pk)
        return (shard, records) if len(records) >= count else None
    return wait_until(found, RECORDS_TIMEOUT_S, what=f"{count} record(s) of {pk}")


def iterator_of(streams, arn: str, shard_id: str, kind: str = "LATEST", **extra) -> str:
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType=kind,
                                      **extra)["ShardIterator"]  # fmt: skip


def raw(endpoint: str, action: str, payload, prefix: str = "DynamoDBStreams_20120810") -> tuple[int, dict]:
    """A request as sent by hand (no client-side checks): its status and JSON answer."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with Connection(endpoint) as conn:
        response = conn.request(f"{prefix}.{action}", body)
    return response.status, response.json()
