"""The DAX control plane (``AmazonDAXV3``) of ``meridian serve``, through the aws CLI and boto3.

One real ``meridian serve --dax-port`` process.  Clusters made with
``aws dax create-cluster`` really start nodes: the published Python DAX
client connects to the ``ClusterDiscoveryEndpoint`` URL DescribeClusters
hands out and reads an item through them; IncreaseReplicationFactor,
DecreaseReplicationFactor and RebootNode change what the nodes list in
DAX's ``endpoints`` call (and a reboot empties the node's cache); a
parameter group's TTLs reach the nodes' caches.  Errors are DAX's faults.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from meridian.router.dax import tls

amazondax = pytest.importorskip("amazondax")

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/DAXServiceRole"
WAIT_S = 20.0
AWS_CLI = Path(sys.executable).with_name("aws")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    http_port, dax_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("dax-control") / "serve.log"
    process = ManagedProcess(["serve", "--in-memory", "--port", str(http_port), "--dax-port", str(dax_port),
                              "--no-throttling"], log_path=log, name="serve-dax-control")
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 30, process=process)
        wait_for_port("127.0.0.1", dax_port, 30, process=process)
        yield {"http": f"http://127.0.0.1:{http_port}", "dax_port": dax_port}
    finally:
        process.terminate()


def _client(service: str, server):
    return boto3.client(service, endpoint_url=server["http"], region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test")


@pytest.fixture(scope="module")
def dax_control(server):
    return _client("dax", server)


@pytest.fixture(scope="module")
def ddb(server):
    client = _client("dynamodb", server)
    client.create_table(TableName="ctl", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    return client


def aws(server, *args: str) -> dict:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}
    done = subprocess.run([str(AWS_CLI), "dax", *args, "--endpoint-url", server["http"], "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def wait_until(dax_control, name: str, ready) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        cluster = dax_control.describe_clusters(ClusterNames=[name])["Clusters"][0]
        if ready(cluster):
            return cluster
        assert time.monotonic() < deadline, f"cluster {name} never got there: {cluster}"
        time.sleep(0.05)


def available(dax_control, name: str) -> dict:
    return wait_until(dax_control, name, lambda c: c["Status"] == "available"
                      and all(n["NodeStatus"] == "available" for n in c["Nodes"]))


def fault(info) -> str:
    return info.value.response["Error"]["Code"]


def dax_client(url: str):
    return amazondax.AmazonDaxClient(endpoint_url=url, region_name=REGION, aws_access_key_id="test",
                                     aws_secret_access_key="test")


def listed_ports(client) -> list[int]:
    """The node ports a node of the cluster lists in DAX's ``endpoints`` call, asked now."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return sorted(endpoint["port"] for endpoint in client._cluster.read_client().endpoints())
        except Exception:  # noqa: BLE001 - the node the client held may just have left or rebooted
            assert time.monotonic() < deadline
            time.sleep(0.1)


def retrying(call):
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return call()
        except Exception:  # noqa: BLE001 - the client reconnects on its own schedule
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_the_flag_cluster_is_listed(server, dax_control):
    (cluster,) = [c for c in dax_control.describe_clusters()["Clusters"] if c["ClusterName"] == "meridian"]
    port = server["dax_port"]
    assert cluster["Status"] == "available" and cluster["TotalNodes"] == cluster["ActiveNodes"] == 1
    assert cluster["ClusterDiscoveryEndpoint"] == {"Address": "127.0.0.1", "Port": port, "URL": f"dax://127.0.0.1:{port}"}
    assert cluster["Nodes"][0]["NodeId"] == "meridian-a" and cluster["Nodes"][0]["Endpoint"]["Port"] == port
    assert cluster["ClusterArn"].startswith(f"arn:aws:dax:{REGION}:") and cluster["ClusterArn"].endswith(":cache/meridian")


