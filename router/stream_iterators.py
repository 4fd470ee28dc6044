"""DynamoDB Streams shard iterators: where a reader is in a shard, as an opaque string.

A router keeps no iterator state: everything GetRecords needs travels in the
iterator itself, so any router of the region can serve the next call::

    <stream ARN>|1|<urlsafe base64 of: node tag (4 bytes), period, after_sequence,
                                       issued_ms (u64 BE each), crc32 (u32 BE)>

``after_sequence`` is the node change-log sequence the next read starts after
(0: the shard's start); ``issued_ms`` when GetShardIterator or GetRecords
handed the iterator out, which bounds its life (``limits.STREAM_ITERATOR_AGE_S_MAX``,
DynamoDB's 15 minutes).  The crc32 covers the ARN and the packed fields, so a
truncated, edited or transplanted iterator is refused as malformed, not
followed somewhere else.  It is a consistency check, not a signature:
iterators are no more secret than the stream ARN they name.

``1`` is the layout's version: a later layout gets another number, and an
iterator of an unknown version is malformed.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from dataclasses import dataclass

from meridian.model import limits

_VERSION = "1"
_SEPARATOR = "|"
_FIELDS = struct.Struct(">4sQQQ")
_CRC = struct.Struct(">I")
_PACKED_BYTES = _FIELDS.size + _CRC.size


@dataclass(frozen=True, slots=True)
class ShardIterator:
    """A position in one shard: the next read returns the shard's records
    after ``after_sequence``."""

    stream_arn: str
    tag: str  # the node's tag (model/streams.py node_tag): 8 hex characters
    period: int
    after_sequence: int
    issued_ms: int

    def expired(self, now_ms: int) -> bool:
        return now_ms - self.issued_ms > limits.STREAM_ITERATOR_AGE_S_MAX * 1000

    def moved(self, after_sequence: int, now_ms: int) -> "ShardIterator":
        """The iterator a read hands back: the same shard, further on, issued now."""
        return ShardIterator(self.stream_arn, self.tag, self.period, after_sequence, now_ms)


def _crc(stream_arn: bytes, fields: bytes) -> int:
    return zlib.crc32(fields, zlib.crc32(stream_arn))


def encode_iterator(iterator: ShardIterator) -> str:
    fields = _FIELDS.pack(bytes.fromhex(iterator.tag), iterator.period, iterator.after_sequence, iterator.issued_ms)
    packed = fields + _CRC.pack(_crc(iterator.stream_arn.encode(), fields))
    token = base64.urlsafe_b64encode(packed).decode("ascii")
    return f"{iterator.stream_arn}{_SEPARATOR}{_VERSION}{_SEPARATOR}{token}"


def decode_iterator(text: str) -> ShardIterator:
    """The iterator ``text`` encodes; ValueError when it is not one this router family made."""
    stream_arn, version, token = _split(text)
    if version != _VERSION:
        raise ValueError(f"unknown shard iterator version {version!r}")
    try:
        packed = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("shard iterator is not base64") from exc
    if len(packed) != _PACKED_BYTES:
        raise ValueError("shard iterator has the wrong length")
    fields, (crc,) = packed[: _FIELDS.size], _CRC.unpack(packed[_FIELDS.size :])
    if crc != _crc(stream_arn.encode(), fields):
        raise ValueError("shard iterator fails its check")
    tag, period, after_sequence, issued_ms = _FIELDS.unpack(fields)
    return ShardIterator(stream_arn, tag.hex(), period, after_sequence, issued_ms)


def _split(text: str) -> tuple[str, str, str]:
    parts = text.rsplit(_SEPARATOR, 2)
    if len(parts) != 3 or not parts[0]:
        raise ValueError("not a shard iterator")
    return parts[0], parts[1], parts[2]
