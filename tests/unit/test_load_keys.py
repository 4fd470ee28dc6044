"""Hot keys in the workload: the Zipf key distribution, and the floor of a key written concurrently.

A hot key takes writes as fast as they come, so several writes of one key
are in flight together and may be applied in any order; the floor the
no-acknowledged-write-lost check holds a key to must stay sound under every
such order.  A hypothesis model checks it against every order real time
allows, and checks that the history-based rebuild (``writes_from_history``)
finds the floor the live workload kept.
"""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.lab.load.history import writes_from_history
from meridian.lab.load.spec import (
    ZIPF,
    ZIPF_S_MAX,
    KeyDistribution,
    TableBilling,
    Versions,
    WorkloadSpec,
    writer_of,
    zipf_cumulative,
)
from meridian.lab.load.workload import OperationPlan

REGIONS = {"us-east-1": "http://127.0.0.1:1", "eu-west-1": "http://127.0.0.1:2"}


def _spec(**overrides) -> WorkloadSpec:
    fields = dict(regions=REGIONS, table="t", rate_per_s=100, duration_s=1, keys=1000, write_ratio=0.5, seed=5)
    return WorkloadSpec(**{**fields, **overrides})


# --- the distribution ---------------------------------------------------------------


@pytest.mark.parametrize("s", [0.5, 0.99, 2.0, 3.0])
def test_zipf_ranks_come_up_in_proportion_to_one_over_rank_to_the_s(s):
    n, draws = 100, 40_000
    weights = [1 / k**s for k in range(1, n + 1)]
    expected = [w / sum(weights) for w in weights]
    rng, distribution = random.Random(1), KeyDistribution(ZIPF, s)
    seen = Counter(distribution.draw(rng, n) for _ in range(draws))
    assert set(seen) <= set(range(n))
    for rank in range(5):  # the hot head, where the shape is
        assert abs(seen[rank] / draws - expected[rank]) < 0.015, (rank, seen[rank] / draws, expected[rank])


def test_zipf_cumulative_weights_rise_to_exactly_one():
    cumulative = zipf_cumulative(1000, 3.0)
    assert cumulative == sorted(cumulative) and cumulative[-1] == 1.0
    assert 0.83 < cumulative[0] < 0.84  # 1 / zeta(3): a hot key takes most requests
    assert zipf_cumulative(1, ZIPF_S_MAX) == [1.0]
    with pytest.raises(ValueError):
        zipf_cumulative(0, 1.0)


def test_uniform_draws_exactly_what_randrange_draws():
    a, b = random.Random(9), random.Random(9)
    uniform = KeyDistribution()
    assert [uniform.draw(a, 37) for _ in range(500)] == [b.randrange(37) for _ in range(500)]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"key_distribution": "pareto"}, "key_distribution must be one of uniform, zipf"),
        ({"key_distribution": ZIPF, "zipf_s": 0.0}, "zipf_s must be between"),
        ({"key_distribution": ZIPF, "zipf_s": ZIPF_S_MAX * 2}, "zipf_s must be between"),
    ],
)
def test_bad_distributions_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        _spec(**overrides)


# --- the plan -----------------------------------------------------------------------


def test_a_zipf_plan_writes_and_reads_each_region_s_first_keys_most():
    plan = OperationPlan(_spec(key_distribution=ZIPF, zipf_s=3.0, conflict_keys=3))
    ops = [plan.next() for _ in range(4000)]
    written = Counter(plan.writable[op.region][op.key_index] for op in ops if op.write)
    read = Counter((op.region, plan.all_keys[op.key_index]) for op in ops if not op.write)
    for region in REGIONS:
        writes = sum(n for key, n in written.items() if key.startswith(region))
        assert written[f"{region}#0"] > 0.75 * writes
        reads_here = {key: n for (r, key), n in read.items() if r == region}
        assert max(reads_here, key=reads_here.get) == f"{region}#0"
        assert all(writer_of(key, REGIONS) in (region, None) for key in reads_here)  # its own keys, conflicts


def test_one_region_turns_hot_while_the_other_stays_spread_and_back():
    plan = OperationPlan(_spec(write_ratio=1.0))

    def top_share(region: str) -> float:
        keys = Counter()
        while sum(keys.values()) < 1000:
            op = plan.next()
            if op.region == region:
                keys[op.key_index] += 1
        return keys.most_common(1)[0][1] / 1000

    assert top_share("us-east-1") < 0.02
    plan.set_key_distribution("us-east-1", KeyDistribution(ZIPF, 3.0))
    assert top_share("us-east-1") > 0.75 and top_share("eu-west-1") < 0.02
    plan.set_key_distribution("us-east-1", None)
    assert top_share("us-east-1") < 0.02
    with pytest.raises(ValueError, match="not a region"):
        plan.set_key_distribution("mars-1", None)


def test_the_same_seed_gives_the_same_zipf_operations():
    a, b = OperationPlan(_spec(key_distribution=ZIPF)), OperationPlan(_spec(key_distribution=ZIPF))
    assert [a.next() for _ in range(300)] == [b.next() for _ in range(300)]


