"""Contributor Insights' rules (router/contributors.py): Space-Saving's guarantees, the window, the plans.

The heavy-hitter guarantee is checked against exact counts on random
streams (hypothesis): every key above 1/k of a k-counter rule's requests is
kept, and the top n report names every key above 1/n, with counts never
below the truth.  Time is a virtual clock: same steps, same result.
"""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.ops import IndexSpec
from meridian.router.contributors import Contributors, KeyRanker, SpaceSaving, rule_codes
from meridian.router.server import contributor_metrics_text
from meridian.router.table_record import Index, Table

#: skewed streams: a few keys drawn often, many rarely
KEYS = st.one_of(st.sampled_from("abc"), st.integers(0, 40).map(str))
STREAMS = st.lists(KEYS, min_size=1, max_size=400)


@settings(max_examples=300, deadline=None)
@given(stream=STREAMS, capacity=st.integers(1, 12))
def test_space_saving_keeps_every_heavy_hitter_and_never_underestimates(stream, capacity):
    summary = SpaceSaving(capacity)
    for key in stream:
        summary.add(key)
    truth = Counter(stream)
    total = len(stream)
    assert len(summary.counts) <= capacity
    assert sum(summary.counts.values()) == total  # the counters always sum to the stream's weight
    for key, count in summary.counts.items():
        assert truth[key] <= count  # never low ...
        assert count - summary.errors[key] <= truth[key]  # ... and high by at most its error
        assert summary.errors[key] <= total / capacity
    for key, count in truth.items():
        if count * capacity > total:
            assert key in summary.counts, (key, count, total, capacity)
    assert_heap_sound(summary)
    for n in range(1, capacity + 1):
        reported = {key for key, _count, _error in summary.top(n)}
        assert len(reported) == min(n, len(summary.counts))
        for key, count in truth.items():
            if count * n > total:
                assert key in reported, (key, count, total, n)


def assert_heap_sound(summary: SpaceSaving) -> None:
    """One heap entry per kept key, never above its count, in heap order (what eviction relies on)."""
    heap = summary._heap
    assert sorted(key for _seen, _order, key in heap) == sorted(summary.counts)
    assert all(seen <= summary.counts[key] for seen, _order, key in heap)
    assert all(heap[(i - 1) // 2][:2] <= heap[i][:2] for i in range(1, len(heap)))


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(KEYS, st.floats(0, 30)), min_size=1, max_size=300),
    capacity=st.integers(1, 10),
    window_s=st.sampled_from([0.25, 1.0, 60.0]),
)
def test_decayed_heavy_hitters_are_reported_with_counts_never_low(events, capacity, window_s):
    """The same guarantees over forward-decayed weights, across rescales (small windows, long gaps)."""
    now_s = 0.0
    ranker = KeyRanker(now_s, capacity=capacity, window_s=window_s)
    times: list[tuple[str, float]] = []
    for key, gap_s in events:
        now_s += gap_s
        ranker.add(key, now_s)
        times.append((key, now_s))
    truth: Counter[str] = Counter()
    for key, at_s in times:
        truth[key] += math.exp((at_s - now_s) / window_s)
    total = sum(truth.values())
    ranked = ranker.top(capacity, now_s)
    counts = dict(ranked)
    for key, count in counts.items():
        assert truth[key] <= count * (1 + 1e-9) + 1e-12
    for key, weight in truth.items():
        if weight * capacity > total * (1 + 1e-9):
            assert key in counts, (key, weight, total, capacity)
    assert [count for _key, count in ranked] == sorted(counts.values(), reverse=True)
    assert_heap_sound(ranker.summary)


def test_a_key_gone_cold_fades_below_a_hot_one():
    ranker = KeyRanker(0.0, capacity=4, window_s=60.0)
    for _ in range(100):
        ranker.add("then", 0.0)
    for second in range(300, 330):  # five minutes later, 30 requests in 30 s
        ranker.add("now", float(second))
    (first, first_count), (second_key, second_count) = ranker.top(2, 330.0)
    assert first == "now" and second_key == "then"
    assert first_count == pytest.approx(sum(math.exp(-s / 60.0) for s in range(1, 31)))
    assert second_count == pytest.approx(100 * math.exp(-330 / 60.0))


