"""Atomicity of TransactWriteItems through crashes, with real processes and SIGKILL.

A three-node cluster (one region) and, per scenario, a second router whose
environment holds ``MERIDIAN_TXN_TEST_PAUSE``: every multi-node transaction
it coordinates stops at a point (after every participant prepared, or after
the coordinator recorded COMMIT), logging ``txn <id> paused <point>``.  The
test sends one transaction through it, waits for that line, kills a process,
and checks through the cluster's own router:

* while the transaction's locks are held, single-item writes on its items get
  ``TransactionConflictException``, a transaction on them a
  ``TransactionConflict`` reason, and GetItem the last committed version;
* within the recovery bound (``TXN_RESOLVE_AFTER_S`` plus one
  ``TXN_RECOVERY_INTERVAL_S``, plus slack for process scheduling) every item
  is writable again and the transaction is applied everywhere or nowhere:
  nowhere when the router died before deciding, everywhere once COMMIT was
  recorded, whoever died after.

The items are chosen with the cluster's own ring so that each storage node
holds one, and the first (whose node coordinates) is known.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from meridian.model import limits
from meridian.model.keycodec import partition_hash
from meridian.model.ring import Ring
from tests.waiting import wait_until

REGION = "us-east-1"
NODES = 3
NODE_IDS = [f"{REGION}-node-{i}" for i in range(NODES)]
#: How long a paused router waits at its point when the test kills it there: only the kill ends it.
PAUSE_S = 120
#: ... and when the test kills a storage node meanwhile and lets the router go on.
SHORT_PAUSE_S = 4
#: Extra time over the protocol's own bound, for scheduling on a loaded machine.
SLACK_S = 5.0
RECOVERY_BOUND_S = limits.TXN_RESOLVE_AFTER_S + limits.TXN_RECOVERY_INTERVAL_S + SLACK_S
#: A restarted node must open its database and listen first.
RESTART_S = 30.0
CONFLICT = "Transaction is ongoing for the item"


def _client(endpoint: str, read_timeout_s: float = 20):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=read_timeout_s))


def _owner(pk: str) -> str:
    return Ring(NODE_IDS).owner(partition_hash("S", {"S": pk}))


def _one_key_per_node(prefix: str) -> list[str]:
    """Three keys, one on each node, the first on node 0 (the coordinator of a transaction that starts with it)."""
    found: dict[str, str] = {}
    i = 0
    while len(found) < NODES:
        pk = f"{prefix}-{i}"
        found.setdefault(_owner(pk), pk)
        i += 1
    return [found[node] for node in NODE_IDS]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalCluster([REGION], NODES, None, tmp_path_factory.mktemp("txn-faults"), sync=False)
    try:
        cluster.start()
        ddb = _client(cluster.endpoints[REGION])
        ddb.create_table(TableName="acct", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
        ddb.get_waiter("table_exists").wait(TableName="acct", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        yield cluster
    finally:
        cluster.stop()


class PausedRouter:
    """A second router over the cluster's nodes that pauses every multi-node transaction at ``point``."""

    def __init__(self, cluster: LocalCluster, log_dir: Path, point: str, pause_s: float) -> None:
        port = free_port()
        nodes = ",".join(f"{node}={address}" for node, address in zip(NODE_IDS, cluster.node_addresses[REGION]))
        self.log_path = log_dir / f"router-{point}.log"
        self.process = ManagedProcess(["router", "--port", str(port), "--nodes", nodes, "--region", REGION],
                                      log_path=self.log_path, name=f"router-{point}",
                                      env={"MERIDIAN_TXN_TEST_PAUSE": f"{point}:{pause_s:g}"})
        self.endpoint = f"http://127.0.0.1:{port}"
        self.point = point
        self.outcome: dict[str, object] = {}
        self._thread: threading.Thread | None = None
        wait_for_http_ok(f"{self.endpoint}/health", 30, process=self.process)

    def start_transaction(self, items: list[dict], read_timeout_s: float = 20) -> None:
        """Send TransactWriteItems in the background; its answer (or error) lands in ``outcome``."""
        client = _client(self.endpoint, read_timeout_s)
        # The table is known to this router before the transaction starts (a miss re-reads the catalog).
        client.describe_table(TableName="acct")

        def send() -> None:
            try:
                self.outcome["answer"] = client.transact_write_items(TransactItems=items)
            except Exception as error:  # the kill: the connection drops
                self.outcome["error"] = error

        self._thread = threading.Thread(target=send, daemon=True)
        self._thread.start()

    def wait_paused(self) -> str:
        """Wait for the ``txn <id> paused <point>`` line; return the transaction id."""
        def paused() -> str | None:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if f"paused {self.point}" in line:
                    return line.split("txn ", 1)[1].split()[0]
            assert "error" not in self.outcome and "answer" not in self.outcome, f"never paused: {self.outcome}"
            return None
        return wait_until(paused, 30, 0.05, f"the router to pause {self.point}")

    def join(self, timeout_s: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"the transaction through {self.process.name} never returned"

    def stop(self) -> None:
        self.process.terminate()


@pytest.fixture
def paused_router(cluster, tmp_path):
    routers: list[PausedRouter] = []

    def make(point: str, pause_s: float = PAUSE_S) -> PausedRouter:
        router = PausedRouter(cluster, tmp_path, point, pause_s)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.stop()


def _seed(ddb, keys: list[str]) -> None:
    for pk in keys:
        ddb.put_item(TableName="acct", Item={"id": {"S": pk}, "n": {"N": "0"}})


def _increment_all(keys: list[str]) -> list[dict]:
    return [{"Update": {"TableName": "acct", "Key": {"id": {"S": pk}}, "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}} for pk in keys]


def _values(ddb, keys: list[str]) -> list[int]:
    return [int(ddb.get_item(TableName="acct", Key={"id": {"S": pk}}, ConsistentRead=True)["Item"]["n"]["N"])
            for pk in keys]


def _error_code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


def _expect_locked(ddb, keys: list[str]) -> None:
    """Every item refuses a single-item write and another transaction; GetItem still answers."""
    for pk in keys:
        with pytest.raises(ClientError) as info:
            ddb.update_item(TableName="acct", Key={"id": {"S": pk}}, UpdateExpression="SET probe = :p",
                            ExpressionAttributeValues={":p": {"S": "locked?"}})
        assert _error_code(info.value) == "TransactionConflictException", info.value.response
        assert info.value.response["Error"]["Message"] == CONFLICT
        assert ddb.get_item(TableName="acct", Key={"id": {"S": pk}}, ConsistentRead=True)["Item"]["id"] == {"S": pk}
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "acct", "Item": {"id": {"S": f"{keys[0]}-free"}}}},
            {"ConditionCheck": {"TableName": "acct", "Key": {"id": {"S": keys[1]}},
                                "ConditionExpression": "attribute_exists(id)"}},
        ])
    assert _error_code(info.value) == "TransactionCanceledException"
    assert info.value.response["CancellationReasons"] == [
        {"Code": "None"}, {"Code": "TransactionConflict", "Message": CONFLICT}]


