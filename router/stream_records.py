"""GetRecords' ``Record``: a stored stream record as DynamoDB Streams shows it.

A node keeps both images of every change (``model/streams.py``
``StreamRecord``); the stream's view type decides which reach the reader:

    KEYS_ONLY           Keys
    NEW_IMAGE           Keys, NewImage (absent for a REMOVE)
    OLD_IMAGE           Keys, OldImage (absent for an INSERT)
    NEW_AND_OLD_IMAGES  Keys, both (each when the change has it)

``SizeBytes`` is the size of what the record carries, Keys and the images
present, by DynamoDB's item-size rules (``model/values.py``).
``ApproximateCreationDateTime`` is in epoch seconds, rounded down, as the
API reference says.  ``eventID`` is 32 hex characters, as DynamoDB's are,
derived from the stream, shard and sequence number: unique per record, and
the same however often the record is read.  A Time to Live delete carries
``userIdentity`` (the service's principal), as DynamoDB's do.

The stored JSON of keys and images is spliced into the answer as it is
(``orjson.Fragment``); it is parsed once here, only to measure it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from meridian.model.streams import StreamRecord
from meridian.model.values import item_size

EVENT_VERSION = "1.1"
EVENT_SOURCE = "aws:dynamodb"
_SERVICE_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
_NEW_VIEWS = frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"})
_OLD_VIEWS = frozenset({"OLD_IMAGE", "NEW_AND_OLD_IMAGES"})


def event_id(stream_arn: str, shard_id: str, sequence_number: str) -> str:
    """A record's ``eventID``: 32 hex characters naming it within the account."""
    text = f"{stream_arn}|{shard_id}|{sequence_number}".encode()
    return hashlib.blake2b(text, digest_size=16).hexdigest()


def stream_record(
    record: StreamRecord, *, stream_arn: str, shard_id: str, sequence_number: str, view_type: str, region: str
) -> dict[str, Any]:
    """One ``Record`` of a GetRecords answer (``sequence_number``: the record's, formatted)."""
    size = item_size(orjson.loads(record.keys_json))
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": record.created_ms // 1000,
        "Keys": orjson.Fragment(record.keys_json),
    }
    if record.new_json is not None and view_type in _NEW_VIEWS:
        body["NewImage"] = orjson.Fragment(record.new_json)
        size += item_size(orjson.loads(record.new_json))
    if record.old_json is not None and view_type in _OLD_VIEWS:
        body["OldImage"] = orjson.Fragment(record.old_json)
        size += item_size(orjson.loads(record.old_json))
    body["SequenceNumber"] = sequence_number
    body["SizeBytes"] = size
    body["StreamViewType"] = view_type
    out: dict[str, Any] = {
        "eventID": event_id(stream_arn, shard_id, sequence_number),
        "eventName": record.event.name,
        "eventVersion": EVENT_VERSION,
        "eventSource": EVENT_SOURCE,
        "awsRegion": region,
        "dynamodb": body,
    }
    if record.by_service:
        out["userIdentity"] = dict(_SERVICE_IDENTITY)
    return out
