"""Contributor Insights (issue 15), black-box through boto3, both modes.

The API (Update/Describe/ListContributorInsights) as live DynamoDB answers
it (captures cited in ``router/actions/contributor_insights.py``), then the
rules' output: after a hot key, ``GET /metrics`` and the console name it
first.  Statuses settle on the clock (ENABLING -> ENABLED in about a
second), so tests wait on the status, never on a sleep.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from helpers import expect_error, unique_name
from meridian.model import limits

ACCESSED = "meridian_contributor_insights_accessed_keys"
THROTTLED = "meridian_contributor_insights_throttled_keys"
SETTLE_S = 10 * max(limits.CONTRIBUTOR_INSIGHTS_ENABLING_S, limits.CONTRIBUTOR_INSIGHTS_DISABLING_S, 1.0)
RULE = re.compile(r"DynamoDBContributorInsights-(PKC|SKC|PKT|SKT)-(.+)-(\d{13})")


def wait_status(ddb, name: str, wanted: str, index: str | None = None) -> dict:
    """DescribeContributorInsights once it reports ``wanted``."""
    kwargs = {"TableName": name} | ({"IndexName": index} if index else {})
    deadline = time.monotonic() + SETTLE_S
    while True:
        answer = ddb.describe_contributor_insights(**kwargs)
        if answer["ContributorInsightsStatus"] == wanted or time.monotonic() > deadline:
            assert answer["ContributorInsightsStatus"] == wanted, answer
            return answer
        time.sleep(0.05)


def rules(answer: dict) -> list[tuple[str, str, int]]:
    """(rule, resource, stamp) of each rule DescribeContributorInsights lists."""
    out = []
    for rule in answer["ContributorInsightsRuleList"]:
        match = RULE.fullmatch(rule)
        assert match, rule
        out.append((match[1], match[2], int(match[3])))
    return out


def get(endpoint: str, path: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(endpoint + path, timeout=10) as answer:
        return answer.read()


def samples(endpoint: str, family: str, table: str) -> list[tuple[dict[str, str], float]]:
    """The family's samples for ``table`` in the order /metrics lists them."""
    text = get(endpoint, "/metrics").decode()
    for found in text_string_to_metric_families(text):
        if found.name == family:
            return [(s.labels, s.value) for s in found.samples if s.labels["TableName"] == table]
    raise AssertionError(f"{family} missing from /metrics")


@pytest.fixture
def indexed(ddb):
    """A table (pk, sk) with a global index ``byg`` (g) and a local one ``bylsi`` (pk, l)."""
    name = unique_name()
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g", "l")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        LocalSecondaryIndexes=[{"IndexName": "bylsi", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                                                    {"AttributeName": "l", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "KEYS_ONLY"}}],
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield name
    ddb.delete_table(TableName=name)


# --- the API ---------------------------------------------------------------------


def test_a_table_never_configured_is_disabled(ddb, table):
    name = table()
    assert ddb.describe_contributor_insights(TableName=name)["ContributorInsightsStatus"] == "DISABLED"
    answer = ddb.describe_contributor_insights(TableName=name)
    answer.pop("ResponseMetadata")
    assert answer == {"TableName": name, "ContributorInsightsStatus": "DISABLED"}
    listed = ddb.list_contributor_insights(TableName=name)
    assert listed["ContributorInsightsSummaries"] == [] and "NextToken" not in listed
    # DISABLE on it is a no-op answering DISABLED
    answer = ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="DISABLE")
    answer.pop("ResponseMetadata")
    assert answer == {"TableName": name, "ContributorInsightsStatus": "DISABLED"}