def test_create_connect_read_and_delete(server, dax_control, ddb):
    made = aws(server, "create-cluster", "--cluster-name", "Reads", "--node-type", "dax.r5.large",
               "--replication-factor", "3", "--iam-role-arn", ROLE, "--tags", "Key=team,Value=cache")["Cluster"]
    assert made["ClusterName"] == "reads" and made["Status"] == "creating" and made["TotalNodes"] == 3
    assert "Nodes" not in made
    cluster = available(dax_control, "reads")
    url = cluster["ClusterDiscoveryEndpoint"]["URL"]
    assert url.startswith("dax://127.0.0.1:") and cluster["ActiveNodes"] == 3
    assert [n["NodeId"] for n in cluster["Nodes"]] == ["reads-a", "reads-b", "reads-c"]
    ddb.put_item(TableName="ctl", Item={"pk": {"S": "seen"}, "v": {"N": "1"}})
    client = dax_client(url)
    try:
        assert client.get_item(TableName="ctl", Key={"pk": {"S": "seen"}})["Item"]["v"] == {"N": "1"}
        client.put_item(TableName="ctl", Item={"pk": {"S": "via-dax"}, "v": {"N": "2"}})
        assert listed_ports(client) == sorted(n["Endpoint"]["Port"] for n in cluster["Nodes"])
    finally:
        client.close()
    assert ddb.get_item(TableName="ctl", Key={"pk": {"S": "via-dax"}}, ConsistentRead=True)["Item"]["v"] == {"N": "2"}
    assert dax_control.list_tags(ResourceName=cluster["ClusterArn"])["Tags"] == [{"Key": "team", "Value": "cache"}]
    events = dax_control.describe_events(SourceName="reads", SourceType="CLUSTER")["Events"]
    assert [e["Message"] for e in events] == ["Cluster created."]

    assert aws(server, "delete-cluster", "--cluster-name", "reads")["Cluster"]["Status"] == "deleting"
    deadline = time.monotonic() + WAIT_S
    while any(c["ClusterName"] == "reads" for c in dax_control.describe_clusters()["Clusters"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(ClientError) as info:
        dax_control.describe_clusters(ClusterNames=["reads"])
    assert fault(info) == "ClusterNotFoundFault"
    assert dax_control.describe_events(SourceName="reads")["Events"][0]["Message"] == "Cluster deleted."


def test_resizes_and_reboots_change_the_nodes(dax_control, ddb):
    dax_control.create_cluster(ClusterName="grow", NodeType="dax.t3.small", ReplicationFactor=1, IamRoleArn=ROLE)
    cluster = available(dax_control, "grow")
    client = dax_client(cluster["ClusterDiscoveryEndpoint"]["URL"])
    try:
        assert len(listed_ports(client)) == 1
        grown = dax_control.increase_replication_factor(ClusterName="grow", NewReplicationFactor=4)["Cluster"]
        assert grown["Status"] == "modifying" and grown["TotalNodes"] == 4
        cluster = available(dax_control, "grow")
        assert [n["NodeId"] for n in cluster["Nodes"]] == ["grow-a", "grow-b", "grow-c", "grow-d"]
        assert listed_ports(client) == sorted(n["Endpoint"]["Port"] for n in cluster["Nodes"])

        shrunk = dax_control.decrease_replication_factor(ClusterName="grow", NewReplicationFactor=3,
                                                         NodeIdsToRemove=["grow-b"])["Cluster"]
        assert shrunk["Status"] == "modifying"
        cluster = available(dax_control, "grow")
        assert [n["NodeId"] for n in cluster["Nodes"]] == ["grow-a", "grow-c", "grow-d"]
        dax_control.decrease_replication_factor(ClusterName="grow", NewReplicationFactor=1)
        cluster = available(dax_control, "grow")
        assert [n["NodeId"] for n in cluster["Nodes"]] == ["grow-a"]
        assert listed_ports(client) == [cluster["Nodes"][0]["Endpoint"]["Port"]]

        # a reboot empties the node's item cache: a write that bypassed DAX shows afterwards
        key = {"pk": {"S": "reboot"}}
        ddb.put_item(TableName="ctl", Item={**key, "v": {"S": "old"}})
        assert retrying(lambda: client.get_item(TableName="ctl", Key=key))["Item"]["v"] == {"S": "old"}
        ddb.put_item(TableName="ctl", Item={**key, "v": {"S": "new"}})
        assert client.get_item(TableName="ctl", Key=key)["Item"]["v"] == {"S": "old"}  # cached
        rebooting = dax_control.reboot_node(ClusterName="grow", NodeId="grow-a")["Cluster"]
        assert rebooting["Nodes"][0]["NodeStatus"] == "rebooting"
        available(dax_control, "grow")
        assert retrying(lambda: client.get_item(TableName="ctl", Key=key))["Item"]["v"] == {"S": "new"}
    finally:
        client.close()
    messages = [e["Message"] for e in dax_control.describe_events(SourceName="grow")["Events"]]
    assert messages[0] == "Rebooted node grow-a." and "Added node grow-d." in messages
    assert "Removed node grow-b." in messages and messages[-1] == "Cluster created."
    dax_control.delete_cluster(ClusterName="grow")


def test_a_parameter_group_sets_the_nodes_ttls(server, dax_control, ddb):
    aws(server, "create-parameter-group", "--parameter-group-name", "short-ttl", "--description", "half a second")
    aws(server, "update-parameter-group", "--parameter-group-name", "short-ttl", "--parameter-name-values",
        "ParameterName=record-ttl-millis,ParameterValue=400")
    values = {p["ParameterName"]: p["ParameterValue"]
              for p in dax_control.describe_parameters(ParameterGroupName="short-ttl")["Parameters"]}
    assert values == {"record-ttl-millis": "400", "query-ttl-millis": "300000"}
    defaults = dax_control.describe_default_parameters()["Parameters"]
    assert {p["ParameterName"]: p["ParameterValue"] for p in defaults} == {"record-ttl-millis": "300000",
                                                                            "query-ttl-millis": "300000"}
    dax_control.create_cluster(ClusterName="ttl", NodeType="dax.t3.small", ReplicationFactor=1, IamRoleArn=ROLE,
                               ParameterGroupName="short-ttl")
    cluster = available(dax_control, "ttl")
    assert cluster["ParameterGroup"]["ParameterGroupName"] == "short-ttl"
    with pytest.raises(ClientError) as info:
        dax_control.delete_parameter_group(ParameterGroupName="short-ttl")
    assert fault(info) == "InvalidParameterGroupStateFault"
    client = dax_client(cluster["ClusterDiscoveryEndpoint"]["URL"])
    try:
        key = {"pk": {"S": "ttl"}}
        ddb.put_item(TableName="ctl", Item={**key, "v": {"N": "1"}})
        assert client.get_item(TableName="ctl", Key=key)["Item"]["v"] == {"N": "1"}
        ddb.put_item(TableName="ctl", Item={**key, "v": {"N": "2"}})
        assert client.get_item(TableName="ctl", Key=key)["Item"]["v"] == {"N": "1"}  # cached
        time.sleep(0.6)
        assert client.get_item(TableName="ctl", Key=key)["Item"]["v"] == {"N": "2"}  # expired after 400 ms
    finally:
        client.close()
    dax_control.delete_cluster(ClusterName="ttl")
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            dax_control.delete_parameter_group(ParameterGroupName="short-ttl")
            break
        except ClientError as err:  # the cluster is still being deleted
            assert err.response["Error"]["Code"] == "InvalidParameterGroupStateFault" and time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("kwargs, expected", [
    ({"ClusterName": "9starts-with-digit", "ReplicationFactor": 1}, "InvalidParameterValueException"),
    ({"ClusterName": "double--hyphen", "ReplicationFactor": 1}, "InvalidParameterValueException"),
    ({"ClusterName": "a" * 21, "ReplicationFactor": 1}, "InvalidParameterValueException"),
    ({"ClusterName": "zero", "ReplicationFactor": 0}, "InvalidParameterValueException"),
    ({"ClusterName": "huge", "ReplicationFactor": 12}, "NodeQuotaForClusterExceededFault"),
    ({"ClusterName": "zones", "ReplicationFactor": 2, "AvailabilityZones": ["us-east-1a"]},
     "InvalidParameterCombinationException"),
    ({"ClusterName": "nogroup", "ReplicationFactor": 1, "ParameterGroupName": "nope"}, "ParameterGroupNotFoundFault"),
    ({"ClusterName": "nosubnet", "ReplicationFactor": 1, "SubnetGroupName": "nope"}, "SubnetGroupNotFoundFault"),
    ({"ClusterName": "meridian", "ReplicationFactor": 1}, "ClusterAlreadyExistsFault"),
    ({"ClusterName": "tls", "ReplicationFactor": 1, "ClusterEndpointEncryptionType": "TLS"},
     "InvalidParameterValueException"),  # this router has no DAX certificate
])
def test_create_cluster_faults(dax_control, kwargs, expected):
    with pytest.raises(ClientError) as info:
        dax_control.create_cluster(NodeType="dax.t3.small", IamRoleArn=ROLE, **kwargs)
    assert fault(info) == expected


def test_cluster_faults(dax_control):
    cases = [
        (lambda: dax_control.describe_clusters(ClusterNames=["nope"]), "ClusterNotFoundFault"),
        (lambda: dax_control.reboot_node(ClusterName="meridian", NodeId="meridian-z"), "NodeNotFoundFault"),
        (lambda: dax_control.decrease_replication_factor(ClusterName="meridian", NewReplicationFactor=0),
         "InvalidParameterValueException"),
        (lambda: dax_control.increase_replication_factor(ClusterName="meridian", NewReplicationFactor=1),
         "InvalidParameterValueException"),
        (lambda: dax_control.increase_replication_factor(ClusterName="nope", NewReplicationFactor=2),
         "ClusterNotFoundFault"),
        (lambda: dax_control.describe_clusters(MaxResults=5), "InvalidParameterValueException"),
        (lambda: dax_control.update_cluster(ClusterName="meridian", ParameterGroupName="nope"),
         "ParameterGroupNotFoundFault"),
        (lambda: dax_control.delete_parameter_group(ParameterGroupName="default.dax1.0"),
         "InvalidParameterValueException"),
        (lambda: dax_control.update_parameter_group(
            ParameterGroupName="default.dax1.0",
            ParameterNameValues=[{"ParameterName": "record-ttl-millis", "ParameterValue": "1"}]),
         "InvalidParameterValueException"),
        (lambda: dax_control.describe_parameters(ParameterGroupName="nope"), "ParameterGroupNotFoundFault"),
        (lambda: dax_control.list_tags(ResourceName="not-an-arn"), "InvalidARNFault"),
        (lambda: dax_control.list_tags(ResourceName=f"arn:aws:dax:{REGION}:000000000000:cache/nope"),
         "ClusterNotFoundFault"),
        (lambda: dax_control.delete_subnet_group(SubnetGroupName="nope"), "SubnetGroupNotFoundFault"),
        (lambda: dax_control.create_subnet_group(SubnetGroupName="bad", SubnetIds=["vpc-1"]), "InvalidSubnet"),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as info:
            call()
        assert fault(info) == expected


def test_decrease_with_the_wrong_node_count(dax_control):
    dax_control.create_cluster(ClusterName="pair", NodeType="dax.t3.small", ReplicationFactor=3, IamRoleArn=ROLE)
    available(dax_control, "pair")
    with pytest.raises(ClientError) as info:
        dax_control.decrease_replication_factor(ClusterName="pair", NewReplicationFactor=2,
                                                NodeIdsToRemove=["pair-b", "pair-c"])
    assert fault(info) == "InvalidParameterCombinationException"
    with pytest.raises(ClientError) as info:
        dax_control.decrease_replication_factor(ClusterName="pair", NewReplicationFactor=2, NodeIdsToRemove=["pair-x"])
    assert fault(info) == "NodeNotFoundFault"
    dax_control.delete_cluster(ClusterName="pair")
    with pytest.raises(ClientError) as info:  # already deleting (or gone)
        dax_control.increase_replication_factor(ClusterName="pair", NewReplicationFactor=4)
    assert fault(info) in ("InvalidClusterStateFault", "ClusterNotFoundFault")


def test_tags_subnet_groups_and_event_pages(dax_control):
    arn = next(c["ClusterArn"] for c in dax_control.describe_clusters()["Clusters"] if c["ClusterName"] == "meridian")
    assert dax_control.tag_resource(ResourceName=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])[
        "Tags"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert dax_control.untag_resource(ResourceName=arn, TagKeys=["a"])["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as info:
        dax_control.untag_resource(ResourceName=arn, TagKeys=["a"])
    assert fault(info) == "TagNotFoundFault"
    with pytest.raises(ClientError) as info:
        dax_control.tag_resource(ResourceName=arn, Tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])
    assert fault(info) == "TagQuotaPerResourceExceeded"

    made = dax_control.create_subnet_group(SubnetGroupName="Private", SubnetIds=["subnet-1", "subnet-2"])["SubnetGroup"]
    assert made["SubnetGroupName"] == "private" and [s["SubnetIdentifier"] for s in made["Subnets"]] == ["subnet-1",
                                                                                                         "subnet-2"]
    updated = dax_control.update_subnet_group(SubnetGroupName="private", SubnetIds=["subnet-3"], Description="d")
    assert updated["SubnetGroup"]["Description"] == "d"
    names = [g["SubnetGroupName"] for g in dax_control.describe_subnet_groups()["SubnetGroups"]]
    assert names == ["default", "private"]
    with pytest.raises(ClientError) as info:
        dax_control.create_subnet_group(SubnetGroupName="private", SubnetIds=["subnet-1"])
    assert fault(info) == "SubnetGroupAlreadyExistsFault"
    with pytest.raises(ClientError) as info:
        dax_control.delete_subnet_group(SubnetGroupName="default")  # the meridian cluster uses it
    assert fault(info) == "SubnetGroupInUseFault"
    dax_control.delete_subnet_group(SubnetGroupName="private")

    for i in range(12):  # 24 parameter-group events: more than one page of 20
        dax_control.create_parameter_group(ParameterGroupName=f"pages-{i}")
        dax_control.delete_parameter_group(ParameterGroupName=f"pages-{i}")
    first = dax_control.describe_events(SourceType="PARAMETER_GROUP", MaxResults=20)
    assert len(first["Events"]) == 20 and "NextToken" in first
    rest = dax_control.describe_events(SourceType="PARAMETER_GROUP", MaxResults=20, NextToken=first["NextToken"])
    assert len(rest["Events"]) >= 4 and "NextToken" not in rest
    everything = [e for page in dax_control.get_paginator("describe_events").paginate(SourceType="PARAMETER_GROUP")
                  for e in page["Events"]]
    assert everything == first["Events"] + rest["Events"]
    assert dax_control.describe_events(SourceType="PARAMETER_GROUP", Duration=0, EndTime=0)["Events"] == []


def _raw(server, target: str, body: bytes, content_type: str = "application/x-amz-json-1.1"):
    request = urllib.request.Request(server["http"], data=body, method="POST", headers={
        "Content-Type": content_type, "X-Amz-Target": target, "X-Amz-Date": "20260101T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dax/aws4_request, "
                         "SignedHeaders=host, Signature=00"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], json.loads(answer.read())
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, err.headers["Content-Type"], json.loads(raw) if raw.startswith(b"{") else raw


def test_wire_format(server):
    status, ctype, body = _raw(server, "AmazonDAXV3.DescribeClusters", b"{}")
    assert (status, ctype) == (200, "application/x-amz-json-1.1") and body["Clusters"]
    status, ctype, body = _raw(server, "AmazonDAXV3.DescribeClusters", b'{"ClusterNames": ["nope"]}')
    assert (status, ctype) == (400, "application/x-amz-json-1.1")
    assert body["__type"] == "ClusterNotFoundFault" and "nope" in body["message"]
    status, _, body = _raw(server, "AmazonDAXV3.CreateCluster", b'{"ClusterName": "x", "ReplicationFactor": "three"}')
    assert status == 400 and body["__type"].endswith("SerializationException")
    status, _, body = _raw(server, "AmazonDAXV3.CreateCluster", b'{"ClusterName": "x"}')
    assert status == 400 and body["__type"] == "InvalidParameterValueException" and "NodeType" in body["message"]
    status, _, body = _raw(server, "AmazonDAXV3.NoSuchThing", b"{}")
    assert status == 400 and body["__type"].endswith("UnknownOperationException")
    # JSON 1.1 is the DAX control plane's only: DynamoDB's targets still want 1.0
    status, _, _ = _raw(server, "DynamoDB_20120810.ListTables", b"{}")
    assert status == 404


def test_a_tls_cluster_on_a_router_with_a_dax_certificate(tmp_path):
    """``ClusterEndpointEncryptionType TLS``: the nodes serve daxs:// with the router's DAX certificate."""
    http_port, dax_port = free_port(), free_port()
    process = ManagedProcess(["serve", "--data-dir", str(tmp_path / "data"), "--port", str(http_port), "--dax-port",
                              str(dax_port), "--dax-tls", "--no-throttling"], log_path=tmp_path / "serve.log",
                             name="serve-dax-control-tls", env={"TMPDIR": str(tmp_path)})
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 30, process=process)
        control = _client("dax", {"http": f"http://127.0.0.1:{http_port}"})
        made = control.create_cluster(ClusterName="secure", NodeType="dax.t3.small", ReplicationFactor=2,
                                      IamRoleArn=ROLE, ClusterEndpointEncryptionType="TLS")["Cluster"]
        assert made["ClusterEndpointEncryptionType"] == "TLS"
        cluster = available(control, "secure")
        endpoint = cluster["ClusterDiscoveryEndpoint"]
        assert endpoint["URL"] == f"daxs://127.0.0.1:{endpoint['Port']}"
        context = ssl.create_default_context(cafile=str(tmp_path / "data" / tls.CERT_FILE_NAME))
        context.check_hostname = False
        with socket.create_connection(("127.0.0.1", endpoint["Port"]), timeout=10) as raw:
            with context.wrap_socket(raw) as secured:  # the handshake verifies the router's certificate
                assert secured.version() is not None
    finally:
        process.terminate()


def test_with_credentials_the_control_plane_checks_signatures_scoped_to_dax(tmp_path):
    """With --credentials, AmazonDAXV3 requests are verified like DynamoDB's, against the ``dax`` service scope."""
    http_port = free_port()
    process = ManagedProcess(["serve", "--in-memory", "--port", str(http_port), "--credentials", "AKIDTEST:s3cret"],
                             log_path=tmp_path / "serve.log", name="serve-dax-credentials")
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 30, process=process)

        def client(secret: str):
            return boto3.client("dax", endpoint_url=f"http://127.0.0.1:{http_port}", region_name=REGION,
                                aws_access_key_id="AKIDTEST", aws_secret_access_key=secret)

        assert client("s3cret").describe_clusters()["Clusters"] == []
        with pytest.raises(ClientError) as info:
            client("wrong").describe_clusters()
        assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        process.terminate()
