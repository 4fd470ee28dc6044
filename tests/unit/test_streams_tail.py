"""``meridian streams tail`` without a server: folding records into lines, the
lineage rule, and the follower against a stream made of plain data."""

from __future__ import annotations

import datetime

import pytest

from meridian.lab.streams_tail import (
    LATEST,
    RECORDS_PER_PAGE,
    ApiError,
    Follower,
    Lineage,
    ShardInfo,
    fold_image,
    fold_value,
    record_line,
)

UTC = datetime.timezone.utc
ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-12-07T17:04:41.123"


# --- folding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "folded"),
    [
        ({"S": 'say "hi"'}, '"say \\"hi\\""'),
        ({"N": "-12.50"}, "-12.50"),
        ({"B": "AAE="}, 'b"AAE="'),
        ({"BOOL": True}, "true"),
        ({"BOOL": False}, "false"),
        ({"NULL": True}, "null"),
        ({"L": [{"N": "1"}, {"S": "a"}, {"L": []}]}, '[1, "a", []]'),
        ({"M": {"a": {"N": "1"}, "b c": {"M": {}}}}, '{a: 1, "b c": {}}'),
        ({"SS": ["x", "y"]}, '<<"x", "y">>'),
        ({"NS": ["1", "2.5"]}, "<<1, 2.5>>"),
        ({"BS": ["AA=="]}, '<<b"AA==">>'),
        ({"X": 1}, '{"X":1}'),
    ],
)
def test_every_attribute_type_folds_to_one_compact_form(value, folded):
    assert fold_value(value) == folded


def test_an_image_keeps_its_attribute_order_and_quotes_names_that_are_not_identifiers():
    image = {"pk": {"S": "a"}, "2nd": {"N": "2"}, "_ok": {"NULL": True}, "é": {"S": ""}}
    assert fold_image(image) == '{pk: "a", "2nd": 2, _ok: null, "é": ""}'


def _record(event: str, **dynamodb) -> dict:
    return {
        "eventID": "1", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": 1796663081.0, "Keys": {"pk": {"S": "a"}},
                     "SequenceNumber": "100000000000000000001", "SizeBytes": 10, **dynamodb},
    }  # fmt: skip


def test_one_line_per_event_with_the_images_its_view_type_has():
    old, new = {"pk": {"S": "a"}, "n": {"N": "1"}}, {"pk": {"S": "a"}, "n": {"N": "2"}}
    assert record_line(_record("INSERT", NewImage=new), UTC) == '17:04:41  INSERT  {pk: "a"}  new {pk: "a", n: 2}'
    assert record_line(_record("MODIFY", OldImage=old, NewImage=new), UTC) == (
        '17:04:41  MODIFY  {pk: "a"}  old {pk: "a", n: 1}  new {pk: "a", n: 2}'
    )
    assert record_line(_record("REMOVE", OldImage=old), UTC) == '17:04:41  REMOVE  {pk: "a"}  old {pk: "a", n: 1}'
    assert record_line(_record("MODIFY"), UTC) == '17:04:41  MODIFY  {pk: "a"}'  # KEYS_ONLY


def test_a_ttl_deletion_is_marked_as_the_services():
    record = _record("REMOVE", OldImage={"pk": {"S": "a"}})
    record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert record_line(record, UTC).endswith('old {pk: "a"}  TTL: dynamodb.amazonaws.com')
    assert "TTL" not in record_line(_record("REMOVE"), UTC)


def test_a_long_image_is_cut_and_the_line_stays_one_line():
    line = record_line(_record("INSERT", NewImage={"pk": {"S": "a"}, "text": {"S": "x\n" * 1000}}), UTC)
    assert "\n" not in line and line.endswith("…") and len(line) < 500


# --- lineage ---------------------------------------------------------------------


def _shard(shard_id: str, parent: str | None = None, closed: bool = False) -> ShardInfo:
    return ShardInfo(shard_id, parent, closed)


def test_a_child_waits_for_its_parent_to_be_read_to_its_end():
    lineage = Lineage()
    assert lineage.add([_shard("n1-p1", closed=True), _shard("n2-p1"), _shard("n1-p2", "n1-p1")]) == [
        _shard("n1-p1", closed=True), _shard("n2-p1"), _shard("n1-p2", "n1-p1"),
    ]  # fmt: skip
    assert lineage.readable() == ["n1-p1", "n2-p1"]
    lineage.finish("n1-p1")
    assert lineage.readable() == ["n2-p1", "n1-p2"]
    assert not lineage.all_finished()


