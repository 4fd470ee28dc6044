"""PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy (and CreateTable's ResourcePolicy).

A resource-based policy is stored in its table's catalog record, the way
tags are (``Table.resource_policies``: "" for the table's own policy, a
stream's label for a stream's), so every router of the region sees it and
it goes when the table does.  Meridian stores and returns policies; it does
not evaluate them (requests are not authorised by them).

Checks and messages are DynamoDB's, from AWS-verified tests (moto's
``test_dynamodb_resource_policy.py``) and the 2026 parity catalogue of live
replies (DDB-TABLE-442): the ARN's form, service, resource type, region and
account; the 20,480-byte limit ("DynamoDB counts whitespaces"); the policy
document being JSON with statements; ``ExpectedRevisionId`` (``NO_POLICY``:
only when there is none) with ``PolicyNotFoundException``.  A policy put
again unchanged keeps its revision.  Revision ids are millisecond
timestamps, increasing per resource, compared as strings by clients.

Guesses (no live reply on record): the order of the ARN checks; the answer
to an ``ExpectedRevisionId`` when there is no policy (the plain not-found
message); a stream's messages ("Stream" for "table"); which document
errors are checked, in which order; DeleteResourcePolicy answering the
deleted policy's revision id.
"""

from __future__ import annotations

import json
import time
from typing import Any

from meridian.model import limits
from meridian.model.errors import PolicyNotFoundException, ResourceNotFoundException, ValidationException

from ..context import RouterContext
from ..table_record import ACCOUNT_ID, Table

_PARAM = "One or more parameter values were invalid: "
_NO_POLICY = "NO_POLICY"
_TABLE_POLICY = ""  # Table.resource_policies key of the table's own policy


def _not_found_policy(arn: str) -> PolicyNotFoundException:
    return PolicyNotFoundException(f"Resource-based policy not found for the provided ResourceArn: {arn}")


async def _resource(ctx: RouterContext, arn: str) -> tuple[Table, str, str]:
    """``(table, policy key, what the messages call it)`` for an ARN, or DynamoDB's error."""
    if not arn.startswith("arn:"):
        raise ValidationException(f"{_PARAM}ARNs must start with 'arn:': {arn}")
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
        raise ValidationException(f"{_PARAM}Provided Arn is not a DynamoDB resource arn: {arn}")
    path = parts[5].split("/")
    is_stream = len(path) == 4 and path[2] == "stream" and bool(path[3])
    if len(path) != 2 and not is_stream or not path[1]:
        raise ValidationException(
            f"{_PARAM}Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {arn}"
        )
    if parts[1] != "aws" or parts[3] != ctx.region:
        raise ValidationException(f"{_PARAM}Invalid resource Arn: {arn}")
    if parts[4] != ACCOUNT_ID:
        raise ValidationException("This action is only supported by accounts that match the resource owner\u2019s account.")
    table = await ctx.catalog.get(path[1])
    if table is None:
        raise ResourceNotFoundException(f"Requested resource not found: Table: {path[1]} not found")
    if not is_stream:
        return table, _TABLE_POLICY, f"table {table.name}"
    label = path[3]
    if label != table.stream_label and all(past.get("label") != label for past in table.past_streams):
        raise ResourceNotFoundException(f"Requested resource not found: Stream: {arn} not found")
    return table, label, f"stream {arn}"


def check_policy_document(policy: str) -> None:
    """The document's size, then its form (JSON, statements, resources, unique Sids)."""
    if len(policy.encode("utf-8")) > limits.RESOURCE_POLICY_BYTES_MAX:
        raise ValidationException(
            f"{_PARAM}Maximum policy size of {limits.RESOURCE_POLICY_BYTES_MAX} bytes exceeded"
        )
    invalid = f"{_PARAM}Invalid policy document: "
    try:
        document = json.loads(policy)
    except ValueError:
        raise ValidationException(invalid + "This policy contains invalid Json") from None
    if not isinstance(document, dict):
        raise ValidationException(invalid + "This policy contains invalid Json")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not statements or not isinstance(statements, list):
        raise ValidationException(invalid + "Could not parse the policy: Statement is empty!")
    sids = []
    for statement in statements:
        if not isinstance(statement, dict):
            raise ValidationException(invalid + "This policy contains invalid Json")
        if "Resource" not in statement:
            raise ValidationException(invalid + "Missing required field Resource")
        if "Sid" in statement:
            sids.append(statement["Sid"])
    if len(set(map(str, sids))) != len(sids):
        raise ValidationException(invalid + "The Statement Ids in the policy are not unique")


def new_revision(previous: str | None) -> str:
    """A millisecond timestamp, after ``previous`` (two puts in one millisecond still differ)."""
    now_ms = int(time.time() * 1000)
    if previous is not None and previous.isdigit():
        now_ms = max(now_ms, int(previous) + 1)
    return str(now_ms)


def _check_expected(expected: str | None, current: dict[str, str] | None, arn: str, what: str) -> None:
    if expected is None:
        return
    if expected == _NO_POLICY:
        if current is not None:
            raise PolicyNotFoundException(
                "Resource-based policy not found for the provided ResourceArn: Requested policy update expecting "
                f"none to be present for {what}, but a policy exists with revision id {current['revision']}."
            )
        return
    if current is None:
        raise _not_found_policy(arn)
    if expected != current["revision"]:
        raise PolicyNotFoundException(
            "Resource-based policy not found for the provided ResourceArn: Requested update for policy with "
            f"revision id {expected}, but the policy associated to target {what} has revision id "
            f"{current['revision']}."
        )


async def put_resource_policy(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn, policy = body["ResourceArn"], body["Policy"]
    table, key, what = await _resource(ctx, arn)
    check_policy_document(policy)
    current = table.resource_policies.get(key)
    _check_expected(body.get("ExpectedRevisionId"), current, arn, what)
    if current is not None and current["policy"] == policy:
        return {"RevisionId": current["revision"]}  # idempotent: the same document keeps its revision
    revision = new_revision(current["revision"] if current is not None else None)
    table.resource_policies = {**table.resource_policies, key: {"policy": policy, "revision": revision}}
    await ctx.catalog.save(table)
    return {"RevisionId": revision}


async def get_resource_policy(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = body["ResourceArn"]
    table, key, _ = await _resource(ctx, arn)
    current = table.resource_policies.get(key)
    if current is None:
        raise _not_found_policy(arn)
    return {"Policy": current["policy"], "RevisionId": current["revision"]}


async def delete_resource_policy(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = body["ResourceArn"]
    table, key, what = await _resource(ctx, arn)
    current = table.resource_policies.get(key)
    if current is None:
        raise _not_found_policy(arn)
    _check_expected(body.get("ExpectedRevisionId"), current, arn, what)
    table.resource_policies = {k: v for k, v in table.resource_policies.items() if k != key}
    await ctx.catalog.save(table)
    return {"RevisionId": current["revision"]}


def create_table_policies(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    """CreateTable's ``ResourcePolicy``, checked, as the new table's ``resource_policies``."""
    policy = body.get("ResourcePolicy")
    if policy is None:
        return {}
    check_policy_document(policy)
    return {_TABLE_POLICY: {"policy": policy, "revision": new_revision(None)}}


ACTIONS = {
    "PutResourcePolicy": put_resource_policy,
    "GetResourcePolicy": get_resource_policy,
    "DeleteResourcePolicy": delete_resource_policy,
}
