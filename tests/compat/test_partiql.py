"""PartiQL (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction) through boto3 and the aws CLI.

Expected answers and messages are DynamoDB's (its PartiQL reference, and
what DynamoDB answers as recorded by conformance suites run against it).
"""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from helpers import create_table, expect_error, unique_name
from test_aws_cli import aws

NOT_WELL_FORMED = "Statement wasn't well formed, can't be processed: "


@pytest.fixture(scope="module")
def composite(ddb):
    name = create_table(ddb, unique_name("pq"), pk=("pk", "S"), sk=("sk", "N"))
    yield name
    ddb.delete_table(TableName=name)


@pytest.fixture(scope="module")
def simple(ddb):
    name = create_table(ddb, unique_name("pqs"), pk=("id", "S"))
    yield name
    ddb.delete_table(TableName=name)


def run(ddb, statement: str, *params, **kwargs) -> dict:
    if params:
        kwargs["Parameters"] = list(params)
    out = ddb.execute_statement(Statement=statement, **kwargs)
    out.pop("ResponseMetadata", None)
    return out


def select_all(ddb, statement: str, *params, **kwargs) -> tuple[list[dict], int]:
    """Every item a SELECT returns, following NextToken; and how many pages it took."""
    items, pages, token = [], 0, None
    while True:
        if token is not None:
            kwargs["NextToken"] = token
        out = run(ddb, statement, *params, **kwargs)
        items.extend(out["Items"])
        pages += 1
        token = out.get("NextToken")
        if token is None:
            return items, pages


def fill(ddb, table: str, pk: str, count: int) -> None:
    for sk in range(count):
        run(ddb, f"INSERT INTO \"{table}\" VALUE {{'pk': ?, 'sk': ?, 'v': ?}}", {"S": pk}, {"N": str(sk)},
            {"S": f"v{sk}"})


def test_insert_then_select_every_type(ddb, simple):
    out = run(ddb, f"""INSERT INTO "{simple}" VALUE {{'id': 'types', 's': 'str', 'n': 1.50, 'e': -.5e1, 'b': true,
        'z': null, 'l': [1, 'two', [3]], 'm': {{'k': {{'deep': 'x'}}}}, 'ss': <<'a', 'b'>>, 'ns': <<1, 2>>}}""")
    assert out == {"Items": []}
    item = run(ddb, f"SELECT * FROM \"{simple}\" WHERE id = 'types'")["Items"][0]
    assert item["s"] == {"S": "str"} and item["n"] == {"N": "1.5"} and item["e"] == {"N": "-5"}
    assert item["b"] == {"BOOL": True} and item["z"] == {"NULL": True}
    assert item["l"] == {"L": [{"N": "1"}, {"S": "two"}, {"L": [{"N": "3"}]}]}
    assert item["m"] == {"M": {"k": {"M": {"deep": {"S": "x"}}}}}
    assert sorted(item["ss"]["SS"]) == ["a", "b"] and sorted(item["ns"]["NS"]) == ["1", "2"]


def test_insert_is_not_an_upsert(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'dup', 'a': 1}}")
    expect_error(ddb.execute_statement, "DuplicateItemException", "Duplicate primary key exists in table",
                 Statement=f"INSERT INTO \"{simple}\" VALUE {{'id': 'dup', 'a': 2}}")
    assert ddb.get_item(TableName=simple, Key={"id": {"S": "dup"}})["Item"]["a"] == {"N": "1"}


def test_select_by_key_projection_and_parameters(ddb, composite):
    fill(ddb, composite, "key", 3)
    out = run(ddb, f"SELECT v, sk FROM \"{composite}\" WHERE pk = ? AND sk = ?", {"S": "key"}, {"N": "1"})
    assert out["Items"] == [{"v": {"S": "v1"}, "sk": {"N": "1"}}]
    assert run(ddb, f"SELECT * FROM \"{composite}\" WHERE pk = 'key' AND sk = 9")["Items"] == []


