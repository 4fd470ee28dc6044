"""``router/console/dax.py``: which DAX nodes the console lists, and how their figures read.

Stand-ins for ``DaxFront`` (a ``statistics()`` of CloudWatch names, a URL, a
node id, caches) and for the router's context: the --dax-port node alone, clusters
alone, both naming the same node (listed once), neither.
"""

from __future__ import annotations

from types import SimpleNamespace

from meridian.model import limits
from meridian.router.console.dax import dax_nodes, dax_state


def _front(node_id: str, port: int, **stats: float) -> SimpleNamespace:
    caches = SimpleNamespace(items=SimpleNamespace(capacity_bytes=1000, record_ttl_ms=300_000),
                             queries=SimpleNamespace(capacity_bytes=500, query_ttl_ms=60_000))  # fmt: skip
    return SimpleNamespace(node_id=node_id, url=f"dax://127.0.0.1:{port}", cluster_id="meridian",
                           node=SimpleNamespace(caches=caches), statistics=lambda: dict(stats))  # fmt: skip


def _ctx(dax=None, clusters=None) -> SimpleNamespace:
    """``dax``: the node of a one-node ``--dax-port`` cluster (named "meridian")."""
    ctx = SimpleNamespace(region="us-east-1")
    if dax is not None:
        clusters = {"meridian": [dax], **(clusters or {})}
    if clusters is not None:
        ctx.dax_clusters = {name: SimpleNamespace(name=name, nodes=nodes) for name, nodes in clusters.items()}
    return ctx


def test_no_dax_at_all():
    for ctx in (_ctx(), _ctx(clusters={})):
        state = dax_state(ctx)
        assert state["configured"] is False and state["clusters"] == [] and state["truncated"] is False


def test_the_dax_port_node_alone():
    front = _front("dax-0", 8111, ItemCacheHits=3, ItemCacheMisses=1, QueryCacheHits=1, QueryCacheMisses=1,
                   ScanCacheHits=0, ScanCacheMisses=2, EvictedSize=40, EstimatedDbSize=300,
                   CacheMemoryUtilization=20.0, ClientConnections=2, TotalRequestCount=9,
                   GetItemRequestCount=4, ScanRequestCount=2, QueryRequestCount=2, PutItemRequestCount=1,
                   FailedRequestCount=0)  # fmt: skip
    state = dax_state(_ctx(dax=front))
    assert state["configured"] is True
    [cluster] = state["clusters"]
    assert cluster["name"] == "meridian" and cluster["discovery"] == "dax://127.0.0.1:8111"
    [node] = cluster["nodes"]
    assert node["item_cache"] == {"hits": 3, "misses": 1, "hit_rate": 0.75}
    assert node["query_cache"]["hits"] == 1 and node["query_cache"]["misses"] == 3
    assert node["query_cache"]["hit_rate"] == 0.25
    assert node["query_cache"]["scan"] == {"hits": 0, "misses": 2, "hit_rate": 0.0}
    assert (node["evicted_bytes"], node["cached_bytes"], node["capacity_bytes"]) == (40, 300, 1500)
    assert node["memory_utilization_percent"] == 20.0 and node["connections"] == 2
    assert node["requests"] == {"GetItem": 4, "Query": 2, "Scan": 2, "PutItem": 1}
    assert list(node["requests"]) == ["GetItem", "Query", "Scan", "PutItem"]  # DAX's order; none for 0
    assert (node["record_ttl_ms"], node["query_ttl_ms"]) == (300_000, 60_000)
    assert node["role"] == "leader" and node["url"] == "dax://127.0.0.1:8111"


def test_a_node_with_no_lookups_has_no_hit_rate():
    [node] = dax_state(_ctx(dax=_front("dax-0", 8111)))["clusters"][0]["nodes"]
    assert node["item_cache"] == {"hits": 0, "misses": 0, "hit_rate": None}
    assert node["requests"] == {} and node["requests_total"] == 0


def test_clusters_and_the_dax_port_node_each_listed_once():
    leader, replica, other = _front("m-a", 1), _front("m-b", 2), _front("x-a", 3)
    ctx = _ctx(dax=leader, clusters={"meridian": [leader, replica], "analytics": [other]})
    assert [(c, r, f.node_id) for c, r, f in dax_nodes(ctx)] == [
        ("analytics", "leader", "x-a"), ("meridian", "leader", "m-a"), ("meridian", "replica", "m-b")]
    state = dax_state(ctx)
    assert [(c["name"], [n["node_id"] for n in c["nodes"]]) for c in state["clusters"]] == [
        ("analytics", ["x-a"]), ("meridian", ["m-a", "m-b"])]
    assert state["clusters"][1]["discovery"] == "dax://127.0.0.1:1"


def test_at_most_the_bound_of_nodes():
    nodes = [_front(f"n-{i}", 1000 + i) for i in range(limits.CONSOLE_DAX_NODES_MAX + 1)]
    state = dax_state(_ctx(clusters={"big": nodes}))
    assert state["truncated"] is True
    assert sum(len(c["nodes"]) for c in state["clusters"]) == limits.CONSOLE_DAX_NODES_MAX
