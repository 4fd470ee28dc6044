"""The workload checks' judgement, over given data (meridian.lab.load.checks)."""

from __future__ import annotations

import orjson
import pytest

from meridian.lab.load.checks import (
    AVAILABILITY_CHECK,
    LOST_CHECK,
    availability_figures,
    check_availability,
    judge_key,
    lost_check_result,
    merge_windows,
)

REGIONS = ["a", "b", "c"]


def _everywhere(item):
    return dict.fromkeys(REGIONS, item)


# --- single-writer keys -------------------------------------------------------


def test_a_key_holding_the_acknowledged_version_everywhere_passes():
    assert judge_key("a#1", _everywhere((12, "a")), (12, "a"), {"a": 12}, REGIONS) is None


def test_a_later_attempted_version_than_the_acknowledged_one_passes():
    # Version 13 was sent, its answer lost (time-out): it may well have been applied.
    assert judge_key("a#1", _everywhere((13, "a")), (12, "a"), {"a": 13}, REGIONS) is None


def test_an_older_version_somewhere_is_a_lost_write():
    held = {"a": (12, "a"), "b": (12, "a"), "c": (11, "a")}
    kind, text = judge_key("a#1", held, (12, "a"), {"a": 12}, REGIONS)
    assert kind == "lost" and "c holds version 11" in text and "12 was acknowledged" in text


def test_a_missing_item_after_an_acknowledgement_is_a_lost_write():
    held = {"a": (12, "a"), "b": None, "c": (12, "a")}
    kind, text = judge_key("a#1", held, (12, "a"), {"a": 12}, REGIONS)
    assert kind == "lost" and text.startswith("b holds nothing")


def test_a_version_never_sent_is_invented():
    kind, text = judge_key("a#1", _everywhere((14, "a")), (12, "a"), {"a": 13}, REGIONS)
    assert kind == "invented" and "last sent 13" in text


def test_an_item_by_another_writer_is_invented():
    kind, _ = judge_key("a#1", _everywhere((12, "b")), (12, "a"), {"a": 12}, REGIONS)
    assert kind == "invented"


def test_a_key_never_acknowledged_may_be_absent_or_hold_any_sent_version():
    held = {"a": None, "b": (3, "a"), "c": None}
    assert judge_key("a#1", held, None, {"a": 3}, REGIONS) is None
    assert judge_key("a#1", _everywhere(None), None, {"a": 3}, REGIONS) is None


# --- conflict keys ----------------------------------------------------------------


def test_a_conflict_key_passes_when_every_region_holds_the_same_sent_item():
    assert judge_key("conflict#0", _everywhere((7, "b")), (9, "a"), {"a": 9, "b": 7}, REGIONS) is None


def test_a_conflict_key_whose_regions_differ_has_diverged():
    held = {"a": (9, "a"), "b": (7, "b"), "c": (9, "a")}
    kind, text = judge_key("conflict#0", held, (9, "a"), {"a": 9, "b": 7}, REGIONS)
    assert kind == "diverged" and "b=7/b" in text


def test_a_conflict_key_holding_an_unsent_item_is_invented():
    kind, _ = judge_key("conflict#0", _everywhere((8, "b")), (9, "a"), {"a": 9, "b": 7}, REGIONS)
    assert kind == "invented"
    kind, _ = judge_key("conflict#0", _everywhere((1, "c")), (9, "a"), {"a": 9, "b": 7}, REGIONS)
    assert kind == "invented"  # c never wrote it


def test_a_conflict_key_absent_everywhere_after_an_acknowledgement_is_lost():
    kind, _ = judge_key("conflict#0", _everywhere(None), (9, "a"), {"a": 9}, REGIONS)
    assert kind == "lost"
    assert judge_key("conflict#0", _everywhere(None), None, {"a": 9}, REGIONS) is None


# --- the result -------------------------------------------------------------------