def test_query_with_sort_key_condition_and_order_by(ddb, composite):
    fill(ddb, composite, "order", 5)
    out = run(ddb, f"SELECT sk FROM \"{composite}\" WHERE pk = 'order' AND sk >= 1 ORDER BY sk DESC")
    assert [i["sk"]["N"] for i in out["Items"]] == ["4", "3", "2", "1"]
    out = run(ddb, f"SELECT sk FROM \"{composite}\" WHERE pk = 'order' AND sk BETWEEN 1 AND 2 ORDER BY sk ASC")
    assert [i["sk"]["N"] for i in out["Items"]] == ["1", "2"]
    out = run(ddb, f"SELECT sk FROM \"{composite}\" WHERE pk = 'order' AND sk <> 2 AND NOT sk = 0")
    assert [i["sk"]["N"] for i in out["Items"]] == ["1", "3", "4"]


def test_order_by_needs_a_key_condition(ddb, composite):
    expect_error(ddb.execute_statement, "ValidationException",
                 "Must have WHERE clause in the statement when using ORDER BY clause.",
                 Statement=f"SELECT * FROM \"{composite}\" ORDER BY sk")
    expect_error(ddb.execute_statement, "ValidationException",
                 "Variable reference v in ORDER BY clause must be part of the primary key",
                 Statement=f"SELECT * FROM \"{composite}\" WHERE pk = 'order' ORDER BY v")


def test_next_token_pages_a_query(ddb, composite):
    fill(ddb, composite, "pages", 7)
    statement = f"SELECT sk FROM \"{composite}\" WHERE pk = ?"
    items, pages = select_all(ddb, statement, {"S": "pages"}, Limit=2)
    assert [i["sk"]["N"] for i in items] == [str(n) for n in range(7)]
    assert pages == 4
    first = run(ddb, statement, {"S": "pages"}, Limit=2)
    assert first["LastEvaluatedKey"] == {"pk": {"S": "pages"}, "sk": {"N": "1"}}
    expect_error(ddb.execute_statement, "ValidationException", "NextToken does not match request",
                 Statement=statement, Parameters=[{"S": "other"}], NextToken=first["NextToken"])
    bad = base64.urlsafe_b64encode(b"not a token").decode()
    expect_error(ddb.execute_statement, "ValidationException", "Invalid NextToken",
                 Statement=statement, Parameters=[{"S": "pages"}], NextToken=bad)


def test_next_token_pages_a_scan_with_a_filter(ddb, composite):
    fill(ddb, composite, "scanned", 6)
    statement = f"SELECT sk FROM \"{composite}\" WHERE begins_with(v, 'v') AND pk = 'scanned' OR v = 'never'"
    items, pages = select_all(ddb, statement, Limit=3)
    assert sorted(int(i["sk"]["N"]) for i in items) == list(range(6))
    assert pages >= 2


def test_in_on_the_partition_key_reads_each_partition(ddb, composite):
    fill(ddb, composite, "in-a", 2)
    fill(ddb, composite, "in-b", 2)
    statement = f"SELECT pk, sk FROM \"{composite}\" WHERE pk IN ['in-b', 'in-a', 'in-none'] ORDER BY pk DESC, sk"
    items, pages = select_all(ddb, statement, Limit=1)
    assert [(i["pk"]["S"], i["sk"]["N"]) for i in items] == [("in-b", "0"), ("in-b", "1"), ("in-a", "0"),
                                                           ("in-a", "1")]
    assert pages >= 4
    out = run(ddb, f"SELECT sk FROM \"{composite}\" WHERE pk = 'in-a' AND sk = 1 OR pk = 'in-b' AND sk = 0")
    assert sorted(i["sk"]["N"] for i in out["Items"]) == ["0", "1"]


