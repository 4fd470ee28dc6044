"""Validation wording and order as DynamoDB answers today (issue 17).

Raw requests, so each test sees exactly the ``__type`` and message the
server sends, in every mode of the compat ``endpoint`` fixture.
"""

from __future__ import annotations

from rawhttp import call

VAL = "com.amazon.coral.validate#ValidationException"


def _assert_validation(endpoint: str, action: str, body: dict, message: str) -> None:
    resp = call(endpoint, action, body)
    assert resp.status == 400
    assert resp.json() == {"__type": VAL, "message": message}


def test_create_table_short_name_is_a_constraint_failure(endpoint):
    _assert_validation(endpoint, "CreateTable", {
        "TableName": "ab", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }, "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
       "Member must have length greater than or equal to 3")


def test_create_table_bad_pattern(endpoint):
    _assert_validation(endpoint, "CreateTable", {
        "TableName": "abc;", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }, "1 validation error detected: Value 'abc;' at 'tableName' failed to satisfy constraint: "
       "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")


def test_put_item_empty_table_name_is_one_error(endpoint):
    _assert_validation(endpoint, "PutItem", {"TableName": "", "Item": {"id": {"S": "x"}}},
                       "1 validation error detected: Value '' at 'tableName' failed to satisfy constraint: "
                       "Member must have length greater than or equal to 1")


def test_batch_get_item_empty_request_items(endpoint):
    _assert_validation(endpoint, "BatchGetItem", {"RequestItems": {}},
                       "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: "
                       "Member must have length greater than or equal to 1")


def test_batch_write_item_empty_request_items(endpoint):
    _assert_validation(endpoint, "BatchWriteItem", {"RequestItems": {}},
                       "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: "
                       "Member must have length greater than or equal to 1")


def test_batch_get_item_more_than_100_keys_across_tables(endpoint):
    keys = [{"id": {"S": str(i)}} for i in range(100)]
    _assert_validation(endpoint, "BatchGetItem",
                       {"RequestItems": {"abc": {"Keys": keys}, "abd": {"Keys": [{"id": {"S": "100"}}]}}},
                       "Too many items requested for the BatchGetItem call")


def test_query_limit_zero(endpoint):
    _assert_validation(endpoint, "Query", {"TableName": "abc", "Limit": 0, "KeyConditionExpression": "id = :v",
                                           "ExpressionAttributeValues": {":v": {"S": "x"}}},
                       "1 validation error detected: Value at 'Limit' failed to satisfy constraint: "
                       "Member must have value greater than or equal to 1")


def test_scan_limit_zero(endpoint):
    _assert_validation(endpoint, "Scan", {"TableName": "abc", "Limit": 0},
                       "1 validation error detected: Value at 'Limit' failed to satisfy constraint: "
                       "Member must have value greater than or equal to 1")
