"""TransactWriteItems / TransactGetItems in one process: the checks, the answers, the tokens.

The actions run against a real embedded catalog (tables, key schemas,
routing) with the coordinator (``router/transactions.py``) replaced by a
fake that records what it was asked and answers what each test says, so
every rule can be driven without the nodes: DynamoDB's validation order, the
cancellation reasons and their body, capacity and item collection metrics,
and ClientRequestToken replays, mismatches and in-progress duplicates.  The
black-box runs against real servers are tests/compat/test_transactions*.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from meridian.model import limits
from meridian.model.errors import (
    ConditionalCheckFailedException,
    IdempotentParameterMismatchException,
    InternalServerError,
    ResourceNotFoundException,
    TransactionCanceledException,
    TransactionConflictException,
    TransactionInProgressException,
    ValidationException,
    error_from_type,
)
from meridian.model.ops import ItemOp, ItemResult, OpKind, ReturnValues
from meridian.model.ring import Ring
from meridian.model.transactions import TRANSACTION_ONGOING
from meridian.node.engine import Engine
from meridian.router import transactions
from meridian.router.actions import ACTIONS
from meridian.router.actions.transact import AGGREGATE_TOO_LARGE_MESSAGE, DUPLICATE_ITEM_MESSAGE
from meridian.router.app import Application
from meridian.router.catalog import Catalog
from meridian.router.context import RouterContext
from meridian.router.storage_embedded import EmbeddedStorage
from meridian.router.transact_tokens import MISMATCH_MESSAGE, Committed, TokenStore, request_digest, store_for
from meridian.router.validation import validate_request
from meridian.router.validation_rules import TRANSACT_WRITE_MANY, TRANSACT_WRITE_NONE

TABLE = "txn"
INDEXED = "txnidx"
CANCELLED = "Transaction cancelled, please refer cancellation reasons for specific reasons "
EMPTY_KEY = ("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
             "empty string value. Key: pk")


class FakeCoordinator:
    """Stands in for router/transactions.py: records the calls, answers ``results``
    (per call: a list, or a function of the ops), each item 100 bytes by default."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[str, ItemOp]]] = []
        self.reads: list[list[tuple[str, ItemOp]]] = []
        self.results: Any = None
        self.gate: asyncio.Event | None = None

    def _answer(self, calls: list[tuple[str, ItemOp]]) -> list[ItemResult]:
        if callable(self.results):
            return self.results([op for _node, op in calls])
        if self.results is not None:
            return self.results
        return [ItemResult(size_bytes=100) for _ in calls]

    async def execute_write(self, ctx: RouterContext, actions: list[tuple[str, ItemOp]]) -> list[ItemResult]:
        self.writes.append(actions)
        if self.gate is not None:
            await self.gate.wait()
        return self._answer(actions)

    async def execute_read(self, ctx: RouterContext, gets: list[tuple[str, ItemOp]]) -> list[ItemResult]:
        self.reads.append(gets)
        return self._answer(gets)


@pytest.fixture
def fake(monkeypatch) -> FakeCoordinator:
    coordinator = FakeCoordinator()
    monkeypatch.setattr(transactions, "execute_write", coordinator.execute_write)
    monkeypatch.setattr(transactions, "execute_read", coordinator.execute_read)
    return coordinator