def test_condition_functions_and_operators(ddb, simple):
    run(ddb, f"""INSERT INTO "{simple}" VALUE {{'id': 'fn', 's': 'hello', 'l': [1, 2, 3], 'm': {{'x': [10, 20]}},
        'nul': null, 'n': 5}}""")
    where = f"SELECT id FROM \"{simple}\" WHERE id = 'fn' AND "
    holds = ["begins_with(s, 'he')", "contains(s, 'll')", "contains(l, 2)", "size(l) = 3", "size(s) > 4",
             "attribute_type(s, 'S')", "nope IS MISSING", "s IS NOT MISSING", "nul IS NULL", "s IS NOT NULL",
             "n BETWEEN 1 AND 5", "n IN [4, 5]", "m.x[1] = 20", "attribute_exists(m.x)", "NOT n < 5",
             "(n = 1 OR n = 5) AND s <> 'x'", "attribute_not_exists(nope)", "s IS STRING", "\"s\" = 'hello'"]
    for condition in holds:
        assert run(ddb, where + condition)["Items"] == [{"id": {"S": "fn"}}], condition
    for condition in ["begins_with(s, 'x')", "nope IS NOT MISSING", "m.x[0] = 20", "n IN [1, 2]", "s IS NULL"]:
        assert run(ddb, where + condition)["Items"] == [], condition


def test_nested_projection_is_answered_by_its_last_name(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'nest', 'a': {{'b': {{'c': 'deep'}}}}, 'l': ['x', 'y']}}")
    out = run(ddb, f"SELECT a.b.c, l[1] FROM \"{simple}\" WHERE id = 'nest'")
    assert out["Items"] == [{"c": {"S": "deep"}, "l": {"S": "y"}}]


def test_update_set_remove_and_returning(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'upd', 'n': 1, 'l': [1], 'ss': <<'a', 'b'>>, 'gone': 1}}")
    out = run(ddb, f"""UPDATE "{simple}" SET n = n + 2 SET l = list_append(l, [2]) SET ss = set_add(ss, <<'c'>>)
        REMOVE gone WHERE id = 'upd' RETURNING ALL NEW *""")
    item = out["Items"][0]
    assert item["n"] == {"N": "3"} and item["l"] == {"L": [{"N": "1"}, {"N": "2"}]}
    assert sorted(item["ss"]["SS"]) == ["a", "b", "c"] and "gone" not in item
    out = run(ddb, f"UPDATE \"{simple}\" SET ss = set_delete(ss, <<'a'>>), k = 'new' WHERE id = 'upd' "
                   "RETURNING MODIFIED OLD *")
    assert sorted(out["Items"][0]["ss"]["SS"]) == ["a", "b", "c"] and set(out["Items"][0]) == {"ss"}
    out = run(ddb, f"UPDATE \"{simple}\" SET n = 10 WHERE id = 'upd' AND n = 3 RETURNING MODIFIED NEW *")
    assert out["Items"] == [{"n": {"N": "10"}}]
    assert run(ddb, f"UPDATE \"{simple}\" SET n = 11 WHERE id = 'upd'") == {"Items": []}