def test_the_result_counts_failures_by_kind_and_names_the_first_keys():
    failures = {f"a#{i}": ("lost", f"text {i}") for i in range(15)}
    failures["conflict#0"] = ("diverged", "regions differ")
    result = lost_check_result(failures, 100, REGIONS)
    assert result.name == LOST_CHECK and not result.passed
    assert result.figures == {
        "keys_checked": 100, "regions": 3, "keys_lost": 15, "keys_invented": 0, "keys_diverged": 1,
        "keys_unreadable": 0,
    }  # fmt: skip
    assert result.detail.startswith("16 of 100 keys fail (15 lost, 1 diverged); first: a#0: text 0")
    assert result.detail.count("text") == 10  # DETAIL_KEYS_MAX
    passed = lost_check_result({}, 100, REGIONS)
    assert passed.passed and passed.figures["keys_lost"] == 0 and "100 keys checked" in passed.detail


# --- availability -------------------------------------------------------------------


def _history(*records):
    return [
        {"t": t, "region": region, "op": "put", "key": "k", "ok": error is None, "error": error, "latency_ms": 1.0, "version": 1}
        for t, region, error in records
    ]


def test_windows_are_merged():
    assert merge_windows([(5, 7), (1, 3), (2, 4), (8, 6)]) == [(1, 4), (5, 8)]


def test_availability_counts_requests_and_errors_inside_and_outside_the_windows():
    records = _history(
        (100.0, "a", None), (101.0, "a", "Timeout"), (101.5, "a", None), (102.0, "a", None),
        (100.5, "b", None), (101.2, "b", None), (103.9, "b", "InternalServerError"), (104.0, "b", None),
    )  # fmt: skip
    figures = availability_figures(records, [(101.0, 102.0)])
    assert figures["span_s"] == 4.0
    a, b = figures["regions"]["a"], figures["regions"]["b"]
    assert a["inside"] == {"requests": 2, "errors": 1, "error_types": {"Timeout": 1}, "seconds": 1.0, "errors_per_s": 1.0}
    assert a["outside"]["requests"] == 2 and a["outside"]["errors"] == 0 and a["outside"]["seconds"] == 3.0
    assert b["inside"]["requests"] == 1 and b["inside"]["errors"] == 0
    assert b["outside"]["errors"] == 1 and b["outside"]["errors_per_s"] == pytest.approx(1 / 3, abs=1e-3)


def test_windows_are_clipped_to_the_history_span():
    figures = availability_figures(_history((10.0, "a", None), (12.0, "a", None)), [(0.0, 11.0), (11.5, 99.0)])
    assert figures["regions"]["a"]["inside"]["seconds"] == 1.5
    assert figures["regions"]["a"]["outside"]["seconds"] == 0.5


def _write(path, records):
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_check_availability_passes_when_every_region_kept_serving(tmp_path):
    records = _history(*[(100 + i / 10, region, None) for i in range(50) for region in ("a", "b")])
    result = check_availability(_write(tmp_path / "history.jsonl", records), [(101.0, 103.0)])
    assert result.name == AVAILABILITY_CHECK and result.passed, result.detail
    assert "a: 0/20 failed during faults" in result.detail


def test_check_availability_fails_a_region_that_failed_or_served_nothing(tmp_path):
    records = _history(*[(100 + i / 10, "a", "Timeout" if 10 <= i < 30 else None) for i in range(50)])
    records += _history((100.0, "b", None), (104.9, "b", None))
    path = _write(tmp_path / "history.jsonl", records)
    result = check_availability(path, [(101.0, 103.0)])
    assert not result.passed
    assert "a failed 100.0% of its requests during the faults" in result.detail
    assert "b served no request during the faults" in result.detail
    assert check_availability(path, [(101.0, 103.0)], regions=["a"], max_error_ratio=1.0).passed
    assert check_availability(path, []).passed  # no windows: nothing to judge