def test_enable_describe_list_and_disable_a_table(ddb, table):
    name = table(sk=("sk", "S"))
    before_ms = int(time.time() * 1000)
    answer = ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    answer.pop("ResponseMetadata")
    assert answer == {"TableName": name, "ContributorInsightsStatus": "ENABLING",
                      "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"}
    enabled = wait_status(ddb, name, "ENABLED")
    assert enabled["ContributorInsightsMode"] == "ACCESSED_AND_THROTTLED_KEYS"
    assert "LastUpdateDateTime" in enabled and "IndexName" not in enabled
    found = rules(enabled)
    assert [code for code, _resource, _stamp in found] == ["PKC", "SKC", "PKT", "SKT"]
    assert {resource for _code, resource, _stamp in found} == {name}
    stamp = found[0][2]
    assert {s for _c, _r, s in found} == {stamp} and before_ms <= stamp <= int(time.time() * 1000)

    # ENABLE again, same mode: a no-op answering ENABLED
    again = ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE",
                                            ContributorInsightsMode="ACCESSED_AND_THROTTLED_KEYS")
    assert again["ContributorInsightsStatus"] == "ENABLED"
    unchanged = ddb.describe_contributor_insights(TableName=name)
    assert unchanged["ContributorInsightsRuleList"] == enabled["ContributorInsightsRuleList"]
    assert unchanged["LastUpdateDateTime"] == enabled["LastUpdateDateTime"]

    listed = ddb.list_contributor_insights(TableName=name)["ContributorInsightsSummaries"]
    assert listed == [{"TableName": name, "ContributorInsightsStatus": "ENABLED",
                       "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"}]
    everyone = ddb.list_contributor_insights(MaxResults=100)["ContributorInsightsSummaries"]
    assert listed[0] in everyone

    # DISABLE ignores a mode sent with it and echoes the current one
    disabled_at = time.monotonic()
    answer = ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="DISABLE",
                                             ContributorInsightsMode="THROTTLED_KEYS")
    assert answer["ContributorInsightsStatus"] == "DISABLING"
    assert answer["ContributorInsightsMode"] == "ACCESSED_AND_THROTTLED_KEYS"
    disabling = ddb.describe_contributor_insights(TableName=name)
    listed = ddb.list_contributor_insights(TableName=name)["ContributorInsightsSummaries"]
    if time.monotonic() - disabled_at < limits.CONTRIBUTOR_INSIGHTS_DISABLING_S:  # still DISABLING: still listed
        assert disabling["ContributorInsightsStatus"] == "DISABLING"
        assert "ContributorInsightsRuleList" in disabling
        assert [s["ContributorInsightsStatus"] for s in listed] == ["DISABLING"]
    disabled = wait_status(ddb, name, "DISABLED")
    assert "ContributorInsightsRuleList" not in disabled
    assert disabled["ContributorInsightsMode"] == "ACCESSED_AND_THROTTLED_KEYS"
    assert disabled["LastUpdateDateTime"] >= enabled["LastUpdateDateTime"]
    assert ddb.list_contributor_insights(TableName=name)["ContributorInsightsSummaries"] == []
    assert ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="DISABLE")[
        "ContributorInsightsStatus"] == "DISABLED"

    # a re-enable after a disable makes new rules (a new stamp)
    time.sleep(0.002)
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    assert rules(wait_status(ddb, name, "ENABLED"))[0][2] > stamp


def test_the_mode_changes_by_enable_and_keeps_the_rules_stamp(ddb, table):
    name = table(sk=("sk", "N"))
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    stamp = rules(wait_status(ddb, name, "ENABLED"))[0][2]
    answer = ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE",
                                             ContributorInsightsMode="THROTTLED_KEYS")
    assert answer["ContributorInsightsStatus"] == "ENABLING"
    assert answer["ContributorInsightsMode"] == "THROTTLED_KEYS"
    narrowed = wait_status(ddb, name, "ENABLED")
    assert narrowed["ContributorInsightsMode"] == "THROTTLED_KEYS"
    assert rules(narrowed) == [("PKT", name, stamp), ("SKT", name, stamp)]
    # ENABLE without a mode means ACCESSED_AND_THROTTLED_KEYS: it widens again
    answer = ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    assert (answer["ContributorInsightsStatus"], answer["ContributorInsightsMode"]) == (
        "ENABLING", "ACCESSED_AND_THROTTLED_KEYS")
    assert [code for code, _r, _s in rules(wait_status(ddb, name, "ENABLED"))] == ["PKC", "SKC", "PKT", "SKT"]


def test_a_table_without_sort_key_has_two_rules_or_one(ddb, table):
    name = table()
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    assert [code for code, _r, _s in rules(wait_status(ddb, name, "ENABLED"))] == ["PKC", "PKT"]
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE",
                                    ContributorInsightsMode="THROTTLED_KEYS")
    assert [code for code, _r, _s in rules(wait_status(ddb, name, "ENABLED"))] == ["PKT"]


