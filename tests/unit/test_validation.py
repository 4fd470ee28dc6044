"""Request shape validation: exact __type and message, in DynamoDB's order.

Expected texts come from live-DynamoDB recordings (mhart/dynalite's tests and
validation tables, later captures); see router/schema/generate.py for which.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model.errors import DynamoError
from meridian.router import validation, validation_constraints
from meridian.router.validation import VALIDATED_ACTIONS, validate_request

SERIALIZATION = "com.amazon.coral.service#SerializationException"
VALIDATION = "com.amazon.coral.validate#ValidationException"
PKG = "com.amazonaws.dynamodb.v20120810."
CAST = ("class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl cannot be cast to class java.lang.Class "
        "(sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl and java.lang.Class are in module java.base "
        "of loader 'bootstrap')")
START_OF_MAP = "Start of structure or map found where not expected"
TABLE_PATTERN = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
TABLE_NAME_KEYS = ("Map keys must satisfy constraint: [Member must have length less than or equal to 255, "
                   "Member must have length greater than or equal to 3, " + TABLE_PATTERN + "]")
NOT_NULL = "Member must not be null"
PARAM = "One or more parameter values were invalid: "
LONG_NAME = "a" * 256


def error(action: str, body: Any) -> DynamoError:
    with pytest.raises(DynamoError) as info:
        validate_request(action, body)
    return info.value


def failed(value: str | None, path: str, constraint: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"


def detected(*failures: str) -> str:
    n = len(failures)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(failures)


# --- step 1: SerializationException ----------------------------------------------

NON_OBJECT_BODIES = [
    ([], f"Unrecognized collection type class {PKG}GetItemInput"),
    ("GetItem", "Unexpected value type in payload"),
    (23, "Unexpected value type in payload"),
    (True, "Unexpected value type in payload"),
]


@pytest.mark.parametrize("body, message", NON_OBJECT_BODIES)
def test_body_must_be_an_object(body: Any, message: str) -> None:
    err = error("GetItem", body)
    assert (err.full_type, err.message) == (SERIALIZATION, message)


SERIALIZATION_CASES = [
    # string members
    ("GetItem", {"TableName": True}, "TRUE_VALUE cannot be converted to String"),
    ("GetItem", {"TableName": False}, "FALSE_VALUE cannot be converted to String"),
    ("GetItem", {"TableName": 23}, "NUMBER_VALUE cannot be converted to String"),
    ("GetItem", {"TableName": 2147483648}, "NUMBER_VALUE cannot be converted to String"),
    ("GetItem", {"TableName": 34.56}, "DECIMAL_VALUE cannot be converted to String"),
    ("GetItem", {"TableName": []}, "Unrecognized collection type class java.lang.String"),
    ("GetItem", {"TableName": {}}, START_OF_MAP),
    # boolean members
    ("GetItem", {"ConsistentRead": "23"}, "Unexpected token received from parser"),
    ("GetItem", {"ConsistentRead": 23}, "NUMBER_VALUE cannot be converted to Boolean"),
    ("GetItem", {"ConsistentRead": 34.56}, "DECIMAL_VALUE cannot be converted to Boolean"),
    ("GetItem", {"ConsistentRead": []}, "Unrecognized collection type class java.lang.Boolean"),
    ("GetItem", {"ConsistentRead": {}}, START_OF_MAP),
    # integer and long members
    ("Scan", {"Limit": "23"}, "STRING_VALUE cannot be converted to Integer"),
    ("Scan", {"Limit": True}, "TRUE_VALUE cannot be converted to Integer"),
    ("Scan", {"Limit": False}, "FALSE_VALUE cannot be converted to Integer"),
    ("Scan", {"Limit": []}, "Unrecognized collection type class java.lang.Integer"),
    ("Scan", {"Limit": {}}, START_OF_MAP),
    ("CreateTable", {"ProvisionedThroughput": {"ReadCapacityUnits": "23"}}, "STRING_VALUE cannot be converted to Long"),
    ("CreateTable", {"ProvisionedThroughput": {"WriteCapacityUnits": []}},
     "Unrecognized collection type class java.lang.Long"),
    # lists: as a structure's field, and inside a collection
    ("GetItem", {"AttributesToGet": "23"}, "Unexpected field type"),
    ("GetItem", {"AttributesToGet": 23}, "Unexpected field type"),
    ("GetItem", {"AttributesToGet": {}}, START_OF_MAP),
    ("GetItem", {"AttributesToGet": [1]}, "NUMBER_VALUE cannot be converted to String"),
    ("BatchWriteItem", {"RequestItems": {"abc": "23"}}, CAST),
    ("BatchWriteItem", {"RequestItems": {"abc": {}}}, START_OF_MAP),
    # maps: as a field, and inside a collection
    ("GetItem", {"Key": "23"}, "Unexpected field type"),
    ("GetItem", {"Key": []}, f"Unrecognized collection type java.util.Map<java.lang.String, {PKG}AttributeValue>"),
    ("GetItem", {"ExpressionAttributeNames": []},
     "Unrecognized collection type java.util.Map<java.lang.String, java.lang.String>"),
    ("GetItem", {"ExpressionAttributeNames": {"#a": 1}}, "NUMBER_VALUE cannot be converted to String"),
    ("PutItem", {"Expected": []},
     f"Unrecognized collection type java.util.Map<java.lang.String, {PKG}ExpectedAttributeValue>"),
    ("BatchWriteItem", {"RequestItems": []},
     f"Unrecognized collection type java.util.Map<java.lang.String, java.util.List<{PKG}WriteRequest>>"),
    ("BatchGetItem", {"RequestItems": {"abc": {"Keys": ["23"]}}}, CAST),
    ("BatchGetItem", {"RequestItems": {"abc": {"Keys": [[]]}}},
     f"Unrecognized collection type java.util.Map<java.lang.String, {PKG}AttributeValue>"),
    # structures: as a list element or map value, and as a field
    ("CreateTable", {"AttributeDefinitions": ["23"]}, "Unexpected value type in payload"),
    ("CreateTable", {"AttributeDefinitions": [[]]}, f"Unrecognized collection type class {PKG}AttributeDefinition"),
    ("BatchGetItem", {"RequestItems": {"abc": 23}}, "Unexpected value type in payload"),
    ("CreateTable", {"ProvisionedThroughput": "23"}, "Unexpected field type"),
    ("CreateTable", {"ProvisionedThroughput": []}, f"Unrecognized collection type class {PKG}ProvisionedThroughput"),
    ("CreateTable", {"LocalSecondaryIndexes": [{"Projection": 5}]}, "Unexpected field type"),
    ("UpdateTimeToLive", {"TimeToLiveSpecification": {"Enabled": "yes"}}, "Unexpected token received from parser"),
    # attribute values: only JSON types here
    ("GetItem", {"Key": {"a": "23"}}, "Unexpected value type in payload"),
    ("GetItem", {"Key": {"a": []}}, f"Unrecognized collection type class {PKG}AttributeValue"),
    ("GetItem", {"Key": {"a": {"S": 1}}}, "NUMBER_VALUE cannot be converted to String"),
    ("GetItem", {"Key": {"a": {"N": 1.5}}}, "DECIMAL_VALUE cannot be converted to String"),
    ("PutItem", {"Item": {"a": {"BOOL": "true"}}}, "Unexpected token received from parser"),
    ("PutItem", {"Item": {"a": {"NULL": 1}}}, "NUMBER_VALUE cannot be converted to Boolean"),
    ("PutItem", {"Item": {"a": {"SS": "23"}}}, "Unexpected field type"),
    ("PutItem", {"Item": {"a": {"NS": [1]}}}, "NUMBER_VALUE cannot be converted to String"),
    ("PutItem", {"Item": {"a": {"L": {}}}}, START_OF_MAP),
    ("PutItem", {"Item": {"a": {"L": ["23"]}}}, "Unexpected value type in payload"),
    ("PutItem", {"Item": {"a": {"M": "23"}}}, "Unexpected field type"),
    ("PutItem", {"Item": {"a": {"M": {"b": []}}}}, f"Unrecognized collection type class {PKG}AttributeValue"),
    ("PutItem", {"Item": {"a": {"M": {"b": {"L": [{"S": False}]}}}}}, "FALSE_VALUE cannot be converted to String"),
    ("PutItem", {"Expected": {"a": {"Value": 23}}}, "Unexpected field type"),
    ("PutItem", {"ExpressionAttributeValues": {":a": {"SS": [True]}}}, "TRUE_VALUE cannot be converted to String"),
    # blobs
    ("PutItem", {"Item": {"a": {"B": True}}}, "only base-64-encoded strings are convertible to bytes"),
    ("PutItem", {"Item": {"a": {"B": 23}}}, "only base-64-encoded strings are convertible to bytes"),
    ("PutItem", {"Item": {"a": {"B": []}}}, "Unrecognized collection type class java.nio.ByteBuffer"),
    ("PutItem", {"Item": {"a": {"B": {}}}}, START_OF_MAP),
    ("PutItem", {"Item": {"a": {"B": "23456"}}}, "Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
    ("PutItem", {"Item": {"a": {"B": "=+/="}}}, "Invalid last non-pad Base64 character dectected"),
    ("PutItem", {"Item": {"a": {"B": "+/+="}}}, "Invalid last non-pad Base64 character dectected"),
    ("PutItem", {"Item": {"a": {"BS": ["YQ==", "ab!="]}}}, "Invalid Base64 character: '!'"),
]


@pytest.mark.parametrize("action, body, message", SERIALIZATION_CASES)
def test_serialization_errors(action: str, body: dict[str, Any], message: str) -> None:
    err = error(action, body)
    assert (err.full_type, err.message) == (SERIALIZATION, message)


def test_first_type_error_in_document_order_wins() -> None:
    assert error("GetItem", {"Key": [], "TableName": 1}).message.startswith("Unrecognized collection type java.util.Map")
    assert error("GetItem", {"TableName": 1, "Key": []}).message == "NUMBER_VALUE cannot be converted to String"


def test_types_are_checked_before_constraints() -> None:
    err = error("GetItem", {"TableName": "a;", "ConsistentRead": 1})
    assert (err.full_type, err.message) == (SERIALIZATION, "NUMBER_VALUE cannot be converted to Boolean")


def test_nulls_and_unknown_members_are_ignored() -> None:
    validate_request("GetItem", {"TableName": "abc", "Key": {"a": {"S": "x", "Bogus": 1}}, "ConsistentRead": None,
                                 "NotAMember": [1, 2]})


# --- step 2: ValidationException ----------------------------------------------------

VALIDATION_CASES = [
    # missing members, in DynamoDB's member order
    ("GetItem", {}, detected(failed(None, "tableName", NOT_NULL), failed(None, "key", NOT_NULL))),
    ("PutItem", {}, detected(failed(None, "tableName", NOT_NULL), failed(None, "item", NOT_NULL))),
    ("BatchWriteItem", {}, detected(failed(None, "requestItems", NOT_NULL))),
    ("TransactWriteItems", {}, detected(failed(None, "transactItems", NOT_NULL))),
    # table names of item operations
    ("GetItem", {"TableName": "", "Key": {}},
     detected(failed("", "tableName", "Member must have length greater than or equal to 1"))),
    ("PutItem", {"TableName": "", "Item": {}},
     detected(failed("", "tableName", "Member must have length greater than or equal to 1"))),
    ("PutItem", {"TableName": "a;"},
     detected(failed("a;", "tableName", TABLE_PATTERN),
              failed("a;", "tableName", "Member must have length greater than or equal to 3"),
              failed(None, "item", NOT_NULL))),
    ("DeleteItem", {"TableName": LONG_NAME, "Key": {}},
     detected(failed(LONG_NAME, "tableName", "Member must have length less than or equal to 255"))),
    # table-management actions: required and length come first, alone
    ("CreateTable", {}, "The parameter 'TableName' is required but was not present in the request"),
    ("DescribeTable", {"TableName": None}, "The parameter 'TableName' is required but was not present in the request"),
    ("DeleteTable", {"TableName": "a;"}, "TableName must be at least 3 characters long and at most 255 characters long"),
    ("UpdateTimeToLive", {"TableName": LONG_NAME},
     "TableName must be at least 3 characters long and at most 255 characters long"),
    ("DescribeTimeToLive", {"TableName": "abc;"}, detected(failed("abc;", "tableName", TABLE_PATTERN))),
    ("CreateTable", {"TableName": "ab", "AttributeDefinitions": [], "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
                     "BillingMode": "PAY_PER_REQUEST"},
     detected(failed("ab", "tableName", "Member must have length greater than or equal to 3"))),
    ("Query", {"TableName": "abc", "Limit": 0},
     "1 validation error detected: Value at 'Limit' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
    ("Scan", {"TableName": "abc", "Limit": 0},
     "1 validation error detected: Value at 'Limit' failed to satisfy constraint: "
     "Member must have value greater than or equal to 1"),
    ("CreateTable", {"TableName": "abc;"},
     detected(failed(None, "attributeDefinitions", NOT_NULL), failed("abc;", "tableName", TABLE_PATTERN),
              failed(None, "keySchema", NOT_NULL))),
    # enums, printed in DynamoDB's order
    ("PutItem", {"TableName": "abc;", "ReturnConsumedCapacity": "hi", "ReturnItemCollectionMetrics": "hi",
                 "ReturnValues": "hi"},
     detected(failed("hi", "returnConsumedCapacity", "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"),
              failed("abc;", "tableName", TABLE_PATTERN),
              failed(None, "item", NOT_NULL),
              failed("hi", "returnValues",
                     "Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"),
              failed("hi", "returnItemCollectionMetrics", "Member must satisfy enum value set: [SIZE, NONE]"))),
    ("Query", {"TableName": "abc", "Select": "x", "ConditionalOperator": "x"},
     detected(failed("x", "select", "Member must satisfy enum value set: "
                                    "[SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"),
              failed("x", "conditionalOperator", "Member must satisfy enum value set: [OR, AND]"))),
    ("Scan", {"TableName": "abc", "ScanFilter": {"a": {"ComparisonOperator": "x"}}},
     detected(failed("x", "scanFilter.a.member.comparisonOperator",
                     "Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, "
                     "NE, LE, BEGINS_WITH, GE, CONTAINS]"))),
    ("CreateTable", {"TableName": "abc", "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "SS"}],
                     "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "BillingMode": "FREE",
                     "StreamSpecification": {"StreamEnabled": True, "StreamViewType": ""}},
     detected(failed("SS", "attributeDefinitions.1.member.attributeType", "Member must satisfy enum value set: [B, N, S]"),
              failed("FREE", "billingMode", "Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"),
              failed("", "streamSpecification.streamViewType",
                     "Member must satisfy enum value set: [OLD_IMAGE, KEYS_ONLY, NEW_AND_OLD_IMAGES, NEW_IMAGE]"))),
    # numbers (a fraction is read away, as DynamoDB does for integer members)
    ("ListTables", {"Limit": 2147483647, "ExclusiveStartTableName": "89hls;;f;d"},
     detected(failed("2147483647", "limit", "Member must have value less than or equal to 100"),
              failed("89hls;;f;d", "exclusiveStartTableName", TABLE_PATTERN))),
    ("ListTables", {"Limit": 0.5}, detected(failed("0", "limit", "Member must have value greater than or equal to 1"))),
    ("Scan", {"TableName": "abc", "Segment": -1, "TotalSegments": 1000001},
     detected(failed("-1", "segment", "Member must have value greater than or equal to 0"),
              failed("1000001", "totalSegments", "Member must have value less than or equal to 1000000"))),
    # list lengths and nested paths
    ("GetItem", {"TableName": "abc", "Key": {}, "AttributesToGet": []},
     detected(failed("[]", "attributesToGet", "Member must have length greater than or equal to 1"))),
    ("CreateTable", {"TableName": "abc", "AttributeDefinitions": [],
                     "KeySchema": [{"KeyType": "HASH"}, {"AttributeName": "a"}, {"KeyType": "Woop", "AttributeName": "a"}],
                     "ProvisionedThroughput": {"ReadCapacityUnits": -1, "WriteCapacityUnits": 0}},
     detected(failed("0", "provisionedThroughput.writeCapacityUnits",
                     "Member must have value greater than or equal to 1"),
              failed("-1", "provisionedThroughput.readCapacityUnits", "Member must have value greater than or equal to 1"),
              failed("[{KeyType=HASH}, {AttributeName=a}, {KeyType=Woop, AttributeName=a}]", "keySchema",
                     "Member must have length less than or equal to 2"),
              failed(None, "keySchema.1.member.attributeName", NOT_NULL),
              failed(None, "keySchema.2.member.keyType", NOT_NULL),
              failed("Woop", "keySchema.3.member.keyType", "Member must satisfy enum value set: [HASH, RANGE]"))),
    ("CreateTable", {"TableName": "abc", "AttributeDefinitions": [], "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
                     "LocalSecondaryIndexes": [{"IndexName": "h;", "KeySchema": [],
                                                "Projection": {"ProjectionType": "abc", "NonKeyAttributes": []}}]},
     detected(failed("h;", "localSecondaryIndexes.1.member.indexName", TABLE_PATTERN),
              failed("h;", "localSecondaryIndexes.1.member.indexName", "Member must have length greater than or equal to 3"),
              failed("[]", "localSecondaryIndexes.1.member.keySchema", "Member must have length greater than or equal to 1"),
              failed("abc", "localSecondaryIndexes.1.member.projection.projectionType",
                     "Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]"),
              failed("[]", "localSecondaryIndexes.1.member.projection.nonKeyAttributes",
                     "Member must have length greater than or equal to 1"))),
    ("UpdateTimeToLive", {"TableName": "abc", "TimeToLiveSpecification": {}},
     detected(failed(None, "timeToLiveSpecification.attributeName", NOT_NULL),
              failed(None, "timeToLiveSpecification.enabled", NOT_NULL))),
    ("UpdateTimeToLive", {"TableName": "abc", "TimeToLiveSpecification": {"AttributeName": "", "Enabled": True}},
     detected(failed("", "timeToLiveSpecification.attributeName", "Member must have length greater than or equal to 1"))),
    # maps: key and value constraints are reported on the map; entries last to first
    ("BatchGetItem", {"RequestItems": {}},
     detected(failed("{}", "requestItems", "Member must have length greater than or equal to 1"))),
    ("BatchGetItem", {"RequestItems": {"a": {}}, "ReturnConsumedCapacity": "hi"},
     detected(failed("hi", "returnConsumedCapacity", "Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"),
              failed("{a={}}", "requestItems", TABLE_NAME_KEYS),
              failed(None, "requestItems.a.member.keys", NOT_NULL))),
    ("BatchGetItem", {"RequestItems": {"abc": {}, "abd": {"Keys": []}}},
     detected(failed("[]", "requestItems.abd.member.keys", "Member must have length greater than or equal to 1"),
              failed(None, "requestItems.abc.member.keys", NOT_NULL))),
    ("BatchWriteItem", {"RequestItems": {"a": []}},
     detected(failed("{a=[]}", "requestItems", TABLE_NAME_KEYS),
              failed("{a=[]}", "requestItems", "Map value must satisfy constraint: [Member must have length less "
                                              "than or equal to 25, Member must have length greater than or equal to 1]"))),
    ("BatchWriteItem", {"RequestItems": {"aa;": [{"PutRequest": {}, "DeleteRequest": {}}]}},
     detected(failed("{aa;=[{PutRequest={}, DeleteRequest={}}]}", "requestItems", TABLE_NAME_KEYS),
              failed(None, "requestItems.aa;.member.1.member.deleteRequest.key", NOT_NULL),
              failed(None, "requestItems.aa;.member.1.member.putRequest.item", NOT_NULL))),
]


@pytest.mark.parametrize("action, body, message", VALIDATION_CASES)
def test_validation_errors(action: str, body: dict[str, Any], message: str) -> None:
    err = error(action, body)
    assert (err.full_type, err.message) == (VALIDATION, message)


def test_at_most_ten_errors_are_reported() -> None:
    body = {"TableName": "abc", "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "GlobalSecondaryIndexes": [{}] * 9}
    per_index = [("indexName", NOT_NULL), ("keySchema", NOT_NULL), ("projection", NOT_NULL)]
    expected = [failed(None, f"globalSecondaryIndexes.{i}.member.{m}", c) for i in range(1, 10) for m, c in per_index]
    err = error("CreateTable", body)
    assert (err.full_type, err.message) == (VALIDATION, detected(*expected[:10]))
    assert err.message.startswith("10 validation errors detected: ")


def test_string_lengths_count_utf16_units_as_java_does() -> None:
    name = "\U0001F600" * 128  # 128 code points, 256 UTF-16 units
    err = error("UpdateTimeToLive", {"TableName": "abc", "TimeToLiveSpecification": {"AttributeName": name, "Enabled": True}})
    assert err.message == detected(failed(name, "timeToLiveSpecification.attributeName",
                                          "Member must have length less than or equal to 255"))


# --- step 3: request-only rules -------------------------------------------------------

def table(**extra: Any) -> dict[str, Any]:
    body = {"TableName": "abc", "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


AB = [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}]
HASH_RANGE = [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}]


def lsi(name: str = "abc", keys: Any = None, projection: Any = None) -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": keys or HASH_RANGE, "Projection": projection or {"ProjectionType": "ALL"}}


def gsi(name: str = "abc", **extra: Any) -> dict[str, Any]:
    index = {"IndexName": name, "KeySchema": [{"AttributeName": "b", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}, "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}}
    index.update(extra)
    return {k: v for k, v in index.items() if v is not None}


CUSTOM_CASES = [
    ("CreateTable", table(BillingMode="PAY_PER_REQUEST"),
     PARAM + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"),
    ("CreateTable", table(ProvisionedThroughput=None),
     PARAM + "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"),
    ("CreateTable", table(ProvisionedThroughput={"ReadCapacityUnits": 1000000000001, "WriteCapacityUnits": 1000000000001}),
     "Given value 1000000000001 for ReadCapacityUnits is out of bounds"),
    ("CreateTable", table(ProvisionedThroughput={"ReadCapacityUnits": 1000000000000, "WriteCapacityUnits": 1000000000001}),
     "Given value 1000000000001 for WriteCapacityUnits is out of bounds"),
    ("CreateTable", table(AttributeDefinitions=[], KeySchema=[{"KeyType": "HASH", "AttributeName": "a"}] * 2),
     "Invalid KeySchema: Some index key attribute have no definition"),
    ("CreateTable", table(AttributeDefinitions=[{"AttributeName": "b", "AttributeType": "S"}]),
     PARAM + "Some index key attributes are not defined in AttributeDefinitions. Keys: [a], AttributeDefinitions: [b]"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=[{"KeyType": "HASH", "AttributeName": "a"}] * 2),
     "Both the Hash Key and the Range Key element in the KeySchema have the same name"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=[{"AttributeName": "a", "KeyType": "RANGE"},
                                                             {"AttributeName": "b", "KeyType": "HASH"}]),
     "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=[{"AttributeName": "a", "KeyType": "HASH"},
                                                             {"AttributeName": "b", "KeyType": "HASH"}]),
     "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type"),
    ("CreateTable", table(AttributeDefinitions=AB),
     PARAM + "Number of attributes in KeySchema does not exactly match number of attributes defined in "
             "AttributeDefinitions"),
    ("CreateTable", table(AttributeDefinitions=AB, LocalSecondaryIndexes=[]),
     PARAM + "List of LocalSecondaryIndexes is empty"),
    ("CreateTable", table(AttributeDefinitions=AB, LocalSecondaryIndexes=[lsi()]),
     PARAM + "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE,
                          LocalSecondaryIndexes=[lsi(keys=[{"AttributeName": "c", "KeyType": "RANGE"}])]),
     PARAM + "Some index key attributes are not defined in AttributeDefinitions. Keys: [c], AttributeDefinitions: [a, b]"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE,
                          LocalSecondaryIndexes=[lsi(keys=[{"AttributeName": "b", "KeyType": "HASH"}])]),
     PARAM + "Index KeySchema does not have a range key for index: abc"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE,
                          LocalSecondaryIndexes=[lsi(keys=[{"AttributeName": "b", "KeyType": "HASH"},
                                                           {"AttributeName": "a", "KeyType": "RANGE"}])]),
     PARAM + "Index KeySchema does not have the same leading hash key as table KeySchema for index: abc. "
             "index hash key: b, table hash key: a"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE, LocalSecondaryIndexes=[lsi(projection={"NonKeyAttributes": ["c"]})]),
     PARAM + "Unknown ProjectionType: null"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE,
                          LocalSecondaryIndexes=[lsi(projection={"ProjectionType": "KEYS_ONLY", "NonKeyAttributes": ["c"]})]),
     PARAM + "ProjectionType is KEYS_ONLY, but NonKeyAttributes is specified"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE, LocalSecondaryIndexes=[lsi(), lsi()]),
     PARAM + "Duplicate index name: abc"),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE, LocalSecondaryIndexes=[lsi(f"ab{i}") for i in range(6)]),
     PARAM + "Number of LocalSecondaryIndexes exceeds per-table limit of 5"),
    ("CreateTable", table(AttributeDefinitions=AB, GlobalSecondaryIndexes=[]),
     PARAM + "List of GlobalSecondaryIndexes is empty"),
    ("CreateTable", table(AttributeDefinitions=AB, BillingMode="PAY_PER_REQUEST", ProvisionedThroughput=None,
                          GlobalSecondaryIndexes=[gsi()]),
     PARAM + "ProvisionedThroughput should not be specified for index: abc when BillingMode is PAY_PER_REQUEST"),
    ("CreateTable", table(AttributeDefinitions=AB, GlobalSecondaryIndexes=[gsi(ProvisionedThroughput=None)]),
     PARAM + "ProvisionedThroughput is not specified for index: abc"),
    ("CreateTable", table(AttributeDefinitions=AB, GlobalSecondaryIndexes=[gsi(Projection={"ProjectionType": "INCLUDE"})]),
     PARAM + "ProjectionType is INCLUDE, but NonKeyAttributes is not specified"),
    ("CreateTable", table(AttributeDefinitions=AB, GlobalSecondaryIndexes=[gsi(f"ab{i}") for i in range(21)]),
     PARAM + "GlobalSecondaryIndex count exceeds the per-table limit of 20"),
    ("CreateTable", table(AttributeDefinitions=AB + [{"AttributeName": "c", "AttributeType": "N"}],
                          GlobalSecondaryIndexes=[gsi()]),
     PARAM + "Some AttributeDefinitions are not used. AttributeDefinitions: [a, b, c], keys used: [a, b]"),
    ("CreateTable", table(Tags=[{"Value": "v"}]), "The Tag Key provided is invalid, Key: null"),
    ("UpdateTable", {"TableName": "abc", "GlobalSecondaryIndexUpdates": []},
     "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, "
     "SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, "
     "DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required"),
    ("UpdateTable", {"TableName": "abc", "MultiRegionConsistency": "STRONG"},
     "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, "
     "SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, "
     "DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required"),
    ("UpdateTable", {"TableName": "abc", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1000000000001}},
     "Given value 1000000000001 for WriteCapacityUnits is out of bounds"),
    ("UpdateTable", {"TableName": "abc", "GlobalSecondaryIndexUpdates": [{}]},
     PARAM + "One of GlobalSecondaryIndexUpdate.Update, GlobalSecondaryIndexUpdate.Create, "
             "GlobalSecondaryIndexUpdate.Delete must not be null"),
    ("UpdateTable", {"TableName": "abc", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "abc"}},
                                                                         {"Update": {"IndexName": "abc"}}]},
     PARAM + "Only one global secondary index update per index is allowed simultaneously. Index: abc"),
    ("UpdateTable", {"TableName": "abc", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "abc"},
                                                                          "Update": {"IndexName": "abc"}}]},
     PARAM + "Only one global secondary index action is allowed per GlobalSecondaryIndexUpdate object"),
    ("BatchWriteItem", {"RequestItems": {"abc": [{}]}},
     "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"),
    ("TagResource", {}, "Invalid TableArn"),
    ("TagResource", {"ResourceArn": "arn:aws:dynamodb:us-east-1:000000000000:table/abc", "Tags": []},
     "Atleast one Tag needs to be provided as Input."),
    ("TagResource", {"ResourceArn": "arn", "Tags": [{"Key": "k"}]}, "The Tag Value provided is invalid, Value: null"),
    ("UntagResource", {"TagKeys": ["k"]}, "Invalid TableArn"),
    ("UntagResource", {"ResourceArn": "arn", "TagKeys": []}, "Atleast one Tag Key needs to be provided as Input."),
    ("UntagResource", {"ResourceArn": "arn", "TagKeys": [""]}, "The Tag Key provided is invalid, Key: "),
    ("ListTagsOfResource", {}, "Invalid TableArn"),
]


@pytest.mark.parametrize("action, body, message", CUSTOM_CASES)
def test_request_only_rules(action: str, body: dict[str, Any], message: str) -> None:
    err = error(action, body)
    assert (err.full_type, err.message) == (VALIDATION, message)


def test_rules_run_only_after_constraints_pass() -> None:
    body = table(BillingMode="PAY_PER_REQUEST", KeySchema=[])  # both a constraint and a rule broken
    assert error("CreateTable", body).message == detected(
        failed("[]", "keySchema", "Member must have length greater than or equal to 1"))


# --- valid requests pass ------------------------------------------------------------

ITEM = {"pk": {"S": "a"}, "n": {"N": "1"}, "b": {"B": "aGVsbG8="}, "t": {"BOOL": True}, "z": {"NULL": True},
        "ss": {"SS": ["a"]}, "ns": {"NS": ["1"]}, "bs": {"BS": ["YQ==", ""]}, "m": {"M": {"x": {"L": [{"S": "y"}]}}}}
VALID = [
    ("GetItem", {"TableName": "abc", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True, "ProjectionExpression": "#a",
                 "ExpressionAttributeNames": {"#a": "a"}, "ReturnConsumedCapacity": "TOTAL"}),
    ("PutItem", {"TableName": "abc", "Item": ITEM, "ReturnValues": "ALL_OLD", "ConditionExpression": "a = :a",
                 "ExpressionAttributeValues": {":a": {"S": "x"}}, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
    ("UpdateItem", {"TableName": "abc", "Key": {"pk": {"S": "a"}}, "AttributeUpdates": {"x": {"Action": "PUT", "Value": {"N": "1"}}},
                    "Expected": {"x": {"ComparisonOperator": "NULL"}}}),
    ("DeleteItem", {"TableName": "abc", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_OLD"}),
    ("Query", {"TableName": "abc", "IndexName": "idx", "KeyConditionExpression": "pk = :p", "Limit": 10,
               "ExclusiveStartKey": {"pk": {"S": "a"}}, "ScanIndexForward": False, "Select": "COUNT"}),
    ("Scan", {"TableName": "abc", "Segment": 0, "TotalSegments": 4, "Limit": 1.0}),
    ("BatchGetItem", {"RequestItems": {"abc": {"Keys": [{"pk": {"S": "a"}}], "ConsistentRead": True}}}),
    ("BatchWriteItem", {"RequestItems": {"abc": [{"PutRequest": {"Item": ITEM}}, {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}}),
    ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "abc", "Key": {"pk": {"S": "a"}}}}]}),
    ("TransactWriteItems", {"TransactItems": [{"Put": {"TableName": "abc", "Item": ITEM}},
                                              {"ConditionCheck": {"TableName": "abc", "Key": {"pk": {"S": "a"}},
                                                                  "ConditionExpression": "attribute_exists(pk)"}}],
                            "ClientRequestToken": "t"}),
    ("CreateTable", table(AttributeDefinitions=AB, KeySchema=HASH_RANGE, LocalSecondaryIndexes=[lsi()],
                          GlobalSecondaryIndexes=[gsi("gsi")], StreamSpecification={"StreamEnabled": True,
                                                                               "StreamViewType": "NEW_IMAGE"},
                          Tags=[{"Key": "k", "Value": "v"}], TableClass="STANDARD", DeletionProtectionEnabled=True)),
    ("CreateTable", table(BillingMode="PAY_PER_REQUEST", ProvisionedThroughput=None)),
    ("UpdateTable", {"TableName": "abc", "BillingMode": "PAY_PER_REQUEST"}),
    ("UpdateTable", {"TableName": "abc", "ReplicaUpdates": [{"Create": {"RegionName": "eu-west-1"}}]}),
    ("DescribeTable", {"TableName": "abc"}),
    ("DeleteTable", {"TableName": "abc"}),
    ("ListTables", {}),
    ("ListTables", {"Limit": 100, "ExclusiveStartTableName": "abc"}),
    ("DescribeEndpoints", {}),
    ("DescribeLimits", {}),
    ("DescribeTimeToLive", {"TableName": "abc"}),
    ("UpdateTimeToLive", {"TableName": "abc", "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True}}),
    ("TagResource", {"ResourceArn": "arn", "Tags": [{"Key": "k", "Value": ""}]}),
    ("UntagResource", {"ResourceArn": "arn", "TagKeys": ["k"]}),
    ("ListTagsOfResource", {"ResourceArn": "arn", "NextToken": "x"}),
]


@pytest.mark.parametrize("action, body", VALID)
def test_valid_requests_pass(action: str, body: dict[str, Any]) -> None:
    validate_request(action, body)


def test_every_dynamodb_action_has_a_validator() -> None:
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("dynamodb", "service-2")
    assert VALIDATED_ACTIONS == set(model["operations"])


def test_streams_actions_are_not_checked_here() -> None:
    validate_request("GetRecords", [])


def test_schema_file_is_generated_from_current_overrides() -> None:
    script = pathlib.Path(__file__).resolve().parents[2] / "router" / "schema" / "generate.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the fast path and the error-collecting path agree ------------------------------

SCHEMA = validation._load_schema()


def full_errors(action: str, body: dict[str, Any]) -> list[str]:
    node = SCHEMA[action]
    errors: list[str] = []
    try:
        for name, child in node["members"]:
            check = validation_constraints.compile_constraints(child)
            if check is not None:
                check(body.get(name), validation_constraints.lower_first(name), errors)
    except validation_constraints.Enough:
        pass
    return errors


names = st.sampled_from(["", "a", "ab", "abc", "a;b", "x" * 256, None])
key_elements = st.fixed_dictionaries({}, optional={"AttributeName": names,
                                                   "KeyType": st.sampled_from(["HASH", "RANGE", "SORT", None])})
throughput = st.fixed_dictionaries({}, optional={"ReadCapacityUnits": st.integers(-2, 3),
                                                 "WriteCapacityUnits": st.integers(-2, 3)})
index = st.fixed_dictionaries({}, optional={"IndexName": names, "KeySchema": st.lists(key_elements, max_size=3),
                                            "Projection": st.fixed_dictionaries({}, optional={
                                                "ProjectionType": st.sampled_from(["ALL", "x", None]),
                                                "NonKeyAttributes": st.lists(names, max_size=2)}),
                                            "ProvisionedThroughput": throughput})
create_table = st.fixed_dictionaries({}, optional={
    "TableName": st.sampled_from(["abc", "abc;"]),
    "KeySchema": st.lists(key_elements, max_size=3),
    "AttributeDefinitions": st.lists(st.fixed_dictionaries({}, optional={
        "AttributeName": names, "AttributeType": st.sampled_from(["S", "SS", None])}), max_size=3),
    "ProvisionedThroughput": throughput,
    "BillingMode": st.sampled_from(["PROVISIONED", "x", None]),
    "GlobalSecondaryIndexes": st.lists(index, max_size=3),
    "LocalSecondaryIndexes": st.lists(index, max_size=2),
})
write_requests = st.lists(st.fixed_dictionaries({}, optional={
    "PutRequest": st.fixed_dictionaries({}, optional={"Item": st.just({"a": {"S": "x"}})}),
    "DeleteRequest": st.fixed_dictionaries({}, optional={"Key": st.just({"a": {"S": "x"}})})}), max_size=27)
batch_write_item = st.fixed_dictionaries({}, optional={
    "RequestItems": st.dictionaries(names.filter(lambda n: n is not None), write_requests, max_size=3),
    "ReturnConsumedCapacity": st.sampled_from(["TOTAL", "x"]),
})


@settings(max_examples=300, deadline=None)
@given(st.one_of(create_table.map(lambda b: ("CreateTable", b)), batch_write_item.map(lambda b: ("BatchWriteItem", b))))
def test_fast_check_agrees_with_full_check(case: tuple[str, dict[str, Any]]) -> None:
    action, body = case
    fast = validation_constraints.compile_fast(SCHEMA[action])
    assert fast is not None
    errors = full_errors(action, body)
    assert fast(body) == (not errors), errors


def test_integer_members_lose_their_fraction_as_in_dynamodb() -> None:
    body = {"Limit": 1.5, "ExclusiveStartTableName": "abc"}
    validate_request("ListTables", body)
    assert body == {"Limit": 1, "ExclusiveStartTableName": "abc"} and type(body["Limit"]) is int


def test_null_members_are_read_as_absent() -> None:
    body = {"TableName": "abc", "Key": {"a": {"S": "x", "N": None}}, "ConsistentRead": None,
            "ExpressionAttributeNames": {"#a": None}}
    validate_request("GetItem", body)
    # Members of structures (attribute values too) go; map values and list elements stay.
    assert body == {"TableName": "abc", "Key": {"a": {"S": "x"}}, "ExpressionAttributeNames": {"#a": None}}
    nested = {"TableName": "abc", "Item": {"a": {"L": [None, {"M": {"b": {"NULL": None, "BOOL": True}}}]}}}
    validate_request("PutItem", nested)
    assert nested["Item"] == {"a": {"L": [None, {"M": {"b": {"BOOL": True}}}]}}


# --- what the structured fuzzer found (issue 17) ------------------------------------
NULL_CONTAINER_VALUES = [
    ("BatchGetItem", {"RequestItems": {"abc": None}}, detected(failed(None, "requestItems.abc.member.keys", NOT_NULL))),
    ("Scan", {"TableName": "abc", "ScanFilter": {"a": None}},
     detected(failed(None, "scanFilter.a.member.comparisonOperator", NOT_NULL))),
    ("Query", {"TableName": "abc", "KeyConditions": {"a": None}},
     detected(failed(None, "keyConditions.a.member.comparisonOperator", NOT_NULL))),
    ("BatchWriteItem", {"RequestItems": {"abc": None}},
     detected(failed("{abc=[]}", "requestItems", "Map value must satisfy constraint: [Member must have length less "
                     "than or equal to 25, Member must have length greater than or equal to 1]"))),
]


@pytest.mark.parametrize("action,body,message", NULL_CONTAINER_VALUES)
def test_null_map_values_of_container_type_never_reach_the_action(action: str, body: dict[str, Any],
                                                                  message: str) -> None:
    err = error(action, body)
    assert (err.full_type, err.message) == (VALIDATION, message)


def test_null_map_values_read_as_empty_containers() -> None:
    body = {"TableName": "abc", "Key": {"a": {"S": "x"}}, "Expected": {"b": None},
            "ExpressionAttributeNames": {"#a": None}}
    validate_request("DeleteItem", body)
    # Structures (and lists) become empty ones, for the rules to word; string and attribute-value maps keep the null.
    assert body["Expected"] == {"b": {}} and body["ExpressionAttributeNames"] == {"#a": None}


def test_constraint_messages_render_values_nested_deeper_than_the_recursion_limit() -> None:
    deep: Any = {"S": "x"}
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [{"L": deep}]
    assert validation_constraints.render(deep).startswith("[{L=[{L=")
    assert validation_constraints.render({"a": [1, "x", None, True, {"b": 1.5}], "c": {}, "d": []}) == (
        "{a=[1, x, null, true, {b=1.5}], c={}, d=[]}")
    err = error("BatchWriteItem", {"RequestItems": {"L": deep}})
    assert err.full_type == VALIDATION


@pytest.mark.parametrize("action,body,shown,java", [
    ("Scan", {"TableName": "abc", "Limit": 2**31}, "2147483648", "int (-2147483648 - 2147483647)"),
    ("Scan", {"TableName": "abc", "Segment": -(2**31) - 1, "TotalSegments": 2}, "-2147483649",
     "int (-2147483648 - 2147483647)"),
    ("Query", {"TableName": "abc", "Limit": 1e300}, "1e+300", "int (-2147483648 - 2147483647)"),
    ("CreateTable", {"TableName": "abc", "ProvisionedThroughput": {"ReadCapacityUnits": 2**63, "WriteCapacityUnits": 1}},
     "9223372036854775808", "long (-9223372036854775808 - 9223372036854775807)"),
])
def test_integer_members_beyond_java_int_or_long(action: str, body: dict[str, Any], shown: str, java: str) -> None:
    err = error(action, body)
    assert (err.full_type, err.message) == (SERIALIZATION, f"Numeric value ({shown}) out of range of {java}")


def test_integer_members_at_java_bounds_pass_types() -> None:
    body = {"TableName": "abc", "Limit": 2**31 - 1, "Segment": 0, "TotalSegments": 1}
    validate_request("Scan", body)
    assert body["Limit"] == 2**31 - 1
