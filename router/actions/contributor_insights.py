"""UpdateContributorInsights, DescribeContributorInsights, ListContributorInsights.

The setting lives in the table's catalog record (``router/table_record.py``:
``contributor_insights`` where it is on, ``contributor_insights_disabled``
where it was turned off, one entry per resource: "" the table, else a global
index's name), saved through the catalog, so every router of the region
ranks the keys of what it enables (``router/contributors.py``: the rules'
output, on ``GET /metrics`` and the console).  Nothing here touches items.

What live DynamoDB answers, as captured in 2026 (the ack-api-quirks parity
catalogue, DDB-TABLE-089 to 097, 112, 116, 337 to 345, 092), and as here:

* per table and per global index, independently; an LSI's name, an unknown
  index: ResourceNotFoundException "Requested resource not found: Index:
  <index> not found for table: <table>"; a missing table (List with a
  TableName too): "Requested resource not found: Table: <table> not found";
* ENABLE answers ENABLING and the status settles to ENABLED after
  ``limits.CONTRIBUTOR_INSIGHTS_ENABLING_S``; DISABLE answers DISABLING,
  DISABLED after ``limits.CONTRIBUTOR_INSIGHTS_DISABLING_S``; the status
  follows from the record and the clock, so a describe writes nothing; no
  cooldown between changes;
* ENABLE on an ENABLING or ENABLED resource in the same mode, DISABLE on a
  DISABLING or DISABLED one (or one never configured): a no-op answering
  the current status.  ENABLE without ContributorInsightsMode means
  ACCESSED_AND_THROTTLED_KEYS, so it changes a THROTTLED_KEYS resource back;
  a mode change is an ENABLE going through ENABLING again, keeping the
  rules' creation stamp.  DISABLE ignores a mode sent with it and answers
  the current one;
* ENABLE on a table being created (restored here): ValidationException
  "Table or Index is not in a valid state to update Key Access Insights:
  TableStatus must be ACTIVE to enable ContributorInsights."; on a global
  index still being built: the same with "IndexStatus";
* the rules (ContributorInsightsRuleList) are named
  ``DynamoDBContributorInsights-<rule>-<table>[-<index>]-<stamp ms>``: PKC,
  SKC, PKT, SKT with a sort key, PKC, PKT without; PKT (and SKT) only in
  THROTTLED_KEYS mode; a re-enable after a disable gets a new stamp;
* Describe on a resource never configured: only TableName (IndexName) and
  DISABLED; LastUpdateDateTime and ContributorInsightsMode once it was;
  the rules while it is not DISABLED (guess for ENABLING and DISABLING:
  captures show them ENABLED, and absent once DISABLED);
* List leaves DISABLED entries out; it pages over the candidates (every
  table, then each of its global indexes) MaxResults at a time, so a page
  may be empty and still carry a NextToken, as DynamoDB's are
  (DDB-TABLE-344); the last page has none.

Not modelled: FAILED (CloudWatch's quota of 100 rules a region, which
DynamoDB reports as FAILED with a FailureException); Meridian has no quota.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from typing import Any

import orjson

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException, ValidationException

from ..context import RouterContext
from ..contributors import ACCESSED_AND_THROTTLED_KEYS, key_attributes, rule_codes
from ..table_record import Index, Table
from .descriptions import require_table, table_not_found

ENABLING, ENABLED, DISABLING, DISABLED = "ENABLING", "ENABLED", "DISABLING", "DISABLED"
_NOT_ACTIVE = ("Table or Index is not in a valid state to update Key Access Insights: "
               "{} must be ACTIVE to enable ContributorInsights.")
_INVALID_TOKEN = "Invalid NextToken"  # guess: DynamoDB's wording for a token it did not issue is not captured


def index_not_found(table: str, index: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Index: {index} not found for table: {table}")


def _resource(table: Table, index_name: str | None) -> tuple[str, Index | None]:
    """The resource's key in the record ("" the table) and its index, or DynamoDB's not-found error."""
    if index_name is None:
        return "", None
    index = table.index(index_name)
    if index is None or not index.is_global:
        raise index_not_found(table.name, index_name)
    return index_name, index


def _entry(table: Table, resource: str, index: Index | None) -> tuple[dict[str, Any] | None, bool]:
    """The resource's last setting (None if never configured) and whether it
    is on.  An index's entry belongs to that very index: one deleted and
    created again under its name starts afresh."""
    for enabled, entries in ((True, table.contributor_insights), (False, table.contributor_insights_disabled)):
        entry = entries.get(resource)
        if entry is not None and (index is None or entry.get("index_id") == index.spec.index_id):
            return entry, enabled
    return None, False


def status_of(entry: dict[str, Any] | None, enabled: bool, now_s: float) -> str:
    if entry is None:
        return DISABLED
    if enabled:
        return ENABLING if now_s - entry["changed_s"] < limits.CONTRIBUTOR_INSIGHTS_ENABLING_S else ENABLED
    return DISABLING if now_s - entry["changed_s"] < limits.CONTRIBUTOR_INSIGHTS_DISABLING_S else DISABLED


def _last_update_s(entry: dict[str, Any], status: str) -> float:
    """When the status last changed: the change, or its settling."""
    if status == ENABLED:
        return entry["changed_s"] + limits.CONTRIBUTOR_INSIGHTS_ENABLING_S
    if status == DISABLED:
        return entry["changed_s"] + limits.CONTRIBUTOR_INSIGHTS_DISABLING_S
    return entry["changed_s"]


def rule_names(table: Table, index: Index | None, entry: dict[str, Any]) -> list[str]:
    """ContributorInsightsRuleList: the CloudWatch rules as DynamoDB names them."""
    schema = index.key_schema if index is not None else table.key_schema
    resource = table.name if index is None else f"{table.name}-{index.name}"
    return [f"DynamoDBContributorInsights-{code}-{resource}-{entry['rules_ms']}"
            for code in rule_codes(len(schema) > 1, entry["mode"])]


def describe_resource(table: Table, index_name: str | None, now_s: float) -> dict[str, Any]:
    """DescribeContributorInsights' answer for the table or one of its global indexes."""
    resource, index = _resource(table, index_name)
    entry, enabled = _entry(table, resource, index)
    status = status_of(entry, enabled, now_s)
    out: dict[str, Any] = {"TableName": table.name}
    if index_name is not None:
        out["IndexName"] = index_name
    if entry is not None and status != DISABLED:
        out["ContributorInsightsRuleList"] = rule_names(table, index, entry)
    out["ContributorInsightsStatus"] = status
    if entry is not None:
        out["LastUpdateDateTime"] = _last_update_s(entry, status)
        out["ContributorInsightsMode"] = entry["mode"]
    return out