def test_update_conditions_fail_as_conditional_checks(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'ccf', 'n': 1}}")
    expect_error(ddb.execute_statement, "ConditionalCheckFailedException", "The conditional request failed",
                 Statement=f"UPDATE \"{simple}\" SET n = 2 WHERE id = 'never-written'")
    assert "Item" not in ddb.get_item(TableName=simple, Key={"id": {"S": "never-written"}})
    error = expect_error(ddb.execute_statement, "ConditionalCheckFailedException",
                         Statement=f"UPDATE \"{simple}\" SET n = 2 WHERE id = 'ccf' AND n = 5",
                         ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert error.response["Item"] == {"id": {"S": "ccf"}, "n": {"N": "1"}}
    expect_error(ddb.execute_statement, "ValidationException",
                 "Where clause does not contain a mandatory equality on all key attributes",
                 Statement=f"UPDATE \"{simple}\" SET n = 2 WHERE n = 1")


def test_set_add_messages_name_the_position(ddb, simple):
    statement = f"UPDATE \"{simple}\" SET t = set_add(ss, <<'x'>>) WHERE id = 'upd'"
    column = statement.index("set_add") + 1
    expect_error(ddb.execute_statement, "ValidationException",
                 f"The first argument to SET_ADD must equal the assignment value at 1:{column}:7", Statement=statement)


def test_delete_returning_and_missing_items(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'del', 'a': 'x'}}")
    out = run(ddb, f"DELETE FROM \"{simple}\" WHERE id = 'del' RETURNING ALL OLD *")
    assert out["Items"] == [{"id": {"S": "del"}, "a": {"S": "x"}}]
    assert run(ddb, f"DELETE FROM \"{simple}\" WHERE id = 'del'") == {"Items": []}
    expect_error(ddb.execute_statement, "ValidationException",
                 "Invalid returning clause: RETURNING ALL NEW *. Only RETURNING ALL OLD * is allowed in DELETE "
                 "statements.", Statement=f"DELETE FROM \"{simple}\" WHERE id = 'del' RETURNING ALL NEW *")


@pytest.mark.parametrize("statement, message", [
    ("SELECT * FROM \"{t}\" WHERE", NOT_WELL_FORMED + "Unexpected term"),
    ("SELECT * FROM \"{t}\" WHERE id = 'a' foo", NOT_WELL_FORMED + "Unexpected token after expression"),
    ("SELECT * FROM \"{t}\" WHERE id = 'a' # note", NOT_WELL_FORMED),
    ("SELECT * FROM \"{t}\" t WHERE id = 'a'", "Aliasing is not supported"),
    ("GRANT ALL", NOT_WELL_FORMED + "Expected data manipulation"),
    ("SELECT * FROM \"{t}\" WHERE id = 1e126", "Number overflow. Attempting to store a number with magnitude larger "
                                               "than supported range under root"),
    ("EXISTS(SELECT * FROM \"{t}\" WHERE id = 'a' AND b = 1)",
     "EXISTS can only be used in ExecuteTransaction write requests."),
    ("SELECT * FROM \"{t}\" WHERE id = ?", "Number of parameters in request and statement don't match."),
])
def test_refused_statements(ddb, simple, statement, message):
    expect_error(ddb.execute_statement, "ValidationException", message, Statement=statement.format(t=simple))


def test_missing_table(ddb):
    expect_error(ddb.execute_statement, "ResourceNotFoundException",
                 Statement=f"SELECT * FROM \"{unique_name('absent')}\"")


def test_consumed_capacity(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'cap'}}")
    out = run(ddb, f"SELECT * FROM \"{simple}\" WHERE id = 'cap'", ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": simple, "CapacityUnits": 0.5}
    out = run(ddb, f"UPDATE \"{simple}\" SET a = 1 WHERE id = 'cap'", ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": simple, "CapacityUnits": 1.0}


def test_index_select(ddb, indexed):
    name = indexed
    for n in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"p{n}"}, "sk": {"S": "s"}, "g": {"S": "shared"},
                                           "other": {"N": str(n)}, "hidden": {"S": "h"}})
    items, _ = select_all(ddb, f"SELECT pk, other FROM \"{name}\".\"by-g\" WHERE g = 'shared'", Limit=2)
    assert sorted(i["pk"]["S"] for i in items) == ["p0", "p1", "p2"]
    items, _ = select_all(ddb, f"SELECT * FROM \"{name}\".\"by-g\" WHERE other >= 1")
    assert sorted(i["pk"]["S"] for i in items) == ["p1", "p2"] and all("hidden" not in i for i in items)
    expect_error(ddb.execute_statement, "ValidationException",
                 "One or more parameter values were invalid: Global secondary index by-g does not project [hidden]",
                 Statement=f"SELECT hidden FROM \"{name}\".\"by-g\" WHERE g = 'shared'")
    expect_error(ddb.execute_statement, "ValidationException",
                 "Strongly consistent read is not supported on Global Secondary Indexes",
                 Statement=f"SELECT * FROM \"{name}\".\"by-g\" WHERE g = 'shared'", ConsistentRead=True)


