"""Errors across gRPC (``proto/errors.py``): every error keeps its class and
message, by the codec alone and through real servers."""

from __future__ import annotations

import grpc
import pytest

from meridian.model import errors as model_errors
from meridian.model.changes import LogTruncated
from meridian.model.errors import (
    ConditionalCheckFailedException,
    DynamoError,
    InternalServerError,
    RequestLimitExceeded,
    ServiceUnavailable,
    ThrottlingException,
    ValidationException,
)
from meridian.model.keycodec import encode_item_key
from meridian.model.ops import CatalogEntry, ItemOp, ItemResult, OpKind
from meridian.node.engine import Engine
from meridian.node.replica_service import ReplicaNodeService
from meridian.node.service import StorageService
from meridian.proto import replication_pb2_grpc, storage_pb2_grpc
from meridian.proto.errors import (
    INTERNAL_MESSAGE,
    ControlError,
    ControlUnreachable,
    error_from_fields,
    error_from_rpc,
    error_to_fields,
    status_details,
    status_of,
)
from meridian.proto.storage_codec import result_from_pb, result_to_pb
from meridian.replication.clock import SystemClock
from meridian.replication.nodes import NodeChangeSource, RegionNodes
from meridian.router.storage_grpc import GrpcStorage


def _all_dynamo_errors() -> list[type[DynamoError]]:
    seen, todo = [], [DynamoError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in seen if cls.__module__ == model_errors.__name__ and cls is not DynamoError]


def _rpc_error(exc) -> grpc.aio.AioRpcError:
    """What a client sees when a server aborts with ``exc``."""
    code, details, metadata = status_details(exc)
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*metadata), details)


@pytest.mark.parametrize("cls", _all_dynamo_errors(), ids=lambda c: c.__name__)
def test_every_dynamo_error_keeps_its_class_and_message(cls) -> None:
    sent = model_errors.error_from_type(cls.type_name, f"{cls.__name__} happened: a: b")
    assert type(sent) is cls
    got = error_from_rpc(_rpc_error(sent), "node n1")
    assert type(got) is cls and got.message == sent.message
    result = result_from_pb(result_to_pb(7, ItemResult(error=sent)))
    assert type(result.error) is cls and result.error.message == sent.message


def test_an_empty_message_stays_empty() -> None:
    got = error_from_rpc(_rpc_error(model_errors.ResourceInUseException(None)), "n")
    assert type(got) is model_errors.ResourceInUseException and got.message is None


def test_a_failed_condition_keeps_the_old_item_in_a_result() -> None:
    err = ConditionalCheckFailedException(item={"pk": {"S": "a"}})
    again = error_from_fields(*error_to_fields(err))
    assert isinstance(again, ConditionalCheckFailedException)
    assert (again.message, again.item) == ("The conditional request failed", {"pk": {"S": "a"}})


def test_status_codes() -> None:
    assert status_of(LogTruncated("x")) == grpc.StatusCode.OUT_OF_RANGE
    assert status_of(ControlError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(ControlUnreachable("x")) == grpc.StatusCode.UNAVAILABLE
    assert status_of(ServiceUnavailable("x")) == grpc.StatusCode.UNAVAILABLE
    assert status_of(InternalServerError("x")) == grpc.StatusCode.INTERNAL
    assert status_of(RequestLimitExceeded("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(ThrottlingException("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(ValidationException("x")) == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("exc", [LogTruncated("n1: read after 3"), ControlError("bad"), ControlUnreachable("gone")])
def test_replication_errors_keep_their_class(exc) -> None:
    got = error_from_rpc(_rpc_error(exc), "node n1")
    assert type(got) is type(exc) and str(got) == str(exc)


def test_untyped_failures_of_grpc_itself() -> None:
    unavailable = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "refused")
    got = error_from_rpc(unavailable, "Storage node 1.2.3.4:5")
    assert isinstance(got, ServiceUnavailable) and got.message == "Storage node 1.2.3.4:5 is unavailable"
    # gRPC's own INTERNAL details may hold ": " - never taken for a type.
    internal = grpc.aio.AioRpcError(grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), "Oops: x")
    assert type(error_from_rpc(internal, "n", internal_message=INTERNAL_MESSAGE)) is InternalServerError
    assert error_from_rpc(internal, "n", internal_message=INTERNAL_MESSAGE).message == INTERNAL_MESSAGE
    late = grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), "late")
    assert error_from_rpc(late, "node n1").message == "node n1: DEADLINE_EXCEEDED late"


# --- through real servers -------------------------------------------------------

TABLE = 9
SCHEMA = [("pk", "S")]


@pytest.fixture
async def node(tmp_path):
    """A real engine behind the node's two gRPC services, in this process."""
    engine = Engine(str(tmp_path / "db"), node_id="n1", region="us")
    engine.catalog_put(CatalogEntry("t", 1, {"table_id": TABLE, "key_schema": [list(k) for k in SCHEMA]}))
    server = grpc.aio.server()
    storage_pb2_grpc.add_StorageServicer_to_server(StorageService(engine), server)
    replication_pb2_grpc.add_ReplicaNodeServicer_to_server(ReplicaNodeService(engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield engine, f"127.0.0.1:{port}"
    await server.stop(None)
    engine.close()


def _put(pk: str) -> ItemOp:
    key_item = {"pk": {"S": pk}}
    return ItemOp(OpKind.PUT, TABLE, encode_item_key(TABLE, SCHEMA, key_item), key_item, item=key_item)


async def test_a_truncated_log_reaches_the_replicator_as_log_truncated(node) -> None:
    engine, address = node
    for pk in "abc":
        assert engine.execute(_put(pk)).error is None
    engine.truncate_log(2)
    nodes = RegionNodes([("n1", address)])
    try:
        source = NodeChangeSource("n1", nodes.replica["n1"], SystemClock())
        assert [c.sequence for c in await source.read(2, 10, 1 << 20)] == [3]
        with pytest.raises(LogTruncated, match="log starts after 2"):
            await source.read(0, 10, 1 << 20)
    finally:
        await nodes.close()


async def test_a_unary_call_raises_the_nodes_error_at_the_router(node, monkeypatch) -> None:
    engine, address = node
    storage = GrpcStorage([("n1", address)])
    try:
        def overloaded(table_id: int):
            raise RequestLimitExceeded("Throughput exceeds the current capacity of your table or index.")

        monkeypatch.setattr(engine, "table_stats", overloaded)
        with pytest.raises(RequestLimitExceeded) as refused:  # a 400 the SDKs retry, not a 500
            await storage.table_stats(TABLE)
        assert refused.value.status == 400
        assert refused.value.message == "Throughput exceeds the current capacity of your table or index."

        def broken(table_id: int):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(engine, "table_stats", broken)
        with pytest.raises(InternalServerError, match="disk on fire"):
            await storage.table_stats(TABLE)
    finally:
        await storage.close()
