"""Isolation under concurrency: seeded random transfers on a 3-node cluster, checked for serializability.

Accounts ``a0`` .. ``a7`` (spread over the three storage nodes) start with
balance 100, version ``v`` 0 and an empty list ``hist``.  Several client
threads, each with its own seeded random stream, mix for a bounded time:

* **transfers**: TransactWriteItems of two Updates, ``balance - :amt`` under
  ``balance >= :amt`` and ``balance + :amt``, each also ``v = v + 1`` and
  ``hist = list_append(hist, [<txn id>])``; a quarter also carry a
  ConditionCheck ``v = :seen`` on a third account, with ``:seen`` from a
  GetItem just before (so a committed one read exactly that version);
* **TransactGetItems** of two accounts (balance, v, hist);
* **single-item UpdateItems** on an account (``v`` and ``hist`` only), which
  meet in-flight transactions' locks (TransactionConflictException);
* **GetItems** (strongly consistent).

Every write appends its id to the item's list, so each final list is that
account's whole version order (Elle's list-append model): version n of an
account is what the n-th id in its list installed.  Afterwards:

* the total is conserved, each balance is 100 plus the transfers in its list,
  and replaying a list never goes below zero (no lost update);
* every acknowledged write is in its lists, in all of them (atomic), and no
  cancelled transaction is in any; an unanswered one is in all or none;
* every read saw a prefix of the final list (no aborted or half-applied write)
  with ``v`` equal to its length;
* the committed transactions and TransactGetItems, with the versions they
  read and wrote, form a serializable history (``tests/txn_history.py``: no
  cycle in the dependency graph);
* conflicts happened: TransactionConflict cancellation reasons and
  TransactionConflictException on single-item writes are both counted > 0.

``MERIDIAN_TXN_SEED`` replays a run's choices (the interleaving is the OS's).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from meridian.cluster.procs import LocalCluster
from tests.txn_history import Txn, check, is_prefix, versions_from_appends

REGION = "us-east-1"
ACCOUNTS = [f"a{i}" for i in range(8)]
INITIAL_BALANCE = 100
WORKERS = 8
#: The run lasts at least this long, and goes on (up to the maximum) until both kinds of conflict were seen.
RUN_MIN_S = 15.0
RUN_MAX_S = 45.0
AMOUNT_MAX = 30
#: Shares of the operation mix (the rest are GetItems).
TRANSFER_SHARE, TRANSACT_GET_SHARE, SINGLE_UPDATE_SHARE = 0.45, 0.2, 0.2
CHECK_SHARE = 0.25  # of transfers, carrying a ConditionCheck on a third account
SEED = int(os.environ.get("MERIDIAN_TXN_SEED", "14"))


def _client(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30,
                                      max_pool_connections=4))


def _n(value: int) -> dict:
    return {"N": str(value)}


def _key(account: str) -> dict:
    return {"id": {"S": account}}


def _state(item: dict) -> tuple[int, int, list[str]]:
    """(balance, v, hist) of an account item."""
    return int(item["balance"]["N"]), int(item["v"]["N"]), [e["S"] for e in item["hist"]["L"]]


@dataclass
class Record:
    """What the clients saw, shared by the worker threads (list appends and Counter updates under the GIL)."""

    deltas: dict[str, dict[str, int]] = field(default_factory=dict)      # txn id -> account -> balance change
    acknowledged: set[str] = field(default_factory=set)                  # answered success
    cancelled: set[str] = field(default_factory=set)                     # answered TransactionCanceledException/...
    unknown: set[str] = field(default_factory=set)                       # no answer (timeout, 5xx)
    check_reads: dict[str, tuple[str, int]] = field(default_factory=dict)  # txn id -> (account, v it required)
    reads: list[tuple[str, dict[str, tuple[int, list[str]]]]] = field(default_factory=list)  # TransactGetItems
    get_items: list[tuple[str, int, list[str]]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _worker(endpoint: str, w: int, deadline: list[float], record: Record) -> None:
    rng = random.Random(SEED * 1000 + w)
    ddb = _client(endpoint)
    i = 0
    while time.monotonic() < deadline[0]:
        i += 1
        txid = f"{w}.{i}"
        roll = rng.random()
        try:
            if roll < TRANSFER_SHARE:
                _transfer(ddb, rng, txid, record)
            elif roll < TRANSFER_SHARE + TRANSACT_GET_SHARE:
                _transact_get(ddb, rng, txid, record)
            elif roll < TRANSFER_SHARE + TRANSACT_GET_SHARE + SINGLE_UPDATE_SHARE:
                _single_update(ddb, rng, txid, record)
            else:
                account = rng.choice(ACCOUNTS)
                item = ddb.get_item(TableName="bank", Key=_key(account), ConsistentRead=True)["Item"]
                balance, v, hist = _state(item)
                record.get_items.append((account, v, hist))
                record.counts["GetItem ok"] += 1
        except Exception as error:  # an unexpected answer fails the test afterwards, with its story
            record.failures.append(f"{txid}: {error!r}")
            if len(record.failures) > 20:
                return


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


def _transfer(ddb, rng: random.Random, txid: str, record: Record) -> None:
    source, target = rng.sample(ACCOUNTS, 2)
    amount = rng.randint(1, AMOUNT_MAX)
    me = {":me": {"L": [{"S": txid}]}, ":one": _n(1), ":amt": _n(amount)}
    actions = [
        {"Update": {"TableName": "bank", "Key": _key(source), "ConditionExpression": "balance >= :amt",
                    "UpdateExpression": "SET balance = balance - :amt, v = v + :one, hist = list_append(hist, :me)",
                    "ExpressionAttributeValues": me}},
        {"Update": {"TableName": "bank", "Key": _key(target),
                    "UpdateExpression": "SET balance = balance + :amt, v = v + :one, hist = list_append(hist, :me)",
                    "ExpressionAttributeValues": me}},
    ]
    if rng.random() < CHECK_SHARE:
        third = rng.choice([a for a in ACCOUNTS if a not in (source, target)])
        seen = int(ddb.get_item(TableName="bank", Key=_key(third), ConsistentRead=True)["Item"]["v"]["N"])
        actions.append({"ConditionCheck": {"TableName": "bank", "Key": _key(third), "ConditionExpression": "v = :seen",
                                           "ExpressionAttributeValues": {":seen": _n(seen)}}})
        record.check_reads[txid] = (third, seen)
    rng.shuffle(actions)  # the coordinator is the first action's node: let it vary
    record.deltas[txid] = {source: -amount, target: amount}
    try:
        ddb.transact_write_items(TransactItems=actions)
    except ClientError as error:
        if _code(error) == "TransactionCanceledException":
            record.cancelled.add(txid)
            codes = [r["Code"] for r in error.response["CancellationReasons"]]
            record.counts["transfer cancelled"] += 1
            for code in codes:
                if code != "None":
                    record.counts[f"reason {code}"] += 1
            return
        if _code(error) == "TransactionConflictException":  # not DynamoDB's answer for a transaction
            raise
        record.unknown.add(txid)
        record.counts[f"transfer {_code(error)}"] += 1
        return
    except Exception:  # no answer: it may or may not have committed
        record.unknown.add(txid)
        record.counts["transfer no answer"] += 1
        return
    record.acknowledged.add(txid)
    record.counts["transfer ok"] += 1


def _transact_get(ddb, rng: random.Random, txid: str, record: Record) -> None:
    pair = rng.sample(ACCOUNTS, 2)
    try:
        out = ddb.transact_get_items(TransactItems=[
            {"Get": {"TableName": "bank", "Key": _key(a), "ProjectionExpression": "balance, v, hist"}} for a in pair])
    except ClientError as error:
        if _code(error) != "TransactionCanceledException":
            raise
        record.counts["TransactGetItems cancelled"] += 1
        for reason in error.response["CancellationReasons"]:
            if reason["Code"] != "None":
                record.counts[f"get reason {reason['Code']}"] += 1
        return
    seen = {}
    for account, response in zip(pair, out["Responses"]):
        _, v, hist = _state(response["Item"])
        seen[account] = (v, hist)
    record.reads.append((f"g{txid}", seen))
    record.counts["TransactGetItems ok"] += 1


def _single_update(ddb, rng: random.Random, txid: str, record: Record) -> None:
    account = rng.choice(ACCOUNTS)
    record.deltas[txid] = {account: 0}
    try:
        ddb.update_item(TableName="bank", Key=_key(account),
                        UpdateExpression="SET v = v + :one, hist = list_append(hist, :me)",
                        ExpressionAttributeValues={":one": _n(1), ":me": {"L": [{"S": txid}]}})
    except ClientError as error:
        if _code(error) == "TransactionConflictException":
            record.cancelled.add(txid)
            record.counts["UpdateItem TransactionConflictException"] += 1
            return
        record.unknown.add(txid)
        record.counts[f"UpdateItem {_code(error)}"] += 1
        return
    except Exception:
        record.unknown.add(txid)
        record.counts["UpdateItem no answer"] += 1
        return
    record.acknowledged.add(txid)
    record.counts["UpdateItem ok"] += 1


def _conflicts(record: Record) -> tuple[int, int]:
    return (record.counts["reason TransactionConflict"] + record.counts["get reason TransactionConflict"],
            record.counts["UpdateItem TransactionConflictException"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster([REGION], 3, None, tmp_path_factory.mktemp("txn-isolation"), sync=False) as cluster:
        yield cluster


def test_concurrent_transfers_are_serializable(cluster):
    endpoint = cluster.endpoints[REGION]
    ddb = _client(endpoint)
    ddb.create_table(TableName="bank", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName="bank", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    for account in ACCOUNTS:
        ddb.put_item(TableName="bank", Item={**_key(account), "balance": _n(INITIAL_BALANCE), "v": _n(0),
                                             "hist": {"L": []}})

    record = Record()
    started = time.monotonic()
    deadline = [started + RUN_MAX_S]
    threads = [threading.Thread(target=_worker, args=(endpoint, w, deadline, record), daemon=True)
               for w in range(WORKERS)]
    for t in threads:
        t.start()
    # Bounded: at least RUN_MIN_S, then stop as soon as both kinds of conflict were seen.
    while time.monotonic() < started + RUN_MAX_S:
        time.sleep(0.2)  # the workers run meanwhile; this only decides when they stop
        if time.monotonic() >= started + RUN_MIN_S and all(_conflicts(record)) or record.failures:
            deadline[0] = time.monotonic()
            break
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a worker did not stop"
    summary = f"seed {SEED}, {time.monotonic() - started:.1f} s: {dict(sorted(record.counts.items()))}"
    print(summary)
    assert not record.failures, f"{summary}\nunexpected answers: {record.failures[:10]}"

    final = {}
    for account in ACCOUNTS:
        final[account] = _state(ddb.get_item(TableName="bank", Key=_key(account), ConsistentRead=True)["Item"])
    hists = {account: hist for account, (_, _, hist) in final.items()}

    # Conservation, and each balance explained by its own list.
    assert sum(balance for balance, _, _ in final.values()) == INITIAL_BALANCE * len(ACCOUNTS), summary
    for account, (balance, v, hist) in final.items():
        assert v == len(hist), f"{account}: v {v} but {len(hist)} writes in its list"
        running = INITIAL_BALANCE
        for txid in hist:
            running += record.deltas[txid][account]
            assert running >= 0, f"{account} went negative at {txid}: a lost update"
        assert running == balance, f"{account}: balance {balance}, its list says {running}"

    # Atomicity and durability against what the clients were told.
    installed = versions_from_appends(hists)  # raises if a write was applied twice
    for txid in installed:
        assert txid in record.deltas, f"{txid} is in a list but was never sent"
        assert txid not in record.cancelled, f"{txid} was cancelled but applied to {sorted(installed[txid])}"
    for txid in record.acknowledged | record.unknown:
        accounts = set(record.deltas[txid])
        if txid in record.acknowledged or txid in installed:
            assert set(installed.get(txid, {})) == accounts, f"{txid} applied to {sorted(installed.get(txid, {}))} of {sorted(accounts)}"

    # Every read saw a committed prefix.
    for txid, seen in record.reads:
        for account, (v, hist) in seen.items():
            assert v == len(hist) and is_prefix(hist, hists[account]), f"TransactGetItems {txid} read {account}: {hist}"
    for account, v, hist in record.get_items:
        assert v == len(hist) and is_prefix(hist, hists[account]), f"GetItem of {account} read {hist}"

    # Serializability of the committed history.
    history = []
    for txid, writes in installed.items():
        reads = {account: version - 1 for account, version in writes.items()}  # each Update read what it replaced
        if txid in record.check_reads:
            account, v = record.check_reads[txid]
            reads[account] = v
        history.append(Txn(txid, reads, writes))
    history += [Txn(txid, {account: v for account, (v, _) in seen.items()}) for txid, seen in record.reads]
    report = check(history)
    print(report)
    assert report.ok, f"{summary}\n{report}"
    assert report.edges["rw"] > 0 and report.edges["wr"] > 0, report  # the reads took part

    transaction_conflicts, single_conflicts = _conflicts(record)
    assert record.counts["transfer ok"] > 50, summary
    assert transaction_conflicts > 0, f"no transaction met another: {summary}"
    assert single_conflicts > 0, f"no single-item write met a transaction: {summary}"
