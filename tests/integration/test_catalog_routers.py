"""Every router of a region sees the same tables (the catalog lives on the nodes).

Two routers over the same three nodes; a third started later; table changes
made through one are visible through the others.
"""

from __future__ import annotations

from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from tests.conftest import make_client
from tests.waiting import wait_until

#: A router re-reads the catalog every CATALOG_REFRESH_INTERVAL_S; another router's change shows within this.
CATALOG_SEEN_TIMEOUT_S = 5.0


def _router(cluster: LocalCluster, tmp_path, name: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    nodes = ",".join(f"us-east-1-node-{i}={a}" for i, a in enumerate(cluster.node_addresses["us-east-1"]))
    proc = ManagedProcess(["router", "--port", str(port), "--nodes", nodes], log_path=tmp_path / f"{name}.log", name=name)
    endpoint = f"http://127.0.0.1:{port}"
    wait_for_http_ok(f"{endpoint}/health", 30, process=proc)
    return proc, endpoint


def test_routers_share_the_catalog(tmp_path):
    with LocalCluster(["us-east-1"], 3, None, tmp_path / "cluster", sync=False) as cluster:
        a = make_client(cluster.endpoints["us-east-1"])
        b_proc, b_endpoint = _router(cluster, tmp_path, "router-b")
        try:
            b = make_client(b_endpoint)
            a.create_table(TableName="shared", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                           KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
                           Tags=[{"Key": "owner", "Value": "a"}])
            # A miss makes a router re-read the catalog at once.
            assert b.describe_table(TableName="shared")["Table"]["TableStatus"] == "ACTIVE"
            for i in range(30):
                a.put_item(TableName="shared", Item={"id": {"S": f"k{i}"}, "v": {"N": str(i)}})
            assert [b.get_item(TableName="shared", Key={"id": {"S": f"k{i}"}})["Item"]["v"]["N"] for i in range(30)] == [
                str(i) for i in range(30)
            ]

            c_proc, c_endpoint = _router(cluster, tmp_path, "router-c")
            try:
                c = make_client(c_endpoint)
                assert "shared" in c.list_tables()["TableNames"]
                arn = c.describe_table(TableName="shared")["Table"]["TableArn"]
                assert c.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "owner", "Value": "a"}]
                assert c.describe_table(TableName="shared")["Table"]["ItemCount"] == 30
            finally:
                c_proc.terminate()

            b.update_table(TableName="shared", BillingMode="PROVISIONED",
                           ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})

            def a_sees_update() -> bool:
                return a.describe_table(TableName="shared")["Table"]["ProvisionedThroughput"]["WriteCapacityUnits"] == 4

            wait_until(a_sees_update, CATALOG_SEEN_TIMEOUT_S, 0.1, "router A's catalog to show B's UpdateTable")
            b.delete_table(TableName="shared")

            wait_until(lambda: "shared" not in a.list_tables()["TableNames"], CATALOG_SEEN_TIMEOUT_S, 0.1,
                       "router A's catalog to show B's DeleteTable")
        finally:
            b_proc.terminate()
