"""Generate ``dynamodb.json`` and ``dynamodbstreams.json``: the shape of every
DynamoDB (and DynamoDB Streams) request, as DynamoDB checks it.

Run it as a script whenever botocore's model or the overrides below change
(``--check`` only reports whether the committed files are current)::

    python router/schema/generate.py [--check]

The starting point is botocore's DynamoDB (and DynamoDB Streams) service
model (member names, types, required members, lengths, ranges, enums,
patterns).  botocore describes what
a client may send; DynamoDB's own validator differs in ways recorded by
mhart/dynalite, whose per-action validation tables were written against live
DynamoDB, and by later captures of live replies.  Every such difference is
one entry in the override tables below, with the reason beside it.

Output format (read by ``router/validation.py``)::

    {"operations": {"GetItem": <node>, ...}}
    node := {"type": "structure", "class": "GetItemInput", "members": [[name, node], ...]}
          | {"type": "list", "member": node}      | {"type": "map", "value": node}
          | {"type": "attribute_value"}           (an AttributeValue: type-checked only)
          | {"type": "string" | "boolean" | "integer" | "long" | "double" | "blob" | "timestamp"}
    every node may carry "checks": [[kind, *args], ...] in the order DynamoDB reports them:
          required | tableName | notNull | pattern <java> [<python>] | minLength n | maxLength n
          | min n | max n | enum [values] | keys [checks] | values [checks]

Structure members are listed in the order DynamoDB validates them.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import botocore
import botocore.loaders

from meridian.model import limits

OUT_PATH = pathlib.Path(__file__).with_name("dynamodb.json")
STREAMS_OUT_PATH = pathlib.Path(__file__).with_name("dynamodbstreams.json")

TABLE_NAME_PATTERN = "[a-zA-Z0-9_.-]+"
TABLE_NAME_LENGTH_MIN = limits.TABLE_NAME_LENGTH_MIN
TABLE_NAME_LENGTH_MAX = limits.TABLE_NAME_LENGTH_MAX

# --- overrides: the order DynamoDB validates structure members in ------------
# From dynalite's validations/<action>.js type tables (key order is the order
# live DynamoDB listed its errors in).  Keyed by botocore structure shape name;
# members botocore has and dynalite does not (newer API members) follow, in
# botocore's order.
MEMBER_ORDER: dict[str, list[str]] = {
    "GetItemInput": ["ReturnConsumedCapacity", "AttributesToGet", "TableName", "Key", "ConsistentRead",
                     "ProjectionExpression", "ExpressionAttributeNames"],
    "PutItemInput": ["ReturnConsumedCapacity", "TableName", "Item", "ConditionalOperator", "Expected", "ReturnValues",
                     "ReturnItemCollectionMetrics", "ConditionExpression", "ExpressionAttributeValues",
                     "ExpressionAttributeNames"],
    "DeleteItemInput": ["ReturnConsumedCapacity", "TableName", "ReturnValues", "ReturnItemCollectionMetrics", "Key",
                        "ConditionalOperator", "Expected", "ConditionExpression", "ExpressionAttributeValues",
                        "ExpressionAttributeNames"],
    "UpdateItemInput": ["ReturnConsumedCapacity", "TableName", "ReturnItemCollectionMetrics", "ReturnValues", "Key",
                        "ConditionalOperator", "Expected", "AttributeUpdates", "ConditionExpression",
                        "UpdateExpression", "ExpressionAttributeValues", "ExpressionAttributeNames"],
    "QueryInput": ["Limit", "ExclusiveStartKey", "ReturnConsumedCapacity", "AttributesToGet", "QueryFilter", "Select",
                   "ConditionalOperator", "KeyConditions", "TableName", "ConsistentRead", "IndexName",
                   "ScanIndexForward", "KeyConditionExpression", "FilterExpression", "ProjectionExpression",
                   "ExpressionAttributeValues", "ExpressionAttributeNames"],
    "ScanInput": ["Limit", "ReturnConsumedCapacity", "AttributesToGet", "Segment", "Select", "ScanFilter",
                  "ConditionalOperator", "TotalSegments", "TableName", "ExclusiveStartKey", "IndexName",
                  "FilterExpression", "ProjectionExpression", "ExpressionAttributeValues", "ExpressionAttributeNames"],
    "BatchGetItemInput": ["ReturnConsumedCapacity", "RequestItems"],
    "BatchWriteItemInput": ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics", "RequestItems"],
    "TransactWriteItemsInput": ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics", "ClientRequestToken",
                                "TransactItems"],
    "CreateTableInput": ["AttributeDefinitions", "TableName", "BillingMode", "ProvisionedThroughput", "KeySchema",
                         "LocalSecondaryIndexes", "GlobalSecondaryIndexes", "StreamSpecification"],
    "UpdateTableInput": ["TableName", "ProvisionedThroughput", "BillingMode", "GlobalSecondaryIndexUpdates",
                         "StreamSpecification"],
    "ListTablesInput": ["Limit", "ExclusiveStartTableName"],
    "UpdateTimeToLiveInput": ["TableName", "TimeToLiveSpecification"],
    "KeysAndAttributes": ["Keys", "AttributesToGet", "ConsistentRead", "ProjectionExpression",
                          "ExpressionAttributeNames"],
    "WriteRequest": ["DeleteRequest", "PutRequest"],
    "ExpectedAttributeValue": ["AttributeValueList", "ComparisonOperator", "Exists", "Value"],
    "Condition": ["AttributeValueList", "ComparisonOperator"],
    "AttributeValueUpdate": ["Action", "Value"],
    "AttributeDefinition": ["AttributeName", "AttributeType"],
    "KeySchemaElement": ["AttributeName", "KeyType"],
    "ProvisionedThroughput": ["WriteCapacityUnits", "ReadCapacityUnits"],
    "Projection": ["ProjectionType", "NonKeyAttributes"],
    "LocalSecondaryIndex": ["IndexName", "KeySchema", "Projection"],
    "GlobalSecondaryIndex": ["IndexName", "KeySchema", "Projection", "ProvisionedThroughput"],
    "GlobalSecondaryIndexUpdate": ["Update", "Create", "Delete"],
    "CreateGlobalSecondaryIndexAction": ["Projection", "IndexName", "ProvisionedThroughput", "KeySchema"],
    "UpdateGlobalSecondaryIndexAction": ["IndexName", "ProvisionedThroughput"],
    "StreamSpecification": ["StreamEnabled", "StreamViewType"],
    # A 2026 capture of live UpdateTimeToLive replies lists attributeName before enabled.
    "TimeToLiveSpecification": ["AttributeName", "Enabled"],
    "Tag": ["Key", "Value"],
}

# --- overrides: enum order in "Member must satisfy enum value set: [...]" ----
# DynamoDB prints enum sets in its own (not alphabetical, not botocore's)
# order.  Keyed by botocore enum shape; each must be a permutation of
# botocore's values, which ``_enum`` asserts.
ENUM_ORDER: dict[str, list[str]] = {
    "ReturnValue": ["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"],
    "ComparisonOperator": ["IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT", "NOT_NULL", "NE", "LE",
                           "BEGINS_WITH", "GE", "CONTAINS"],
    "ConditionalOperator": ["OR", "AND"],
    "Select": ["SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"],
    "ScalarAttributeType": ["B", "N", "S"],
    "ProjectionType": ["ALL", "INCLUDE", "KEYS_ONLY"],
    # dynalite lists KEYS_ONLY, NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES; live
    # CreateTable/UpdateTable replies captured in 2026 print this order.
    "StreamViewType": ["OLD_IMAGE", "KEYS_ONLY", "NEW_AND_OLD_IMAGES", "NEW_IMAGE"],
}

# --- overrides: checks of a shape wherever it appears -------------------------
# Replace botocore's constraints on the shape (notNull still follows the
# parent's required list).  Map entries may carry "keys"/"values" checks.
_TABLE_NAME_KEY_CHECKS = [["maxLength", TABLE_NAME_LENGTH_MAX], ["minLength", TABLE_NAME_LENGTH_MIN],
                          ["pattern", TABLE_NAME_PATTERN]]
SHAPE_CHECKS: dict[str, list[list[Any]]] = {
    # Attribute-name lengths are item limits, checked with the item, never
    # reported by the shape validator (dynalite has no such constraint).
    "AttributeName": [],
    # dynalite: AttributesToGet holds 1..255 names (botocore has no maximum).
    "AttributeNameList": [["minLength", 1], ["maxLength", 255]],
    # Table and local index key schemas hold at most two elements (dynalite;
    # botocore dropped the maximum for multi-attribute GSI keys: a global
    # index's is bounded by CreateTable's and UpdateTable's own rules, see
    # _GSI_KEY_SCHEMA_CHECKS).
    "KeySchema": [["minLength", 1], ["maxLength", 2]],
    # Batch request maps: table names are checked as map keys, in this order,
    # and the number of tables is not limited by the shape (dynalite).
    "BatchGetRequestMap": [["minLength", 1], ["keys", _TABLE_NAME_KEY_CHECKS]],
    "BatchWriteItemRequestMap": [["minLength", 1], ["keys", _TABLE_NAME_KEY_CHECKS],
                                 ["values", [["maxLength", 25], ["minLength", 1]]]],
    # Tag keys and values are checked by TagResource's own code ("The Tag Key
    # provided is invalid, Key: ..."), not by the shape validator (2026 capture).
    "TagKeyString": [],
    "TagValueString": [],
}

# --- overrides: members whose null-ness DynamoDB does (not) report ------------
# Keyed by path: "Op.Member", "[]" for a list element, "{}" for a map value.
REQUIRED: dict[str, bool] = {
    # dynalite: CreateTable reports null AttributeDefinitions and KeySchema.
    "CreateTable.AttributeDefinitions": True,
    "CreateTable.KeySchema": True,
    # StreamSpecification.StreamEnabled is reported null like botocore's other
    # required members ("Value null at 'streamSpecification.streamEnabled'"):
    # live CreateTable and UpdateTable replies of 2026 (parity catalog
    # DDB-TABLE-035, DDB-TABLE-437); dynalite let it be omitted.
    # Live DynamoDB answers {} with "Invalid TableArn" (dynalite tests), and
    # Tags=[{}] with "The Tag Key provided is invalid, Key: null" (2026 capture):
    # these members are checked by the actions' own code.
    "TagResource.ResourceArn": False,
    "TagResource.Tags": False,
    "TagResource.Tags[].Key": False,
    "TagResource.Tags[].Value": False,
    "CreateTable.Tags[].Key": False,
    "CreateTable.Tags[].Value": False,
    "UntagResource.ResourceArn": False,
    "UntagResource.TagKeys": False,
    "ListTagsOfResource.ResourceArn": False,
}

# --- overrides: checks at one path --------------------------------------------
# A global index's key schema may hold up to four HASH and four RANGE elements
# (multi-attribute keys, 2025): no maximum length here, the count is one of the
# actions' rules ("The KeySchema exceeds the maximum allowed number of HASH key
# attributes", router/validation_key_schema.py).
_GSI_KEY_SCHEMA_CHECKS: list[list[Any]] = [["minLength", 1]]
PATH_CHECKS: dict[str, list[list[Any]]] = {
    "CreateTable.GlobalSecondaryIndexes[].KeySchema": _GSI_KEY_SCHEMA_CHECKS,
    "UpdateTable.GlobalSecondaryIndexUpdates[].Create.KeySchema": _GSI_KEY_SCHEMA_CHECKS,
    "RestoreTableFromBackup.GlobalSecondaryIndexOverride[].KeySchema": _GSI_KEY_SCHEMA_CHECKS,
    "RestoreTableToPointInTime.GlobalSecondaryIndexOverride[].KeySchema": _GSI_KEY_SCHEMA_CHECKS,
    "ImportTable.TableCreationParameters.GlobalSecondaryIndexes[].KeySchema": _GSI_KEY_SCHEMA_CHECKS,
    # dynalite: an index key schema's KeyType is only checked for null; the
    # HASH/RANGE rules are reported by CreateTable's own checks.
    "CreateTable.LocalSecondaryIndexes[].KeySchema[].KeyType": [],
    "CreateTable.GlobalSecondaryIndexes[].KeySchema[].KeyType": [],
    "UpdateTable.GlobalSecondaryIndexUpdates[].Create.KeySchema[].KeyType": [],
}

# --- overrides: DynamoDB Streams (botocore's "dynamodbstreams" model) ----------
# The same tables, for the Streams API.  botocore gives every Limit only its
# minimum (PositiveIntegerObject); DynamoDB Streams' API reference gives the
# maxima, and live DynamoDB refuses a larger Limit with a ValidationException
# (ScyllaDB Alternator's test_streams.py, run against AWS).
STREAMS_PATH_CHECKS: dict[str, list[list[Any]]] = {
    "ListStreams.Limit": [["min", 1], ["max", limits.STREAM_LIST_STREAMS_LIMIT_MAX]],
    "DescribeStream.Limit": [["min", 1], ["max", limits.STREAM_DESCRIBE_SHARDS_LIMIT_MAX]],
    "GetRecords.Limit": [["min", 1], ["max", limits.STREAM_GET_RECORDS_LIMIT_MAX]],
}
STREAMS_REQUIRED: dict[str, bool] = {}

# Actions whose TableName gets dynalite's table-management treatment: a missing
# name is "The parameter 'TableName' is required but was not present in the
# request", a bad length "TableName must be at least 3 characters long and at
# most 255 characters long", both before any other check; the pattern is then
# reported with the other constraints.
TABLE_MANAGEMENT_ACTIONS = {"CreateTable", "UpdateTable", "DeleteTable", "DescribeTable", "DescribeTimeToLive",
                            "UpdateTimeToLive"}

# Java regular expressions in botocore's model, rewritten for Python's ``re``.
JAVA_TO_PYTHON_PATTERN = {
    "\\p{Print}+": "[\\x20-\\x7e]+",
    "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*":
        "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\U00010000-\\U0010FFFF\\r\\n\\t]*",
}

_SCALAR_TYPES = {"string", "boolean", "integer", "long", "double", "blob", "timestamp"}


class _Generator:
    def __init__(
        self, model: dict[str, Any], required: dict[str, bool], path_checks: dict[str, list[list[Any]]]
    ) -> None:
        self.shapes = model["shapes"]
        self.required = required
        self.path_checks = path_checks
        self.used_paths: set[str] = set()

    def operation(self, name: str, input_shape: str | None) -> dict[str, Any]:
        if input_shape is None:
            return {"type": "structure", "class": f"{name}Input", "members": []}
        return self.node(input_shape, name, name, required=False, stack=())

    def node(self, shape_name: str, path: str, action: str, required: bool, stack: tuple[str, ...]) -> dict[str, Any]:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        out: dict[str, Any]
        if shape_name == "AttributeValue":
            out = {"type": "attribute_value"}
        elif kind == "structure":
            if shape_name in stack:
                raise ValueError(f"recursive shape {shape_name} at {path}")
            out = {"type": "structure", "class": shape_name, "members": self.members(shape_name, path, action, stack)}
        elif kind == "list":
            out = {"type": "list", "member": self.node(shape["member"]["shape"], path + "[]", action, False, stack)}
        elif kind == "map":
            value = self.node(shape["value"]["shape"], path + "{}", action, False, stack)
            out = {"type": "map", "value": value}
        elif kind in _SCALAR_TYPES:
            out = {"type": kind}
        else:
            raise ValueError(f"unknown shape type {kind} at {path}")

        checks: list[list[Any]] = []
        if path in self.required:
            self.used_paths.add(path)
            required = self.required[path]
        member_name = path.rsplit(".", 1)[-1]
        is_table_name = member_name == "TableName" and shape_name in ("TableArn", "TableName")
        if is_table_name and path == f"{action}.TableName" and action in TABLE_MANAGEMENT_ACTIONS:
            checks += [["required"], ["tableName"], ["pattern", TABLE_NAME_PATTERN]]
        else:
            if required:
                checks.append(["notNull"])
            if path in self.path_checks:
                self.used_paths.add(path)
                checks += self.path_checks[path]
            elif is_table_name:
                # Item operations accept 1..1024 characters in botocore (table
                # ARNs); DynamoDB reports table names by the name rules.
                checks += [["pattern", TABLE_NAME_PATTERN], ["minLength", TABLE_NAME_LENGTH_MIN],
                           ["maxLength", TABLE_NAME_LENGTH_MAX]]
            else:
                checks += self.shape_checks(shape_name, shape, out)
        if any(c[0] == "values" for c in checks):
            # DynamoDB reports a map value's length constraints on the map
            # ("Map value must satisfy constraint: [...]"), not on the value.
            _drop_checks(out["value"], ("maxLength", "minLength", "pattern"))
        if checks:
            out["checks"] = [_python_pattern(c) for c in checks]
        return out

    def members(self, shape_name: str, path: str, action: str, stack: tuple[str, ...]) -> list[list[Any]]:
        shape = self.shapes[shape_name]
        names = list(shape["members"])
        order = MEMBER_ORDER.get(shape_name, [])
        unknown = [m for m in order if m not in names]
        if unknown:
            raise ValueError(f"MEMBER_ORDER[{shape_name}] names members botocore lacks: {unknown}")
        ordered = order + [m for m in names if m not in order]
        required = set(shape.get("required", ()))
        return [
            [m, self.node(shape["members"][m]["shape"], f"{path}.{m}", action, m in required, stack + (shape_name,))]
            for m in ordered
        ]

    def shape_checks(self, shape_name: str, shape: dict[str, Any], node: dict[str, Any]) -> list[list[Any]]:
        if shape_name in SHAPE_CHECKS:
            return [list(c) for c in SHAPE_CHECKS[shape_name]]
        kind = shape["type"]
        checks: list[list[Any]] = []
        if kind == "string":
            if "pattern" in shape:
                checks.append(["pattern", shape["pattern"]])
            checks += _lengths(shape)
            if "enum" in shape:
                checks.append(["enum", _enum(shape_name, shape["enum"])])
        elif kind == "list":
            checks += _lengths(shape)
        elif kind == "map":
            checks += _lengths(shape)
            key_checks = self.element_checks(shape["key"]["shape"])
            if key_checks:
                checks.append(["keys", key_checks])
            value_checks = self.element_checks(shape["value"]["shape"])
            if value_checks:
                checks.append(["values", value_checks])
        elif kind in ("integer", "long", "double"):
            if "min" in shape:
                checks.append(["min", shape["min"]])
            if "max" in shape:
                checks.append(["max", shape["max"]])
        return checks

    def element_checks(self, shape_name: str) -> list[list[Any]]:
        """Constraints of a map key or value shape, in DynamoDB's order for them."""
        if shape_name in SHAPE_CHECKS:
            return [list(c) for c in SHAPE_CHECKS[shape_name] if c[0] in ("maxLength", "minLength", "pattern")]
        shape = self.shapes[shape_name]
        if shape["type"] not in ("string", "list", "map"):
            return []
        checks = []
        if "max" in shape:
            checks.append(["maxLength", shape["max"]])
        if shape.get("min", 0) > 0:
            checks.append(["minLength", shape["min"]])
        if "pattern" in shape:
            checks.append(["pattern", shape["pattern"]])
        return checks


