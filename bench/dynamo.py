"""Just enough of a DynamoDB client to prepare a benchmark target.

Plain ``http.client`` instead of boto3: the harness must be able to talk to a
half-built server and show exactly what it answered, and it should not
depend on botocore's retries hiding a failure. The headers look like the
ones the wrk scripts send (bench/wrk/common.lua): servers such as Dynoxide
reject requests without a SigV4-shaped Authorization and an X-Amz-Date, and
none verifies the signature.

The item shape here and in bench/wrk/*.lua must agree: key ``k`` + six digits
in attribute ``pk`` (S), and a ``data`` string (S) sized so that the item is
about ``item_bytes`` as DynamoDB counts it (attribute names + values).
"""

from __future__ import annotations

import http.client
import json
import random
import time

KEY_DIGITS = 6
#: DynamoDB's BatchWriteItem limit.
BATCH_WRITE_ITEMS_MAX = 25
#: Attempts for one batch's UnprocessedItems before giving up.
BATCH_RETRIES_MAX = 10
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Date": "20260101T000000Z",
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
    ),
}


class DynamoError(Exception):
    """A non-200 answer: the server's ``__type`` and message, or its raw body."""

    def __init__(self, action: str, status: int, body: bytes):
        self.status = status
        try:
            parsed = json.loads(body)
            self.type_name = str(parsed.get("__type", "")).rpartition("#")[2]
            self.text = str(parsed.get("message") or parsed.get("Message") or "")
        except (ValueError, AttributeError):
            self.type_name, self.text = "", body[:200].decode(errors="replace")
        super().__init__(f"{action}: HTTP {status} {self.type_name}: {self.text}")


class DynamoClient:
    """One keep-alive connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, timeout_s: float = 30.0):
        self.port = port
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"<DynamoClient 127.0.0.1:{self.port} connected={self._conn is not None}>"

    def call(self, action: str, payload: dict) -> dict:
        data = self.call_raw(action, json.dumps(payload).encode())
        return json.loads(data) if data else {}

    def call_raw(self, action: str, body: bytes) -> bytes:
        """One request with an already encoded body; the answer's body, undecoded.

        For callers that encode and decode JSON themselves (bench/query_scan.py
        uses orjson so that the client stays far cheaper than the server).
        """
        headers = {**HEADERS, "X-Amz-Target": f"DynamoDB_20120810.{action}"}
        for attempt in (1, 2):  # one reconnect: the server may close idle keep-alive connections
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
            try:
                self._conn.request("POST", "/", body, headers)
                response = self._conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            raise DynamoError(action, response.status, data)
        return data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def key(index: int) -> str:
    return f"k{index:0{KEY_DIGITS}d}"


def data_len_for(item_bytes: int) -> int:
    """Length of the ``data`` string that makes an item ``item_bytes`` long."""
    overhead = len("pk") + len(key(0)) + len("data")
    if item_bytes <= overhead:
        raise ValueError(f"item_bytes must exceed {overhead}")
    return item_bytes - overhead


def item(index: int, data: str) -> dict:
    return {"pk": {"S": key(index)}, "data": {"S": data}}


def wait_ready(client: DynamoClient, timeout_s: float) -> None:
    """Return once ListTables answers 200 (the port may open before the API)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.call("ListTables", {})
            return
        except (DynamoError, OSError, http.client.HTTPException):
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


#: DynamoDB's per-table ceiling of warm throughput (reads and writes per second).
WARM_UNITS_PER_S = 40_000

def create_table(client: DynamoClient, table: str, timeout_s: float, sort_key_type: str | None = None) -> None:
    """Create ``table`` (hash key ``pk`` S, on-demand) and wait until ACTIVE.

    With ``sort_key_type`` (``"S"``, ``"N"`` or ``"B"``), the table also has
    the range key ``sk`` of that type.
    """
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort_key_type is not None:
        schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": sort_key_type})
    client.call(
        "CreateTable",
        {"TableName": table, "KeySchema": schema, "AttributeDefinitions": attributes, "BillingMode": "PAY_PER_REQUEST"},
    )
    deadline = time.monotonic() + timeout_s
    while client.call("DescribeTable", {"TableName": table})["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table} not ACTIVE after {timeout_s:.0f} s")
        time.sleep(0.1)
    # A new on-demand table takes 4,000 writes a second (1,000 per partition)
    # in DynamoDB and in Meridian: warm it to the per-table maximum so a
    # benchmark measures speed, not throttling.  Peers without
    # WarmThroughput answer an error, which changes nothing for them.
    try:
        client.call("UpdateTable", {"TableName": table, "WarmThroughput": {
            "ReadUnitsPerSecond": WARM_UNITS_PER_S, "WriteUnitsPerSecond": WARM_UNITS_PER_S}})
    except DynamoError:  # any peer's refusal is fine
        pass
    while client.call("DescribeTable", {"TableName": table})["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table} not ACTIVE after {timeout_s:.0f} s")
        time.sleep(0.1)


def preload(client: DynamoClient, table: str, key_count: int, data_len: int, seed: int) -> None:
    """Write items ``k000000`` .. ``key_count - 1`` with BatchWriteItem."""
    data = random.Random(seed).randbytes((data_len + 1) // 2).hex()[:data_len]
    for start in range(0, key_count, BATCH_WRITE_ITEMS_MAX):
        write_batch(client, table, [item(i, data) for i in range(start, min(start + BATCH_WRITE_ITEMS_MAX, key_count))])


def write_batch(client: DynamoClient, table: str, items: list[dict]) -> None:
    """Put up to 25 items with one BatchWriteItem, retrying what comes back unprocessed."""
    pending = {table: [{"PutRequest": {"Item": entry}} for entry in items]}
    for attempt in range(BATCH_RETRIES_MAX):
        pending = client.call("BatchWriteItem", {"RequestItems": pending}).get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(0.01 * 2**attempt)
    raise RuntimeError(f"BatchWriteItem left items unprocessed after {BATCH_RETRIES_MAX} attempts")


def check_round_trip(client: DynamoClient, table: str, key_count: int, data_len: int) -> None:
    """Fail loudly if GetItem/PutItem don't do what the wrk scripts assume."""
    found = client.call("GetItem", {"TableName": table, "Key": {"pk": {"S": key(key_count - 1)}}}).get("Item")
    if not found or len(found.get("data", {}).get("S", "")) != data_len:
        raise RuntimeError(f"GetItem of preloaded {key(key_count - 1)} returned {found!r}")
    probe = item(10**KEY_DIGITS - 1, "x" * data_len)
    client.call("PutItem", {"TableName": table, "Item": probe})
    echoed = client.call("GetItem", {"TableName": table, "Key": {"pk": probe["pk"]}, "ConsistentRead": True})
    if echoed.get("Item") != probe:
        raise RuntimeError(f"PutItem then GetItem returned {echoed!r}")
    client.call("DeleteItem", {"TableName": table, "Key": {"pk": probe["pk"]}})
