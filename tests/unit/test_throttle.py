"""Throughput budgets: token buckets, the budget node's leases, a router's allowances."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st

from meridian.model import limits
from meridian.model.errors import ProvisionedThroughputExceededException, ServiceUnavailable, ThrottlingException
from meridian.model.ring import Ring
from meridian.model.throughput import partition_of, LeaseRequest, Limit, Meter, TokenBucket, initial_tokens, lease_units
from meridian.node.budget import BudgetHolder
from meridian.router.table_record import Index, Table
from meridian.router.throttle import Throttle, budget_owner, partition_count


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@given(st.floats(0.5, 1000), st.lists(st.tuples(st.floats(0, 5), st.floats(0, 50)), max_size=40))
def test_a_bucket_never_hands_out_more_than_its_rate_allows(rate, steps):
    bucket = TokenBucket(rate, 300.0, 0.0, tokens=0.0)
    now = 0.0
    granted = 0.0
    for elapsed, wanted in steps:
        now += elapsed
        granted += bucket.take(wanted, now)
    assert granted <= rate * now + 1e-6


def test_a_bucket_keeps_at_most_its_burst():
    bucket = TokenBucket(5.0, limits.THROUGHPUT_BURST_S, 0.0)
    assert bucket.take(1e9, 10_000.0) == pytest.approx(5.0 * limits.THROUGHPUT_BURST_S)


def test_debt_is_paid_before_anything_is_granted():
    bucket = TokenBucket(10.0, 300.0, 0.0, tokens=0.0)
    bucket.spend(20.0, 0.0)
    assert bucket.take(5.0, 1.0) == 0.0  # -10 after one second
    assert bucket.take(5.0, 2.5) == 5.0


def test_a_new_table_starts_with_its_whole_burst():
    assert initial_tokens(Limit(5.0)) == 5.0 * limits.THROUGHPUT_BURST_S
    assert lease_units(Limit(5.0)) == 1.0 and lease_units(Limit(1000.0)) == 100.0


def table(write_capacity=5, read_capacity=5, gsi_write=0) -> Table:
    t = Table(name="t", table_id=42, uuid="u", key_schema=[("pk", "S")], attribute_definitions=[],
              created_s=0.0, region="us-east-1", read_capacity=read_capacity, write_capacity=write_capacity)
    if gsi_write:
        from meridian.model.ops import IndexSpec  # noqa: PLC0415 - only this test builds an index

        spec = IndexSpec(index_id=43, name="g", is_global=True, key_schema=(("g", "S"),), projection_type="ALL",
                         non_key_attributes=())
        t.indexes.append(Index(spec=spec, read_capacity=5, write_capacity=gsi_write))
    return t


class LocalStorage:
    def __init__(self, holder: BudgetHolder) -> None:
        self.budget = holder


def test_a_router_is_throttled_once_the_tables_bank_is_spent():
    clock = Clock()
    holder = BudgetHolder(monotonic_s=clock)
    throttle = Throttle(LocalStorage(holder), Ring(["n1"]))
    t = table(write_capacity=5)
    admitted = 0
    with pytest.raises(ProvisionedThroughputExceededException) as refused:
        for _ in range(10_000):
            throttle.admit_now(t, Meter.WRITE)
            throttle.spend(t, Meter.WRITE, 1.0)
            admitted += 1
    assert admitted == 5 * limits.THROUGHPUT_BURST_S
    assert refused.value.reasons == [{"reason": "TableWriteProvisionedThroughputExceeded", "resource": t.arn}]
    clock.now += 1.0  # five more units accrue
    for _ in range(5):
        throttle.admit_now(t, Meter.WRITE)
        throttle.spend(t, Meter.WRITE, 1.0)
    with pytest.raises(ProvisionedThroughputExceededException):
        throttle.admit_now(t, Meter.WRITE)


def test_two_routers_share_one_budget():
    clock = Clock()
    holder = BudgetHolder(monotonic_s=clock)
    routers = [Throttle(LocalStorage(holder), Ring(["n1"])) for _ in range(2)]
    t = table(write_capacity=10)
    done = 0
    for _second in range(20):
        clock.now += 1.0
        for _round in range(200):
            for router in routers:
                try:
                    router.admit_now(t, Meter.WRITE)
                except ProvisionedThroughputExceededException:
                    continue
                router.spend(t, Meter.WRITE, 1.0)
                done += 1
    burst = 10 * limits.THROUGHPUT_BURST_S
    # the bank opens at the first lease, one second in: 19 seconds of rate follow
    assert burst + 10 * 19 <= done <= burst + 10 * 19 + 2  # plus at most one overdraft per router


def test_a_saturated_index_throttles_base_table_writes():
    clock = Clock()
    holder = BudgetHolder(monotonic_s=clock)
    throttle = Throttle(LocalStorage(holder), Ring(["n1"]))
    t = table(write_capacity=1000, gsi_write=1)
    throttle.admit_now(t, Meter.WRITE)
    throttle.spend(t, Meter.WRITE, 1.0, {"g": 1.0 * limits.THROUGHPUT_BURST_S})
    with pytest.raises(ProvisionedThroughputExceededException) as refused:
        throttle.admit_now(t, Meter.WRITE)
    assert [r["reason"] for r in refused.value.reasons] == ["IndexWriteProvisionedThroughputExceeded"]
    assert refused.value.reasons[0]["resource"].endswith("/index/g")


def test_on_demand_tables_and_a_disabled_throttle_meter_nothing():
    holder = BudgetHolder()
    t = table(write_capacity=0)
    t.billing_mode = "PAY_PER_REQUEST"
    assert Throttle(LocalStorage(holder), Ring(["n1"])).admit_now(t, Meter.WRITE)
    off = Throttle(LocalStorage(holder), Ring(["n1"]), enabled=False)
    t2 = table(write_capacity=1)
    for _ in range(100):
        assert off.admit_now(t2, Meter.WRITE)


def test_every_router_finds_the_same_budget_node():
    ring = Ring(["a", "b", "c"])
    owners = {budget_owner(ring, table_id) for table_id in range(200)}
    assert owners == {"a", "b", "c"}
    assert budget_owner(Ring(["a", "b", "c"]), 7) == budget_owner(ring, 7)


def test_a_remote_budget_is_leased_over_the_seam():
    clock = Clock()
    holder = BudgetHolder(monotonic_s=clock)
    asked = []

    class Remote:
        async def lease_capacity(self, node_id, request: LeaseRequest) -> float:
            asked.append(node_id)
            return holder.lease(request)

    throttle = Throttle(Remote(), Ring(["a", "b"]))
    t = table(read_capacity=3)
    # the whole burst, read in one go, leaves the bank in debt
    asyncio.run(throttle.admit(t, Meter.READ))
    throttle.spend(t, Meter.READ, 3.0 * limits.THROUGHPUT_BURST_S - 3)
    clock.now += 1.0

    async def run() -> int:
        n = 0
        try:
            for _ in range(10):
                await throttle.admit(t, Meter.READ)
                throttle.spend(t, Meter.READ, 1.0)
                n += 1
        except ProvisionedThroughputExceededException:
            pass
        return n

    # 3 units left after the debt, plus one unit of overdraft at most
    assert 3 <= asyncio.run(run()) <= 4
    assert set(asked) == {budget_owner(Ring(["a", "b"]), 42)}


def test_an_unreachable_budget_node_fails_open_to_the_routers_own_buckets(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("meridian.router.throttle.time.monotonic", clock)
    holder = BudgetHolder(monotonic_s=clock)
    calls = []
    state = {"up": False}

    class Remote:
        async def lease_capacity(self, node_id, request: LeaseRequest) -> float:
            calls.append(clock.now)
            if not state["up"]:
                raise ServiceUnavailable(f"Storage node {node_id} is unavailable")
            return holder.lease(request)

    throttle = Throttle(Remote(), Ring(["a", "b"]))
    t = table(read_capacity=3)

    async def reads(n: int) -> int:
        done = 0
        for _ in range(n):
            try:
                await throttle.admit(t, Meter.READ)
            except ProvisionedThroughputExceededException:
                break
            throttle.spend(t, Meter.READ, 1.0)
            done += 1
        return done

    # the node is down: reads are admitted, and still metered (on the router's own bucket)
    assert asyncio.run(reads(10_000)) == pytest.approx(3 * limits.THROUGHPUT_BURST_S, abs=2)
    assert len(calls) == 1  # asked once, then not again within the retry interval
    clock.now += limits.THROUGHPUT_LEASE_RETRY_S
    state["up"] = True
    asyncio.run(reads(1))
    assert len(calls) == 2 and holder.leases >= 1  # back: the shared bucket is used again


def test_partition_count_follows_throughput():
    assert partition_count(table(read_capacity=5, write_capacity=5)) == 1
    assert partition_count(table(read_capacity=3000, write_capacity=2000)) == 3
    on_demand = table()
    on_demand.billing_mode = "PAY_PER_REQUEST"
    assert partition_count(on_demand) == 4


def test_a_hot_key_is_throttled_while_the_table_has_capacity():
    clock = Clock()
    holder = BudgetHolder(monotonic_s=clock)
    throttle = Throttle(LocalStorage(holder), Ring(["n1"]))
    t = table(write_capacity=10_000, read_capacity=10)  # 11 partitions, a huge bank
    hot = throttle.key_hash(t, {"pk": {"S": "hot"}})
    written = 0
    with pytest.raises(ProvisionedThroughputExceededException) as refused:
        for _ in range(50_000):
            throttle.admit_now(t, Meter.WRITE, key_hash=hot)
            throttle.spend(t, Meter.WRITE, 1.0, key_hash=hot)
            written += 1
    assert written == limits.PARTITION_WRITE_UNITS_PER_S * limits.THROUGHPUT_PARTITION_BURST_S
    assert refused.value.reasons == [{"reason": "TableWriteKeyRangeThroughputExceeded", "resource": t.arn}]
    # another key, in another partition, still writes
    cold = next(h for h in (throttle.key_hash(t, {"pk": {"S": f"c{i}"}}) for i in range(100))
                if partition_of(h, partition_count(t)) != partition_of(hot, partition_count(t)))
    throttle.admit_now(t, Meter.WRITE, key_hash=cold)


def test_an_on_demand_maximum_throttles_with_its_own_reason():
    clock = Clock()
    holder = BudgetHolder(monotonic_s=clock)
    throttle = Throttle(LocalStorage(holder), Ring(["n1"]))
    t = table()
    t.billing_mode = "PAY_PER_REQUEST"
    t.on_demand_max_read_units = 50
    with pytest.raises(ThrottlingException) as refused:
        for _ in range(1000):
            throttle.admit_now(t, Meter.READ)
            throttle.spend(t, Meter.READ, 1.0)
    assert refused.value.reasons == [{"reason": "TableReadMaxOnDemandThroughputExceeded", "resource": t.arn}]
    assert refused.value.body()["throttlingReasons"] == refused.value.reasons


def test_on_demand_partitions_follow_double_the_previous_peak(monkeypatch):
    on_demand = table()
    on_demand.billing_mode = "PAY_PER_REQUEST"
    assert partition_count(on_demand, 0.0, 3000.0) == 6  # 2 x 3,000 writes a second
    assert partition_count(on_demand, 0.0, 1000.0) == 4  # never below the warm throughput

    now = [5000.0]
    monkeypatch.setattr("meridian.router.throttle.time.monotonic", lambda: now[0])
    throttle = Throttle(LocalStorage(BudgetHolder(monotonic_s=lambda: now[0])), Ring(["n1"]))
    key_hash = throttle.key_hash(on_demand, {"pk": {"S": "a"}})
    throttle.admit_now(on_demand, Meter.WRITE, key_hash=key_hash)
    assert throttle._plans[(on_demand.table_id, on_demand.revision, Meter.WRITE, None)].partitions == 4
    throttle.spend(on_demand, Meter.WRITE, 5000.0, key_hash=key_hash)  # a second's traffic
    now[0] += 1.0
    for _ in range(limits.THROUGHPUT_ROLL_CHECK_ADMISSIONS):  # the clock is read every so many admissions
        throttle.admit_now(on_demand, Meter.WRITE, key_hash=throttle.key_hash(on_demand, {"pk": {"S": "b"}}))
    assert throttle._plans[(on_demand.table_id, on_demand.revision, Meter.WRITE, None)].partitions == 10
