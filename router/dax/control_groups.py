"""The DAX control plane's other actions: parameter groups, subnet groups, events, tags.

Parameter groups hold DAX's two parameters, ``record-ttl-millis`` and
``query-ttl-millis``; a change applies at once (``ChangeType IMMEDIATE``)
to every running node of every cluster using the group
(``DaxCluster.set_ttls``: the entries cached from then on).  The default
group ``default.dax1.0`` can be neither changed nor deleted.  Subnet groups
are recorded only (Meridian's nodes listen on the router's host).  Tags
belong to clusters, named by their ARN.  Records: ``router/dax/control_model.py``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from meridian.model import limits

from .control_clusters import check_tags, cluster_names, control_of, find_cluster
from .control_faults import (
    InvalidARNFault,
    InvalidClusterStateFault,
    InvalidParameterGroupStateFault,
    InvalidParameterValueException,
    InvalidSubnet,
    ParameterGroupAlreadyExistsFault,
    ParameterGroupNotFoundFault,
    ParameterGroupQuotaExceededFault,
    SubnetGroupAlreadyExistsFault,
    SubnetGroupInUseFault,
    SubnetGroupNotFoundFault,
    SubnetGroupQuotaExceededFault,
    SubnetQuotaExceededFault,
    TagNotFoundFault,
)
from .control_model import DEFAULT_PARAMETER_GROUP, PARAMETERS, ParameterGroupRecord, SubnetGroupRecord, page

#: ElastiCache's and DAX's group names: a letter, then letters, digits and single hyphens, no hyphen last
_GROUP_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|-(?!-))*")
_SUBNET_ID = re.compile(r"subnet-[0-9A-Za-z-]+")


def _new_group_name(kind: str, name: str) -> str:
    if not 1 <= len(name) <= limits.DAX_GROUP_NAME_CHARS_MAX or not _GROUP_NAME.fullmatch(name) or name.endswith("-"):
        raise InvalidParameterValueException(
            f"Invalid {kind} name: {name}. It must contain from 1 to {limits.DAX_GROUP_NAME_CHARS_MAX} alphanumeric "
            "characters or hyphens, begin with a letter, and neither end with a hyphen nor contain two consecutive hyphens.")
    return name


def _users_of(ctx: Any, attribute: str, name: str) -> list[str]:
    """The clusters whose ``attribute`` (parameter_group, subnet_group) is ``name``."""
    control = control_of(ctx)
    return [cluster for cluster in cluster_names(ctx)
            if getattr(control.record_of(cluster, ctx.dax_clusters.get(cluster)), attribute) == name]


# --- parameter groups ---------------------------------------------------------------------------


def _parameter_group(ctx: Any, name: str) -> ParameterGroupRecord:
    group = control_of(ctx).parameter_groups.get(name)
    if group is None:
        raise ParameterGroupNotFoundFault(f"Parameter group {name} not found.")
    return group


async def create_parameter_group(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    name = _new_group_name("parameter group", body["ParameterGroupName"])
    if name in control.parameter_groups:
        raise ParameterGroupAlreadyExistsFault(f"Parameter group {name} already exists.")
    if len(control.parameter_groups) >= limits.DAX_CONTROL_PARAMETER_GROUPS_MAX:
        raise ParameterGroupQuotaExceededFault(f"At most {limits.DAX_CONTROL_PARAMETER_GROUPS_MAX} parameter groups.")
    group = control.parameter_groups[name] = ParameterGroupRecord(name, body.get("Description", ""))
    control.note(name, "PARAMETER_GROUP", "Parameter group created.")
    return {"ParameterGroup": group.describe()}


async def describe_parameter_groups(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    names = body.get("ParameterGroupNames") or sorted(control.parameter_groups)
    entries, more = page([_parameter_group(ctx, name) for name in names], body)
    return {"ParameterGroups": [group.describe() for group in entries], **more}


def _ttl_value(name: str, value: str) -> int:
    if name not in PARAMETERS:
        raise InvalidParameterValueException(
            f"Unknown parameter: {name}. The parameters are {' and '.join(sorted(PARAMETERS))}.")
    if not value.isdigit():
        raise InvalidParameterValueException(f"Invalid value {value!r} for {name}: a whole number from 0 up.")
    return int(value)


async def update_parameter_group(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    values = {pair.get("ParameterName", ""): _ttl_value(pair.get("ParameterName", ""), pair.get("ParameterValue", ""))
              for pair in body["ParameterNameValues"]}
    if not values:
        raise InvalidParameterValueException("ParameterNameValues must name at least one parameter.")
    group = _parameter_group(ctx, body["ParameterGroupName"])
    if group.name == DEFAULT_PARAMETER_GROUP:
        raise InvalidParameterValueException(f"The default parameter group {DEFAULT_PARAMETER_GROUP} cannot be modified.")
    for name, value in values.items():
        setattr(group, PARAMETERS[name][1], value)
    for cluster in _users_of(ctx, "parameter_group", group.name):
        live = ctx.dax_clusters.get(cluster)
        if live is not None:
            live.set_ttls(group.record_ttl_ms, group.query_ttl_ms)
    control.note(group.name, "PARAMETER_GROUP", "Parameter group updated.")
    return {"ParameterGroup": group.describe()}


async def delete_parameter_group(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    group = _parameter_group(ctx, body["ParameterGroupName"])
    if group.name == DEFAULT_PARAMETER_GROUP:
        raise InvalidParameterValueException(f"The default parameter group {DEFAULT_PARAMETER_GROUP} cannot be deleted.")
    users = _users_of(ctx, "parameter_group", group.name)
    if users:
        raise InvalidParameterGroupStateFault(
            f"Parameter group {group.name} is used by cluster(s) {', '.join(users)} and cannot be deleted.")
    del control.parameter_groups[group.name]
    control.note(group.name, "PARAMETER_GROUP", "Parameter group deleted.")
    return {"DeletionMessage": f"Parameter group {group.name} has been deleted."}


async def describe_parameters(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    parameters = _parameter_group(ctx, body["ParameterGroupName"]).parameters()
    source = body.get("Source")
    if source is not None:
        parameters = [parameter for parameter in parameters if parameter["Source"] == source]
    entries, more = page(parameters, body)
    return {"Parameters": entries, **more}


async def describe_default_parameters(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    entries, more = page(ParameterGroupRecord(DEFAULT_PARAMETER_GROUP).parameters(), body)
    return {"Parameters": entries, **more}


# --- subnet groups --------------------------------------------------------------------------------


def _subnet_group(ctx: Any, name: str) -> SubnetGroupRecord:
    group = control_of(ctx).subnet_groups.get(name.lower())
    if group is None:
        raise SubnetGroupNotFoundFault(f"Subnet group {name.lower()} not found.")
    return group


def _subnet_ids(subnet_ids: list[str]) -> list[str]:
    if not subnet_ids:
        raise InvalidSubnet("A subnet group needs at least one subnet.")
    for subnet in subnet_ids:
        if not _SUBNET_ID.fullmatch(subnet):
            raise InvalidSubnet(f"Invalid subnet id: {subnet}.")
    unique = list(dict.fromkeys(subnet_ids))
    if len(unique) > limits.DAX_CONTROL_SUBNETS_PER_GROUP_MAX:
        raise SubnetQuotaExceededFault(f"A subnet group holds at most {limits.DAX_CONTROL_SUBNETS_PER_GROUP_MAX} subnets.")
    return unique


async def create_subnet_group(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    name = _new_group_name("subnet group", body["SubnetGroupName"]).lower()
    if name in control.subnet_groups:
        raise SubnetGroupAlreadyExistsFault(f"Subnet group {name} already exists.")
    subnets = _subnet_ids(body["SubnetIds"])
    if len(control.subnet_groups) >= limits.DAX_CONTROL_SUBNET_GROUPS_MAX:
        raise SubnetGroupQuotaExceededFault(f"At most {limits.DAX_CONTROL_SUBNET_GROUPS_MAX} subnet groups.")
    group = control.subnet_groups[name] = SubnetGroupRecord(name, control.region, subnets, body.get("Description", ""))
    control.note(name, "SUBNET_GROUP", "Subnet group created.")
    return {"SubnetGroup": group.describe()}


async def describe_subnet_groups(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    names = body.get("SubnetGroupNames") or sorted(control_of(ctx).subnet_groups)
    entries, more = page([_subnet_group(ctx, name) for name in names], body)
    return {"SubnetGroups": [group.describe() for group in entries], **more}


async def update_subnet_group(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    group = _subnet_group(ctx, body["SubnetGroupName"])
    if "SubnetIds" in body:
        group.subnet_ids = _subnet_ids(body["SubnetIds"])
    group.description = body.get("Description", group.description)
    return {"SubnetGroup": group.describe()}


async def delete_subnet_group(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    group = _subnet_group(ctx, body["SubnetGroupName"])
    users = _users_of(ctx, "subnet_group", group.name)
    if users:
        raise SubnetGroupInUseFault(f"Subnet group {group.name} is used by cluster(s) {', '.join(users)}.")
    del control.subnet_groups[group.name]
    control.note(group.name, "SUBNET_GROUP", "Subnet group deleted.")
    return {"DeletionMessage": f"Subnet group {group.name} has been deleted."}


# --- events ---------------------------------------------------------------------------------------


def _epoch_s(member: str, value: int | float | str) -> float:
    """A timestamp member: epoch seconds (what the SDKs send) or ISO 8601 text."""
    if not isinstance(value, str):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameterValueException(f"Invalid timestamp for {member}: {value}.") from None


async def describe_events(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Newest first; the last 24 hours unless StartTime, EndTime or Duration (minutes) say otherwise."""
    control = control_of(ctx)
    duration = body.get("Duration")
    if duration is not None and duration < 0:
        raise InvalidParameterValueException(f"Duration must not be negative, not {duration}.")
    end_s = _epoch_s("EndTime", body["EndTime"]) if "EndTime" in body else time.time()
    if "StartTime" in body:
        start_s = _epoch_s("StartTime", body["StartTime"])
    else:
        start_s = end_s - (duration * 60 if duration is not None else limits.DAX_CONTROL_EVENTS_DEFAULT_WINDOW_S)
    source_name, source_type = body.get("SourceName"), body.get("SourceType")
    events = [
        event for event in reversed(control.events)
        if start_s <= event.date_s <= end_s
        and (source_name is None or event.source_name == source_name)
        and (source_type is None or event.source_type == source_type)
    ]
    entries, more = page(events, body)
    return {"Events": [event.describe() for event in entries], **more}


