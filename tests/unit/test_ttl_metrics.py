"""TimeToLiveDeletedItemCount: the nodes' count on the wire, summed by the router, on ``/metrics``.

The end-to-end path (a sweeper's deletes, then a scrape and the console) is
in ``tests/integration/test_ttl_metrics.py``; here are its parts alone.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import meridian

from meridian.model.errors import ServiceUnavailable
from meridian.model.ops import IndexStats, TableStats
from meridian.proto import storage_pb2 as pb
from meridian.proto.storage_codec import stats_from_pb, stats_to_pb
from meridian.router.http import Response
from meridian.router.server import _PROMETHEUS_HEADER, _metrics_route, ttl_metrics_text
from meridian.router.storage_grpc import GrpcStorage


def test_the_codec_carries_the_ttl_deleted_count():
    stats = TableStats(item_count=7, size_bytes=300, indexes={9: IndexStats(2, 40, True)}, ttl_deleted_count=12345)
    wire = pb.TableStats.FromString(stats_to_pb(stats).SerializeToString())
    assert wire.ttl_deleted_count == 12345
    assert stats_from_pb(wire) == stats


def test_a_node_without_the_field_reads_as_zero():
    """A node built before the field existed sends nothing: proto3's default, 0."""
    old = pb.TableStats(item_count=1, size_bytes=2)
    assert stats_from_pb(pb.TableStats.FromString(old.SerializeToString())).ttl_deleted_count == 0


class _Link:
    def __init__(self, reply: pb.TableStats) -> None:
        self.reply = reply

    async def unary(self, method: str, request):
        assert method == "GetTableStats"
        return self.reply


def test_the_grpc_storage_sums_the_count_over_nodes():
    storage = GrpcStorage.__new__(GrpcStorage)  # no channels: only the links table_stats reads
    storage._links = {
        "a": _Link(stats_to_pb(TableStats(item_count=3, size_bytes=30, ttl_deleted_count=4))),
        "b": _Link(stats_to_pb(TableStats(item_count=1, size_bytes=10, ttl_deleted_count=5))),
    }
    total = asyncio.run(storage.table_stats(1))
    assert (total.item_count, total.size_bytes, total.ttl_deleted_count) == (4, 40, 9)


class _Storage:
    def __init__(self, counts: dict[int, int | None]) -> None:
        self.counts = counts
        self.asked: list[int] = []

    async def table_stats(self, table_id: int) -> TableStats:
        self.asked.append(table_id)
        count = self.counts[table_id]
        if count is None:
            raise ServiceUnavailable("a node is down")
        return TableStats(ttl_deleted_count=count)


def _ctx(tables: dict[str, int], counts: dict[int, int | None]) -> SimpleNamespace:
    records = [SimpleNamespace(name=name, table_id=table_id) for name, table_id in tables.items()]
    return SimpleNamespace(catalog=SimpleNamespace(tables=lambda: list(records)), storage=_Storage(counts))


def _samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_one_sample_per_catalog_table_in_name_order():
    ctx = _ctx({"b": 2, "a": 1}, {1: 0, 2: 17})
    text = asyncio.run(ttl_metrics_text(ctx))
    assert "# HELP meridian_ttl_deleted_item_count " in text
    assert "# TYPE meridian_ttl_deleted_item_count gauge\n" in text
    assert _samples(text) == [
        'meridian_ttl_deleted_item_count{TableName="a"} 0',
        'meridian_ttl_deleted_item_count{TableName="b"} 17',
    ]
    assert sorted(ctx.storage.asked) == [1, 2]


def test_no_tables_is_the_header_alone():
    text = asyncio.run(ttl_metrics_text(_ctx({}, {})))
    assert _samples(text) == [] and text.endswith("gauge\n")


def test_a_table_whose_stats_fail_is_left_out():
    text = asyncio.run(ttl_metrics_text(_ctx({"up": 1, "down": 2}, {1: 3, 2: None})))
    assert _samples(text) == ['meridian_ttl_deleted_item_count{TableName="up"} 3']


def test_label_values_are_escaped():
    # DynamoDB table names cannot hold these; the text format's rules hold anyway.
    text = asyncio.run(ttl_metrics_text(_ctx({'a"b\\c\nd': 1}, {1: 2})))
    assert _samples(text) == ['meridian_ttl_deleted_item_count{TableName="a\\"b\\\\c\\nd"} 2']


def test_the_output_parses_as_prometheus_text():
    from prometheus_client.parser import text_string_to_metric_families

    text = asyncio.run(ttl_metrics_text(_ctx({"T": 1, "U": 2}, {1: 5, 2: 0})))
    (family,) = text_string_to_metric_families(text)
    assert family.name == "meridian_ttl_deleted_item_count" and family.type == "gauge"
    assert {s.labels["TableName"]: s.value for s in family.samples} == {"T": 5.0, "U": 0.0}


def test_without_a_replicator_the_route_serves_the_ttl_lines():
    route = _metrics_route(_ctx({"T": 1}, {1: 4}), None)
    answer = asyncio.run(route())
    assert answer.status == 200 and answer.headers == _PROMETHEUS_HEADER
    assert _samples(answer.body.decode()) == [
        f'meridian_build_info{{version="{meridian.__version__}"}} 1',  # every router names its build first
        'meridian_ttl_deleted_item_count{TableName="T"} 4',
    ]


def test_with_a_replicator_the_ttl_lines_follow_its_metrics():
    async def relay() -> Response:
        return Response(200, b"# TYPE meridian_pending_replication_count gauge\nmeridian_pending_replication_count 2", b"")

    answer = asyncio.run(_metrics_route(_ctx({"T": 1}, {1: 4}), relay)())
    text = answer.body.decode()
    assert text.startswith("# TYPE meridian_pending_replication_count gauge\nmeridian_pending_replication_count 2\n# HELP")
    assert _samples(text)[-1] == 'meridian_ttl_deleted_item_count{TableName="T"} 4'


def test_an_unavailable_replicator_is_still_a_503():
    failed = Response(503, b"# replicator of r unavailable\n", _PROMETHEUS_HEADER)

    async def relay() -> Response:
        return failed

    ctx = _ctx({"T": 1}, {1: 4})
    assert asyncio.run(_metrics_route(ctx, relay)()) is failed
    assert ctx.storage.asked == []
