"""A DAX cluster in one process: roles in ``endpoints``, write-through to every node, membership changes."""

from __future__ import annotations

import asyncio

import pytest

from meridian.router.dax.cache import MISS
from meridian.router.dax.cluster import start_dax_cluster
from meridian.router.dax.endpoints import Role
from meridian.router.dax.methods import PUT_ITEM
from meridian.router.dax.values import encode_key, encode_values


class TableUpstream:
    """One hash-key table held in a dict: what the data calls under test need of an upstream."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}
        self.closed = False

    async def call(self, action: str, body: dict) -> dict:
        if action == "DescribeTable":
            return {"Table": {"KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                              "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}}
        if action == "PutItem":
            self.items[body["Item"]["pk"]["S"]] = body["Item"]
            return {}
        if action == "GetItem":
            item = self.items.get(body["Key"]["pk"]["S"])
            return {} if item is None else {"Item": item}
        raise AssertionError(action)

    async def close(self) -> None:
        self.closed = True


SCHEMA = [("pk", "S")]


def _run(coro):
    return asyncio.run(coro)


def test_nodes_roles_write_through_and_membership():
    async def scenario() -> None:
        upstream = TableUpstream()
        cluster = await start_dax_cluster(upstream, name="c1", host="127.0.0.1", node_count=3, base_port=None)
        try:
            assert [front.node_id for front in cluster.nodes] == ["c1-a", "c1-b", "c1-c"]
            listed = cluster.nodes[1].server.cluster
            assert [node.role for node in listed] == [Role.leader, Role.replica, Role.replica]
            assert [node.port for node in listed] == [front.port for front in cluster.nodes]
            assert cluster.discovery == (cluster.nodes[0].host, cluster.nodes[0].port)
            assert {front.server.node.az for front in cluster.nodes} == {"us-east-1a", "us-east-1b", "us-east-1c"}

            # a put through a replica is written through to every node's item cache
            item = {"pk": {"S": "k"}, "v": {"N": "1"}}
            replica = cluster.nodes[2]
            key_bytes = encode_key(item, SCHEMA)
            values = encode_values(item, ("pk",), replica.node.registry)
            _args, put = replica.server.handlers[PUT_ITEM]
            await put(None, [b"t", key_bytes, values, None])
            for front in cluster.nodes:
                cached = front.node.caches.items.get("t", key_bytes)
                assert cached is not MISS and cached[0] == item

            # one shared attribute-list registry: an id one node handed out, another can name
            assert cluster.nodes[0].node.registry is cluster.nodes[1].node.registry

            # a reboot empties that node's caches only, and it listens again on its port
            port = cluster.nodes[1].port
            await cluster.reboot_node("c1-b")
            assert cluster.nodes[1].node.caches.items.get("t", key_bytes) is MISS
            assert cluster.nodes[0].node.caches.items.get("t", key_bytes) is not MISS
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()

            # replicas come and go; the leader stays first; new node ids are never reused
            added = await cluster.add_nodes(1)
            assert added[0].node_id == "c1-d"
            await cluster.remove_nodes(2)
            assert [front.node_id for front in cluster.nodes] == ["c1-a", "c1-b"]
            assert [node.node_id for node in cluster.nodes[0].server.cluster] == ["c1-a", "c1-b"]
            assert cluster.nodes[0].node.peers.nodes == [cluster.nodes[1].node]

            cluster.set_ttls(0, 0)
            assert not cluster.nodes[0].node.caches.queries.enabled
        finally:
            await cluster.close()
        assert upstream.closed and cluster.nodes == []

    _run(scenario())


def test_a_cluster_is_at_most_eleven_nodes():
    async def scenario() -> None:
        cluster = await start_dax_cluster(TableUpstream(), name="big", host="127.0.0.1", node_count=11, base_port=None)
        try:
            from meridian.model.errors import LimitExceededException

            with pytest.raises(LimitExceededException):
                await cluster.add_nodes(1)
        finally:
            await cluster.close()

    _run(scenario())
