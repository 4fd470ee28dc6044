"""Structure-aware fuzzing: requests shaped like DynamoDB's, one to three subtrees broken.

``fuzz_model.requests`` draws a request for an action Meridian serves, shaped
after botocore's model and aimed at real tables (a hash-only table, and a
hash+range table with an LSI and a GSI), then mutates it.  Each goes over
real HTTP with SigV4-shaped headers.  Checked for every answer:

* never a 5xx;
* every 4xx is JSON with a ``__type`` DynamoDB uses (botocore's error shapes
  plus the service front's) in one of DynamoDB's namespaces, and a message
  (``Message`` for SerializationException and the transaction errors, as
  DynamoDB spells it: ``_CAPITAL_MESSAGE``);
* a rejected write changes nothing: the tables' items are compared before
  and after every run of requests in which no item write succeeded.

``MERIDIAN_FUZZ_REQUESTS`` (default 3000 per mode) sets the number of
requests; ``MERIDIAN_FUZZ_SEED`` replays a run; ``MERIDIAN_FUZZ_COLLECT=1``
keeps going after a 5xx and reports every distinct one at the end (for big
runs) instead of stopping and shrinking at the first.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from fuzz_model import ERROR_NAMESPACES, ITEM_WRITES, MESSAGELESS, World, dynamodb_error_types, requests, service_model
from helpers import create_table, unique_name
from meridian.router.actions import ACTIONS
from rawhttp import Connection, build_request

REQUESTS_TOTAL = int(os.environ.get("MERIDIAN_FUZZ_REQUESTS", "3000"))
COLLECT = os.environ.get("MERIDIAN_FUZZ_COLLECT", "") not in ("", "0")
SEED = int(os.environ.get("MERIDIAN_FUZZ_SEED", random.SystemRandom().randrange(2**32)))
CHUNK = 40  # requests between two looks at the tables' items
ERROR_TYPES = dynamodb_error_types()
FUZZED_ACTIONS = sorted(a for a in ACTIONS if a in service_model()["operations"])


@pytest.fixture(scope="module")
def world(ddb) -> World:
    hash_table = create_table(ddb, unique_name("fzh"))
    range_table = _create_range_table(ddb)
    for k in ("k1", "k2"):
        ddb.put_item(TableName=hash_table, Item={"id": {"S": k}, "a": {"S": "k1"}, "ls": {"L": [{"S": "x"}]}, "n": {"N": "1"}})
        ddb.put_item(TableName=range_table, Item={"pk": {"S": k}, "sk": {"N": "1"}, "g": {"S": k}, "l": {"S": "x"}})
    arns = tuple(ddb.describe_table(TableName=t)["Table"]["TableArn"] for t in (hash_table, range_table))
    world = World(hash_table, range_table, (unique_name("fzs"), unique_name("fzs")), arns)
    yield world
    for name in (hash_table, range_table, *world.spare_tables):
        try:
            ddb.delete_table(TableName=name)
        except Exception:  # noqa: BLE001 - a spare table may never have been made
            pass


def _create_range_table(ddb) -> str:
    name = unique_name("fzr")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in
                              (("pk", "S"), ("sk", "N"), ("g", "S"), ("l", "S"))],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        LocalSecondaryIndexes=[{"IndexName": "lsi", "Projection": {"ProjectionType": "ALL"},
                                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                              {"AttributeName": "l", "KeyType": "RANGE"}]}],
        GlobalSecondaryIndexes=[{"IndexName": "gsi", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                 "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}]}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def _deliberate_500(action: str, body, raw: bytes) -> bool:
    """DynamoDB's own 500s: ListGlobalTables for a region it does not know
    (tests/integration/test_global_tables_api.py records it)."""
    return (action == "ListGlobalTables" and isinstance(body, dict) and isinstance(body.get("RegionName"), str)
            and json.loads(raw).get("message") == "Internal server error")


#: errors whose body spells ``Message`` with a capital M (botocore's shapes)
_CAPITAL_MESSAGE = frozenset({"SerializationException", "TransactionCanceledException",
                              "TransactionInProgressException", "IdempotentParameterMismatchException"})

class Fuzzer:
    """One keep-alive connection, the checks, and what was found."""

    def __init__(self, endpoint: str, world: World) -> None:
        self.endpoint = endpoint
        self.world = world
        self.conn = Connection(endpoint)
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.types: Counter[str] = Counter()
        self.server_errors: dict[tuple[str, str], tuple[int, bytes]] = {}  # (action, answer) -> shortest body
        self.bad_errors: list[str] = []
        self.state_changes: list[str] = []
        self.snapshot = self._items()
        self.chunk_writes_ok = False
        self.chunk_rejected: list[str] = []
        self.chunks_checked = 0  # runs of requests whose rejected writes were shown to change nothing

    def _call(self, action: str, payload: bytes):
        for attempt in range(2):
            try:
                self.conn.send(build_request(f"DynamoDB_20120810.{action}", payload))
                resp = self.conn.read_response()
            except (ConnectionError, OSError):
                resp = None
            if resp is not None:
                return resp
            self.conn.close()
            self.conn = Connection(self.endpoint)
        return None

    def _items(self) -> dict[str, list[str]]:
        out = {}
        for table in self.world.item_tables:
            rows: list[str] = []
            body: dict = {"TableName": table, "ConsistentRead": True}
            while True:
                resp = self._call("Scan", json.dumps(body).encode())
                assert resp is not None and resp.status == 200, (resp and resp.body[:300])
                page = resp.json()
                rows.extend(json.dumps(i, sort_keys=True) for i in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                body["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            out[table] = sorted(rows)
        return out

    def send(self, action: str, body) -> None:
        try:
            payload = json.dumps(body).encode()
        except RecursionError:  # mutations nested in mutations: deeper than any JSON parser takes
            return
        resp = self._call(action, payload)
        self.sent += 1
        if resp is None:
            self._server_error(action, "connection closed without an answer", payload)
            return
        self.statuses[resp.status] += 1
        if resp.status >= 500 and not _deliberate_500(action, body, resp.body):
            self._server_error(action, resp.body[:200].decode("utf-8", "replace"), payload)
        elif resp.status >= 400:
            self._check_error_body(action, resp.body, payload)
            if action in ITEM_WRITES:
                self.chunk_rejected.append(f"{action} {payload[:200]!r}")
        elif action in ITEM_WRITES:
            self.chunk_writes_ok = True
        if self.sent % CHUNK == 0:
            self._check_state()

    def _server_error(self, action: str, answer: str, payload: bytes) -> None:
        key = (action, answer)
        if key not in self.server_errors or len(payload) < len(self.server_errors[key][1]):
            self.server_errors[key] = (self.server_errors.get(key, (0, b""))[0] + 1, payload)
        else:
            count, shortest = self.server_errors[key]
            self.server_errors[key] = (count + 1, shortest)
        if not COLLECT:
            raise AssertionError(f"{action} answered {answer!r} for {payload[:500]!r}")

    def _check_error_body(self, action: str, raw: bytes, payload: bytes) -> None:
        try:
            error = json.loads(raw)
            namespace, _, name = error["__type"].partition("#")
        except (ValueError, KeyError, AttributeError, TypeError):
            self.bad_errors.append(f"{action}: not a DynamoDB error body {raw[:200]!r}")
            return
        self.types[name] += 1
        problems = []
        if namespace not in ERROR_NAMESPACES or name not in ERROR_TYPES:
            problems.append("unknown __type")
        key = "Message" if name in _CAPITAL_MESSAGE else "message"
        if name not in MESSAGELESS and not isinstance(error.get(key), str):
            problems.append(f"no {key}")
        if problems:
            self.bad_errors.append(f"{action}: {', '.join(problems)}: {raw[:200]!r} for {payload[:200]!r}")

    def _check_state(self) -> None:
        now = self._items()
        if not self.chunk_writes_ok and self.chunk_rejected:
            self.chunks_checked += 1
        if not self.chunk_writes_ok and now != self.snapshot and self.chunk_rejected:
            self.state_changes.append("items changed with every write rejected: " + "; ".join(self.chunk_rejected[:5]))
        self.snapshot = now
        self.chunk_writes_ok = False
        self.chunk_rejected = []

    def report(self) -> str:
        lines = [f"seed {SEED}: {self.sent} requests, statuses {dict(sorted(self.statuses.items()))}, "
                 f"{self.chunks_checked} runs of rejected writes left the items unchanged",
                 f"error types: {dict(self.types.most_common())}"]
        for (action, answer), (count, payload) in sorted(self.server_errors.items()):
            lines.append(f"5xx x{count} {action}: {answer} <- {payload[:400]!r}")
        return "\n".join(lines)


@pytest.mark.timeout(120 + REQUESTS_TOTAL // 100)  # about 300 requests a second, with room
def test_structured_fuzz_never_500(endpoint, world):
    fuzzer = Fuzzer(endpoint, world)
    phases = [Phase.generate] if COLLECT else [Phase.generate, Phase.shrink]

    @seed(SEED)
    @settings(max_examples=REQUESTS_TOTAL, deadline=None, database=None, phases=phases,
              suppress_health_check=list(HealthCheck))
    @given(requests(world, FUZZED_ACTIONS))
    def one_request(request) -> None:
        fuzzer.send(*request)

    try:
        one_request()
        fuzzer._check_state()
    finally:
        print(fuzzer.report())
        fuzzer.conn.close()
    assert not fuzzer.server_errors, fuzzer.report()
    assert not fuzzer.bad_errors, "\n".join(fuzzer.bad_errors[:20])
    assert not fuzzer.state_changes, "\n".join(fuzzer.state_changes[:5])
    assert fuzzer.sent >= REQUESTS_TOTAL * 0.9, fuzzer.report()  # hypothesis may skip a few duplicates
