"""GetRecords' records (router/stream_records.py): what each view type shows, sizes, ids."""

from __future__ import annotations

import orjson
import pytest

from meridian.model.streams import StreamEvent, StreamRecord
from meridian.model.values import item_size
from meridian.router.stream_records import event_id, stream_record

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Music/stream/2026-12-07T17:04:41.123"
SHARD = "shardId-00000000000000123456-1a2b3c4d"
KEYS = {"id": {"S": "a"}}
OLD = {"id": {"S": "a"}, "n": {"N": "1"}}
NEW = {"id": {"S": "a"}, "n": {"N": "22"}, "tags": {"SS": ["x", "y"]}}


def _record(event: StreamEvent, old=None, new=None, by_service=False, sequence=7) -> StreamRecord:
    return StreamRecord(
        sequence=sequence, event=event, created_ms=1_800_000_000_999, keys_json=orjson.dumps(KEYS),
        old_json=orjson.dumps(old) if old is not None else None,
        new_json=orjson.dumps(new) if new is not None else None, by_service=by_service,
    )


def _shown(record: StreamRecord, view_type: str, sequence_number: str = "12345600000000000000000007") -> dict:
    out = stream_record(record, stream_arn=ARN, shard_id=SHARD, sequence_number=sequence_number,
                        view_type=view_type, region="eu-west-1")
    return orjson.loads(orjson.dumps(out))  # as the client gets it


CASES = [
    # event, old, new, view type -> (OldImage?, NewImage?)
    (StreamEvent.INSERT, None, NEW, "KEYS_ONLY", (None, None)),
    (StreamEvent.INSERT, None, NEW, "NEW_IMAGE", (None, NEW)),
    (StreamEvent.INSERT, None, NEW, "OLD_IMAGE", (None, None)),
    (StreamEvent.INSERT, None, NEW, "NEW_AND_OLD_IMAGES", (None, NEW)),
    (StreamEvent.MODIFY, OLD, NEW, "KEYS_ONLY", (None, None)),
    (StreamEvent.MODIFY, OLD, NEW, "NEW_IMAGE", (None, NEW)),
    (StreamEvent.MODIFY, OLD, NEW, "OLD_IMAGE", (OLD, None)),
    (StreamEvent.MODIFY, OLD, NEW, "NEW_AND_OLD_IMAGES", (OLD, NEW)),
    (StreamEvent.REMOVE, OLD, None, "KEYS_ONLY", (None, None)),
    (StreamEvent.REMOVE, OLD, None, "NEW_IMAGE", (None, None)),
    (StreamEvent.REMOVE, OLD, None, "OLD_IMAGE", (OLD, None)),
    (StreamEvent.REMOVE, OLD, None, "NEW_AND_OLD_IMAGES", (OLD, None)),
]


@pytest.mark.parametrize("event, old, new, view_type, expected", CASES)
def test_view_types(event, old, new, view_type, expected):
    shown = _shown(_record(event, old, new), view_type)
    body = shown["dynamodb"]
    expected_old, expected_new = expected
    assert body.get("OldImage") == expected_old
    assert body.get("NewImage") == expected_new
    assert body["Keys"] == KEYS
    assert body["StreamViewType"] == view_type
    size = item_size(KEYS) + (item_size(expected_old) if expected_old else 0) + (
        item_size(expected_new) if expected_new else 0)
    assert body["SizeBytes"] == size
    assert shown["eventName"] == event.name


def test_the_record_as_dynamodb_shapes_it():
    shown = _shown(_record(StreamEvent.MODIFY, OLD, NEW), "NEW_AND_OLD_IMAGES")
    assert list(shown) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb"]
    assert shown["eventVersion"] == "1.1"
    assert shown["eventSource"] == "aws:dynamodb"
    assert shown["awsRegion"] == "eu-west-1"
    assert len(shown["eventID"]) == 32 and int(shown["eventID"], 16) >= 0
    body = shown["dynamodb"]
    assert list(body) == ["ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber",
                          "SizeBytes", "StreamViewType"]
    assert body["ApproximateCreationDateTime"] == 1_800_000_000  # epoch seconds, rounded down
    assert body["SequenceNumber"] == "12345600000000000000000007"


def test_time_to_live_deletes_name_the_service():
    shown = _shown(_record(StreamEvent.REMOVE, OLD, None, by_service=True), "KEYS_ONLY")
    assert shown["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    assert "userIdentity" not in _shown(_record(StreamEvent.REMOVE, OLD, None), "KEYS_ONLY")


def test_event_ids_are_stable_and_distinct():
    first = event_id(ARN, SHARD, "12345600000000000000000007")
    assert first == event_id(ARN, SHARD, "12345600000000000000000007")
    others = {
        event_id(ARN, SHARD, "12345600000000000000000008"),
        event_id(ARN, "shardId-00000000000000123456-1a2b3c4e", "12345600000000000000000007"),
        event_id(ARN.replace("41.123", "41.124"), SHARD, "12345600000000000000000007"),
    }
    assert first not in others and len(others) == 3


def test_images_are_spliced_as_stored():
    # Attribute order and number spelling stay exactly as the node stored them.
    new_json = b'{"n":{"N":"1.50"},"id":{"S":"a"}}'
    record = StreamRecord(sequence=1, event=StreamEvent.INSERT, created_ms=0, keys_json=b'{"id":{"S":"a"}}',
                          old_json=None, new_json=new_json, by_service=False)
    out = orjson.dumps(stream_record(record, stream_arn=ARN, shard_id=SHARD, sequence_number="1" + "0" * 20,
                                     view_type="NEW_IMAGE", region="us-east-1"))
    assert b'"NewImage":' + new_json in out