@pytest.fixture
def indexed(ddb):
    """A table with a global index ``by-g`` on ``g`` that projects ``other``."""
    name = unique_name("pqi")
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["other"]}}])
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    ddb.delete_table(TableName=name)


def test_batch_execute_statement_reports_each_statement(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'b1', 'a': 1}}")
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'b1'"},
        {"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'b-none'"},
        {"Statement": f"SELECT * FROM \"{simple}\" WHERE a = 1"},
        {"Statement": "SELEC nothing"},
        {"Statement": f"SELECT * FROM \"{unique_name('absent')}\" WHERE id = 'x'"},
    ], ReturnConsumedCapacity="TOTAL")
    responses = out["Responses"]
    assert responses[0] == {"TableName": simple, "Item": {"id": {"S": "b1"}, "a": {"N": "1"}}}
    assert responses[1] == {"TableName": simple}
    assert responses[2] == {"Error": {"Code": "ValidationError", "Message": "Select statements within "
                                      "BatchExecuteStatement must specify the primary key in the where clause."}}
    assert responses[3] == {"Error": {"Code": "ValidationError",
                                      "Message": NOT_WELL_FORMED + "Expected data manipulation"}}
    assert responses[4]["Error"]["Code"] == "ResourceNotFound"
    assert out["ConsumedCapacity"] == [{"TableName": simple, "CapacityUnits": 1.0}]


def test_batch_execute_statement_writes(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'bw-old'}}")
    out = ddb.batch_execute_statement(Statements=[
        {"Statement": f"INSERT INTO \"{simple}\" VALUE {{'id': 'bw-new'}}"},
        {"Statement": f"INSERT INTO \"{simple}\" VALUE {{'id': 'bw-old'}}"},
        {"Statement": f"UPDATE \"{simple}\" SET a = ? WHERE id = ?", "Parameters": [{"N": "1"}, {"S": "bw-missing"}]},
        {"Statement": f"DELETE FROM \"{simple}\" WHERE id = 'bw-old2'"},
    ])
    responses = out["Responses"]
    assert responses[0] == {"TableName": simple}
    assert responses[1] == {"Error": {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}}
    assert responses[2] == {"Error": {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}}
    assert responses[3] == {"TableName": simple}
    assert "Item" in ddb.get_item(TableName=simple, Key={"id": {"S": "bw-new"}})


def test_batch_execute_statement_refuses_mixes_and_duplicates(ddb, simple):
    expect_error(ddb.batch_execute_statement, "ValidationException",
                 "Read and write requests together in the same batch is not supported.", Statements=[
                     {"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'x'"},
                     {"Statement": f"DELETE FROM \"{simple}\" WHERE id = 'y'"}])
    expect_error(ddb.batch_execute_statement, "ValidationException",
                 "Provided list of item keys contains duplicates", Statements=[
                     {"Statement": f"DELETE FROM \"{simple}\" WHERE id = 'x'"},
                     {"Statement": f"UPDATE \"{simple}\" SET a = 1 WHERE id = 'x'"}])


