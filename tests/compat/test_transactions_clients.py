"""Transactions through the clients people use: the aws CLI, and PynamoDB's TransactWrite/TransactGet.

Both modes (``endpoint``).  The CLI runs as a real process with the session's
dummy credentials; PynamoDB models point at the endpoint through ``Meta.host``.
PynamoDB sends a transaction's actions grouped by kind (condition checks,
deletes, puts, updates), so its cancellation reasons come in that order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import CancellationReason, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from helpers import create_table, unique_name


def _aws_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    found = beside if os.path.exists(beside) else shutil.which("aws")
    if found is None:
        pytest.fail("the aws CLI is a test dependency (awscli) but is not installed")
    return found


def aws(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")
    return subprocess.run([_aws_binary(), "dynamodb", *args, "--endpoint-url", endpoint, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)


def aws_ok(endpoint: str, *args: str) -> dict:
    done = aws(endpoint, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


# --- the aws CLI -------------------------------------------------------------------------------


def test_aws_cli_transact_write_and_get(ddb, endpoint):
    table = create_table(ddb, unique_name("clitx"))
    ddb.put_item(TableName=table, Item={"id": {"S": "alice"}, "balance": {"N": "100"}})
    ddb.put_item(TableName=table, Item={"id": {"S": "bob"}, "balance": {"N": "5"}})

    def transfer(amount: int) -> list[dict]:
        def leg(who: str, sign: str) -> dict:
            update = {"TableName": table, "Key": {"id": {"S": who}},
                      "UpdateExpression": f"SET balance = balance {sign} :amt",
                      "ExpressionAttributeValues": {":amt": {"N": str(amount)}}}
            if sign == "-":
                update["ConditionExpression"] = "balance >= :amt"
            return {"Update": update}
        return [leg("alice", "-"), leg("bob", "+")]

    out = aws_ok(endpoint, "transact-write-items", "--transact-items", json.dumps(transfer(30)),
                 "--return-consumed-capacity", "TOTAL", "--client-request-token", str(uuid.uuid4()))
    assert out["ConsumedCapacity"] == [{"TableName": table, "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}]
    got = aws_ok(endpoint, "transact-get-items", "--transact-items", json.dumps([
        {"Get": {"TableName": table, "Key": {"id": {"S": who}}, "ProjectionExpression": "balance"}}
        for who in ("alice", "bob", "carol")]))
    assert got["Responses"] == [{"Item": {"balance": {"N": "70"}}}, {"Item": {"balance": {"N": "35"}}}, {}]

    done = aws(endpoint, "transact-write-items", "--transact-items", json.dumps(transfer(1000)))
    assert done.returncode != 0
    assert ("An error occurred (TransactionCanceledException) when calling the TransactWriteItems operation: "
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[ConditionalCheckFailed, None]") in done.stderr
    assert ddb.get_item(TableName=table, Key={"id": {"S": "bob"}})["Item"]["balance"] == {"N": "35"}

    done = aws(endpoint, "transact-write-items", "--transact-items", json.dumps(transfer(1)[:1] * 2))
    assert done.returncode != 0
    assert "(ValidationException)" in done.stderr
    assert "Transaction request cannot include multiple operations on one item" in done.stderr
    ddb.delete_table(TableName=table)


# --- PynamoDB ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(endpoint):
    """An ``Account`` model (with a PynamoDB version attribute) and a ``Transfer`` log model, on fresh tables."""
    meta = {"host": endpoint, "region": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}

    class Account(Model):
        class Meta:
            table_name = unique_name("pyn-acct")
            host, region = meta["host"], meta["region"]
            aws_access_key_id, aws_secret_access_key = meta["aws_access_key_id"], meta["aws_secret_access_key"]

        id = UnicodeAttribute(hash_key=True)
        balance = NumberAttribute(default=0)
        version = VersionAttribute()

    class Transfer(Model):
        class Meta:
            table_name = unique_name("pyn-xfer")
            host, region = meta["host"], meta["region"]
            aws_access_key_id, aws_secret_access_key = meta["aws_access_key_id"], meta["aws_secret_access_key"]

        id = UnicodeAttribute(hash_key=True)
        amount = NumberAttribute()

    for model in (Account, Transfer):
        model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    connection = Connection(host=endpoint, region="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    yield Account, Transfer, connection
    for model in (Account, Transfer):
        model.delete_table()


def _transfer(connection, Account, Transfer, source, target, amount: int, token: str | None = None) -> str:
    transfer_id = uuid.uuid4().hex
    with TransactWrite(connection=connection, client_request_token=token) as tx:
        tx.update(source, actions=[Account.balance.add(-amount)], condition=Account.balance >= amount)
        tx.update(target, actions=[Account.balance.add(amount)])
        tx.save(Transfer(transfer_id, amount=amount), condition=Transfer.id.does_not_exist())
    return transfer_id


def test_pynamodb_transact_write_and_get(models):
    Account, Transfer, connection = models
    alice, bob = Account(f"alice-{uuid.uuid4().hex[:6]}", balance=100), Account(f"bob-{uuid.uuid4().hex[:6]}", balance=0)
    with TransactWrite(connection=connection) as tx:
        tx.save(alice)
        tx.save(bob)
    assert (alice.version, bob.version) == (1, 1)  # PynamoDB's optimistic locking went through the transaction

    alice.refresh(consistent_read=True), bob.refresh(consistent_read=True)
    transfer_id = _transfer(connection, Account, Transfer, alice, bob, 40)
    with TransactGet(connection=connection) as tg:
        a, b, t = tg.get(Account, alice.id), tg.get(Account, bob.id), tg.get(Transfer, transfer_id)
    assert (a.get().balance, b.get().balance, t.get().amount) == (60, 40, 40)
    assert (a.get().version, b.get().version) == (2, 2)


def test_pynamodb_cancellation_reasons(models):
    Account, Transfer, connection = models
    alice, bob = Account(f"alice-{uuid.uuid4().hex[:6]}", balance=10), Account(f"bob-{uuid.uuid4().hex[:6]}", balance=0)
    alice.save(), bob.save()
    with pytest.raises(TransactWriteError) as info:
        _transfer(connection, Account, Transfer, alice, bob, 50)
    assert info.value.cause_response_code == "TransactionCanceledException"
    # PynamoDB's order: the Transfer put first, then the two updates.
    assert info.value.cancellation_reasons == [
        None, CancellationReason(code="ConditionalCheckFailed", message="The conditional request failed"), None]
    assert Account.get(alice.id, consistent_read=True).balance == 10

    # A stale copy: PynamoDB's version condition fails inside the transaction.
    stale = Account.get(bob.id, consistent_read=True)
    bob.balance = 5
    bob.save()
    with pytest.raises(TransactWriteError) as info:
        with TransactWrite(connection=connection) as tx:
            tx.condition_check(Account, alice.id, condition=Account.balance >= 10)
            tx.save(stale, return_values="ALL_OLD")
    reasons = info.value.cancellation_reasons
    assert reasons[0] is None
    assert (reasons[1].code, reasons[1].message) == ("ConditionalCheckFailed", "The conditional request failed")
    assert reasons[1].raw_item["balance"] == {"N": "5"}
    assert Account.get(bob.id, consistent_read=True).balance == 5


def test_pynamodb_client_request_token(models):
    Account, Transfer, connection = models
    alice, bob = Account(f"alice-{uuid.uuid4().hex[:6]}", balance=10), Account(f"bob-{uuid.uuid4().hex[:6]}", balance=0)
    alice.save(), bob.save()
    token = str(uuid.uuid4())
    with TransactWrite(connection=connection, client_request_token=token) as tx:
        tx.update(alice, actions=[Account.balance.add(-1)], add_version_condition=False)
        tx.update(bob, actions=[Account.balance.add(1)], add_version_condition=False)
    with TransactWrite(connection=connection, client_request_token=token) as tx:  # a retry: applied once
        tx.update(alice, actions=[Account.balance.add(-1)], add_version_condition=False)
        tx.update(bob, actions=[Account.balance.add(1)], add_version_condition=False)
    assert (Account.get(alice.id, consistent_read=True).balance, Account.get(bob.id, consistent_read=True).balance) == (9, 1)
    with pytest.raises(TransactWriteError) as info:
        with TransactWrite(connection=connection, client_request_token=token) as tx:
            tx.update(alice, actions=[Account.balance.add(-2)], add_version_condition=False)
    assert info.value.cause_response_code == "IdempotentParameterMismatchException"
