"""The DAX control plane's errors and request shapes (``AmazonDAXV3``, JSON 1.1).

Errors.  DAX's faults are the ``exception`` shapes of botocore's model for
``dax`` (2017-04-19); DAX sends them as ``{"__type": "<Fault>", "message":
...}`` with HTTP 400, no namespace, so each class here is a ``DynamoError``
with an empty namespace, formatted by ``router/app.py`` like every other
error::

    DaxFault                                  (DynamoError, no namespace)
    ├── InvalidParameterValueException        a value out of range, a bad name, a member missing
    ├── InvalidParameterCombinationException  members that do not go together
    ├── ClusterNotFoundFault / ClusterAlreadyExistsFault / InvalidClusterStateFault
    ├── NodeNotFoundFault / NodeQuotaForClusterExceededFault / NodeQuotaForCustomerExceededFault
    ├── ClusterQuotaForCustomerExceededFault
    ├── ParameterGroupNotFoundFault / ParameterGroupAlreadyExistsFault
    ├── ParameterGroupQuotaExceededFault / InvalidParameterGroupStateFault
    ├── SubnetGroupNotFoundFault / SubnetGroupAlreadyExistsFault / SubnetGroupInUseFault
    ├── SubnetGroupQuotaExceededFault / SubnetQuotaExceededFault / InvalidSubnet
    └── InvalidARNFault / TagNotFoundFault / TagQuotaPerResourceExceeded

Messages are Meridian's (no capture of DAX's wording is on record), in the
API reference's words where it has some.

Shapes.  ``check_request`` runs before an action: JSON types first
(``SerializationException``, as every Coral JSON service), then the
required members and the enums (``InvalidParameterValueException``; the
SDKs check both before sending, so only hand-made requests see these).
``SHAPES`` is the request side of botocore's model, as data.
"""

from __future__ import annotations

from typing import Any

from meridian.model.errors import DynamoError, SerializationException


class DaxFault(DynamoError):
    """A DAX control-plane error: ``__type`` is the bare fault name."""

    namespace = ""


def _fault(name: str, doc: str) -> type[DaxFault]:
    return type(name, (DaxFault,), {"type_name": name, "__doc__": doc, "__module__": __name__})


InvalidParameterValueException = _fault("InvalidParameterValueException", "The value for a parameter is invalid.")
InvalidParameterCombinationException = _fault(
    "InvalidParameterCombinationException", "Two or more incompatible parameters were specified.")
ClusterNotFoundFault = _fault("ClusterNotFoundFault", "The cluster name does not refer to an existing DAX cluster.")
ClusterAlreadyExistsFault = _fault("ClusterAlreadyExistsFault", "A cluster of that name already exists.")
InvalidClusterStateFault = _fault("InvalidClusterStateFault", "The DAX cluster is not in the available state.")
ClusterQuotaForCustomerExceededFault = _fault("ClusterQuotaForCustomerExceededFault", "Too many DAX clusters.")
NodeNotFoundFault = _fault("NodeNotFoundFault", "None of the cluster's nodes has the given node id.")
NodeQuotaForClusterExceededFault = _fault("NodeQuotaForClusterExceededFault", "Too many nodes for one cluster.")
NodeQuotaForCustomerExceededFault = _fault("NodeQuotaForCustomerExceededFault", "Too many nodes over all clusters.")
ParameterGroupNotFoundFault = _fault("ParameterGroupNotFoundFault", "The parameter group does not exist.")
ParameterGroupAlreadyExistsFault = _fault("ParameterGroupAlreadyExistsFault", "The parameter group exists already.")
ParameterGroupQuotaExceededFault = _fault("ParameterGroupQuotaExceededFault", "Too many parameter groups.")
InvalidParameterGroupStateFault = _fault("InvalidParameterGroupStateFault", "The parameter group cannot change now.")
SubnetGroupNotFoundFault = _fault("SubnetGroupNotFoundFault", "The subnet group does not exist.")
SubnetGroupAlreadyExistsFault = _fault("SubnetGroupAlreadyExistsFault", "The subnet group exists already.")
SubnetGroupInUseFault = _fault("SubnetGroupInUseFault", "A cluster uses the subnet group.")
SubnetGroupQuotaExceededFault = _fault("SubnetGroupQuotaExceededFault", "Too many subnet groups.")
SubnetQuotaExceededFault = _fault("SubnetQuotaExceededFault", "Too many subnets in one subnet group.")
InvalidSubnet = _fault("InvalidSubnet", "A subnet id is not valid.")
InvalidARNFault = _fault("InvalidARNFault", "The ARN supplied is not valid.")
TagNotFoundFault = _fault("TagNotFoundFault", "The tag does not exist.")
TagQuotaPerResourceExceeded = _fault("TagQuotaPerResourceExceeded", "Too many tags on one resource.")