def _wait_writable(ddb, keys: list[str], bound_s: float, started: float) -> float:
    """Wait (up to ``bound_s`` from ``started``) until every item takes a single-item write; return when."""
    def writable() -> bool:
        for pk in keys:
            try:
                ddb.update_item(TableName="acct", Key={"id": {"S": pk}}, UpdateExpression="SET probe = :p",
                                ExpressionAttributeValues={":p": {"S": "free"}})
            except ClientError as error:
                # Locked; or a restarted node the router has not reconnected to yet.
                if _error_code(error) in ("TransactionConflictException", "ServiceUnavailable"):
                    return False
                raise
        return True

    wait_until(writable, max(0.0, bound_s - (time.monotonic() - started)), 0.1,
               f"every item writable within {bound_s:g} s", ignoring=(ConnectionError,))
    return time.monotonic() - started


def test_router_killed_after_prepare_aborts_everywhere(cluster, paused_router):
    ddb = _client(cluster.endpoints[REGION])
    keys = _one_key_per_node("prep")
    _seed(ddb, keys)
    router = paused_router("after-prepare")
    router.start_transaction(_increment_all(keys))
    router.wait_paused()
    router.process.kill(signal.SIGKILL)
    killed = time.monotonic()
    router.process.wait(10)
    router.join(10)
    assert "error" in router.outcome  # the client never got an answer

    _expect_locked(ddb, keys)
    assert _values(ddb, keys) == [0, 0, 0]  # GetItem: the last committed version
    took = _wait_writable(ddb, keys, RECOVERY_BOUND_S, killed)
    assert _values(ddb, keys) == [0, 0, 0], f"a transaction undecided when its router died was applied ({took:.1f} s)"
    # Nothing is left behind: a new transaction over the same items commits.
    ddb.transact_write_items(TransactItems=_increment_all(keys))
    assert _values(ddb, keys) == [1, 1, 1]