async def update_contributor_insights(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body["TableName"]
    # A fresh view: another router of the region may have changed the setting since this one last refreshed.
    table = await ctx.catalog.fresh(name)
    if table is None:
        raise table_not_found(name)
    index_name = body.get("IndexName")
    resource, index = _resource(table, index_name)
    entry, enabled = _entry(table, resource, index)
    now_s = time.time()
    status = status_of(entry, enabled, now_s)
    enable = body["ContributorInsightsAction"] == "ENABLE"
    if enable:
        if table.table_status == "CREATING":
            raise ValidationException(_NOT_ACTIVE.format("TableStatus"))
        if index is not None and not await ctx.catalog.index_built(table, index):
            raise ValidationException(_NOT_ACTIVE.format("IndexStatus"))
        mode = body.get("ContributorInsightsMode") or ACCESSED_AND_THROTTLED_KEYS
        if enabled and entry["mode"] == mode:  # type: ignore[index]
            return _update_answer(table.name, index_name, status, mode)
        stamp_ms = entry["rules_ms"] if enabled else int(now_s * 1000)  # type: ignore[index]
        new = {"mode": mode, "changed_s": now_s, "rules_ms": stamp_ms}
        if index is not None:
            new["index_id"] = index.spec.index_id
    else:
        if not enabled:
            return _update_answer(table.name, index_name, status, entry["mode"] if entry is not None else None)
        new = dict(entry, changed_s=now_s)  # type: ignore[arg-type]
    on, off = dict(table.contributor_insights), dict(table.contributor_insights_disabled)
    on.pop(resource, None)
    off.pop(resource, None)
    (on if enable else off)[resource] = new
    # A copy: the cached record changes only once the new one is stored.
    changed = dataclasses.replace(table, contributor_insights=on, contributor_insights_disabled=off)
    await ctx.catalog.save(changed)
    return _update_answer(table.name, index_name, status_of(new, enable, now_s), new["mode"])


def _update_answer(table: str, index: str | None, status: str, mode: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"TableName": table}
    if index is not None:
        out["IndexName"] = index
    out["ContributorInsightsStatus"] = status
    if mode is not None:
        out["ContributorInsightsMode"] = mode
    return out


async def describe_contributor_insights(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await require_table(ctx, body["TableName"])
    return describe_resource(table, body.get("IndexName"), time.time())


def _encode_token(position: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode("ascii")


def _decode_token(token: str) -> tuple[str, str]:
    try:
        position = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError, ValueError):
        raise ValidationException(_INVALID_TOKEN) from None
    if not (isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position)):
        raise ValidationException(_INVALID_TOKEN)
    return position[0], position[1]


async def list_contributor_insights(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("TableName")
    if name is not None:
        table = await ctx.catalog.get(name)
        if table is None:
            raise table_not_found(name)
        tables = [table]
    else:
        tables = sorted(ctx.catalog.tables(), key=lambda t: t.name)
    # The candidates, in order: each table, then its global indexes by name.
    candidates = [
        (table, index_name)
        for table in tables
        for index_name in ["", *sorted(index.name for index in table.global_indexes)]
    ]
    if body.get("NextToken"):
        after = _decode_token(body["NextToken"])
        candidates = [c for c in candidates if (c[0].name, c[1]) > after]
    # guess: MaxResults below 1 (botocore's model sets no minimum) pages as if absent
    page_size = body.get("MaxResults") or limits.CONTRIBUTOR_INSIGHTS_LIST_RESULTS_MAX
    if page_size < 1:
        page_size = limits.CONTRIBUTOR_INSIGHTS_LIST_RESULTS_MAX
    page, rest = candidates[:page_size], candidates[page_size:]
    now_s = time.time()
    summaries = []
    for table, index_name in page:
        index = table.index(index_name) if index_name else None
        entry, enabled = _entry(table, index_name, index)
        status = status_of(entry, enabled, now_s)
        if entry is None or status == DISABLED:
            continue
        summary: dict[str, Any] = {"TableName": table.name}
        if index_name:
            summary["IndexName"] = index_name
        summary["ContributorInsightsStatus"] = status
        summary["ContributorInsightsMode"] = entry["mode"]
        summaries.append(summary)
    out: dict[str, Any] = {"ContributorInsightsSummaries": summaries}
    if rest:
        last_table, last_index = page[-1]
        out["NextToken"] = _encode_token((last_table.name, last_index))
    return out


async def console_view(ctx: RouterContext, name: str) -> dict[str, Any]:
    """The console's view of a table's Contributor Insights (``/console/api/contributors``):
    the table and each global index, its status and mode, and each rule's top
    keys through this router (``router/contributors.py``), largest first."""
    table = await require_table(ctx, name)
    now_s = time.time()
    ranked = {(index_name, code): keys for index_name, code, keys in ctx.contributors.top(table)}
    resources = []
    for index_name in [None, *sorted(index.name for index in table.global_indexes)]:
        described = describe_resource(table, index_name, now_s)
        rules = []
        for rule in described.get("ContributorInsightsRuleList", ()):
            code = rule.split("-")[1]
            keys = ranked.get((index_name, code), [])
            rules.append({"rule": code, "name": rule, "throttled": code.endswith("T"),
                          "keys": [{"key": key_attributes(table, index_name, code, key), "count": count}
                                   for key, count in keys]})
        resources.append({"index": index_name, "status": described["ContributorInsightsStatus"],
                          "mode": described.get("ContributorInsightsMode"), "rules": rules})
    return {"table": table.name, "region": ctx.region, "resources": resources}


ACTIONS = {
    "UpdateContributorInsights": update_contributor_insights,
    "DescribeContributorInsights": describe_contributor_insights,
    "ListContributorInsights": list_contributor_insights,
}
