"""The serializability checker (tests/txn_history.py) against histories whose answer is known.

Serial executions must pass; the classic anomalies (lost update, write skew,
a write cycle, a read cycle) must be caught and named; and on small random
histories the checker must agree with a brute-force search over every serial
order, which is the definition it implements.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.txn_history import Txn, check, is_prefix, versions_from_appends

KEYS = ("x", "y", "z")


# --- the definition, by brute force ----------------------------------------------------


def serializable_by_search(txns: list[Txn], *, realtime: bool = False) -> bool:
    """Whether some serial order replays every read and write with exactly its recorded version."""
    for order in itertools.permutations(txns):
        if realtime and any(a.start > b.end for i, a in enumerate(order) for b in order[i + 1:]):
            continue  # b completed before a started: a may not come first
        current: dict[str, int] = {}
        ok = True
        for t in order:
            if any(current.get(k, 0) != v for k, v in t.reads.items()) or any(
                    current.get(k, 0) + 1 != v for k, v in t.writes.items()):
                ok = False
                break
            current.update(t.writes)
        if ok:
            return True
    return False


# --- generated histories ---------------------------------------------------------------


@st.composite
def serial_histories(draw, max_txns: int = 12) -> list[Txn]:
    """A serial execution: each transaction reads the current versions and installs the next ones."""
    current = {k: 0 for k in KEYS}
    txns = []
    clock = 0.0
    for i in range(draw(st.integers(1, max_txns))):
        reads = draw(st.sets(st.sampled_from(KEYS)))
        writes = draw(st.sets(st.sampled_from(KEYS)))
        start, clock = clock, clock + 1
        txns.append(Txn(f"t{i}", {k: current[k] for k in reads}, {k: current[k] + 1 for k in writes}, start, clock))
        for k in writes:
            current[k] += 1
    return draw(st.permutations(txns))  # the order a history is handed over in does not matter


@st.composite
def random_histories(draw, max_txns: int = 5) -> list[Txn]:
    """Any assignment of contiguous versions: writers of a key in a random order, reads of any version."""
    n = draw(st.integers(1, max_txns))
    write_sets = [draw(st.sets(st.sampled_from(KEYS[:2]))) for _ in range(n)]
    read_sets = [draw(st.sets(st.sampled_from(KEYS[:2]))) for _ in range(n)]
    writes: list[dict[str, int]] = [{} for _ in range(n)]
    for key in KEYS[:2]:
        writers = draw(st.permutations([i for i in range(n) if key in write_sets[i]]))
        for version, i in enumerate(writers, 1):
            writes[i][key] = version
    counts = {key: sum(key in w for w in write_sets) for key in KEYS[:2]}
    txns = []
    for i in range(n):
        reads = {k: draw(st.integers(0, counts[k])) for k in sorted(read_sets[i])}
        start = draw(st.integers(0, 6))
        txns.append(Txn(f"t{i}", reads, writes[i], float(start), float(start + draw(st.integers(0, 3)))))
    return txns


@settings(max_examples=300, deadline=None)
@given(serial_histories())
def test_serial_histories_pass(txns):
    report = check(txns)
    assert report.ok, str(report)
    assert check(txns, realtime=True).ok  # serial in time too: strictly serializable


@settings(max_examples=600, deadline=None)
@given(random_histories())
def test_agrees_with_the_search_over_serial_orders(txns):
    assert check(txns).ok == serializable_by_search(txns), str(check(txns))


@settings(max_examples=400, deadline=None)
@given(random_histories())
def test_realtime_agrees_with_the_search_over_serial_orders(txns):
    assert check(txns, realtime=True).ok == serializable_by_search(txns, realtime=True), str(check(txns, realtime=True))


# --- the classic anomalies, named -----------------------------------------------------------


def test_lost_update_is_a_g2_cycle():
    # Both read x@0; one installs x@1, the other x@2 without having seen x@1.
    report = check([Txn("a", {"x": 0}, {"x": 1}), Txn("b", {"x": 0}, {"x": 2})])
    assert not report.ok
    [anomaly] = report.anomalies
    assert anomaly.kind == "G2"
    assert {(e.src, e.dst, e.kind) for e in anomaly.cycle} == {("a", "b", "ww"), ("b", "a", "rw")}


def test_write_skew_is_a_g2_cycle():
    # The transfer pattern gone wrong: both check x + y on the same snapshot, each writes one.
    report = check([Txn("a", {"x": 0, "y": 0}, {"x": 1}), Txn("b", {"x": 0, "y": 0}, {"y": 1})])
    [anomaly] = report.anomalies
    assert anomaly.kind == "G2"
    assert sorted((e.src, e.dst, e.kind, e.key) for e in anomaly.cycle) == [("a", "b", "rw", "y"), ("b", "a", "rw", "x")]
    assert "NOT serializable" in str(report)


def test_write_cycle_is_g0():
    report = check([Txn("a", {}, {"x": 1, "y": 2}), Txn("b", {}, {"x": 2, "y": 1})])
    assert [a.kind for a in report.anomalies] == ["G0"]


def test_read_cycle_is_g1c():
    # Each read what the other wrote: neither can come first.
    report = check([Txn("a", {"y": 1}, {"x": 1}), Txn("b", {"x": 1}, {"y": 1})])
    assert [a.kind for a in report.anomalies] == ["G1c"]


def test_a_long_cycle_is_found_among_many_transactions():
    # t0 -ww-> t1 -ww-> ... -ww-> t49 (t_i installs c_{i+1}@1, t_{i+1} installs c_{i+1}@2),
    # closed by t49 -rw-> t0 (t49 read z@0, t0 installed z@1); unrelated readers around it.
    txns = []
    for i in range(50):
        writes = {f"c{i}": 2} if i > 0 else {"z": 1}
        if i < 49:
            writes[f"c{i + 1}"] = 1
        txns.append(Txn(f"t{i:02}", {"z": 0} if i == 49 else {}, writes))
    txns += [Txn(f"r{i}", {f"c{i}": 1}, {}) for i in range(1, 50)]
    report = check(txns)
    [anomaly] = report.anomalies
    assert anomaly.kind == "G2" and len(anomaly.cycle) in (50, 51)  # the readers sit in the same component
    assert any((e.src, e.dst, e.kind, e.key) == ("t49", "t00", "rw", "z") for e in anomaly.cycle)


def test_serializable_but_not_strictly():
    # a completed before b started, yet b did not see a's write.
    txns = [Txn("a", {}, {"x": 1}, 0.0, 1.0), Txn("b", {"x": 0}, {}, 2.0, 3.0)]
    assert check(txns).ok
    [anomaly] = check(txns, realtime=True).anomalies
    assert anomaly.kind == "G2-realtime"


def test_checks_that_need_no_graph():
    assert [a.kind for a in check([Txn("a", {}, {"x": 1}), Txn("b", {}, {"x": 1})]).anomalies] == ["duplicate-version"]
    assert [a.kind for a in check([Txn("a", {"x": 3}, {})]).anomalies] == ["future-read"]
    assert "internal" in [a.kind for a in check([Txn("a", {"x": 1}, {"x": 1})]).anomalies]
    with pytest.raises(ValueError):
        check([Txn("a"), Txn("a")])
    with pytest.raises(ValueError):
        check([Txn("a", {}, {"x": 0})])


def test_edges_are_counted_by_kind():
    txns = [Txn("w1", {}, {"x": 1}), Txn("r", {"x": 1}, {}), Txn("w2", {"x": 1}, {"x": 2})]
    report = check(txns)
    assert report.ok
    assert report.edges == {"ww": 1, "wr": 1, "rw": 1, "rt": 0}  # w1->w2 ww (kept over wr), w1->r wr, r->w2 rw


# --- list-append histories ---------------------------------------------------------------


def test_versions_from_appends():
    final = {"a": ["t1", "t2", "t3"], "b": ["t2"]}
    assert versions_from_appends(final) == {"t1": {"a": 1}, "t2": {"a": 2, "b": 1}, "t3": {"a": 3}}
    with pytest.raises(ValueError, match="twice"):
        versions_from_appends({"a": ["t1", "t1"]})


def test_is_prefix():
    assert is_prefix([], ["t1"]) and is_prefix(["t1"], ["t1", "t2"]) and is_prefix(["t1", "t2"], ["t1", "t2"])
    assert not is_prefix(["t2"], ["t1", "t2"]) and not is_prefix(["t1", "t2", "t3"], ["t1", "t2"])
