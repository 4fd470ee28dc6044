"""DynamoDB Streams' names and iterators (router/stream_ids.py, router/stream_iterators.py).

Everything a reader hands back to Meridian (a stream ARN, a shard id, a shard
iterator) is parsed strictly: what Meridian made comes back intact, anything
else (garbled, truncated, edited, from another stream) is refused rather
than followed.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.model import limits
from meridian.router.stream_ids import parse_shard_id, parse_stream_arn, shard_id, stream_arn
from meridian.router.stream_iterators import ShardIterator, decode_iterator, encode_iterator

TABLE_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Music"
ARN = stream_arn(TABLE_ARN, "2026-12-07T17:04:41.123")


# --- stream ARNs -----------------------------------------------------------------
def test_stream_arn_round_trip():
    assert ARN == "arn:aws:dynamodb:us-east-1:000000000000:table/Music/stream/2026-12-07T17:04:41.123"
    name = parse_stream_arn(ARN)
    assert name is not None
    assert (name.region, name.account, name.table_name, name.label) == (
        "us-east-1", "000000000000", "Music", "2026-12-07T17:04:41.123")


@pytest.mark.parametrize("text", [
    "",
    "kossaapaaasdafsdaasdasdasdasasdasfadfadfasdasdas",
    TABLE_ARN,
    TABLE_ARN + "/stream/",
    TABLE_ARN + "/stream/2026-12-07T17:04:41",  # no milliseconds
    TABLE_ARN + "/stream/2026-13-07T17:04:41.123",  # no 13th month
    TABLE_ARN + "/stream/2026-12-07T17:04:41.123/x",
    "arn:aws:dynamodb:us-east-1:0000:table/Music/stream/2026-12-07T17:04:41.123",  # account
    "arn:aws:dynamodb:us-east-1:000000000000:table/M$/stream/2026-12-07T17:04:41.123",  # table name
    "arn:aws:dynamodb:us-east-1:000000000000:table/ab/stream/2026-12-07T17:04:41.123",  # too short a name
    "arn:aws:s3:us-east-1:000000000000:table/Music/stream/2026-12-07T17:04:41.123",
    " " + ARN,
])
def test_malformed_stream_arns(text):
    assert parse_stream_arn(text) is None


# --- shard ids -------------------------------------------------------------------
def test_shard_id_round_trip_and_order():
    sid = shard_id(123456, "1a2b3c4d")
    assert sid == "shardId-00000000000000123456-1a2b3c4d"
    assert 28 <= len(sid) <= 65  # botocore's ShardId bounds
    assert parse_shard_id(sid) == (123456, "1a2b3c4d")
    # ids sort as (period, node tag) do: DescribeStream's order and its paging key
    ids = [shard_id(p, t) for p, t in [(9, "ffffffff"), (10, "00000000"), (10, "0000000a"), (100, "00000001")]]
    assert ids == sorted(ids)


@pytest.mark.parametrize("text", [
    "", "shardId-1-1a2b3c4d", "shardId-00000000000000123456-1A2B3C4D", "shardId-00000000000000123456-1a2b3c",
    "adfasdasdasdasdasdasdasdasdasasdasd", "shardId-00000000000000123456-1a2b3c4d ",
])
def test_malformed_shard_ids(text):
    assert parse_shard_id(text) is None


# --- shard iterators ---------------------------------------------------------------
def _iterator(**changes) -> ShardIterator:
    fields = dict(stream_arn=ARN, tag="1a2b3c4d", period=123456, after_sequence=42, issued_ms=1_800_000_000_000)
    fields.update(changes)
    return ShardIterator(**fields)


@given(period=st.integers(1, 2**64 - 1), after=st.integers(0, 2**64 - 1), issued=st.integers(0, 2**64 - 1),
       tag=st.binary(min_size=4, max_size=4))
def test_iterator_round_trip(period, after, issued, tag):
    iterator = _iterator(period=period, after_sequence=after, issued_ms=issued, tag=tag.hex())
    text = encode_iterator(iterator)
    assert 1 <= len(text) <= 2048  # botocore's ShardIterator bounds
    assert decode_iterator(text) == iterator


def test_iterator_of_the_longest_arn_fits():
    arn = stream_arn(f"arn:aws:dynamodb:ap-southeast-1:000000000000:table/{'t' * 255}", "2026-12-07T17:04:41.123")
    assert len(encode_iterator(_iterator(stream_arn=arn))) <= 2048


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("B" if char != "B" else "C") + text[index + 1:]


def test_no_edit_makes_another_iterator():
    iterator = _iterator()
    text = encode_iterator(iterator)
    refused = 0
    for index in range(len(text)):
        try:
            decoded = decode_iterator(_flip(text, index))
        except ValueError:
            refused += 1
            continue
        assert decoded == iterator  # only bits base64 ignores changed
    assert refused >= len(text) - 2


@pytest.mark.parametrize("text", [
    "", "x", "sdfsdfsgagaddafgagasgasgasdfasdfasdfasdfasdgasdasdgasdg", "|1|", f"{ARN}|1|", f"{ARN}|1|!!!!",
    f"{ARN}|1|é", f"{ARN}|2|" + base64.urlsafe_b64encode(bytes(32)).decode(),
    f"{ARN}|1|" + base64.urlsafe_b64encode(bytes(32)).decode(),
])
def test_garbage_is_refused(text):
    with pytest.raises(ValueError):
        decode_iterator(text)


def test_an_iterator_cannot_move_to_another_stream():
    text = encode_iterator(_iterator())
    other = stream_arn(TABLE_ARN, "2026-12-07T17:04:41.124")
    with pytest.raises(ValueError):
        decode_iterator(other + text[len(ARN):])


def test_expiry_after_fifteen_minutes():
    iterator = _iterator()
    age_ms = limits.STREAM_ITERATOR_AGE_S_MAX * 1000
    assert age_ms == 15 * 60 * 1000
    assert not iterator.expired(iterator.issued_ms + age_ms)
    assert iterator.expired(iterator.issued_ms + age_ms + 1)


def test_moved_is_reissued():
    iterator = _iterator()
    moved = iterator.moved(99, iterator.issued_ms + 5)
    assert moved == _iterator(after_sequence=99, issued_ms=iterator.issued_ms + 5)