@pytest.fixture
async def ctx(tmp_path):
    engine = Engine(str(tmp_path / "data"), node_id="embedded", region="us-east-1")
    storage = EmbeddedStorage(engine)
    catalog = Catalog(storage, "us-east-1", shared=False)
    await catalog.start()
    context = RouterContext(storage=storage, catalog=catalog, ring=Ring(storage.node_ids), region="us-east-1",
                            address="127.0.0.1:0")
    await call(context, "CreateTable", {
        "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    })
    await call(context, "CreateTable", {
        "TableName": INDEXED, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g", "l")],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                    "Projection": {"ProjectionType": "ALL"}}],
        "LocalSecondaryIndexes": [{"IndexName": "byl", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                                     {"AttributeName": "l", "KeyType": "RANGE"}],
                                   "Projection": {"ProjectionType": "ALL"}}],
    })
    yield context
    await catalog.stop()
    engine.close()


async def call(ctx: RouterContext, action: str, body: dict) -> dict:
    validate_request(action, body)
    answer = await ACTIONS[action](ctx, body)
    return orjson.loads(answer) if isinstance(answer, bytes) else answer


async def refused(ctx: RouterContext, action: str, body: dict, error: type) -> Any:
    with pytest.raises(error) as caught:
        await call(ctx, action, body)
    return caught.value


def key(pk: str) -> dict:
    return {"pk": {"S": pk}}


def put(pk: str, table: str = TABLE, **spec: Any) -> dict:
    return {"Put": {"TableName": table, "Item": {**key(pk), "v": {"S": "x"}}, **spec}}


def check(pk: str, condition: str = "attribute_not_exists(pk)", **spec: Any) -> dict:
    return {"ConditionCheck": {"TableName": TABLE, "Key": key(pk), "ConditionExpression": condition, **spec}}


def update(pk: str, expression: str = "SET a = :a", **spec: Any) -> dict:
    spec.setdefault("ExpressionAttributeValues", {":a": {"S": "y"}})
    return {"Update": {"TableName": TABLE, "Key": key(pk), "UpdateExpression": expression, **spec}}


def delete(pk: str, **spec: Any) -> dict:
    return {"Delete": {"TableName": TABLE, "Key": key(pk), **spec}}


def write(*items: dict, **params: Any) -> dict:
    return {"TransactItems": list(items), **params}


def codes(error: TransactionCanceledException) -> list[str]:
    return [reason["Code"] for reason in error.reasons or ()]


# --- step 1: one action per entry --------------------------------------------------------


@pytest.mark.parametrize("entry, message", [
    ({}, TRANSACT_WRITE_NONE),
    (None, TRANSACT_WRITE_NONE),
    ({**put("a"), **delete("a")}, TRANSACT_WRITE_MANY),
])
def test_each_entry_names_one_action(entry, message) -> None:
    with pytest.raises(ValidationException) as caught:
        validate_request("TransactWriteItems", write(put("ok"), entry))
    assert caught.value.message == message


def test_a_null_get_entry_is_the_get_members_constraint() -> None:
    with pytest.raises(ValidationException) as caught:
        validate_request("TransactGetItems", {"TransactItems": [{"Get": {"TableName": TABLE, "Key": key("a")}}, None]})
    assert caught.value.message == ("1 validation error detected: Value null at 'transactItems.2.member.get' failed "
                                    "to satisfy constraint: Member must not be null")


# --- step 2 before step 3: request-only checks come first, in request order ----------------


async def test_a_malformed_condition_later_beats_a_missing_table_earlier(ctx, fake) -> None:
    error = await refused(ctx, "TransactWriteItems",
                          write(put("a", table="nosuch"), check("b", "attribute_not_exists(")), ValidationException)
    assert error.message == 'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "("'
    assert fake.writes == []


async def test_the_first_actions_problem_wins(ctx, fake) -> None:
    deep: dict = {"S": "leaf"}
    for _ in range(limits.DOCUMENT_DEPTH_MAX):
        deep = {"M": {"n": deep}}
    too_deep = {"Put": {"TableName": TABLE, "Item": {**key("a"), "d": deep}}}
    malformed = check("b", "attribute_not_exists(")
    first = await refused(ctx, "TransactWriteItems", write(too_deep, malformed), ValidationException)
    assert first.message.startswith("Nesting Levels have exceeded supported limits")
    second = await refused(ctx, "TransactWriteItems", write(malformed, too_deep), ValidationException)
    assert second.message.startswith("Invalid ConditionExpression")


@pytest.mark.parametrize("other", [put("a", table="nosuch"), put("cc")])  # a missing table, a duplicate
async def test_an_unused_value_comes_before_tables_and_duplicates(ctx, fake, other) -> None:
    unused = check("cc", ExpressionAttributeValues={":v": {"S": "x"}})
    error = await refused(ctx, "TransactWriteItems", write(other, unused), ValidationException)
    assert error.message == "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}"


async def test_an_empty_placeholder_map_is_refused(ctx, fake) -> None:
    error = await refused(ctx, "TransactWriteItems",
                          write(put("a", ConditionExpression="attribute_not_exists(#n)",
                                    ExpressionAttributeNames={"#n": "pk"}, ExpressionAttributeValues={})),
                          ValidationException)
    assert error.message == "ExpressionAttributeValues must not be empty"


async def test_a_put_too_large_is_the_requests_error(ctx, fake) -> None:
    big = {"Put": {"TableName": TABLE, "Item": {**key("a"), "p": {"S": "x" * limits.ITEM_SIZE_BYTES_MAX}}}}
    error = await refused(ctx, "TransactWriteItems", write(big), ValidationException)
    assert error.message == "Item size has exceeded the maximum allowed size"
    assert fake.writes == []


async def test_a_missing_table(ctx, fake) -> None:
    error = await refused(ctx, "TransactWriteItems", write(put("a"), put("b", table="nosuch")),
                          ResourceNotFoundException)
    assert error.message == "Requested resource not found"


# --- step 3: keys against the table ----------------------------------------------------------


@pytest.mark.parametrize("entry", [update("", ), delete(""), check(""), put("")])
async def test_an_empty_key_value_is_the_requests_error(ctx, fake, entry) -> None:
    error = await refused(ctx, "TransactWriteItems", write(put("ok"), entry), ValidationException)
    assert error.message == EMPTY_KEY
    assert fake.writes == []


@pytest.mark.parametrize("entry, message", [
    ({"Update": {"TableName": TABLE, "Key": {"pk": {"N": "5"}}, "UpdateExpression": "SET a = :a",
                 "ExpressionAttributeValues": {":a": {"S": "x"}}}},
     "The provided key element does not match the schema"),
    ({"Delete": {"TableName": TABLE, "Key": {"pk": {"L": [{"S": "x"}]}}}},
     "The provided key element does not match the schema"),
    ({"ConditionCheck": {"TableName": TABLE, "Key": {"other": {"S": "x"}},
                         "ConditionExpression": "attribute_exists(pk)"}},
     "The provided key element does not match the schema"),
    ({"Put": {"TableName": TABLE, "Item": {"pk": {"N": "5"}}}},
     "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"),
    ({"Put": {"TableName": TABLE, "Item": {"v": {"S": "x"}}}},
     "One or more parameter values were invalid: Missing the key pk in the item"),
    (update("k", "SET pk = :a"),
     "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"),
])
async def test_a_key_that_does_not_fit_is_the_actions_reason(ctx, fake, entry, message) -> None:
    error = await refused(ctx, "TransactWriteItems", write(put("ok"), entry), TransactionCanceledException)
    assert error.reasons == [{"Code": "None"}, {"Code": "ValidationError", "Message": message}]
    assert error.message == CANCELLED + "[None, ValidationError]"
    assert fake.writes == []


async def test_a_puts_index_key_of_the_wrong_type_is_a_reason_an_empty_one_the_requests_error(ctx, fake) -> None:
    item = {"pk": {"S": "a"}, "sk": {"S": "b"}}
    wrong = {"Put": {"TableName": INDEXED, "Item": {**item, "g": {"N": "1"}}}}
    error = await refused(ctx, "TransactWriteItems", write(wrong), TransactionCanceledException)
    assert codes(error) == ["ValidationError"]
    assert "Type mismatch for Index Key g" in error.reasons[0]["Message"]
    empty = {"Put": {"TableName": INDEXED, "Item": {**item, "g": {"S": ""}}}}
    error = await refused(ctx, "TransactWriteItems", write(empty), ValidationException)
    assert error.message.startswith("One or more parameter values are not valid. A value specified for a secondary")


# --- step 4: one action per item, 4 MB -----------------------------------------------------------


@pytest.mark.parametrize("second", [delete("a"), check("a"), update("a"), put("a")])
async def test_two_actions_on_one_item(ctx, fake, second) -> None:
    error = await refused(ctx, "TransactWriteItems", write(put("a"), second), ValidationException)
    assert error.message == DUPLICATE_ITEM_MESSAGE


async def test_the_same_key_in_two_tables_is_two_items(ctx, fake) -> None:
    indexed_item = {"Put": {"TableName": INDEXED, "Item": {"pk": {"S": "a"}, "sk": {"S": "a"}}}}
    assert await call(ctx, "TransactWriteItems", write(put("a"), indexed_item)) == {}
    assert len(fake.writes) == 1


async def test_the_aggregate_size(ctx, fake) -> None:
    value = "x" * (limits.ITEM_SIZE_BYTES_MAX - 100)
    count = limits.TRANSACT_AGGREGATE_BYTES_MAX // limits.ITEM_SIZE_BYTES_MAX + 1
    items = [{"Put": {"TableName": TABLE, "Item": {**key(f"k{i}"), "p": {"S": value}}}} for i in range(count)]
    error = await refused(ctx, "TransactWriteItems", write(*items), ValidationException)
    assert error.message == AGGREGATE_TOO_LARGE_MESSAGE
    assert await call(ctx, "TransactWriteItems", write(*items[: count - 1])) == {}


# --- what the coordinator is asked ----------------------------------------------------------------


async def test_the_ops_in_request_order(ctx, fake) -> None:
    body = write(put("a", ConditionExpression="attribute_not_exists(pk)"),
                 update("b", ConditionExpression="attribute_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
                 delete("c"), check("d", ReturnValuesOnConditionCheckFailure="NONE"))
    assert await call(ctx, "TransactWriteItems", body) == {}
    (calls,) = fake.writes
    ops = [op for _node, op in calls]
    assert [op.kind for op in ops] == [OpKind.PUT, OpKind.UPDATE, OpKind.DELETE, OpKind.CHECK]
    assert [op.key_item for op in ops] == [key("a"), key("b"), key("c"), key("d")]
    assert ops[0].item == {**key("a"), "v": {"S": "x"}} and ops[0].condition == "attribute_not_exists(pk)"
    assert ops[1].update == "SET a = :a" and ops[1].values == {":a": {"S": "y"}}
    assert [op.return_old_on_condition_failure for op in ops] == [False, True, False, False]
    assert all(op.return_values is ReturnValues.NONE for op in ops)
    assert {node for node, _op in calls} == {ctx.ring.single}


# --- cancellation reasons from the nodes ----------------------------------------------------------


async def test_reasons_in_request_order(ctx, fake) -> None:
    old = {**key("b"), "n": {"N": "1"}}
    fake.results = [
        ItemResult(size_bytes=10),
        ItemResult(error=ConditionalCheckFailedException(item=old)),
        ItemResult(error=TransactionConflictException(TRANSACTION_ONGOING)),
        ItemResult(error=ValidationException("An operand in the update expression has an incorrect data type")),
        ItemResult(error=ConditionalCheckFailedException()),
    ]
    error = await refused(ctx, "TransactWriteItems",
                          write(put("a"), put("b"), put("c"), update("d"), put("e")), TransactionCanceledException)
    assert error.reasons == [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": old},
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
        {"Code": "ValidationError", "Message": "An operand in the update expression has an incorrect data type"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
    ]
    assert error.message == CANCELLED + "[None, ConditionalCheckFailed, TransactionConflict, ValidationError, " \
                                        "ConditionalCheckFailed]"


async def test_a_nodes_internal_error_is_the_requests(ctx, fake) -> None:
    fake.results = [ItemResult(size_bytes=1), ItemResult(error=InternalServerError("Internal server error"))]
    await refused(ctx, "TransactWriteItems", write(put("a"), put("b")), InternalServerError)


def test_the_cancellation_body_as_the_router_sends_it() -> None:
    failed = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": key("a")}
    error = TransactionCanceledException([failed, {"Code": "None"}])
    content_type = b"Content-Type: application/x-amz-json-1.0\r\n"
    response = Application(None, {}).failed("TransactWriteItems", error, content_type)
    assert response.status == 400
    assert orjson.loads(response.body) == {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "CancellationReasons": [failed, {"Code": "None"}],
        "Message": CANCELLED + "[ConditionalCheckFailed, None]",
    }
    rebuilt = error_from_type("TransactionCanceledException", error.message)
    assert rebuilt.body() == {"__type": error.full_type, "Message": error.message}


@pytest.mark.parametrize("error, type_name", [
    (IdempotentParameterMismatchException(MISMATCH_MESSAGE), "IdempotentParameterMismatchException"),
    (TransactionInProgressException(), "TransactionInProgressException"),
])
def test_the_token_errors_bodies(error, type_name) -> None:
    assert error.status == 400
    assert error.body() == {"__type": "com.amazonaws.dynamodb.v20120810#" + type_name, "Message": error.message}


# --- capacity and item collection metrics ----------------------------------------------------------


async def test_total_capacity_per_table_in_request_order(ctx, fake) -> None:
    def sized(ops: list[ItemOp]) -> list[ItemResult]:
        return [ItemResult(size_bytes=3000 if op.kind is OpKind.PUT else 5000) for op in ops]
    fake.results = sized
    indexed_check = {"ConditionCheck": {"TableName": INDEXED, "Key": {"pk": {"S": "a"}, "sk": {"S": "a"}},
                                        "ConditionExpression": "attribute_exists(pk)"}}
    answer = await call(ctx, "TransactWriteItems",
                        write(indexed_check, put("a"), check("b"), ReturnConsumedCapacity="TOTAL"))
    # a put of 3 KB: 2 x 3 write units; a check of a 5 KB item: billed as a write of it, 2 x 5
    assert answer == {"ConsumedCapacity": [
        {"TableName": INDEXED, "CapacityUnits": 10.0, "WriteCapacityUnits": 10.0},
        {"TableName": TABLE, "CapacityUnits": 16.0, "WriteCapacityUnits": 16.0},
    ]}
    assert all(op.return_values is ReturnValues.NONE for _node, op in fake.writes[0])


async def test_indexes_capacity_and_collection_metrics(ctx, fake) -> None:
    item = {"pk": {"S": "a"}, "sk": {"S": "b"}, "g": {"S": "G"}, "l": {"S": "L"}}
    fake.results = [ItemResult(size_bytes=100, collection_size_bytes=2048), ItemResult(size_bytes=10)]
    body = write({"Put": {"TableName": INDEXED, "Item": item}}, put("x"),
                 ReturnConsumedCapacity="INDEXES", ReturnItemCollectionMetrics="SIZE")
    answer = await call(ctx, "TransactWriteItems", body)
    assert [op.return_values for _node, op in fake.writes[0]] == [ReturnValues.ALL_OLD, ReturnValues.NONE]
    # a new item enters each index: one plain write each, not doubled
    assert answer["ConsumedCapacity"] == [
        {"TableName": INDEXED, "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0,
         "Table": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0},
         "LocalSecondaryIndexes": {"byl": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}},
         "GlobalSecondaryIndexes": {"byg": {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}}},
        {"TableName": TABLE, "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0,
         "Table": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}},
    ]
    assert answer["ItemCollectionMetrics"] == {
        INDEXED: [{"ItemCollectionKey": {"pk": {"S": "a"}}, "SizeEstimateRangeGB": [0.0, 1.0]}],
    }


