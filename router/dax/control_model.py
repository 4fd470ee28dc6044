"""The DAX control plane's records: clusters, parameter groups, subnet groups, events, tags.

A cluster has two halves: its **record** here (what ``CreateCluster`` was
told: node type, role, parameter group, tags; and its status) and, once its
nodes listen, the running ``DaxCluster`` in ``RouterContext.dax_clusters``
(``router/dax/cluster.py``), which DescribeClusters reads for the nodes and
their real endpoints.  The cluster ``--dax-port`` starts has no record until
the control plane first sees it; one with DAX's defaults is made then.

Status moves as DAX documents it: ``creating`` until every node listens,
then ``available``; ``modifying`` while nodes are added or removed;
``deleting`` until the nodes are closed, then the cluster is gone.  A node
being rebooted is ``rebooting``.  The work behind each change runs as a task
of ``DaxControl`` (one at a time per cluster: a cluster with a change under
way refuses another with InvalidClusterStateFault).

Known gap: all of this lives in the router process's memory.  A restarted
router forgets the clusters the control plane created (their nodes stopped
with it), the parameter and subnet groups, the events and the tags; only
the ``--dax-port`` cluster comes back, from the router's flags.  Subnet and
security groups are recorded, never enforced: every node listens on the
router's host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable

from meridian.model import limits

from ..table_record import ACCOUNT_ID
from .control_faults import InvalidParameterValueException

log = logging.getLogger("meridian.dax.control")

DEFAULT_PARAMETER_GROUP = "default.dax1.0"
DEFAULT_SUBNET_GROUP = "default"
#: the node type recorded for a cluster the control plane did not create (``--dax-port``'s)
NODE_TYPE_OF_FLAG_CLUSTER = "dax.t3.small"
VPC_ID = "vpc-meridian"
#: DAX's two parameters: name -> (description, the record's attribute)
PARAMETERS = {
    "query-ttl-millis": ("Duration in milliseconds for queries to remain cached", "query_ttl_ms"),
    "record-ttl-millis": ("Duration in milliseconds for records to remain valid in cache (Default: 0 = infinite)",
                          "record_ttl_ms"),
}


@dataclass
class ParameterGroupRecord:
    name: str
    description: str = ""
    record_ttl_ms: int = limits.DAX_RECORD_TTL_MS_DEFAULT
    query_ttl_ms: int = limits.DAX_QUERY_TTL_MS_DEFAULT

    def describe(self) -> dict[str, Any]:
        return {"ParameterGroupName": self.name, "Description": self.description}

    def parameters(self) -> list[dict[str, Any]]:
        """DescribeParameters' entries, as DAX lists them (by name)."""
        return [
            {
                "ParameterName": name, "ParameterType": "DEFAULT", "ParameterValue": str(getattr(self, attribute)),
                "NodeTypeSpecificValues": [], "Description": description, "Source": "user", "DataType": "integer",
                "AllowedValues": "0-", "IsModifiable": "TRUE", "ChangeType": "IMMEDIATE",
            }
            for name, (description, attribute) in sorted(PARAMETERS.items())
        ]  # fmt: skip


@dataclass
class SubnetGroupRecord:
    name: str
    region: str
    subnet_ids: list[str]
    description: str = ""

    def describe(self) -> dict[str, Any]:
        zones = "abc"
        return {
            "SubnetGroupName": self.name, "Description": self.description, "VpcId": VPC_ID,
            "Subnets": [
                {"SubnetIdentifier": subnet, "SubnetAvailabilityZone": f"{self.region}{zones[i % len(zones)]}",
                 "SupportedNetworkTypes": ["ipv4"]}
                for i, subnet in enumerate(self.subnet_ids)
            ],
            "SupportedNetworkTypes": ["ipv4"],
        }  # fmt: skip


