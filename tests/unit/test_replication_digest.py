"""Convergence digests: equal exactly when contents are, and they name the keys that differ."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian.replication.digest import (
    FANOUT,
    Digest,
    compare,
    differing_keys,
    differing_leaves,
    leaf_entries,
    leaf_of,
)

_keys = st.binary(min_size=1, max_size=12)
_records = st.binary(max_size=16)
_contents = st.dictionaries(_keys, _records, max_size=40)
_depths = st.integers(1, 3)


@settings(max_examples=300, deadline=None)
@given(_contents, _contents, _depths)
def test_digests_are_equal_exactly_when_contents_are(a: dict, b: dict, depth: int) -> None:
    assert (Digest.of(a.items(), depth) == Digest.of(b.items(), depth)) == (a == b)


@settings(max_examples=300, deadline=None)
@given(_contents, st.data(), _depths)
def test_compare_names_exactly_the_differing_keys(a: dict, data, depth: int) -> None:
    b = dict(a)
    for key in data.draw(st.lists(st.sampled_from(sorted(a)), max_size=5) if a else st.just([])):
        if data.draw(st.booleans()):
            b.pop(key, None)
        else:
            b[key] = b.get(key, b"") + b"!"
    for key, record in data.draw(st.dictionaries(_keys, _records, max_size=5)).items():
        b.setdefault(key, record)
    expected = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    assert compare(list(a.items()), list(b.items()), depth) == expected


@given(_contents, _contents)
def test_merging_node_digests_gives_the_region_digest(a: dict, b: dict) -> None:
    only_b = {k: v for k, v in b.items() if k not in a}
    merged = Digest.of(a.items(), 2)
    merged.merge(Digest.of(only_b.items(), 2))
    assert merged == Digest.of({**a, **only_b}.items(), 2)
    assert merged.count == len(a) + len(only_b)


def test_order_does_not_matter_and_the_root_is_small() -> None:
    entries = [(b"k%d" % i, b"v%d" % i) for i in range(500)]
    forward, backward = Digest.of(entries), Digest.of(reversed(entries))
    assert forward == backward
    assert len(forward.root()) == 40
    assert forward.count == 500


def test_the_descent_visits_only_differing_subtrees() -> None:
    entries = {b"k%d" % i: b"v" for i in range(2000)}
    changed = dict(entries)
    changed[b"k7"] = b"w"
    a, b = Digest.of(entries.items(), 3), Digest.of(changed.items(), 3)
    assert differing_leaves(a, b) == [leaf_of(b"k7", 3)]
    assert a.node(1, leaf_of(b"k7", 1)) != b.node(1, leaf_of(b"k7", 1))
    others = [i for i in range(FANOUT) if i != leaf_of(b"k7", 1)]
    assert all(a.node(1, i) == b.node(1, i) for i in others)
    leaves = differing_leaves(a, b)
    assert differing_keys(leaf_entries(entries.items(), leaves, 3), leaf_entries(changed.items(), leaves, 3)) == [
        b"k7"
    ]


def test_a_tombstone_versus_nothing_differs_when_tombstones_are_compared() -> None:
    assert compare([(b"k", b"tombstone@5")], []) == [b"k"]
    assert compare([], []) == []


def test_depths_must_match_and_stay_bounded() -> None:
    with pytest.raises(ValueError):
        differing_leaves(Digest(1), Digest(2))
    with pytest.raises(ValueError):
        Digest(1).merge(Digest(2))
    with pytest.raises(ValueError):
        Digest(0)
    with pytest.raises(ValueError):
        Digest(99)
