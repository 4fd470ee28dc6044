"""The DAX control plane's cluster actions: create, describe, update, resize, reboot, delete.

Each action checks in the order DAX's API reference lists its errors: the
names and values of the request (InvalidParameterValueException and
friends), then the cluster (ClusterNotFoundFault), then its state
(InvalidClusterStateFault), then quotas; it then answers at once and does
the work in the background (``DaxControl.run``), as DAX does: CreateCluster
answers ``creating`` and the cluster becomes ``available`` when its nodes
listen (``router/dax/cluster.py``'s ``start_dax_cluster``, in this router's
process, in front of its action layer).  Records: ``router/dax/control_model.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from meridian.model import limits

from .control_faults import (
    ClusterAlreadyExistsFault,
    ClusterNotFoundFault,
    ClusterQuotaForCustomerExceededFault,
    InvalidClusterStateFault,
    InvalidParameterCombinationException,
    InvalidParameterValueException,
    NodeNotFoundFault,
    NodeQuotaForClusterExceededFault,
    NodeQuotaForCustomerExceededFault,
    ParameterGroupNotFoundFault,
    SubnetGroupNotFoundFault,
    TagQuotaPerResourceExceeded,
)
from .control_model import DEFAULT_PARAMETER_GROUP, DEFAULT_SUBNET_GROUP, ClusterRecord, DaxControl, page

#: DAX's cluster names: a letter, then letters, digits and single hyphens, no hyphen last
_CLUSTER_NAME = re.compile(r"[a-z](?:[a-z0-9]|-(?!-))*")
_IAM_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/.+")


def control_of(ctx: Any) -> DaxControl:
    control = getattr(ctx, "dax_control", None)
    if control is None:  # a router built without the DAX control plane (a test's context)
        raise InvalidParameterValueException("This endpoint does not serve the DAX control plane.")
    return control


def cluster_names(ctx: Any) -> list[str]:
    return sorted(set(control_of(ctx).clusters) | set(ctx.dax_clusters))


def find_cluster(ctx: Any, name: str) -> tuple[ClusterRecord, Any]:
    """The record and the running ``DaxCluster`` (None while creating) of cluster ``name``."""
    control = control_of(ctx)
    name = name.lower()
    live = ctx.dax_clusters.get(name)
    if name not in control.clusters and live is None:
        raise ClusterNotFoundFault(f"Cluster {name} not found.")
    return control.record_of(name, live), live


def _ready(record: ClusterRecord, live: Any) -> None:
    """A cluster that may change now: ``available``, running, no change under way."""
    if record.status != "available" or live is None or record.busy:
        raise InvalidClusterStateFault(f"Cluster {record.name} is not in the available state (it is {record.status}"
                                       f"{', with a change under way' if record.busy else ''}).")


def _nodes_in_use(ctx: Any) -> int:
    control = control_of(ctx)
    return sum(control.record_of(name, ctx.dax_clusters.get(name)).total_nodes for name in cluster_names(ctx))


def _new_cluster_name(name: str) -> str:
    lowered = name.lower()
    if not 1 <= len(lowered) <= limits.DAX_CLUSTER_NAME_CHARS_MAX or not _CLUSTER_NAME.fullmatch(lowered) \
            or lowered.endswith("-"):
        raise InvalidParameterValueException(
            f"Invalid cluster name: {name}. A name must contain from 1 to {limits.DAX_CLUSTER_NAME_CHARS_MAX} "
            "alphanumeric characters or hyphens, begin with a letter, and neither end with a hyphen nor contain "
            "two consecutive hyphens.")
    return lowered


def check_tags(tags: list[dict[str, str]], existing: dict[str, str]) -> dict[str, str]:
    """``existing`` with ``tags`` set (TagQuotaPerResourceExceeded past DAX's 50 per resource)."""
    merged = dict(existing)
    for tag in tags:
        if "Key" not in tag:
            raise InvalidParameterValueException("A tag must have a Key.")
        merged[tag["Key"]] = tag.get("Value", "")
    if len(merged) > limits.DAX_CONTROL_TAGS_PER_RESOURCE_MAX:
        raise TagQuotaPerResourceExceeded(
            f"A DAX resource can have at most {limits.DAX_CONTROL_TAGS_PER_RESOURCE_MAX} tags.")
    return merged


def _tls_of(ctx: Any) -> Any:
    """The TLS context a ``daxs://`` cluster serves with: the router's own DAX certificate
    (``--dax-tls``, ``--dax-tls-cert``), as its ``--dax-port`` cluster uses it."""
    for cluster in ctx.dax_clusters.values():
        if getattr(cluster, "tls", None) is not None:
            return cluster.tls
    raise InvalidParameterValueException(
        "ClusterEndpointEncryptionType TLS needs a DAX certificate: start Meridian with --dax-port and "
        "--dax-tls (or --dax-tls-cert/--dax-tls-key).")


def _zones_for(count: int, zones: list[str] | None) -> list[str] | None:
    return [zones[i % len(zones)] for i in range(count)] if zones else None


# --- the actions ----------------------------------------------------------------------------------


async def create_cluster(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    name = _new_cluster_name(body["ClusterName"])
    factor = body["ReplicationFactor"]
    if factor < 1:
        raise InvalidParameterValueException(f"ReplicationFactor must be at least 1, not {factor}.")
    if factor > limits.DAX_CLUSTER_NODES_MAX:
        raise NodeQuotaForClusterExceededFault(f"A DAX cluster has at most {limits.DAX_CLUSTER_NODES_MAX} nodes.")
    zones = body.get("AvailabilityZones")
    if zones is not None and len(zones) != factor:
        raise InvalidParameterCombinationException(
            f"The number of AvailabilityZones ({len(zones)}) must equal the ReplicationFactor ({factor}).")
    if not _IAM_ROLE_ARN.fullmatch(body["IamRoleArn"]):
        raise InvalidParameterValueException(f"Invalid IAM role ARN: {body['IamRoleArn']}.")
    encryption = body.get("ClusterEndpointEncryptionType", "NONE")
    tls = _tls_of(ctx) if encryption == "TLS" else None
    group_name = body.get("ParameterGroupName", DEFAULT_PARAMETER_GROUP)
    group = control.parameter_groups.get(group_name)
    if group is None:
        raise ParameterGroupNotFoundFault(f"Parameter group {group_name} not found.")
    subnet_group = body.get("SubnetGroupName", DEFAULT_SUBNET_GROUP).lower()
    if subnet_group not in control.subnet_groups:
        raise SubnetGroupNotFoundFault(f"Subnet group {subnet_group} not found.")
    tags = check_tags(body.get("Tags", []), {})
    if name in control.clusters or name in ctx.dax_clusters:
        raise ClusterAlreadyExistsFault(f"Cluster {name} already exists.")
    if len(cluster_names(ctx)) >= limits.DAX_CONTROL_CLUSTERS_MAX:
        raise ClusterQuotaForCustomerExceededFault(f"At most {limits.DAX_CONTROL_CLUSTERS_MAX} DAX clusters.")
    if _nodes_in_use(ctx) + factor > limits.DAX_CONTROL_NODES_MAX:
        raise NodeQuotaForCustomerExceededFault(f"At most {limits.DAX_CONTROL_NODES_MAX} DAX nodes in all.")
    record = ClusterRecord(
        name=name, node_type=body["NodeType"], iam_role_arn=body["IamRoleArn"], total_nodes=factor,
        description=body.get("Description", ""), parameter_group=group_name, subnet_group=subnet_group,
        security_group_ids=body.get("SecurityGroupIds") or ["sg-meridian"], tags=tags,
        notification_topic_arn=body.get("NotificationTopicArn"),
        sse_enabled=body.get("SSESpecification", {}).get("Enabled", False),
        network_type=body.get("NetworkType", "ipv4"), encryption_type=encryption,
    )  # fmt: skip
    if "PreferredMaintenanceWindow" in body:
        record.maintenance_window = body["PreferredMaintenanceWindow"]
    control.clusters[name] = record

    async def start() -> None:
        from .cluster import start_dax_cluster  # noqa: PLC0415 - only when a cluster is made

        cluster = await start_dax_cluster(
            control.upstream, name=name, host=control.host, node_count=0, base_port=None,
            record_ttl_ms=group.record_ttl_ms, query_ttl_ms=group.query_ttl_ms, attribute_lists_path=None,
            region=control.region, credentials=control.credentials, tls=tls,
        )  # fmt: skip
        try:
            await cluster.add_nodes(factor, zones)
        except BaseException:
            await cluster.close()
            raise
        now_s = time.time()
        record.node_created_s = {front.node_id: now_s for front in cluster.nodes}
        ctx.dax_clusters[name] = cluster
        record.status = "available"
        control.note(name, "CLUSTER", "Cluster created.")

    control.run(record, start(), "create the cluster")
    return {"Cluster": control.describe_cluster(record, None)}


async def describe_clusters(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    wanted = body.get("ClusterNames")
    if wanted:
        found = [find_cluster(ctx, name) for name in wanted]
    else:
        found = [find_cluster(ctx, name) for name in cluster_names(ctx)]
    entries, more = page(found, body)
    return {"Clusters": [control.describe_cluster(record, live) for record, live in entries], **more}


async def update_cluster(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    group = None
    if "ParameterGroupName" in body:
        group = control.parameter_groups.get(body["ParameterGroupName"])
        if group is None:
            raise ParameterGroupNotFoundFault(f"Parameter group {body['ParameterGroupName']} not found.")
    status = body.get("NotificationTopicStatus")
    if status is not None and status not in ("active", "inactive"):
        raise InvalidParameterValueException(f"Invalid NotificationTopicStatus: {status} (active or inactive).")
    record, live = find_cluster(ctx, body["ClusterName"])
    if record.status != "available" or live is None:
        raise InvalidClusterStateFault(f"Cluster {record.name} is not in the available state (it is {record.status}).")
    if group is not None:
        record.parameter_group = group.name
        live.set_ttls(group.record_ttl_ms, group.query_ttl_ms)
    record.description = body.get("Description", record.description)
    record.maintenance_window = body.get("PreferredMaintenanceWindow", record.maintenance_window)
    record.notification_topic_arn = body.get("NotificationTopicArn", record.notification_topic_arn)
    record.notification_topic_status = status or record.notification_topic_status
    record.security_group_ids = body.get("SecurityGroupIds") or record.security_group_ids
    return {"Cluster": control.describe_cluster(record, live)}


async def delete_cluster(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    record, _live = find_cluster(ctx, body["ClusterName"])
    if record.status == "deleting":
        raise InvalidClusterStateFault(f"Cluster {record.name} is already being deleted.")
    previous = record.task
    record.status = "deleting"
    name = record.name

    async def delete() -> None:
        if previous is not None and not previous.done():  # a creation or resize finishes first
            await asyncio.wait([previous])
        record.status = "deleting"
        cluster = ctx.dax_clusters.pop(name, None)
        if cluster is not None:
            await cluster.close()
        control.clusters.pop(name, None)
        control.note(name, "CLUSTER", "Cluster deleted.")

    control.run(record, delete(), "delete the cluster")
    return {"Cluster": control.describe_cluster(record, None)}


async def increase_replication_factor(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    record, live = find_cluster(ctx, body["ClusterName"])
    _ready(record, live)
    factor, current = body["NewReplicationFactor"], len(live.nodes)
    if factor <= current:
        raise InvalidParameterValueException(
            f"NewReplicationFactor ({factor}) must be greater than the cluster's current one ({current}).")
    if factor > limits.DAX_CLUSTER_NODES_MAX:
        raise NodeQuotaForClusterExceededFault(f"A DAX cluster has at most {limits.DAX_CLUSTER_NODES_MAX} nodes.")
    if _nodes_in_use(ctx) + factor - current > limits.DAX_CONTROL_NODES_MAX:
        raise NodeQuotaForCustomerExceededFault(f"At most {limits.DAX_CONTROL_NODES_MAX} DAX nodes in all.")
    zones = _zones_for(factor - current, body.get("AvailabilityZones"))
    record.status, record.total_nodes = "modifying", factor

    async def grow() -> None:
        added = await live.add_nodes(factor - current, zones)
        for front in added:
            record.node_created_s[front.node_id] = time.time()
            control.note(record.name, "CLUSTER", f"Added node {front.node_id}.")
        record.total_nodes = len(live.nodes)
        record.status = "available"

    control.run(record, grow(), "add nodes")
    return {"Cluster": control.describe_cluster(record, live)}


def _victims(record: ClusterRecord, live: Any, count: int, body: dict[str, Any]) -> list[str]:
    """The nodes DecreaseReplicationFactor removes: those named, else those in the zones
    named, else the newest replicas (the leader last)."""
    node_ids = [front.node_id for front in live.nodes]
    named = body.get("NodeIdsToRemove")
    if named:
        for node_id in named:
            if node_id not in node_ids:
                raise NodeNotFoundFault(f"Node {node_id} not found in cluster {record.name}.")
        if len(set(named)) != count:
            raise InvalidParameterCombinationException(
                f"NodeIdsToRemove names {len(set(named))} node(s), but going from {len(node_ids)} to "
                f"{len(node_ids) - count} nodes removes {count}.")
        return list(dict.fromkeys(named))
    newest_first = list(reversed(live.nodes[1:])) + live.nodes[:1]
    zones = body.get("AvailabilityZones")
    if zones:
        newest_first = [front for front in newest_first if front.server.node.az in zones]
        if len(newest_first) < count:
            raise InvalidParameterValueException(
                f"The Availability Zones {', '.join(zones)} hold fewer than {count} node(s) of cluster {record.name}.")
    return [front.node_id for front in newest_first[:count]]


async def decrease_replication_factor(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    record, live = find_cluster(ctx, body["ClusterName"])
    _ready(record, live)
    factor, current = body["NewReplicationFactor"], len(live.nodes)
    if factor < 1:
        raise InvalidParameterValueException(
            "DecreaseReplicationFactor cannot remove the last node of a cluster; use DeleteCluster instead.")
    if factor >= current:
        raise InvalidParameterValueException(
            f"NewReplicationFactor ({factor}) must be less than the cluster's current one ({current}).")
    victims = _victims(record, live, current - factor, body)
    record.status, record.total_nodes, record.node_ids_to_remove = "modifying", factor, victims

    async def shrink() -> None:
        await live.remove_nodes(len(victims), node_ids=victims)
        for node_id in victims:
            record.node_created_s.pop(node_id, None)
            control.note(record.name, "CLUSTER", f"Removed node {node_id}.")
        record.node_ids_to_remove = []
        record.total_nodes = len(live.nodes)
        record.status = "available"

    control.run(record, shrink(), "remove nodes")
    return {"Cluster": control.describe_cluster(record, live)}


async def reboot_node(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
    control = control_of(ctx)
    record, live = find_cluster(ctx, body["ClusterName"])
    node_id = body["NodeId"]
    if live is not None and node_id not in [front.node_id for front in live.nodes]:
        raise NodeNotFoundFault(f"Node {node_id} not found in cluster {record.name}.")
    _ready(record, live)
    record.node_status[node_id] = "rebooting"

    async def reboot() -> None:
        await live.reboot_node(node_id)
        record.node_status.pop(node_id, None)
        control.note(record.name, "CLUSTER", f"Rebooted node {node_id}.")

    control.run(record, reboot(), f"reboot node {node_id}")
    return {"Cluster": control.describe_cluster(record, live)}


ACTIONS = {
    "CreateCluster": create_cluster,
    "DescribeClusters": describe_clusters,
    "UpdateCluster": update_cluster,
    "DeleteCluster": delete_cluster,
    "IncreaseReplicationFactor": increase_replication_factor,
    "DecreaseReplicationFactor": decrease_replication_factor,
    "RebootNode": reboot_node,
}