def test_a_parent_no_longer_listed_holds_nothing_back_and_a_listing_adds_only_new_shards():
    lineage = Lineage()
    lineage.add([_shard("n1-p5", "n1-p4")])  # p4 was trimmed
    assert lineage.readable() == ["n1-p5"]
    assert lineage.add([_shard("n1-p5", "n1-p4", closed=True), _shard("n1-p6", "n1-p5")]) == [_shard("n1-p6", "n1-p5")]
    lineage.finish("n1-p5")
    lineage.finish("n1-p6")
    assert lineage.readable() == [] and lineage.all_finished() and len(lineage) == 2


# --- following a stream made of plain data --------------------------------------


class FakeStream:
    """DescribeTable / DescribeStream / GetShardIterator / GetRecords over plain
    data: ``shards`` maps id -> (parent, closed, records); an iterator is
    ``"<shard>|<index>"``."""

    def __init__(self, shards: dict[str, tuple[str | None, bool, list[str]]], page_shards: int = 100) -> None:
        self.arn = ARN
        self.shards = {k: (p, c, list(r)) for k, (p, c, r) in shards.items()}
        self.status = "ENABLED"
        self.page_shards = page_shards
        self.calls: list[tuple[str, dict]] = []
        self.fail_next: dict[str, ApiError] = {}

    def add(self, shard_id: str, *records: str) -> None:
        self.shards[shard_id][2].extend(records)

    def close(self, shard_id: str) -> None:
        parent, _, records = self.shards[shard_id]
        self.shards[shard_id] = (parent, True, records)

    def dynamodb(self, action: str, payload: dict) -> dict:
        assert action == "DescribeTable" and payload == {"TableName": "t"}
        return {"Table": {"TableName": "t", "LatestStreamArn": self.arn}}

    def streams(self, action: str, payload: dict) -> dict:
        self.calls.append((action, payload))
        if action in self.fail_next:
            raise self.fail_next.pop(action)
        if action == "DescribeStream":
            assert payload["StreamArn"] == self.arn
            ids = list(self.shards)
            start = ids.index(payload["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in payload else 0
            page = ids[start : start + self.page_shards]
            description = {"StreamStatus": self.status, "Shards": [self._wire(s) for s in page]}
            if start + self.page_shards < len(ids):
                description["LastEvaluatedShardId"] = page[-1]
            return {"StreamDescription": description}
        if action == "GetShardIterator":
            records = self.shards[payload["ShardId"]][2]
            kind = payload["ShardIteratorType"]
            at = {"TRIM_HORIZON": 0, "LATEST": len(records)}.get(kind)
            if kind == "AFTER_SEQUENCE_NUMBER":
                at = records.index(payload["SequenceNumber"]) + 1
            return {"ShardIterator": f"{payload['ShardId']}|{at}"}
        assert action == "GetRecords" and payload["Limit"] == RECORDS_PER_PAGE
        shard_id, at = payload["ShardIterator"].split("|")
        _, closed, records = self.shards[shard_id]
        page = records[int(at) : int(at) + 2]  # small pages: several reads per shard
        end = int(at) + len(page)
        answer: dict = {"Records": [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": s}} for s in page]}
        if not (closed and end == len(records)):
            answer["NextShardIterator"] = f"{shard_id}|{end}"
        return answer

    def _wire(self, shard_id: str) -> dict:
        parent, closed, records = self.shards[shard_id]
        shard: dict = {"ShardId": shard_id, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
        if closed:
            shard["SequenceNumberRange"]["EndingSequenceNumber"] = records[-1] if records else "1"
        if parent is not None:
            shard["ParentShardId"] = parent
        return shard


def _follower(stream: FakeStream, start: str = "trim-horizon") -> tuple[Follower, list[str], list[str]]:
    seen: list[str] = []
    warnings: list[str] = []
    follower = Follower(stream, "t", start, emit=lambda r: seen.append(r["dynamodb"]["SequenceNumber"]),
                        warn=warnings.append, sleep=lambda s: None, monotonic_s=lambda: 0.0)  # type: ignore[arg-type]  # fmt: skip
    follower.open()
    return follower, seen, warnings


def _drain(follower: Follower) -> None:
    """Poll until a pass reads nothing (the shard list refreshed first)."""
    follower._listed_at = None
    while follower.poll():
        pass


def test_every_record_once_parents_before_children_on_every_node():
    stream = FakeStream({
        "a1": (None, True, ["a1-1", "a1-2", "a1-3"]),
        "b1": (None, True, ["b1-1"]),
        "a2": ("a1", True, ["a2-1", "a2-2"]),
        "b2": ("b1", False, []),
        "a3": ("a2", False, ["a3-1"]),
    }, page_shards=2)  # fmt: skip
    follower, seen, _ = _follower(stream)
    _drain(follower)
    assert sorted(seen) == sorted(r for _, _, records in stream.shards.values() for r in records)
    for parent, child in (("a1-3", "a2-1"), ("a2-2", "a3-1")):
        assert seen.index(parent) < seen.index(child)
    assert [a["StreamArn"] for c, a in stream.calls if c == "DescribeStream"][:3] == [ARN] * 3  # paged listing
    # Open shards are polled again; new records, and a shard that follows a closed one, are picked up.
    stream.add("a3", "a3-2")
    stream.add("b2", "b2-1")
    stream.close("b2")
    stream.shards["b3"] = ("b2", False, ["b3-1"])
    _drain(follower)
    assert sorted(seen[-3:]) == ["a3-2", "b2-1", "b3-1"] and seen.index("b2-1") < seen.index("b3-1")
    assert len(seen) == len(set(seen)) == 10
    assert follower.lineage.finished("b2") and not follower.lineage.finished("a3")


def test_latest_skips_closed_shards_and_history_but_reads_later_shards_from_their_start():
    stream = FakeStream({"a1": (None, True, ["old-1"]), "a2": ("a1", False, ["old-2"]), "b1": (None, False, ["old-3"])})
    follower, seen, _ = _follower(stream, LATEST)
    _drain(follower)
    assert seen == []
    stream.add("a2", "new-1")
    stream.close("a2")
    stream.shards["a3"] = ("a2", False, ["new-2"])
    stream.add("b1", "new-3")
    _drain(follower)
    assert sorted(seen) == ["new-1", "new-2", "new-3"] and seen.index("new-1") < seen.index("new-2")


def test_an_expired_iterator_resumes_after_the_last_record_printed():
    stream = FakeStream({"a1": (None, False, ["s1", "s2", "s3"])})
    follower, seen, _ = _follower(stream)
    _drain(follower)
    stream.add("a1", "s4")
    stream.fail_next["GetRecords"] = ApiError("ExpiredIteratorException", "Iterator expired", False)
    _drain(follower)  # the failed read: nothing this pass
    _drain(follower)
    assert seen == ["s1", "s2", "s3", "s4"]
    renewed = [a for c, a in stream.calls if c == "GetShardIterator"][-1]
    assert renewed["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER" and renewed["SequenceNumber"] == "s3"


def test_trimmed_data_warns_and_restarts_at_the_oldest_record_kept():
    stream = FakeStream({"a1": (None, False, ["s1"])})
    follower, seen, warnings = _follower(stream)
    _drain(follower)
    stream.shards["a1"] = (None, False, ["s7", "s8"])  # s1..s6 trimmed
    stream.fail_next["GetRecords"] = ApiError("TrimmedDataAccessException", "trimmed", False)
    _drain(follower)
    _drain(follower)
    assert seen == ["s1", "s7", "s8"] and "a1" in warnings[0]


def test_a_refusal_ends_the_tail_and_a_transient_failure_is_retried():
    stream = FakeStream({"a1": (None, False, ["s1"])})
    follower, seen, warnings = _follower(stream)
    stream.fail_next["GetRecords"] = ApiError("InternalServerError", "boom", True)
    passes = iter(range(3))
    follower.run(stop=lambda: next(passes, None) is None)
    assert seen == ["s1"] and "InternalServerError" in warnings[0]
    stream.fail_next["GetRecords"] = ApiError("ValidationException", "bad", False)
    with pytest.raises(ApiError, match="ValidationException"):
        follower.run()


def test_a_disabled_stream_read_to_its_end_gives_way_to_the_newer_one():
    stream = FakeStream({"a1": (None, True, ["s1"])})
    stream.status = "DISABLED"
    follower, seen, _ = _follower(stream)
    _drain(follower)
    stream.arn = ARN.replace("17:04:41.123", "18:00:00.000")
    stream.status = "ENABLED"
    stream.shards = {"x1": (None, False, ["n1"])}
    follower.poll()  # nothing left to read in the old stream: the table names a new one
    _drain(follower)
    assert seen == ["s1", "n1"] and follower.stream_arn == stream.arn


def test_a_table_without_a_stream_is_refused_with_a_hint():
    stream = FakeStream({})
    stream.dynamodb = lambda action, payload: {"Table": {"TableName": "t"}}  # type: ignore[method-assign]
    with pytest.raises(ApiError, match="has no stream") as info:
        Follower(stream, "t", emit=print).open()  # type: ignore[arg-type]
    assert info.value.code == "NoStream"
