"""TagResource, UntagResource, ListTagsOfResource.

Tags live in the table's catalog record, so every router of the region sees
them.  ARNs name a table of this region and account:
``arn:aws:dynamodb:<region>:<account>:table/<name>``; other ARNs are
answered as live DynamoDB answered them in 2026 (parity catalog
DDB-TABLE-071, DDB-TABLE-011, DDB-TABLE-136 and its message catalogue
DDB-TABLE-442).  The request's own tag rules (lengths, characters, the
``aws:`` prefix, duplicates) are ``router/validation_rules.py``'s; the
limits that need the table's tags (50 tags, their total size) are checked
here, on the tags the table would have after the request (DDB-TABLE-108).
"""

from __future__ import annotations

from typing import Any

from meridian.model.errors import AccessDeniedException, ResourceNotFoundException, ValidationException

from ..context import RouterContext
from ..table_record import ACCOUNT_ID, Table
from ..validation_rules import check_tag_count, check_tag_set_size

_PARAM = "One or more parameter values were invalid: "


def _not_found(arn: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: ResourceArn: {arn} not found")


async def _table_for_arn(ctx: RouterContext, arn: str) -> Table:
    """The table an ARN names, or the error DynamoDB answers for it.

    The order of the checks (form, service, region, account, resource type)
    is a guess; each message is a live reply's.
    """
    if not arn.startswith("arn:"):
        raise ValidationException(f"{_PARAM}ARNs must start with 'arn:': {arn}")
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
        raise ValidationException(f"{_PARAM}Provided Arn is not a DynamoDB resource arn: {arn}")
    region, account, resource = parts[3], parts[4], parts[5]
    if region != ctx.region:
        raise ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    if account != ACCOUNT_ID:
        raise AccessDeniedException("Access is denied")
    path = resource.split("/")
    if len(path) > 2 and path[2] == "index":
        raise ValidationException(
            f"{_PARAM}Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {arn}"
        )
    if len(path) > 2 and path[2] == "backup":
        raise ValidationException(f"{_PARAM}Provided Arn is not a DynamoDB resource arn: {arn}")
    if len(path) != 2 or not path[1]:
        raise _not_found(arn)  # a stream's ARN: streams hold no tags here
    table = await ctx.catalog.get(path[1])
    if table is None:
        raise _not_found(arn)
    return table


async def tag_resource(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    tags = body["Tags"]
    if not tags:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    table = await _table_for_arn(ctx, body["ResourceArn"])
    merged = dict(table.tags)
    merged.update({t["Key"]: t["Value"] for t in tags})
    check_tag_count(len(merged))
    check_tag_set_size(merged)
    table.tags = merged
    await ctx.catalog.save(table)
    return b""  # TagResource has no output: DynamoDB's answer has an empty body


async def untag_resource(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    keys = body["TagKeys"]
    if not keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    table = await _table_for_arn(ctx, body["ResourceArn"])
    table.tags = {k: v for k, v in table.tags.items() if k not in set(keys)}
    await ctx.catalog.save(table)
    return b""  # as TagResource's


async def list_tags_of_resource(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _table_for_arn(ctx, body["ResourceArn"])
    return {"Tags": [{"Key": k, "Value": v} for k, v in table.tags.items()]}


ACTIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsOfResource": list_tags_of_resource,
}