def _drop_checks(node: dict[str, Any], kinds: tuple[str, ...]) -> None:
    kept = [c for c in node.get("checks", ()) if c[0] not in kinds]
    if kept:
        node["checks"] = kept
    else:
        node.pop("checks", None)


def _lengths(shape: dict[str, Any]) -> list[list[Any]]:
    checks = []
    if shape.get("min", 0) > 0:
        checks.append(["minLength", shape["min"]])
    if "max" in shape:
        checks.append(["maxLength", shape["max"]])
    return checks


def _enum(shape_name: str, values: list[str]) -> list[str]:
    order = ENUM_ORDER.get(shape_name)
    if order is None:
        return list(values)
    if sorted(order) != sorted(values):
        raise ValueError(f"ENUM_ORDER[{shape_name}] {order} is not a permutation of botocore's {values}")
    return list(order)


def _python_pattern(check: list[Any]) -> list[Any]:
    """A Java pattern Python cannot compile carries its Python rewrite as a third element."""
    if check[0] == "pattern" and check[1] in JAVA_TO_PYTHON_PATTERN:
        return ["pattern", check[1], JAVA_TO_PYTHON_PATTERN[check[1]]]
    if check[0] in ("keys", "values"):
        return [check[0], [_python_pattern(c) for c in check[1]]]
    return check