@dataclass
class ClusterRecord:
    name: str
    node_type: str
    iam_role_arn: str
    total_nodes: int
    description: str = ""
    parameter_group: str = DEFAULT_PARAMETER_GROUP
    subnet_group: str = DEFAULT_SUBNET_GROUP
    security_group_ids: list[str] = field(default_factory=lambda: ["sg-meridian"])
    maintenance_window: str = "sun:05:00-sun:06:00"
    notification_topic_arn: str | None = None
    notification_topic_status: str = "active"
    sse_enabled: bool = False
    encryption_type: str = "NONE"
    network_type: str = "ipv4"
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "creating"
    created_s: float = field(default_factory=time.time)
    #: node id -> when it started listening (epoch seconds)
    node_created_s: dict[str, float] = field(default_factory=dict)
    #: node id -> a status other than ``available`` (``rebooting``)
    node_status: dict[str, str] = field(default_factory=dict)
    node_ids_to_remove: list[str] = field(default_factory=list)
    #: the change under way (create, resize, reboot, delete), or None
    task: asyncio.Task | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass(frozen=True, slots=True)
class Event:
    source_name: str
    source_type: str
    message: str
    date_s: float

    def describe(self) -> dict[str, Any]:
        return {"SourceName": self.source_name, "SourceType": self.source_type, "Message": self.message,
                "Date": self.date_s}