# --- tags -----------------------------------------------------------------------------------------


def _tagged(ctx: Any, arn: str) -> Any:
    """The record of the cluster ``arn`` names (``arn:aws:dax:<region>:<account>:cache/<name>``)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "dax" or not parts[5].startswith("cache/"):
        raise InvalidARNFault(f"Invalid ARN: {arn}.")
    record, _live = find_cluster(ctx, parts[5][len("cache/"):])
    if control_of(ctx).arn(record.name) != arn:
        raise InvalidARNFault(f"ARN {arn} names no cluster of this region and account.")
    if record.status == "deleting":
        raise InvalidClusterStateFault(f"Cluster {record.name} is being deleted.")
    return record


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


async def tag_resource(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    record = _tagged(ctx, body["ResourceName"])
    record.tags = check_tags(body["Tags"], record.tags)
    return {"Tags": _tag_list(record.tags)}


async def untag_resource(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    record = _tagged(ctx, body["ResourceName"])
    for key in body["TagKeys"]:
        if key not in record.tags:
            raise TagNotFoundFault(f"Tag {key} not found on {body['ResourceName']}.")
    for key in body["TagKeys"]:
        del record.tags[key]
    return {"Tags": _tag_list(record.tags)}


async def list_tags(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": _tag_list(_tagged(ctx, body["ResourceName"]).tags)}


ACTIONS = {
    "CreateParameterGroup": create_parameter_group,
    "DescribeParameterGroups": describe_parameter_groups,
    "UpdateParameterGroup": update_parameter_group,
    "DeleteParameterGroup": delete_parameter_group,
    "DescribeParameters": describe_parameters,
    "DescribeDefaultParameters": describe_default_parameters,
    "CreateSubnetGroup": create_subnet_group,
    "DescribeSubnetGroups": describe_subnet_groups,
    "UpdateSubnetGroup": update_subnet_group,
    "DeleteSubnetGroup": delete_subnet_group,
    "DescribeEvents": describe_events,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTags": list_tags,
}