def test_the_rules_dynamodb_makes():
    assert rule_codes(True, "ACCESSED_AND_THROTTLED_KEYS") == ("PKC", "SKC", "PKT", "SKT")
    assert rule_codes(False, "ACCESSED_AND_THROTTLED_KEYS") == ("PKC", "PKT")
    assert rule_codes(True, "THROTTLED_KEYS") == ("PKT", "SKT")
    assert rule_codes(False, "THROTTLED_KEYS") == ("PKT",)


# --- the router's view: plans per table revision ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def make_table(disabled: dict | None = None, **insights) -> Table:
    """A table (pk, sk) with a global index ``byg`` (g) and a local one ``bylsi``;
    Contributor Insights on where ``insights`` says, off where ``disabled`` does."""
    gsi = Index(IndexSpec("byg", 11, True, (("g", "S"),), "KEYS_ONLY"))
    lsi = Index(IndexSpec("bylsi", 12, False, (("pk", "S"), ("l", "S")), "KEYS_ONLY"))
    return Table(name="t", table_id=7, uuid="u", key_schema=[("pk", "S"), ("sk", "N")], attribute_definitions=[],
                 created_s=0.0, region="us-east-1", indexes=[lsi, gsi], contributor_insights=dict(insights),
                 contributor_insights_disabled=disabled or {})


def on(mode="ACCESSED_AND_THROTTLED_KEYS", **extra) -> dict:
    return {"mode": mode, "changed_s": 0.0, "rules_ms": 1} | extra


def item(pk: str, sk: str = "1", **more) -> dict:
    return {"pk": {"S": pk}, "sk": {"N": sk}} | {name: {"S": value} for name, value in more.items()}


def ranked(contributors: Contributors, table: Table) -> dict:
    return {(index, code): [(key, round(count, 6)) for key, count in keys]
            for index, code, keys in contributors.top(table)}


def test_requests_feed_the_enabled_resources_rules():
    clock = Clock()
    contributors = Contributors(clock)
    table = make_table(**{"": on(), "byg": on(index_id=11)})
    for _ in range(3):
        contributors.accessed(table, item("hot"), item=item("hot", g="gh"))
    contributors.accessed(table, item("cold", "2"))
    contributors.accessed(table, {"g": {"S": "gq"}}, index_name="byg")  # a Query on the index
    contributors.accessed(table, {"pk": {"S": "hot"}})  # a Query on the table: its partition key only
    contributors.throttled(table, item("hot"))
    pk, both = ("S", "hot"), (("S", "hot"), ("N", "1"))
    assert ranked(contributors, table) == {
        (None, "PKC"): [(pk, 4.0), (("S", "cold"), 1.0)],
        (None, "SKC"): [(both, 3.0), ((("S", "cold"), ("N", "2")), 1.0)],
        (None, "PKT"): [(pk, 1.0)],
        (None, "SKT"): [(both, 1.0)],
        ("byg", "PKC"): [(("S", "gh"), 3.0), (("S", "gq"), 1.0)],
        ("byg", "PKT"): [],
    }
    clock.now_s += limits.CONTRIBUTOR_INSIGHTS_WINDOW_S  # a window later: decayed by e
    assert ranked(contributors, table)[None, "PKT"] == [(pk, round(math.exp(-1), 6))]


def test_throttled_keys_mode_ranks_no_accesses_and_a_mode_change_keeps_the_shared_rules():
    contributors = Contributors(Clock())
    table = make_table(**{"": on("THROTTLED_KEYS")})
    contributors.accessed(table, item("a"))
    contributors.throttled(table, item("b"))
    assert ranked(contributors, table) == {(None, "PKT"): [(("S", "b"), 1.0)],
                                           (None, "SKT"): [(((("S", "b"), ("N", "1"))), 1.0)]}
    widened = make_table(**{"": on()})
    widened.revision = 1
    contributors.accessed(widened, item("a"))
    out = ranked(contributors, widened)
    assert out[None, "PKT"] == [(("S", "b"), 1.0)] and out[None, "PKC"] == [(("S", "a"), 1.0)]