async def test_an_update_charges_the_indexes_it_moves(ctx, fake) -> None:
    old = {"pk": {"S": "a"}, "sk": {"S": "b"}, "g": {"S": "G1"}}
    fake.results = [ItemResult(item_json=orjson.dumps(old), size_bytes=50)]
    body = write({"Update": {"TableName": INDEXED, "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}},
                             "UpdateExpression": "SET g = :g", "ExpressionAttributeValues": {":g": {"S": "G2"}}}},
                 ReturnConsumedCapacity="INDEXES")
    (entry,) = (await call(ctx, "TransactWriteItems", body))["ConsumedCapacity"]
    assert entry["GlobalSecondaryIndexes"] == {"byg": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}}  # moved
    assert "LocalSecondaryIndexes" not in entry  # no l: in no LSI entry before or after
    assert entry["CapacityUnits"] == 4.0


# --- ClientRequestToken -------------------------------------------------------------------------------


async def test_a_replay_answers_without_running_again(ctx, fake) -> None:
    fake.results = lambda ops: [ItemResult(size_bytes=1500) for _ in ops]
    body = write(put("a"), update("b"), ClientRequestToken="tok-1", ReturnConsumedCapacity="TOTAL")
    first = await call(ctx, "TransactWriteItems", body)
    assert first == {"ConsumedCapacity": [{"TableName": TABLE, "CapacityUnits": 8.0, "WriteCapacityUnits": 8.0}]}
    reordered = write({"Put": {"Item": {"v": {"S": "x"}, **key("a")}, "TableName": TABLE}}, update("b"),
                      ClientRequestToken="tok-1", ReturnConsumedCapacity="TOTAL")
    replay = await call(ctx, "TransactWriteItems", reordered)
    # the replay is read units of the items the first call wrote: 2 x 1 each
    assert replay == {"ConsumedCapacity": [{"TableName": TABLE, "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}]}
    assert len(fake.writes) == 1
    assert await call(ctx, "TransactWriteItems", {**body, "ReturnConsumedCapacity": "NONE"}) == {}
    assert len(fake.writes) == 1


async def test_another_request_with_the_token(ctx, fake) -> None:
    await call(ctx, "TransactWriteItems", write(put("a"), ClientRequestToken="tok-2"))
    error = await refused(ctx, "TransactWriteItems", write(put("b"), ClientRequestToken="tok-2"),
                          IdempotentParameterMismatchException)
    assert error.message == MISMATCH_MESSAGE
    assert await call(ctx, "TransactWriteItems", write(put("b"), ClientRequestToken="tok-3")) == {}
    assert len(fake.writes) == 2


async def test_a_cancelled_transaction_leaves_no_token(ctx, fake) -> None:
    body = write(put("a"), ClientRequestToken="tok-4")
    fake.results = [ItemResult(error=ConditionalCheckFailedException())]
    await refused(ctx, "TransactWriteItems", body, TransactionCanceledException)
    fake.results = None
    assert await call(ctx, "TransactWriteItems", body) == {}
    assert len(fake.writes) == 2
    assert len(store_for(ctx)) == 1


async def test_a_duplicate_while_the_first_runs(ctx, fake) -> None:
    fake.gate = asyncio.Event()
    body = write(put("a"), ClientRequestToken="tok-5")
    first = asyncio.ensure_future(call(ctx, "TransactWriteItems", body))
    while not fake.writes:
        await asyncio.sleep(0)
    await refused(ctx, "TransactWriteItems", body, TransactionInProgressException)
    await refused(ctx, "TransactWriteItems", write(put("z"), ClientRequestToken="tok-5"),
                  IdempotentParameterMismatchException)
    fake.gate.set()
    assert await first == {}
    assert await call(ctx, "TransactWriteItems", body) == {}
    assert len(fake.writes) == 1


async def test_a_failed_call_frees_its_token(ctx, fake, monkeypatch) -> None:
    async def broken(ctx, actions):
        raise InternalServerError("Internal server error")
    monkeypatch.setattr(transactions, "execute_write", broken)
    body = write(put("a"), ClientRequestToken="tok-6")
    await refused(ctx, "TransactWriteItems", body, InternalServerError)
    monkeypatch.setattr(transactions, "execute_write", fake.execute_write)
    assert await call(ctx, "TransactWriteItems", body) == {}


def test_tokens_expire_after_the_window() -> None:
    now = [1000.0]
    store = TokenStore(window_s=600.0, tokens_max=10, clock=lambda: now[0])
    digest = request_digest([put("a")])
    assert store.begin("t", digest) is None
    store.commit("t", Committed(digest))
    now[0] += 599.0
    assert store.begin("t", digest) is not None
    with pytest.raises(IdempotentParameterMismatchException):
        store.begin("t", request_digest([put("b")]))
    now[0] += 2.0
    assert store.begin("t", request_digest([put("b")])) is None  # a new request now
    assert store.replays == 1 and store.mismatches == 1


def test_the_store_is_bounded_oldest_first() -> None:
    store = TokenStore(window_s=600.0, tokens_max=2, clock=lambda: 0.0)
    for token in ("a", "b", "c"):
        assert store.begin(token, b"d") is None
        store.commit(token, Committed(b"d"))
    assert len(store) == 2
    assert store.begin("a", b"other") is None  # forgotten: runs again
    assert store.begin("c", b"d") is not None
    assert "committed=2/2" in repr(store)


async def test_each_router_and_action_has_its_own_tokens(ctx) -> None:
    other = RouterContext(storage=ctx.storage, catalog=Catalog(ctx.storage, "us-east-1", shared=False), ring=ctx.ring,
                          region="us-east-1", address="127.0.0.1:0")
    assert store_for(ctx) is store_for(ctx)
    assert store_for(ctx) is not store_for(other)
    assert store_for(ctx) is not store_for(ctx, "ExecuteTransaction")


# --- TransactGetItems ----------------------------------------------------------------------------------


def get(pk: str, table: str = TABLE, **spec: Any) -> dict:
    return {"Get": {"TableName": table, "Key": key(pk) if table == TABLE else {**key(pk), "sk": {"S": pk}}, **spec}}


async def test_get_answer_and_capacity(ctx, fake) -> None:
    fake.results = [ItemResult(item_json=b'{"n":{"N":"1"}}', size_bytes=5000), ItemResult(size_bytes=0),
                    ItemResult(item_json=b'{"pk":{"S":"c"},"sk":{"S":"c"}}', size_bytes=30)]
    body = {"TransactItems": [get("a", ProjectionExpression="#n", ExpressionAttributeNames={"#n": "n"}), get("b"),
                              get("c", table=INDEXED)], "ReturnConsumedCapacity": "INDEXES"}
    answer = await call(ctx, "TransactGetItems", body)
    assert answer == {
        "Responses": [{"Item": {"n": {"N": "1"}}}, {}, {"Item": {"pk": {"S": "c"}, "sk": {"S": "c"}}}],
        "ConsumedCapacity": [
            # 5 KB: 2 x 2 units; a missing item still 2 x 1
            {"TableName": TABLE, "CapacityUnits": 6.0, "ReadCapacityUnits": 6.0,
             "Table": {"CapacityUnits": 6.0, "ReadCapacityUnits": 6.0}},
            {"TableName": INDEXED, "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0,
             "Table": {"CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}},
        ],
    }
    ops = [op for _node, op in fake.reads[0]]
    assert [op.kind for op in ops] == [OpKind.GET] * 3
    assert (ops[0].projection, ops[0].names) == ("#n", {"#n": "n"})
    fake.results = [ItemResult(item_json=b"{}", size_bytes=10)]  # nothing projected
    assert await call(ctx, "TransactGetItems", {"TransactItems": [get("a", ProjectionExpression="zz")]}) == {
        "Responses": [{}]}


async def test_a_conflict_cancels_the_read(ctx, fake) -> None:
    fake.results = [ItemResult(size_bytes=1), ItemResult(error=TransactionConflictException(TRANSACTION_ONGOING)),
                    ItemResult(size_bytes=1)]
    error = await refused(ctx, "TransactGetItems", {"TransactItems": [get("a"), get("b"), get("c")]},
                          TransactionCanceledException)
    assert error.reasons == [{"Code": "None"},
                             {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
                             {"Code": "None"}]
    assert error.message == CANCELLED + "[None, TransactionConflict, None]"


async def test_get_checks(ctx, fake) -> None:
    error = await refused(ctx, "TransactGetItems", {"TransactItems": [{"Get": {"TableName": TABLE, "Key": {}}}]},
                          TransactionCanceledException)
    assert error.reasons == [{"Code": "ValidationError",
                              "Message": "The provided key element does not match the schema"}]
    error = await refused(ctx, "TransactGetItems", {"TransactItems": [get("a"), get("a")]}, ValidationException)
    assert error.message == DUPLICATE_ITEM_MESSAGE
    error = await refused(ctx, "TransactGetItems",
                          {"TransactItems": [get("a", table="nosuch"), get("b", ProjectionExpression="!!!")]},
                          ValidationException)
    assert error.message == 'Invalid ProjectionExpression: Syntax error; token: "!", near: "!!"'
    await refused(ctx, "TransactGetItems", {"TransactItems": [get("a", table="nosuch")]}, ResourceNotFoundException)
    assert fake.reads == []

