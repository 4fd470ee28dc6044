"""TagResource, UntagResource, ListTagsOfResource.

Tags live in the table's catalog record, so every router of the region sees
them.  ARNs name a table of this region and account:
``arn:aws:dynamodb:<region>:<account>:table/<name>``.
"""

from __future__ import annotations

from typing import Any

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException, ValidationException

from ..context import RouterContext
from ..table_record import ACCOUNT_ID, Table


async def _table_for_arn(ctx: RouterContext, arn: str) -> Table:
    prefix = f"arn:aws:dynamodb:{ctx.region}:{ACCOUNT_ID}:table/"
    name = arn[len(prefix):] if arn.startswith(prefix) else ""
    if not name or "/" in name:
        if arn.startswith("arn:"):
            raise ResourceNotFoundException(f"Requested resource not found: ResourcArn: {arn} not found")
        raise ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    table = await ctx.catalog.get(name)
    if table is None:
        raise ResourceNotFoundException(f"Requested resource not found: ResourcArn: {arn} not found")
    return table


async def tag_resource(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    tags = body["Tags"]
    if not tags:
        raise ValidationException("Atleast one Tag needs to be provided as Input.")
    table = await _table_for_arn(ctx, body["ResourceArn"])
    merged = dict(table.tags)
    merged.update({t["Key"]: t["Value"] for t in tags})
    if len(merged) > limits.TAGS_PER_RESOURCE_MAX:
        raise ValidationException("One or more parameter values were invalid: The number of tags exceeds the limit of 50")
    table.tags = merged
    await ctx.catalog.save(table)
    return {}


async def untag_resource(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    keys = body["TagKeys"]
    if not keys:
        raise ValidationException("Atleast one Tag Key needs to be provided as Input.")
    table = await _table_for_arn(ctx, body["ResourceArn"])
    table.tags = {k: v for k, v in table.tags.items() if k not in set(keys)}
    await ctx.catalog.save(table)
    return {}


async def list_tags_of_resource(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _table_for_arn(ctx, body["ResourceArn"])
    return {"Tags": [{"Key": k, "Value": v} for k, v in table.tags.items()]}


ACTIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsOfResource": list_tags_of_resource,
}