def test_router_killed_after_decide_commits_everywhere(cluster, paused_router):
    ddb = _client(cluster.endpoints[REGION])
    keys = _one_key_per_node("decide")
    _seed(ddb, keys)
    router = paused_router("after-decide")
    router.start_transaction(_increment_all(keys))
    router.wait_paused()
    router.process.kill(signal.SIGKILL)
    killed = time.monotonic()
    router.process.wait(10)
    router.join(10)

    # The coordinator (node 0, the first action's) committed its share when it recorded the decision;
    # the other two stay locked until they ask it.
    _expect_locked(ddb, keys[1:])
    assert _values(ddb, keys)[0] == 1
    _wait_writable(ddb, keys, RECOVERY_BOUND_S, killed)
    assert _values(ddb, keys) == [1, 1, 1], "a committed transaction was not applied everywhere"


def _restart(cluster: LocalCluster, index: int) -> float:
    node = cluster.nodes[REGION][index]
    node.restart()
    restarted = time.monotonic()
    wait_for_port("127.0.0.1", int(cluster.node_addresses[REGION][index].rsplit(":", 1)[1]), RESTART_S, process=node)
    return restarted


def test_participant_killed_between_prepare_and_commit_commits_after_restart(cluster, paused_router):
    ddb = _client(cluster.endpoints[REGION])
    keys = _one_key_per_node("node")
    _seed(ddb, keys)
    router = paused_router("after-decide", SHORT_PAUSE_S)
    # Its call to the dead node may take the call timeout before the router answers.
    router.start_transaction(_increment_all(keys), read_timeout_s=SHORT_PAUSE_S + 3 * limits.TXN_CALL_TIMEOUT_S)
    router.wait_paused()
    victim = cluster.nodes[REGION][1]
    victim.kill(signal.SIGKILL)
    victim.wait(10)
    router.join(SHORT_PAUSE_S + 4 * limits.TXN_CALL_TIMEOUT_S)
    # COMMIT was recorded before the node died: the transaction succeeded, and says so.
    assert "answer" in router.outcome, router.outcome
    assert _values(ddb, [keys[0], keys[2]]) == [1, 1]
    restarted = _restart(cluster, 1)
    _wait_writable(ddb, keys, RECOVERY_BOUND_S + RESTART_S, restarted)
    assert _values(ddb, keys) == [1, 1, 1], "a participant restarted after the decision did not commit its share"


def test_coordinator_killed_after_prepare_leaves_all_or_nothing(cluster, paused_router):
    ddb = _client(cluster.endpoints[REGION])
    keys = _one_key_per_node("coord")
    _seed(ddb, keys)
    router = paused_router("after-prepare", SHORT_PAUSE_S)
    router.start_transaction(_increment_all(keys), read_timeout_s=SHORT_PAUSE_S + 3 * limits.TXN_CALL_TIMEOUT_S)
    router.wait_paused()
    coordinator = cluster.nodes[REGION][0]
    coordinator.kill(signal.SIGKILL)
    coordinator.wait(10)
    router.join(SHORT_PAUSE_S + 4 * limits.TXN_CALL_TIMEOUT_S)
    restarted = _restart(cluster, 0)
    _wait_writable(ddb, keys, RECOVERY_BOUND_S + RESTART_S, restarted)
    values = _values(ddb, keys)
    assert values in ([0, 0, 0], [1, 1, 1]), f"half applied: {values}"
    # What the client was told agrees with what happened.
    if "answer" in router.outcome:
        assert values == [1, 1, 1], "the client was told the transaction committed"
    else:
        error = router.outcome["error"]
        assert isinstance(error, ClientError), repr(error)
        if _error_code(error) == "TransactionCanceledException":
            assert values == [0, 0, 0], "the client was told the transaction was cancelled"
        else:  # the decision could not be recorded: an internal error, either way is possible
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] >= 500, error.response
