"""The linearizability checker (tests/linearizability.py): it must reject what is not, accept what is."""

from __future__ import annotations

import itertools
import random

import pytest
from linearizability import CheckerGaveUp, Operation, check_history, check_key, step

_ids = itertools.count()


def put(value: str, start: float, end: float | None, ok: bool | None = True) -> Operation:
    return Operation(next(_ids), "put", (value, None), start, end, ok if end is not None else None)


def get(value: str | None, start: float, end: float) -> Operation:
    return Operation(next(_ids), "get", (None, None), start, end, value)


def cas(expected: str | None, value: str, start: float, end: float | None, applied: bool | None) -> Operation:
    return Operation(next(_ids), "cas", (value, expected), start, end, applied if end is not None else None)


# --- rejected ---------------------------------------------------------------


def test_a_stale_read_after_a_completed_write_is_rejected() -> None:
    # put(a) finished before the get began, yet the get saw nothing
    assert not check_key([put("a", 0, 10), get(None, 20, 30)])


def test_a_read_from_a_deposed_leader_is_rejected() -> None:
    # the history a leader serving reads without a lease produces: b overwrote a, then a is read again
    assert not check_key([put("a", 0, 10), put("b", 20, 30), get("b", 35, 40), get("a", 45, 50)])


def test_values_going_back_in_time_are_rejected() -> None:
    # two concurrent writes may land in either order, but two sequential reads cannot see both orders
    ops = [put("a", 0, 100), put("b", 0, 100), get("a", 10, 20), get("b", 30, 40), get("a", 50, 60)]
    assert not check_key(ops)


def test_a_read_of_a_value_never_written_is_rejected() -> None:
    assert not check_key([put("a", 0, 10), get("z", 0, 20)])


def test_two_winning_conditional_updates_from_the_same_value_are_rejected() -> None:
    # both "succeeded" from the same expected value: a lost update
    ops = [put("a", 0, 5), cas("a", "b", 10, 20, True), cas("a", "c", 10, 20, True)]
    assert not check_key(ops)


def test_a_failed_condition_that_should_have_held_is_rejected() -> None:
    assert not check_key([put("a", 0, 5), cas("a", "b", 10, 20, False)])


def test_a_pending_write_cannot_explain_a_read_before_it_was_invoked() -> None:
    assert not check_key([get("a", 0, 10), put("a", 20, None)])


def test_check_history_names_the_bad_keys() -> None:
    history = {"good": [put("a", 0, 10), get("a", 20, 30)], "bad": [put("a", 0, 10), get(None, 20, 30)]}
    assert check_history(history) == ["bad"]


# --- accepted ---------------------------------------------------------------


def test_an_empty_history_and_an_initial_read_are_linearizable() -> None:
    assert check_key([])
    assert check_key([get(None, 0, 1)])


def test_a_read_concurrent_with_a_write_may_see_either() -> None:
    assert check_key([put("a", 0, 10), put("b", 20, 40), get("a", 25, 30)])
    assert check_key([put("a", 0, 10), put("b", 20, 40), get("b", 25, 30)])


def test_a_write_that_never_answered_may_have_happened_late() -> None:
    # the put of b timed out; a read long after sees it, and then a later put overwrites it
    ops = [put("a", 0, 10), put("b", 20, None), get("a", 30, 40), get("b", 50, 60), put("c", 70, 80), get("c", 90, 95)]
    assert check_key(ops)


def test_a_write_that_never_answered_may_never_have_happened() -> None:
    assert check_key([put("a", 0, 10), put("b", 20, None), get("a", 1000, 1010)])


def test_a_conditional_update_with_unknown_outcome_may_have_applied_or_not() -> None:
    applied = [put("a", 0, 10), cas("a", "b", 20, None, None), get("b", 100, 110)]
    not_applied = [put("a", 0, 10), cas("a", "b", 20, None, None), get("a", 100, 110)]
    assert check_key(applied) and check_key(not_applied)


def test_the_order_of_overlapping_writes_is_fixed_by_later_reads() -> None:
    # three concurrent puts; the reads pin one order (c, a, b) that the search must find
    ops = [put("a", 0, 50), put("b", 0, 50), put("c", 0, 50), get("c", 1, 2), get("a", 3, 4), get("b", 60, 70)]
    assert check_key(ops)


def test_an_operation_invoked_the_instant_another_completed_counts_as_concurrent() -> None:
    assert check_key([put("a", 0, 10), get(None, 10, 20)])


def test_a_failed_condition_linearizes_where_the_value_differed() -> None:
    ops = [put("a", 0, 10), put("b", 5, 30), cas("a", "c", 15, 25, False), get("b", 40, 50)]
    assert check_key(ops)


def test_a_long_sequential_history_with_pending_writes_is_decided_quickly() -> None:
    rng = random.Random(7)
    ops: list[Operation] = []
    value: str | None = None
    for i in range(400):
        start = i * 10.0
        if rng.random() < 0.1:
            ops.append(put(f"lost{i}", start, None))  # never answered, never visible
        elif rng.random() < 0.5:
            value = f"v{i}"
            ops.append(put(value, start, start + 5))
        else:
            ops.append(get(value, start, start + 5))
    assert check_key(ops)


def test_the_search_gives_up_rather_than_running_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    import linearizability

    monkeypatch.setattr(linearizability, "SEARCH_STEPS_MAX", 5)
    with pytest.raises(CheckerGaveUp):
        check_key([put(str(i), 0, 100) for i in range(6)] + [get("nothing", 200, 300)])


# --- against a plain search -------------------------------------------------


def _reference(ops: list[Operation]) -> bool:
    """Every order the real-time constraints allow, memoized, without the checker's
    pruning of unanswered operations: slow, obviously right, small histories only."""
    from functools import lru_cache

    never = float("inf")

    @lru_cache(maxsize=None)
    def search(done: int, state: object) -> bool:
        left = [i for i in range(len(ops)) if not done >> i & 1]
        if all(ops[i].complete_ms is None for i in left):
            return True
        first_return = min(ops[i].complete_ms if ops[i].complete_ms is not None else never for i in left)
        for i in left:
            if ops[i].invoke_ms <= first_return:
                allowed, after = step(state, ops[i])
                if allowed and search(done | 1 << i, after):
                    return True
        return False

    return search(0, None)


def test_the_checker_agrees_with_a_plain_search_on_small_random_histories() -> None:
    rng = random.Random(1)
    linearizable = 0
    for _ in range(3000):
        ops: list[Operation] = []
        written: list[str | None] = [None]
        for i in range(rng.randint(1, 8)):
            start = rng.randint(0, 20)
            end = None if rng.random() < 0.3 else start + rng.randint(0, 10)
            kind = rng.choice(("put", "get", "cas"))
            if kind == "get":
                ops.append(get(rng.choice(written), start, start + rng.randint(0, 10)))
            elif kind == "put":
                ops.append(put(f"v{i}", start, end))
            else:
                ops.append(cas(rng.choice(written), f"v{i}", start, end, rng.random() < 0.5))
            if kind != "get":
                written.append(f"v{i}")
        verdict = check_key(ops)
        assert verdict == _reference(ops), ops
        linearizable += verdict
    assert 300 < linearizable < 2700  # both verdicts well represented