# --- request shapes -----------------------------------------------------------------
# Member kinds: "s" string, "i" integer, "b" boolean, "t" timestamp (epoch seconds
# or ISO 8601 text), "[s]" list of strings, "tags" [{Key, Value}], "pnv"
# [{ParameterName, ParameterValue}], "sse" {Enabled}.  A "!" suffix: required.
_PAGE = {"MaxResults": "i", "NextToken": "s"}
SHAPES: dict[str, dict[str, str]] = {
    "CreateCluster": {
        "ClusterName": "s!", "NodeType": "s!", "Description": "s", "ReplicationFactor": "i!", "AvailabilityZones": "[s]",
        "SubnetGroupName": "s", "SecurityGroupIds": "[s]", "PreferredMaintenanceWindow": "s", "NotificationTopicArn": "s",
        "IamRoleArn": "s!", "ParameterGroupName": "s", "Tags": "tags", "SSESpecification": "sse",
        "ClusterEndpointEncryptionType": "s", "NetworkType": "s",
    },
    "DescribeClusters": {"ClusterNames": "[s]", **_PAGE},
    "UpdateCluster": {
        "ClusterName": "s!", "Description": "s", "PreferredMaintenanceWindow": "s", "NotificationTopicArn": "s",
        "NotificationTopicStatus": "s", "ParameterGroupName": "s", "SecurityGroupIds": "[s]",
    },
    "DeleteCluster": {"ClusterName": "s!"},
    "IncreaseReplicationFactor": {"ClusterName": "s!", "NewReplicationFactor": "i!", "AvailabilityZones": "[s]"},
    "DecreaseReplicationFactor": {
        "ClusterName": "s!", "NewReplicationFactor": "i!", "AvailabilityZones": "[s]", "NodeIdsToRemove": "[s]",
    },
    "RebootNode": {"ClusterName": "s!", "NodeId": "s!"},
    "CreateParameterGroup": {"ParameterGroupName": "s!", "Description": "s"},
    "DescribeParameterGroups": {"ParameterGroupNames": "[s]", **_PAGE},
    "UpdateParameterGroup": {"ParameterGroupName": "s!", "ParameterNameValues": "pnv!"},
    "DeleteParameterGroup": {"ParameterGroupName": "s!"},
    "DescribeParameters": {"ParameterGroupName": "s!", "Source": "s", **_PAGE},
    "DescribeDefaultParameters": dict(_PAGE),
    "CreateSubnetGroup": {"SubnetGroupName": "s!", "Description": "s", "SubnetIds": "[s]!"},
    "DescribeSubnetGroups": {"SubnetGroupNames": "[s]", **_PAGE},
    "UpdateSubnetGroup": {"SubnetGroupName": "s!", "Description": "s", "SubnetIds": "[s]"},
    "DeleteSubnetGroup": {"SubnetGroupName": "s!"},
    "DescribeEvents": {
        "SourceName": "s", "SourceType": "s", "StartTime": "t", "EndTime": "t", "Duration": "i", **_PAGE,
    },
    "TagResource": {"ResourceName": "s!", "Tags": "tags!"},
    "UntagResource": {"ResourceName": "s!", "TagKeys": "[s]!"},
    "ListTags": {"ResourceName": "s!", "NextToken": "s"},
}
#: member -> its enum's values (botocore's ``NetworkType``, ``ClusterEndpointEncryptionType``, ``SourceType``)
ENUMS: dict[str, tuple[str, ...]] = {
    "NetworkType": ("ipv4", "ipv6", "dual_stack"),
    "ClusterEndpointEncryptionType": ("NONE", "TLS"),
    "SourceType": ("CLUSTER", "PARAMETER_GROUP", "SUBNET_GROUP"),
}
_PAIRS = {"tags": ("Key", "Value"), "pnv": ("ParameterName", "ParameterValue")}


def _type_error(member: str, expected: str) -> SerializationException:
    return SerializationException(f"Expected {expected} for member {member}")


def _check_string_list(member: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _type_error(member, "a list")
    for entry in value:
        if not isinstance(entry, str):
            raise _type_error(member, "a list of strings")


def _check_member(member: str, kind: str, value: Any) -> Any:
    """The value as the action reads it (integers truncated, as Coral does), or SerializationException."""
    if kind == "s":
        if not isinstance(value, str):
            raise _type_error(member, "a string")
    elif kind == "i":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(member, "an integer")
        return int(value)
    elif kind == "b":
        if not isinstance(value, bool):
            raise _type_error(member, "a boolean")
    elif kind == "t":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _type_error(member, "a timestamp")
    elif kind == "[s]":
        _check_string_list(member, value)
    elif kind in _PAIRS:
        if not isinstance(value, list):
            raise _type_error(member, "a list")
        for entry in value:
            if not isinstance(entry, dict) or any(not isinstance(entry.get(k, ""), str) for k in _PAIRS[kind]):
                raise _type_error(member, "a list of structures of strings")
    elif kind == "sse":
        if not isinstance(value, dict) or not isinstance(value.get("Enabled"), bool):
            raise _type_error(member, "a structure with the boolean Enabled")
    return value


def check_request(action: str, body: Any) -> dict[str, Any]:
    """The request body, checked against ``SHAPES[action]``: unknown members are
    ignored, nulls dropped (as the JSON protocol reads them)."""
    if not isinstance(body, dict):
        raise SerializationException("Start of structure or map expected")
    out: dict[str, Any] = {}
    shape = SHAPES[action]
    for member, value in body.items():
        kind = shape.get(member)
        if kind is None or value is None:
            continue
        out[member] = _check_member(member, kind.rstrip("!"), value)
    for member, kind in shape.items():
        if kind.endswith("!") and member not in out:
            raise InvalidParameterValueException(f"The parameter {member} must be provided.")
    for member, allowed in ENUMS.items():
        if member in out and out[member] not in allowed:
            raise InvalidParameterValueException(
                f"Invalid value '{out[member]}' for {member}; valid values: {', '.join(allowed)}.")
    return out