def test_global_indexes_have_their_own_setting(ddb, indexed):
    name = indexed
    answer = ddb.update_contributor_insights(TableName=name, IndexName="byg", ContributorInsightsAction="ENABLE")
    answer.pop("ResponseMetadata")
    assert answer == {"TableName": name, "IndexName": "byg", "ContributorInsightsStatus": "ENABLING",
                      "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"}
    index = wait_status(ddb, name, "ENABLED", index="byg")
    assert index["IndexName"] == "byg"
    assert [(code, resource) for code, resource, _s in rules(index)] == [("PKC", f"{name}-byg"), ("PKT", f"{name}-byg")]
    assert ddb.describe_contributor_insights(TableName=name)["ContributorInsightsStatus"] == "DISABLED"
    assert ddb.list_contributor_insights(TableName=name)["ContributorInsightsSummaries"] == [
        {"TableName": name, "IndexName": "byg", "ContributorInsightsStatus": "ENABLED",
         "ContributorInsightsMode": "ACCESSED_AND_THROTTLED_KEYS"}]

    # with both on, MaxResults=1 pages the table first, then the index; the last page has no NextToken
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE")
    wait_status(ddb, name, "ENABLED")
    first = ddb.list_contributor_insights(TableName=name, MaxResults=1)
    assert [(s["TableName"], s.get("IndexName")) for s in first["ContributorInsightsSummaries"]] == [(name, None)]
    second = ddb.list_contributor_insights(TableName=name, MaxResults=1, NextToken=first["NextToken"])
    assert [(s["TableName"], s.get("IndexName")) for s in second["ContributorInsightsSummaries"]] == [(name, "byg")]
    assert "NextToken" not in second

    # a paginated account-wide list sees both (pages may be empty: keep going until no NextToken)
    seen, token = [], None
    for _page in range(10_000):
        kwargs = {"MaxResults": 3} | ({"NextToken": token} if token else {})
        page = ddb.list_contributor_insights(**kwargs)
        assert len(page["ContributorInsightsSummaries"]) <= 3
        seen += [(s["TableName"], s.get("IndexName")) for s in page["ContributorInsightsSummaries"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert {(name, None), (name, "byg")} <= set(seen) and len(seen) == len(set(seen))


def test_unknown_tables_and_indexes_are_not_found(ddb, indexed):
    name = indexed
    missing = unique_name()
    table_message = f"Requested resource not found: Table: {missing} not found"
    expect_error(ddb.describe_contributor_insights, "ResourceNotFoundException", table_message, TableName=missing)
    expect_error(ddb.update_contributor_insights, "ResourceNotFoundException", table_message,
                 TableName=missing, ContributorInsightsAction="ENABLE")
    expect_error(ddb.list_contributor_insights, "ResourceNotFoundException", table_message, TableName=missing)
    for index in ("bylsi", "nope"):  # a local index has no setting of its own
        message = f"Requested resource not found: Index: {index} not found for table: {name}"
        expect_error(ddb.describe_contributor_insights, "ResourceNotFoundException", message,
                     TableName=name, IndexName=index)
        expect_error(ddb.update_contributor_insights, "ResourceNotFoundException", message,
                     TableName=name, IndexName=index, ContributorInsightsAction="ENABLE")


def test_validation_errors(ddb, table):
    name = table()
    prefix = "1 validation error detected: "
    expect_error(ddb.update_contributor_insights, "ValidationException",
                 prefix + "Value 'PAUSE' at 'contributorInsightsAction' failed to satisfy constraint: "
                 "Member must satisfy enum value set: [ENABLE, DISABLE]",
                 TableName=name, ContributorInsightsAction="PAUSE")
    expect_error(ddb.update_contributor_insights, "ValidationException",
                 prefix + "Value 'SOME_KEYS' at 'contributorInsightsMode' failed to satisfy constraint: "
                 "Member must satisfy enum value set: [ACCESSED_AND_THROTTLED_KEYS, THROTTLED_KEYS]",
                 TableName=name, ContributorInsightsAction="ENABLE", ContributorInsightsMode="SOME_KEYS")
    expect_error(ddb.describe_contributor_insights, "ValidationException",
                 prefix + "Value 'a b' at 'indexName' failed to satisfy constraint: "
                 "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                 TableName=name, IndexName="a b")
    expect_error(ddb.list_contributor_insights, "ValidationException",
                 prefix + "Value '101' at 'maxResults' failed to satisfy constraint: "
                 "Member must have value less than or equal to 100",
                 MaxResults=101)
    expect_error(ddb.list_contributor_insights, "ValidationException", "Invalid NextToken", NextToken="not a token")


# --- the rules' output ---------------------------------------------------------------


def test_a_hot_key_is_named_first_on_metrics_and_in_the_console(ddb, indexed, endpoint):
    name = indexed
    for resource in ({}, {"IndexName": "byg"}):
        ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE", **resource)
    for i in range(20):  # cold keys, once each
        ddb.put_item(TableName=name, Item={"pk": {"S": f"cold{i}"}, "sk": {"S": "0"}, "g": {"S": f"g{i}"}})
    for i in range(30):  # one hot item: written, read, queried, read in batches
        ddb.put_item(TableName=name, Item={"pk": {"S": "hot"}, "sk": {"S": "1"}, "g": {"S": "hotg"}, "n": {"N": str(i)}})
        ddb.get_item(TableName=name, Key={"pk": {"S": "hot"}, "sk": {"S": "1"}})
        ddb.query(TableName=name, IndexName="byg", KeyConditionExpression="g = :g",
                  ExpressionAttributeValues={":g": {"S": "hotg"}})
    ddb.batch_get_item(RequestItems={name: {"Keys": [{"pk": {"S": "hot"}, "sk": {"S": "1"}}]}})
    ddb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": "hot"}, "sk": {"S": "1"},
                                                                       "g": {"S": "hotg"}}}}]})

    accessed = samples(endpoint, ACCESSED, name)
    by_rule = {}
    for labels, value in accessed:
        by_rule.setdefault((labels["IndexName"], labels["Rule"]), []).append((labels["Key"], labels["SortKey"], value))
    assert set(by_rule) == {("", "PKC"), ("", "SKC"), ("byg", "PKC")}
    # consumed units, as DynamoDB's accessed rules sum them: 30 puts and a batch put (1 write unit
    # each), 30 gets and a batch get (half a read unit each): 46.5, decayed by the seconds the test took
    assert by_rule["", "PKC"][0][:2] == ("hot", "") and by_rule["", "PKC"][0][2] >= 40
    assert by_rule["", "SKC"][0][:2] == ("hot", "1")
    assert by_rule["byg", "PKC"][0][:2] == ("hotg", "")  # 30 queries and 31 puts under the index's key
    assert by_rule["byg", "PKC"][0][2] >= 40  # 30 x 0.5 read units, 31 x 1 write unit of the index
    for ranked in by_rule.values():
        assert [v for _k, _s, v in ranked] == sorted((v for _k, _s, v in ranked), reverse=True)
        assert len(ranked) <= limits.CONTRIBUTOR_INSIGHTS_KEYS_REPORTED
    assert samples(endpoint, THROTTLED, name) == []  # an on-demand table under its ceilings

    view = json.loads(get(endpoint, f"/console/api/contributors?table={name}"))
    assert [(r["index"], r["status"] in ("ENABLING", "ENABLED")) for r in view["resources"]] == [(None, True), ("byg", True)]
    pkc = view["resources"][0]["rules"][0]
    assert (pkc["rule"], pkc["throttled"]) == ("PKC", False) and pkc["name"].startswith("DynamoDBContributorInsights-PKC-")
    assert pkc["keys"][0]["key"] == {"pk": {"S": "hot"}}
    skc = view["resources"][0]["rules"][1]
    assert skc["keys"][0]["key"] == {"pk": {"S": "hot"}, "sk": {"S": "1"}}

    # once disabled, the table's keys leave /metrics; the index's stay
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="DISABLE")
    assert {labels["IndexName"] for labels, _v in samples(endpoint, ACCESSED, name)} == {"byg"}