def test_execute_transaction_writes_and_reads(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'tx-a', 'n': 1}}")
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'tx-del'}}")
    out = ddb.execute_transaction(TransactStatements=[
        {"Statement": f"INSERT INTO \"{simple}\" VALUE {{'id': 'tx-new', 'n': 7}}"},
        {"Statement": f"UPDATE \"{simple}\" SET n = n + 1 WHERE id = 'tx-a'"},
        {"Statement": f"DELETE FROM \"{simple}\" WHERE id = ?", "Parameters": [{"S": "tx-del"}]},
        {"Statement": f"EXISTS(SELECT * FROM \"{simple}\" WHERE id = 'b1' AND a = 1)"},
    ], ClientRequestToken=unique_name("tok"))
    assert out["Responses"] == []
    out = ddb.execute_transaction(TransactStatements=[
        {"Statement": f"SELECT n FROM \"{simple}\" WHERE id = 'tx-a'"},
        {"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'tx-new'"},
        {"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'tx-del'"},
    ])
    assert out["Responses"] == [{"Item": {"n": {"N": "2"}}}, {"Item": {"id": {"S": "tx-new"}, "n": {"N": "7"}}}, {}]


def test_execute_transaction_cancellations_and_refusals(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'tx-dup'}}")
    error = expect_error(ddb.execute_transaction, "TransactionCanceledException", TransactStatements=[
        {"Statement": f"INSERT INTO \"{simple}\" VALUE {{'id': 'tx-dup'}}"},
        {"Statement": f"UPDATE \"{simple}\" SET n = 1 WHERE id = 'tx-other'"},
        {"Statement": f"INSERT INTO \"{simple}\" VALUE {{'id': 'tx-fresh'}}"},
    ])
    assert error.response["CancellationReasons"] == [
        {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
        {"Code": "None"},
    ]
    assert "Item" not in ddb.get_item(TableName=simple, Key={"id": {"S": "tx-fresh"}})
    expect_error(ddb.execute_transaction, "ValidationException",
                 "ExecuteTransaction API does not support both read and write operations in the same request.",
                 TransactStatements=[{"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'a'"},
                                     {"Statement": f"DELETE FROM \"{simple}\" WHERE id = 'b'"}])
    expect_error(ddb.execute_transaction, "ValidationException",
                 "Validation failed in TransactStatements[0]: RETURNING clause is not supported in "
                 "ExecuteTransaction.",
                 TransactStatements=[{"Statement": f"DELETE FROM \"{simple}\" WHERE id = 'b' RETURNING ALL OLD *"}])
    expect_error(ddb.execute_transaction, "ValidationException",
                 "Validation failed in TransactStatements[1]: Select statements within ExecuteTransaction must "
                 "specify the primary key in the where clause.",
                 TransactStatements=[{"Statement": f"SELECT * FROM \"{simple}\" WHERE id = 'a'"},
                                     {"Statement": f"SELECT * FROM \"{simple}\" WHERE n = 1"}])
    expect_error(ddb.execute_transaction, "ValidationException",
                 "Validation failed in TransactStatements[0]: EXISTS() must contain a single item read with "
                 "additional condition",
                 TransactStatements=[{"Statement": f"EXISTS(SELECT * FROM \"{simple}\" WHERE id = 'a')"},
                                     {"Statement": f"DELETE FROM \"{simple}\" WHERE id = 'b'"}])


def test_aws_cli_execute_statement(endpoint, simple):
    aws(endpoint, "execute-statement", "--statement", f"INSERT INTO \"{simple}\" VALUE {{'id': 'cli', 'n': 3}}")
    out = aws(endpoint, "execute-statement", "--statement", f"SELECT n FROM \"{simple}\" WHERE id = ?",
              "--parameters", '[{"S": "cli"}]')
    assert out["Items"] == [{"n": {"N": "3"}}]


def test_partiql_write_is_seen_by_the_json_api(ddb, simple):
    run(ddb, f"INSERT INTO \"{simple}\" VALUE {{'id': 'json', 'x': 'y'}}")
    try:
        got = ddb.get_item(TableName=simple, Key={"id": {"S": "json"}})["Item"]
    except ClientError as error:  # pragma: no cover - a failure here is the assertion below
        got = error.response
    assert got == {"id": {"S": "json"}, "x": {"S": "y"}}
