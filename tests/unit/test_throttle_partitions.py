"""Partitions by data size, global index partition ceilings, and the throttle's counters on /metrics (issue 15)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from meridian.model import limits
from meridian.model.errors import ProvisionedThroughputExceededException
from meridian.model.ops import IndexSpec, TableStats
from meridian.model.ring import Ring
from meridian.model.throughput import Meter
from meridian.node.budget import BudgetHolder
from meridian.router import capacity
from meridian.router.server import throughput_metrics_text
from meridian.router.table_record import Index, Table
from meridian.router.throttle import Throttle, partition_count

GB = 1024**3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LocalStorage:
    def __init__(self, holder: BudgetHolder, sizes: dict[int, int] | None = None) -> None:
        self.budget = holder
        self.sizes = sizes or {}

    async def table_stats(self, table_id: int) -> TableStats:
        return TableStats(size_bytes=self.sizes.get(table_id, 0))


def table(mode: str = "PROVISIONED", read: int = 5, write: int = 5, gsi: bool = False) -> Table:
    t = Table(name="t", table_id=42, uuid="u", key_schema=[("pk", "S")], attribute_definitions=[],
              created_s=0.0, region="us-east-1", read_capacity=read, write_capacity=write)
    t.billing_mode = mode
    if gsi:
        spec = IndexSpec(index_id=43, name="g", is_global=True, key_schema=(("g", "S"),), projection_type="ALL")
        t.indexes.append(Index(spec=spec, read_capacity=read, write_capacity=write))
    return t


def test_partitions_split_past_ten_gigabytes_of_data():
    small = table(read=5, write=5)
    assert partition_count(small) == 1
    assert partition_count(small, size_bytes=10 * GB) == 1  # full, not past
    assert partition_count(small, size_bytes=10 * GB + 1) == 2
    assert partition_count(small, size_bytes=95 * GB) == 10
    busy = table(read=3000, write=2000)  # three partitions for its throughput: more than its data needs
    assert partition_count(busy, size_bytes=25 * GB) == 3
    on_demand = table("PAY_PER_REQUEST")
    assert partition_count(on_demand, size_bytes=25 * GB) == 4  # the warm throughput's four
    assert partition_count(on_demand, size_bytes=55 * GB) == 6


def test_a_grown_table_gets_more_partitions_from_its_size():
    throttle = Throttle(LocalStorage(BudgetHolder(), {42: 55 * GB}), Ring(["n1"]))
    t = table("PAY_PER_REQUEST")
    throttle.admit_now(t, Meter.WRITE, key_hash=throttle.key_hash(t, {"pk": {"S": "a"}}))
    plan = throttle._plans[(t.table_id, t.revision, Meter.WRITE, None)]
    assert plan.partitions == 4 and throttle.partitions(t) == 4
    asyncio.run(throttle.refresh_sizes())  # what _roll starts on a running loop every minute
    assert plan.partitions == 6 and throttle.partitions(t) == 6
    assert plan.whole is not None and plan.whole.limit.rate_per_s == 6 * limits.PARTITION_WRITE_UNITS_PER_S
    throttle.note_size(t.table_id, 0)  # data deleted: DynamoDB's partitions never merge, but the rule is the rule
    assert plan.partitions == 4


def test_the_size_refresh_runs_on_the_routers_loop(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("meridian.router.throttle.time.monotonic", clock)
    storage = LocalStorage(BudgetHolder(monotonic_s=clock), {42: 45 * GB})
    throttle = Throttle(storage, Ring(["n1"]))
    t = table("PAY_PER_REQUEST")

    async def drive() -> None:
        throttle.admit_now(t, Meter.READ)
        clock.now += 1.0
        for _ in range(limits.THROUGHPUT_ROLL_CHECK_ADMISSIONS):  # a second went by: the refresh starts
            throttle.admit_now(t, Meter.READ)
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(drive())
    assert throttle.partitions(t) == 5  # 45 GB: five partitions, one more than the warm throughput's
    storage.sizes[42] = 75 * GB
    clock.now += 1.0
    asyncio.run(drive())  # within THROUGHPUT_TABLE_SIZE_REFRESH_S: not asked again
    assert throttle.partitions(t) == 5
    clock.now += limits.THROUGHPUT_TABLE_SIZE_REFRESH_S
    asyncio.run(drive())
    assert throttle.partitions(t) == 8


def _put(throttle: Throttle, t: Table, item: dict) -> None:
    key_hash = throttle.key_hash(t, item)
    throttle.admit_now(t, Meter.WRITE, key_hash=key_hash, item=item)
    usage = capacity.item_write(t, 100, None, item, True)
    throttle.spend_usage(t, Meter.WRITE, usage, key_hash=key_hash, old=None, new=item)


def test_a_hot_global_index_key_throttles_base_table_writes_with_the_index_reason():
    clock = Clock()
    throttle = Throttle(LocalStorage(BudgetHolder(monotonic_s=clock)), Ring(["n1"]))
    t = table("PAY_PER_REQUEST", gsi=True)
    assert throttle.metered_indexes(t)  # the old item is needed: its index keys are charged too
    written = 0
    with pytest.raises(ProvisionedThroughputExceededException) as refused:
        for i in range(50_000):  # every base key a different one: only the index key is hot
            _put(throttle, t, {"pk": {"S": f"k{i}"}, "g": {"S": "hot"}})
            written += 1
    bank = limits.PARTITION_WRITE_UNITS_PER_S * limits.THROUGHPUT_PARTITION_BURST_S
    assert bank <= written <= bank + 1  # one write's overdraft: its index share is known only afterwards
    assert refused.value.reasons == [{"reason": "IndexWriteKeyRangeThroughputExceeded",
                                      "resource": f"{t.arn}/index/g"}]
    # the same table, another index key: written
    _put(throttle, t, {"pk": {"S": "other"}, "g": {"S": "cold"}})
    # an item outside the index (no index key) is not held by it
    _put(throttle, t, {"pk": {"S": "plain"}})
    assert throttle.events[(t.table_id, "g", Meter.WRITE)] == 1
    assert throttle.index_consumed[Meter.WRITE][(t.table_id, "g")] == written + 1


def test_a_query_on_a_global_index_is_held_to_its_index_partition():
    clock = Clock()
    throttle = Throttle(LocalStorage(BudgetHolder(monotonic_s=clock)), Ring(["n1"]))
    t = table("PROVISIONED", read=100_000, write=5, gsi=True)
    hot = throttle.key_hash(t, {"pk": {"S": "x"}})  # any hash: the index partition's
    reads = 0
    with pytest.raises(ProvisionedThroughputExceededException) as refused:
        for _ in range(100_000):
            throttle.admit_now(t, Meter.READ, "g", hot)
            throttle.spend(t, Meter.READ, 1.0, index_name="g", key_hash=hot)
            reads += 1
    assert reads == limits.PARTITION_READ_UNITS_PER_S * limits.THROUGHPUT_PARTITION_BURST_S
    assert refused.value.reasons == [{"reason": "IndexReadKeyRangeThroughputExceeded",
                                      "resource": f"{t.arn}/index/g"}]
    assert throttle.consumed[Meter.READ].get(t.table_id, 0.0) == 0.0  # an index's reads are the index's
    assert throttle.index_consumed[Meter.READ][(t.table_id, "g")] == reads
    [(index, meter, partition, count)] = throttle.partition_events(t)
    assert (index, meter, count) == ("g", Meter.READ, 1) and 0 <= partition < partition_count(t)


def test_metrics_show_indexes_and_partitions():
    clock = Clock()
    throttle = Throttle(LocalStorage(BudgetHolder(monotonic_s=clock)), Ring(["n1"]))
    t = table("PROVISIONED", read=10, write=1000, gsi=True)
    hot = throttle.key_hash(t, {"pk": {"S": "hot"}})
    with pytest.raises(ProvisionedThroughputExceededException):
        for _ in range(100_000):
            throttle.admit_now(t, Meter.WRITE, key_hash=hot)
            throttle.spend(t, Meter.WRITE, 1.0, {"g": 1.0}, key_hash=hot)
    ctx = SimpleNamespace(throttle=throttle, catalog=SimpleNamespace(tables=lambda: [t]))
    text = throughput_metrics_text(ctx)
    bank = limits.PARTITION_WRITE_UNITS_PER_S * limits.THROUGHPUT_PARTITION_BURST_S
    assert f'meridian_consumed_write_capacity_units_total{{TableName="t"}} {float(bank)}\n' in text
    assert f'meridian_consumed_write_capacity_units_total{{TableName="t",GlobalSecondaryIndexName="g"}} ' \
           f'{float(bank)}\n' in text
    assert 'meridian_write_throttle_events_total{TableName="t"} 1\n' in text
    assert 'meridian_write_throttle_events_total{TableName="t",GlobalSecondaryIndexName="g"} 0\n' in text
    assert 'meridian_provisioned_write_capacity_units{TableName="t",GlobalSecondaryIndexName="g"} 1000\n' in text
    partition = (hot * partition_count(t)) >> 64
    assert (f'meridian_write_key_range_throughput_throttle_events_total{{TableName="t",Partition="{partition}"}} 1\n'
            in text)