class DaxControl:
    """The control plane's state for one router: records, events, the tasks doing the work.

    ``upstream``: what new clusters' nodes call (the router's in-process
    upstream); ``host``: where they listen; ``credentials``: what their
    clients must sign with (the router's ``--credentials``; None: any).
    """

    def __init__(self, upstream: Any, *, host: str, region: str, credentials: dict | None = None) -> None:
        self.upstream = upstream
        self.host = host
        self.region = region
        self.credentials = credentials
        self.clusters: dict[str, ClusterRecord] = {}
        self.parameter_groups: dict[str, ParameterGroupRecord] = {
            DEFAULT_PARAMETER_GROUP: ParameterGroupRecord(DEFAULT_PARAMETER_GROUP, "Default parameter group for dax1.0"),
        }
        self.subnet_groups: dict[str, SubnetGroupRecord] = {
            DEFAULT_SUBNET_GROUP: SubnetGroupRecord(DEFAULT_SUBNET_GROUP, region, ["subnet-meridian-a", "subnet-meridian-b",
                                                    "subnet-meridian-c"], "Default subnet group"),
        }  # fmt: skip
        self.events: deque[Event] = deque(maxlen=limits.DAX_CONTROL_EVENTS_MAX)
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return (f"<DaxControl clusters={sorted(self.clusters)} parameter_groups={len(self.parameter_groups)} "
                f"events={len(self.events)} tasks={len(self._tasks)}>")

    def arn(self, cluster_name: str) -> str:
        return f"arn:aws:dax:{self.region}:{ACCOUNT_ID}:cache/{cluster_name}"

    def record_of(self, name: str, live: Any) -> ClusterRecord:
        """The record of cluster ``name``; one with DAX's defaults for a running cluster
        the control plane did not create (``--dax-port``'s)."""
        record = self.clusters.get(name)
        if record is None:
            record = ClusterRecord(name=name, node_type=NODE_TYPE_OF_FLAG_CLUSTER, total_nodes=len(live.nodes),
                                   iam_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/DAXServiceRole", status="available")
            now_s = time.time()
            record.node_created_s = {front.node_id: now_s for front in live.nodes}
            self.clusters[name] = record
        return record

    def note(self, source_name: str, source_type: str, message: str) -> None:
        """Record an event (DescribeEvents), dropping those past DAX's 14 days."""
        now_s = time.time()
        while self.events and self.events[0].date_s < now_s - limits.DAX_CONTROL_EVENTS_RETENTION_S:
            self.events.popleft()
        self.events.append(Event(source_name, source_type, message, now_s))

    def run(self, record: ClusterRecord, work: Awaitable[None], what: str) -> None:
        """Do ``work`` in the background as ``record``'s change under way; a failure is logged
        and noted as an event, and leaves the cluster ``available`` (or gone, for a creation)."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:  # noqa: BLE001 - a failed change must not kill the router
                log.exception("DAX cluster %s: %s failed", record.name, what)
                self.note(record.name, "CLUSTER", f"Failed to {what}: {exc}.")
                if record.status == "creating":
                    self.clusters.pop(record.name, None)
                else:
                    record.status = "available"
                record.node_status.clear()
                record.node_ids_to_remove = []

        task = asyncio.get_running_loop().create_task(guarded(), name=f"dax-control-{record.name}-{what}")
        record.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def describe_cluster(self, record: ClusterRecord, live: Any) -> dict[str, Any]:
        """DescribeClusters' entry: cluster-level information only while creating or deleting,
        as DAX shows it; the running nodes' real endpoints otherwise."""
        group = self.parameter_groups.get(record.parameter_group)
        out: dict[str, Any] = {
            "ClusterName": record.name, "ClusterArn": self.arn(record.name), "TotalNodes": record.total_nodes,
            "ActiveNodes": 0, "NodeType": record.node_type, "Status": record.status,
        }
        if record.description:
            out["Description"] = record.description
        if live is not None and live.nodes and record.status not in ("creating", "deleting"):
            host, port = live.discovery
            out["ClusterDiscoveryEndpoint"] = {"Address": host, "Port": port, "URL": live.url}
            out["Nodes"] = [self._describe_node(record, front) for front in live.nodes]
            out["ActiveNodes"] = sum(1 for front in live.nodes if front.node_id not in record.node_status)
            if record.node_ids_to_remove:
                out["NodeIdsToRemove"] = list(record.node_ids_to_remove)
        out["PreferredMaintenanceWindow"] = record.maintenance_window
        if record.notification_topic_arn:
            out["NotificationConfiguration"] = {"TopicArn": record.notification_topic_arn,
                                                "TopicStatus": record.notification_topic_status}
        out["SubnetGroup"] = record.subnet_group
        out["SecurityGroups"] = [{"SecurityGroupIdentifier": sg, "Status": "active"} for sg in record.security_group_ids]
        out["IamRoleArn"] = record.iam_role_arn
        out["ParameterGroup"] = {"ParameterGroupName": group.name if group else record.parameter_group,
                                 "ParameterApplyStatus": "in-sync", "NodeIdsToReboot": []}
        out["SSEDescription"] = {"Status": "ENABLED" if record.sse_enabled else "DISABLED"}
        out["ClusterEndpointEncryptionType"] = record.encryption_type
        out["NetworkType"] = record.network_type
        return out

    def _describe_node(self, record: ClusterRecord, front: Any) -> dict[str, Any]:
        return {
            "NodeId": front.node_id,
            "Endpoint": {"Address": front.host, "Port": front.port, "URL": front.url},
            "NodeCreateTime": record.node_created_s.get(front.node_id, record.created_s),
            "AvailabilityZone": front.server.node.az,
            "NodeStatus": record.node_status.get(front.node_id, "available"),
            "ParameterGroupStatus": "in-sync",
        }

    async def close(self) -> None:
        """Wait for the changes under way (the router closes the clusters themselves)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def page(entries: list[Any], body: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """One page of ``entries`` by the request's MaxResults (20 to 100, as DAX demands) and
    NextToken (Meridian's: the index of the next entry), and the answer's NextToken member."""
    max_results = body.get("MaxResults", limits.DAX_CONTROL_PAGE_RESULTS_MAX)
    if not limits.DAX_CONTROL_PAGE_RESULTS_MIN <= max_results <= limits.DAX_CONTROL_PAGE_RESULTS_MAX:
        raise InvalidParameterValueException(
            f"The value for MaxResults must be between {limits.DAX_CONTROL_PAGE_RESULTS_MIN} and "
            f"{limits.DAX_CONTROL_PAGE_RESULTS_MAX}.")
    token = body.get("NextToken")
    start = 0
    if token is not None:
        if not token.isdigit() or int(token) > len(entries):
            raise InvalidParameterValueException("Invalid NextToken.")
        start = int(token)
    end = start + max_results
    return entries[start:end], ({"NextToken": str(end)} if end < len(entries) else {})
