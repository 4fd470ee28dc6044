"""Item operations: what a router asks a storage node to do.

These plain records cross the router -> storage seam.  In embedded mode they
are handed to the node's engine as they are (no serialization); in cluster
mode the gRPC client encodes them into ``meridian.v1.ItemOp`` messages and the
node decodes them back into these same records.

Items and keys travel as DynamoDB wire JSON (``{"attr": {"S": "x"}}``);
expressions travel as their text plus the request's placeholder maps, so the
node parses them (with a cache) and evaluates them in the same critical
section as the write.  Legacy parameters (``Expected``, ``AttributeUpdates``,
``AttributesToGet``) are translated by the router into expression text first,
so there is one representation on the wire.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import DynamoError

Item = dict[str, Any]  # wire JSON: attribute name -> {"S": ...} etc.


class OpKind(enum.IntEnum):
    GET = 0
    PUT = 1
    DELETE = 2
    UPDATE = 3


class ReturnValues(enum.IntEnum):
    NONE = 0
    ALL_OLD = 1
    UPDATED_OLD = 2
    ALL_NEW = 3
    UPDATED_NEW = 4


@dataclass(slots=True)
class ItemOp:
    """One single-item operation, executed atomically by the owning node.

    ``key`` is the encoded storage key (``keycodec.encode_item_key``);
    ``key_item`` holds just the key attributes, as wire JSON.
    ``item`` is the full new item for PUT (validated and normalised by the
    router).  ``condition`` / ``update`` / ``projection`` are expression
    texts; ``names`` / ``values`` are ``ExpressionAttributeNames`` /
    ``ExpressionAttributeValues`` (``None`` when absent).
    """

    kind: OpKind
    table_id: int
    key: bytes
    key_item: Item
    item: Item | None = None
    condition: str | None = None
    update: str | None = None
    projection: str | None = None
    names: dict[str, str] | None = None
    values: Item | None = None
    return_values: ReturnValues = ReturnValues.NONE
    return_old_on_condition_failure: bool = False
    #: the expressions were translated from legacy parameters (Expected,
    #: AttributeUpdates, AttributesToGet): DynamoDB's expression limits do not
    #: apply and errors use the legacy wording.
    legacy: bool = False
    #: PUT: the item's DynamoDB size, computed once by the router (-1: unknown)
    item_size_bytes: int = -1


@dataclass(slots=True)
class ItemResult:
    """The answer to one ``ItemOp``.

    GET: ``item_json`` is the stored (or projected) item as JSON bytes, ready
    to be spliced into the HTTP response, or ``None`` when there is no item.
    Writes: ``item_json`` holds the ``ReturnValues`` attributes as JSON bytes
    (``None`` when nothing is to be returned).
    ``error`` is set instead when the operation failed (a failed condition is
    a ``ConditionalCheckFailedException`` carrying the old item if asked).
    """

    item_json: bytes | None = None
    error: DynamoError | None = None


@dataclass(slots=True)
class TableStats:
    item_count: int = 0
    size_bytes: int = 0


@dataclass(slots=True)
class CatalogEntry:
    """One table's metadata as stored on every node (``meta`` column family).

    ``description`` is the JSON-serialisable table record kept by the router's
    catalog; ``revision`` increases with every change so that the newest copy
    wins when copies differ.
    """

    name: str
    revision: int
    description: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