def test_the_most_throttled_key_is_named_first(ddb, table, endpoint):
    raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
    name = table(billing="PROVISIONED", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    ddb.update_contributor_insights(TableName=name, ContributorInsightsAction="ENABLE",
                                    ContributorInsightsMode="THROTTLED_KEYS")
    # Reads of one key until refused once, then writes of another past the burst, refused five
    # times. In this order the key refused most is also the most recent: the rules weigh
    # refusals over an exponentially weighted minute, and the reads may take a minute on a
    # loaded machine.
    with pytest.raises(ClientError):
        for _ in range(4 * int(limits.THROUGHPUT_BURST_S)):
            raw.get_item(TableName=name, Key={"id": {"S": "other"}})
    throttles = 0
    for i in range(10 * int(limits.THROUGHPUT_BURST_S)):  # past the table's burst on one hot key
        try:
            raw.put_item(TableName=name, Item={"id": {"S": "hot"}, "n": {"N": str(i)}})
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
            throttles += 1
            if throttles == 5:
                break
    assert throttles == 5
    throttled = samples(endpoint, THROTTLED, name)
    assert throttled[0][0]["Key"] == "hot" and throttled[0][0]["Rule"] == "PKT" and throttled[0][1] >= 4
    assert any(labels["Key"] == "other" for labels, _v in throttled)
    assert samples(endpoint, ACCESSED, name) == []  # THROTTLED_KEYS: accesses are not ranked


def test_a_table_without_insights_is_not_on_metrics(ddb, table, endpoint):
    name = table()
    for _ in range(5):
        ddb.put_item(TableName=name, Item={"id": {"S": "k"}})
    assert samples(endpoint, ACCESSED, name) == [] and samples(endpoint, THROTTLED, name) == []
    view = json.loads(get(endpoint, f"/console/api/contributors?table={name}"))
    assert view["resources"] == [{"index": None, "status": "DISABLED", "mode": None, "rules": []}]