def test_table_billing_is_validated_and_read_back_from_describe_table():
    assert TableBilling().request() == {"BillingMode": "PAY_PER_REQUEST"}
    provisioned = TableBilling("PROVISIONED", 100, 20000)
    assert provisioned.request()["ProvisionedThroughput"] == {"ReadCapacityUnits": 100, "WriteCapacityUnits": 20000}
    description = {"ProvisionedThroughput": {"ReadCapacityUnits": 100, "WriteCapacityUnits": 20000}}
    assert TableBilling.of(description) == provisioned  # no BillingModeSummary: PROVISIONED, as DynamoDB
    on_demand = {"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
                 "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}}  # fmt: skip
    assert TableBilling.of(on_demand) == TableBilling()
    for bad in (("PROVISIONED", None, 5), ("PROVISIONED", 5, 0), ("PAY_PER_REQUEST", 5, 5), ("FREE", None, None)):
        with pytest.raises(ValueError):
            TableBilling(*bad)


# --- the floor of a key written concurrently -----------------------------------------


def test_an_acknowledgement_promises_the_lowest_version_in_flight_when_it_was_sent():
    versions = Versions(base=100)
    v1 = versions.next("a#0", "a")
    f1 = versions.sent("a#0", "a", v1)
    v2 = versions.next("a#0", "a")
    f2 = versions.sent("a#0", "a", v2)  # v1 unanswered: it may land after v2
    assert (f1, f2) == (101, 101) and versions.in_flight("a#0", "a") == 2
    versions.answered("a#0", "a", v1)
    versions.acknowledge("a#0", v1, "a", f1)
    v3 = versions.next("a#0", "a")
    f3 = versions.sent("a#0", "a", v3)  # v1 answered before v3 left: only v2 can overtake it
    assert f3 == 102
    versions.answered("a#0", "a", v3)
    versions.acknowledge("a#0", v3, "a", f3)
    assert versions.acknowledged["a#0"] == (102, "a")
    versions.answered("a#0", "a", v2)
    versions.acknowledge("a#0", v2, "a", f2)  # answered late, but older than v3: changes nothing
    assert versions.acknowledged["a#0"] == (102, "a") and versions.in_flight("a#0", "a") == 0
    versions.acknowledge("a#0", v3, "a", f3)  # acknowledging again is harmless
    with pytest.raises(AssertionError):
        versions.acknowledge("a#0", 200, "a")  # never sent


# One write: when it leaves (tens of ms after the previous one left), how long its answer takes (tens
# of ms), and the answer.
_WRITE = st.tuples(st.integers(1, 3), st.integers(0, 6), st.sampled_from(["ok", "ok", "refused"]))


@settings(max_examples=300, deadline=None)
@given(writes=st.lists(_WRITE, min_size=1, max_size=12))
def test_the_floor_is_sound_for_every_order_real_time_allows_and_the_history_finds_it_too(writes, tmp_path_factory):
    # Sends on a 10 ms grid, answers 5 ms off it: no answer is within the history's margin of a send.
    schedule = []
    t_ms = 0
    for version, (gap, latency, answer) in enumerate(writes, start=1):
        t_ms += 10 * gap
        schedule.append((version, t_ms, t_ms + 10 * latency + 5, answer))
    # The live workload's bookkeeping, events in time order (an answer is seen before a later send).
    versions = Versions(base=0)
    events = sorted([(sent, 1, v) for v, sent, _, _ in schedule] + [(ans, 0, v) for v, _, ans, _ in schedule])
    floors = {}
    for _, is_send, v in events:
        if is_send:
            assert versions.next("a#0", "a") == v
            floors[v] = versions.sent("a#0", "a", v)
        else:
            versions.answered("a#0", "a", v)
            if schedule[v - 1][3] == "ok":
                versions.acknowledge("a#0", v, "a", floors[v])
    live = versions.acknowledged.get("a#0")
    # What may be held at the end: an applied (acknowledged) write that no acknowledged write
    # sent after its answer overwrote.  The floor must be at most each of them.
    acked = [(v, sent, ans) for v, sent, ans, answer in schedule if answer == "ok"]
    possible = [v for v, _, ans in acked if not any(sent_y > ans for _, sent_y, _ in acked)]
    if acked:
        assert live is not None and live[0] <= min(possible) and live[0] <= max(v for v, _, _ in acked)
    else:
        assert live is None
    # The same floor from the history file alone.
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps({
        "t": 1000.0 + sent / 1000, "region": "a", "op": "put", "key": "a#0", "ok": answer == "ok",
        "error": None if answer == "ok" else "ProvisionedThroughputExceededException",
        "latency_ms": ans - sent, "version": v,
    }) + b"\n" for v, sent, ans, answer in sorted(schedule, key=lambda w: w[2])))  # in answer order, as written
    acknowledged, attempted = writes_from_history(path)
    assert acknowledged.get("a#0") == live
    assert attempted == {"a#0": {"a": len(writes)}}