def generate(service: str = "dynamodb") -> dict[str, Any]:
    """The schema of ``service``: ``dynamodb`` or ``dynamodbstreams``."""
    model = botocore.loaders.Loader().load_service_model(service, "service-2")
    if service == "dynamodb":
        gen = _Generator(model, REQUIRED, PATH_CHECKS)
    else:
        gen = _Generator(model, STREAMS_REQUIRED, STREAMS_PATH_CHECKS)
    operations = {}
    for name in sorted(model["operations"]):
        input_shape = model["operations"][name].get("input", {}).get("shape")
        operations[name] = gen.operation(name, input_shape)
    unused = (set(gen.required) | set(gen.path_checks)) - gen.used_paths
    if unused:
        raise ValueError(f"overrides name paths that do not exist: {sorted(unused)}")
    return {
        "source": f"botocore {botocore.__version__} {service} {model['metadata']['apiVersion']}, "
                  "with DynamoDB's observed behaviour (router/schema/generate.py)",
        "operations": operations,
    }


def main(argv: list[str]) -> int:
    stale = 0
    for service, path in (("dynamodb", OUT_PATH), ("dynamodbstreams", STREAMS_OUT_PATH)):
        schema = generate(service)
        text = json.dumps(schema, separators=(",", ":")) + "\n"
        if "--check" in argv:
            # The operations must match; the botocore release named in "source"
            # may differ (a fresh install takes the newest botocore, which often
            # changes nothing DynamoDB's validation uses).
            committed = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            if committed.get("operations") != schema["operations"]:
                print(f"{path} is stale for botocore {botocore.__version__}: run {__file__}")
                stale = 1
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(text)} bytes, {len(schema['operations'])} operations)")
    return stale


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
