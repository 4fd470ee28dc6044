"""A DAX node put together: state, data methods, and the server that speaks the protocol.

``start_dax_node`` serves one DAX node on ``host:port`` in front of an
``Upstream`` (the router of this process for ``meridian serve --dax-port``,
a DynamoDB endpoint for ``meridian dax --upstream``: ``process.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meridian.model.errors import DynamoError, ResourceNotFoundException, ValidationException

from .attribute_lists import AttributeListRegistry
from .batches import BatchMethods
from .cache import DaxCaches
from .endpoints import Node
from .node import DaxNode
from .requests import BadArgument
from .server import DaxServer
from .upstream import Upstream

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("meridian.dax")


#: The handlers that write through to the item caches: their answer waits for the node's peers
#: (``peers.Peers.wait_applied``: at once in one process), so a read through any node sees the write.
_WRITES = frozenset({"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"})


def _counted(node: DaxNode, name: str, fn):
    """A handler whose argument errors are the client's (ValidationException), counted per method."""
    stats = node.statistics
    write = name in _WRITES

    async def handler(conn: Any, args: list) -> bytes:
        stats.requests[name] = stats.requests.get(name, 0) + 1
        try:
            answer = await fn(conn, args)
            if write:
                await node.peers.wait_applied()
            return answer
        except DynamoError as err:
            stats.errors[err.type_name] = stats.errors.get(err.type_name, 0) + 1
            raise
        except (BadArgument, ValueError) as exc:
            stats.errors["ValidationException"] = stats.errors.get("ValidationException", 0) + 1
            raise ValidationException(str(exc) or "Invalid request") from exc

    return handler


def data_handlers(node: DaxNode) -> dict[int, tuple[int, Any]]:
    methods = BatchMethods(node)
    table = {}
    for method_id, (arguments, fn) in {**methods.item_handlers(), **methods.handlers()}.items():
        table[method_id] = (arguments, _counted(node, fn.__name__, fn))
    return table


#: handler name -> DAX's CloudWatch request-count metric
_REQUEST_COUNTS = {
    "get_item": "GetItemRequestCount", "batch_get_item": "BatchGetItemRequestCount",
    "put_item": "PutItemRequestCount", "update_item": "UpdateItemRequestCount",
    "delete_item": "DeleteItemRequestCount", "batch_write_item": "BatchWriteItemRequestCount",
    "query": "QueryRequestCount", "scan": "ScanRequestCount",
    "transact_get_items": "TransactGetItemsCount", "transact_write_items": "TransactWriteItemsCount",
}


@dataclass
class DaxFront:
    """A running DAX node."""

    node: DaxNode
    server: DaxServer
    host: str
    port: int

    cluster_id: str = "meridian"

    @property
    def url(self) -> str:
        scheme = "dax" if self.server.ssl_context is None else "daxs"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def node_id(self) -> str:
        return self.node.node_id

    def statistics(self) -> dict[str, int | float]:
        """This node's figures under DAX's CloudWatch metric names (``router/dax/metrics.py``)."""
        out: dict[str, int | float] = dict(self.node.caches.statistics())
        server = self.server.statistics()
        out["ClientConnections"] = server["connections_open"]
        out["TotalRequestCount"] = server["requests"]
        stats = self.node.statistics
        for method, count in stats.requests.items():
            out[_REQUEST_COUNTS.get(method, method)] = count
        errors = sum(stats.errors.values())
        faults = stats.errors.get("InternalServerError", 0) + stats.errors.get("ServiceUnavailable", 0)
        out["ErrorRequestCount"] = errors - faults
        out["FaultRequestCount"] = faults
        out["FailedRequestCount"] = errors
        return out

    async def close(self) -> None:
        await self.server.close()
        await self.node.upstream.close()


async def start_dax_node(
    upstream: Upstream, *, host: str, port: int, node_id: str = "dax-0", az: str = "us-east-1a",
    caches: DaxCaches | None = None, credentials: dict | None = None, attribute_lists_path: str | None = None,
    registry: AttributeListRegistry | None = None, tls: ssl.SSLContext | None = None,
) -> DaxFront:  # fmt: skip
    """``attribute_lists_path``: the attribute-list journal (``router/dax/attribute_lists.py``);
    None keeps lists in memory only, so clients that outlive the node must reconnect.
    ``registry``: a cluster's shared registry (then ``attribute_lists_path`` is unused).
    ``tls``: serve ``daxs://`` with this context (``tls.server_context``)."""
    if registry is None:
        registry = AttributeListRegistry(journal_path=attribute_lists_path)
    node = DaxNode.create(node_id, upstream, registry=registry, caches=caches)

    async def describe_key_schema(table_name: str) -> list[tuple[str, str]] | None:
        try:
            return await node.key_schemas.of(table_name)
        except ResourceNotFoundException:
            return None

    server = DaxServer(
        handlers=data_handlers(node),
        describe_key_schema=describe_key_schema,
        registry=node.registry,
        node=Node(node_id=node_id, hostname=host, az=az),
        credentials=credentials,
        ssl_context=tls,
    )
    bound_host, bound_port = await server.start(host, port)
    front = DaxFront(node=node, server=server, host=bound_host, port=bound_port)
    log.info("DAX node %s listening on %s", node_id, front.url)
    return front
