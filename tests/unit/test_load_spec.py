"""The workload's keys, versions, items and seeded operation sequence (meridian.lab.load.spec / workload)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.lab.load.spec import (
    FOREIGN_ITEM,
    VERSIONS_PER_MS,
    Versions,
    WorkloadSpec,
    conflict_key,
    keys_per_region,
    make_item,
    pad_length,
    pad_source,
    parse_item,
    region_key,
    version_base,
    writer_of,
)
from meridian.lab.load.workload import OperationPlan

REGIONS = {"us-east-1": "http://127.0.0.1:1", "eu-west-1": "http://127.0.0.1:2", "ap-southeast-2": "http://127.0.0.1:3"}


def _spec(**overrides) -> WorkloadSpec:
    fields = dict(regions=REGIONS, table="t", rate_per_s=100, duration_s=1, keys=10, write_ratio=0.5)
    return WorkloadSpec(**{**fields, **overrides})


@given(regions=st.integers(1, 5), keys=st.integers(0, 1000))
def test_keys_are_dealt_out_over_the_regions_in_order(regions, keys):
    names = [f"r{i}" for i in range(regions)]
    shares = keys_per_region(names, keys)
    assert sum(shares.values()) == keys
    assert max(shares.values()) - min(shares.values()) <= 1
    assert list(shares.values()) == sorted(shares.values(), reverse=True)


def test_each_key_names_its_one_writer_and_conflict_keys_have_none():
    assert writer_of(region_key("eu-west-1", 7), REGIONS) == "eu-west-1"
    assert writer_of(conflict_key(3), REGIONS) is None
    assert writer_of("other-region#1", REGIONS) is None  # not a region of this workload


def test_the_plan_writes_only_its_own_keys_and_reads_any():
    spec = _spec(keys=30, conflict_keys=4, write_ratio=0.5)
    plan = OperationPlan(spec)
    assert len(plan.all_keys) == 34 and len(set(plan.all_keys)) == 34
    for region, keys in plan.writable.items():
        assert {writer_of(k, REGIONS) for k in keys} == {region, None}
        assert sum(1 for k in keys if writer_of(k, REGIONS) is None) == 4
    ops = [plan.next() for _ in range(2000)]
    writes = [op for op in ops if op.write]
    assert 800 < len(writes) < 1200  # write_ratio 0.5
    assert {op.region for op in ops} == set(REGIONS)
    for op in writes:
        assert op.key_index < len(plan.writable[op.region])


def test_the_same_seed_gives_the_same_operations_and_another_seed_others():
    a, b, c = OperationPlan(_spec(seed=42)), OperationPlan(_spec(seed=42)), OperationPlan(_spec(seed=43))
    run_a = [a.next() for _ in range(500)]
    assert run_a == [b.next() for _ in range(500)]
    assert run_a != [c.next() for _ in range(500)]


def test_write_ratio_zero_and_one():
    reads = OperationPlan(_spec(write_ratio=0.0))
    writes = OperationPlan(_spec(write_ratio=1.0))
    assert not any(reads.next().write for _ in range(200))
    assert all(writes.next().write for _ in range(200))


def test_versions_increase_strictly_per_key_and_region_from_the_base():
    versions = Versions(base=5000)
    assert [versions.next("a#1", "a") for _ in range(3)] == [5001, 5002, 5003]
    assert versions.next("a#2", "a") == 5001  # per key
    assert versions.next("conflict#0", "a") == 5001
    assert versions.next("conflict#0", "b") == 5001  # per writer region too
    assert versions.attempted == {"a#1": {"a": 5003}, "a#2": {"a": 5001}, "conflict#0": {"a": 5001, "b": 5001}}
    versions.acknowledge("a#1", 5002, "a")
    assert versions.acknowledged == {"a#1": (5002, "a")}
    with pytest.raises(AssertionError):
        versions.acknowledge("a#2", 5002, "a")  # never sent


def test_a_later_run_counts_from_above_everything_an_earlier_run_could_send():
    earlier, later = version_base(1_700_000_000.0), version_base(1_700_000_000.5)
    assert later - earlier == 500 * VERSIONS_PER_MS
    assert later > earlier + 499 * VERSIONS_PER_MS


@pytest.mark.parametrize("item_bytes", [20, 40, 100, 1000, 4096])
def test_items_are_the_requested_size_as_dynamodb_counts_it(item_bytes):
    key, version, region = "eu-west-1#12", 1_700_000_000_000_001, "eu-west-1"
    pad = pad_source(1)[: pad_length(key, version, region, item_bytes)]
    item = make_item(key, version, region, pad)
    # Attribute names + values; a 16-digit number counts (16 + 1) // 2 + 1 = 9 bytes.
    without_pad = len("pk") + len(key) + len("v") + 9 + len("w") + len(region) + len("pad")
    if item_bytes >= without_pad:
        assert without_pad + len(pad) == item_bytes
    else:
        assert pad == ""
    assert parse_item(item) == (version, region)


def test_pad_text_is_seeded_and_printable():
    assert pad_source(3) == pad_source(3) != pad_source(4)
    assert pad_source(3)[:1000].isalnum()


def test_parse_item_tells_absent_from_foreign():
    assert parse_item(None) is None and parse_item({}) is None
    assert parse_item({"pk": {"S": "x"}, "v": {"S": "not a number"}}) == FOREIGN_ITEM


@pytest.mark.parametrize(
    "overrides",
    [
        {"regions": {}},
        {"regions": {"conflict": "http://x"}},
        {"regions": {"a#b": "http://x"}},
        {"rate_per_s": 0},
        {"duration_s": -1},
        {"keys": 2},  # fewer than the three regions
        {"write_ratio": 1.5},
        {"conflict_keys": -1},
        {"item_bytes": 0},
        {"visibility_probe_every": -1},
    ],
)
def test_bad_specs_are_refused(overrides):
    with pytest.raises(ValueError):
        _spec(**overrides)
