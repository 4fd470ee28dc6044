"""DynamoDB Streams' pure pieces: sequence numbers, stream ids, node tags, the
stored record's byte layout and the gRPC conversions."""

from __future__ import annotations

import calendar
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model import limits
from meridian.model.errors import ExpiredIteratorException, TrimmedDataAccessException, error_from_type
from meridian.model.records import pack_stream_record, stream_key, stream_key_sequence, unpack_stream_record
from meridian.model.streams import (
    ShardState,
    StreamEvent,
    StreamPage,
    StreamRead,
    StreamRecord,
    StreamShards,
    format_sequence_number,
    node_tag,
    parse_sequence_number,
    period_of,
    stream_id_from_label,
)
from meridian.proto.storage_codec import (
    stream_page_from_pb,
    stream_page_to_pb,
    stream_read_from_pb,
    stream_read_to_pb,
    stream_shards_from_pb,
    stream_shards_to_pb,
)

U64 = st.integers(0, (1 << 64) - 1)
PERIODS = st.integers(1, 10**19)  # at most 20 digits: 40 in all
JSON = st.binary(max_size=64)


@given(PERIODS, U64)
def test_sequence_numbers_round_trip_within_botocore_bounds(period, sequence):
    text = format_sequence_number(period, sequence)
    assert limits.STREAM_SEQUENCE_NUMBER_DIGITS_MIN <= len(text) <= limits.STREAM_SEQUENCE_NUMBER_DIGITS_MAX
    assert text.isdigit() and text[0] != "0"
    assert parse_sequence_number(text) == (period, sequence)


@given(st.tuples(PERIODS, U64), st.tuples(PERIODS, U64))
def test_sequence_numbers_of_one_period_length_sort_as_numbers(a, b):
    """Numbers compare as DynamoDB's do (numerically): by period, then sequence."""
    assert (int(format_sequence_number(*a)) < int(format_sequence_number(*b))) == (a < b)


@pytest.mark.parametrize(
    "text",
    ["", "1" * 20, "1" * 41, "0" + "1" * 25, "12a45678901234567890123", " 1234567890123456789012", "١" * 25,
     "1" + "99999999999999999999"],  # the last: a sequence past u64
)  # fmt: skip
def test_parse_sequence_number_refuses_what_is_not_one(text):
    with pytest.raises(ValueError):
        parse_sequence_number(text)


def test_format_refuses_period_zero_and_huge_periods():
    with pytest.raises(ValueError):
        format_sequence_number(0, 1)
    with pytest.raises(ValueError):
        format_sequence_number(10**20, 1)


def test_stream_id_is_the_label_in_epoch_milliseconds():
    label = "2026-12-07T17:04:41.123"
    expected = calendar.timegm(time.strptime("2026-12-07T17:04:41", "%Y-%m-%dT%H:%M:%S")) * 1000 + 123
    assert stream_id_from_label(label) == expected
    with pytest.raises(ValueError):
        stream_id_from_label("2026-12-07T17:04:41")


def test_period_of_cuts_time_into_equal_periods():
    assert period_of(14_400_000 * 5 + 3, 14_400_000) == 5
    assert period_of(14_400_000 * 6 - 1, 14_400_000) == 5


def test_node_tag_is_eight_stable_hex_characters():
    tag = node_tag("us-east-1-node-0")
    assert len(tag) == 8 and int(tag, 16) >= 0
    assert tag == node_tag("us-east-1-node-0") != node_tag("us-east-1-node-1")


@given(
    st.sampled_from(list(StreamEvent)), U64, st.booleans(), JSON, st.one_of(st.none(), JSON), st.one_of(st.none(), JSON), U64
)
def test_stream_records_round_trip(event, created_ms, by_service, keys, old, new, sequence):
    value = pack_stream_record(event, created_ms, by_service, keys, old, new)
    assert unpack_stream_record(sequence, value) == StreamRecord(sequence, event, created_ms, keys, old, new, by_service)


def test_an_empty_image_is_not_a_missing_one():
    record = unpack_stream_record(1, pack_stream_record(StreamEvent.MODIFY, 5, False, b"k", b"", b""))
    assert record.old_json == b"" and record.new_json == b""


def test_a_truncated_record_is_refused():
    value = pack_stream_record(StreamEvent.INSERT, 5, False, b'{"k":1}', None, b'{"a":1}')
    with pytest.raises(ValueError):
        unpack_stream_record(1, value[:-1])


@given(st.tuples(U64, U64, U64, U64), st.tuples(U64, U64, U64, U64))
def test_stream_keys_sort_by_table_stream_period_sequence(a, b):
    assert (stream_key(*a) < stream_key(*b)) == (a < b)
    assert stream_key_sequence(stream_key(*a)) == a[3]


def test_the_new_errors_cross_a_process_boundary_by_type_name():
    for cls in (TrimmedDataAccessException, ExpiredIteratorException):
        err = error_from_type(cls.type_name, cls().message)
        assert type(err) is cls and err.status == 400
    assert TrimmedDataAccessException().body() == {
        "__type": "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException",
        "message": "The data you are trying to access has been trimmed.",
    }


def test_grpc_conversions_round_trip():
    shards = StreamShards((ShardState(7, True, 12), ShardState(8, False, 0)), 40)
    assert stream_shards_from_pb(stream_shards_to_pb(shards)) == shards
    read = StreamRead(3, 1_796_663_081_123, 8, 12, 1000, 1 << 20)
    assert stream_read_from_pb(stream_read_to_pb(read)) == read
    page = StreamPage(
        (
            StreamRecord(13, StreamEvent.INSERT, 99, b'{"pk":{"S":"a"}}', None, b'{"pk":{"S":"a"}}', False),
            StreamRecord(14, StreamEvent.REMOVE, 100, b'{"pk":{"S":"a"}}', b'{"pk":{"S":"a"}}', None, True),
            StreamRecord(15, StreamEvent.MODIFY, 101, b"{}", b"", b"", False),
        ),
        15,
        True,
    )
    assert stream_page_from_pb(stream_page_to_pb(page)) == page
