"""A DAX node put together: state, data methods, and the server that speaks the protocol.

``start_dax_node`` serves one DAX node on ``host:port`` in front of an
``Upstream`` (the router of this process for ``meridian serve --dax-port``,
a DynamoDB endpoint for ``meridian dax --upstream``).
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


def _counted(node: DaxNode, name: str, fn):
    """A handler whose argument errors are the client's (ValidationException), counted per method."""
    stats = node.statistics

    async def handler(conn: Any, args: list) -> bytes:
        stats.requests[name] = stats.requests.get(name, 0) + 1
        try:
            return await fn(conn, args)
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


async def serve_dax(*, host: str, port: int, upstream_url: str, region: str, node_id: str,
                    record_ttl_ms: int, query_ttl_ms: int, attribute_lists_path: str | None = None,
                    tls_cert_path: str | None = None, tls_key_path: str | None = None,
                    tls_generate: bool = False) -> None:  # fmt: skip
    """``tls_*``: ``tls.resolve``'s choices (a certificate made here goes to the per-user temporary folder)."""
    from meridian.router.server import _wait_for_signal  # noqa: PLC0415 - the same SIGTERM/SIGINT handling

    from . import tls  # noqa: PLC0415
    from .upstream import HttpUpstream  # noqa: PLC0415

    tls_files = tls.resolve(cert_path=tls_cert_path, key_path=tls_key_path, generate=tls_generate, directory=None,
                            host=host)  # fmt: skip
    caches = DaxCaches(record_ttl_ms=record_ttl_ms, query_ttl_ms=query_ttl_ms)
    front = await start_dax_node(HttpUpstream(upstream_url, region), host=host, port=port, node_id=node_id,
                                 az=f"{region}a", caches=caches, attribute_lists_path=attribute_lists_path,
                                 tls=tls.server_context(tls_files) if tls_files else None)  # fmt: skip
    print(f"meridian dax: listening on {front.url} -> {upstream_url}", flush=True)
    if tls_files is not None:
        print(f"meridian dax: daxs:// {tls.trust_hint(tls_files)}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await front.close()


def run_dax(**kwargs: Any) -> int:
    import uvloop  # noqa: PLC0415

    uvloop.run(serve_dax(**kwargs))
    return 0