def test_disabled_and_stale_entries_rank_nothing():
    contributors = Contributors(Clock())
    disabled = make_table(disabled={"": on()})
    assert not disabled.contributor_insights  # what the hooks test: nothing is called
    contributors.throttled(disabled, item("a"))
    assert ranked(contributors, disabled) == {}
    # an entry of an index deleted and created again under its name (another index id) is stale
    stale = make_table(**{"byg": on(index_id=99)})
    stale.revision = 1
    contributors.accessed(stale, item("a", g="x"))
    assert ranked(contributors, stale) == {}
    never = make_table()
    never.table_id = 8
    contributors.throttled(never, item("a"))  # never configured: not even a plan
    assert (never.table_id, never.revision) not in contributors._plans


def test_prune_forgets_what_is_no_longer_enabled_and_a_re_enable_starts_afresh():
    contributors = Contributors(Clock())
    table = make_table(**{"": on()})
    contributors.accessed(table, item("a"))
    contributors.prune([table])
    assert ranked(contributors, table)[None, "PKC"] == [(("S", "a"), 1.0)]
    contributors.prune([])  # the table was deleted
    assert contributors._resources == {}
    again = make_table(**{"": on(rules_ms=2)})  # re-enabled: new rules
    again.revision = 5
    assert ranked(contributors, again)[None, "PKC"] == []


def test_resources_are_bounded(monkeypatch):
    monkeypatch.setattr(limits, "CONTRIBUTOR_INSIGHTS_RESOURCES_MAX", 3)
    contributors = Contributors(Clock())
    for table_id in range(10):
        table = make_table(**{"": on()})
        table.table_id = table_id
        contributors.accessed(table, item("a"))
    assert len(contributors._resources) == 3
    assert {key[0] for key in contributors._resources} == {7, 8, 9}  # the newest kept


def test_metrics_text_names_each_rules_keys_largest_first():
    from prometheus_client.parser import text_string_to_metric_families

    contributors = Contributors(Clock())
    table = make_table(**{"": on(), "byg": on("THROTTLED_KEYS", index_id=11)})
    quiet = make_table()
    quiet.name, quiet.table_id = "quiet", 8
    for pk, times in (("warm", 2), ('q"uote', 1), ("hot", 5)):
        for _ in range(times):
            contributors.accessed(table, item(pk))
            contributors.accessed(quiet, item(pk))
    contributors.throttled(table, item("hot"), item=item("hot", g="gx"))  # a put: its index key too
    ctx = SimpleNamespace(catalog=SimpleNamespace(tables=lambda: [table, quiet]), contributors=contributors)
    text = contributor_metrics_text(ctx)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    accessed = [(s.labels["Rule"], s.labels["Key"], s.labels["SortKey"], s.value)
                for s in families["meridian_contributor_insights_accessed_keys"].samples]
    assert accessed == [("PKC", "hot", "", 5.0), ("PKC", "warm", "", 2.0), ("PKC", 'q"uote', "", 1.0),
                        ("SKC", "hot", "1", 5.0), ("SKC", "warm", "1", 2.0), ("SKC", 'q"uote', "1", 1.0)]
    throttled = [(s.labels["IndexName"], s.labels["Rule"], s.labels["Key"], s.labels["SortKey"])
                 for s in families["meridian_contributor_insights_throttled_keys"].samples]
    assert throttled == [("", "PKT", "hot", ""), ("", "SKT", "hot", "1"), ("byg", "PKT", "gx", "")]
    assert all(s.labels["TableName"] == "t" for f in families.values() for s in f.samples)  # not "quiet"
    assert families["meridian_contributor_insights_accessed_keys"].type == "gauge"
