"""Fuzz the HTTP edge: >= 10k random and mutated requests, then the server still answers correctly.

Every answer must be well-formed HTTP with a status DynamoDB uses for that
class of input (200, 400, 404 or 413; never 500) and, for 400s, a JSON body
with a ``__type``.  The seed is printed so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import random

from helpers import create_table, unique_name
from rawhttp import Connection, build_request

REQUESTS_TOTAL = int(os.environ.get("MERIDIAN_FUZZ_REQUESTS", "10000"))
ACTIONS = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "CreateTable", "DescribeTable", "ListTables",
           "UpdateTable", "DeleteTable", "TagResource", "Query", "Bogus"]


def _valid_bodies(table: str) -> list[tuple[str, dict]]:
    return [
        ("PutItem", {"TableName": table, "Item": {"id": {"S": "fz"}, "n": {"N": "1"}, "l": {"L": [{"S": "a"}, {"M": {"x": {"BOOL": True}}}]}}}),
        ("GetItem", {"TableName": table, "Key": {"id": {"S": "fz"}}, "ProjectionExpression": "n, l[1].x"}),
        ("UpdateItem", {"TableName": table, "Key": {"id": {"S": "fz"}}, "UpdateExpression": "SET n = n + :one REMOVE l[0]",
                        "ConditionExpression": "attribute_exists(id)", "ExpressionAttributeValues": {":one": {"N": "1"}},
                        "ReturnValues": "ALL_NEW"}),
        ("DeleteItem", {"TableName": table, "Key": {"id": {"S": "fz-other"}}, "ReturnValues": "ALL_OLD"}),
        ("DescribeTable", {"TableName": table}),
        ("ListTables", {"Limit": 3}),
    ]


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**70, 1.5, 1e308])
    if kind == 2:
        return "".join(rng.choice("aZ09 #:.[]()\\\"'\x00é𝄞") for _ in range(rng.randrange(12)))
    if kind == 3:
        return rng.choice(["S", "N", "B", "SS", "NS", "L", "M", "NULL", "BOOL", "TableName", "Key", "Item"])
    if kind == 4:
        return ""
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["TableName", "Key", "Item", "S", "N", "B", "M", "L", "SS", "UpdateExpression", "ConditionExpression",
            "ExpressionAttributeValues", "ExpressionAttributeNames", "ReturnValues", "Limit", ":v", "#n", "id"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def _mutate(rng: random.Random, obj):
    if isinstance(obj, dict) and obj:
        key = rng.choice(list(obj))
        out = dict(obj)
        choice = rng.randrange(4)
        if choice == 0:
            del out[key]
        elif choice == 1:
            out[key] = _random_json(rng)
        else:
            out[key] = _mutate(rng, obj[key])
        return out
    if isinstance(obj, list) and obj:
        out = list(obj)
        i = rng.randrange(len(out))
        out[i] = _mutate(rng, out[i])
        return out
    return _random_json(rng)


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(3)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b))]
        else:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
    return bytes(b)


def test_fuzz_requests_then_server_still_correct(endpoint, ddb):
    seed = int(os.environ.get("MERIDIAN_FUZZ_SEED", random.SystemRandom().randrange(2**32)))
    print(f"fuzz seed: {seed} (replay with MERIDIAN_FUZZ_SEED={seed})")
    rng = random.Random(seed)
    table = create_table(ddb, unique_name("fuzz"))
    ddb.put_item(TableName=table, Item={"id": {"S": "sentinel"}, "v": {"S": "intact"}})
    valid = _valid_bodies(table)
    statuses: dict[int, int] = {}
    sent = 0
    conn = Connection(endpoint)
    try:
        while sent < REQUESTS_TOTAL:
            action, body = rng.choice(valid)
            mode = rng.randrange(10)
            if mode < 5:
                payload = json.dumps(_mutate(rng, body)).encode()
            elif mode < 7:
                payload = json.dumps(_random_json(rng)).encode()
            elif mode < 9:
                payload = _mutate_bytes(rng, json.dumps(body).encode())
            else:
                payload = json.dumps(body).encode()
            if rng.randrange(20) == 0:
                action = rng.choice(ACTIONS)
            conn.send(build_request(f"DynamoDB_20120810.{action}", payload))
            resp = conn.read_response()
            sent += 1
            assert resp is not None, f"connection closed after request {sent} (seed {seed}): {payload[:200]!r}"
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status in (200, 400), f"status {resp.status} for {action} {payload[:300]!r} (seed {seed})"
            if resp.status == 400:
                assert "__type" in json.loads(resp.body), resp.body
            # Mutations may delete or re-create the fuzz table; keep it around.
            if action == "DeleteTable" and resp.status == 200:
                conn.close()
                ddb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
                table = create_table(ddb, table)
                ddb.put_item(TableName=table, Item={"id": {"S": "sentinel"}, "v": {"S": "intact"}})
                conn = Connection(endpoint)
    finally:
        conn.close()
    print(f"statuses: {statuses}")
    assert sent >= REQUESTS_TOTAL
    item = ddb.get_item(TableName=table, Key={"id": {"S": "sentinel"}}, ConsistentRead=True)["Item"]
    assert item == {"id": {"S": "sentinel"}, "v": {"S": "intact"}}
    ddb.put_item(TableName=table, Item={"id": {"S": "after"}, "n": {"N": "2"}})
    assert ddb.get_item(TableName=table, Key={"id": {"S": "after"}})["Item"]["n"] == {"N": "2"}
