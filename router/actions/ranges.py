"""Key ranges and reading them: what a Query selects, and a Scan page over every node.

``query_range`` / ``index_query_range`` fold a key condition into the one
range of keys ``[lower, upper)`` it selects in a table's or an index's
key order (``model/keycodec.py``, ``model/ops.py``).  ``read_merged`` reads
one Scan page across every node of the region: a k-way merge of one stream
per node by scan position, each stream read in chunks sized by
``limits.SCAN_CHUNK_HEADROOM_PERCENT`` and ``SCAN_CHUNK_ITEMS_MIN``, so
memory is bounded by about one page per node, never by the table.  The
rules of a page are at the top of ``query_scan.py``, which uses both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
from typing import Any

from meridian.model import limits
from meridian.model.expressions import KeyCondition
from meridian.model.keycodec import encode_sort_prefix, encode_sort_value, encode_values, partition_prefix, prefix_end
from meridian.model.ops import (
    RangeRead,
    RangeResult,
    fetched_page_bytes,
    fetching_page_bytes,
    index_partition_hash,
    index_partition_prefix,
)
from meridian.model.values import KeySchema

Value = dict[str, Any]

from ..storage import Storage


def _sort_range(prefix: bytes, sk_type: str, condition: KeyCondition) -> tuple[bytes, bytes]:
    """The keys ``[lower, upper)`` under a partition's ``prefix`` whose sort key
    (of type ``sk_type``) the condition selects.  Key values are prefix-free,
    so "every key whose sort value is v" is the range of the prefix
    ``prefix + v``, whatever follows it (an index key goes on with the table
    key, a multi-attribute one with its next RANGE values)."""
    op = condition.sk_op
    if op is None:
        return prefix, prefix_end(prefix)
    first = condition.sk_values[0]
    if op == "BEGINS_WITH":
        start = prefix + encode_sort_prefix(sk_type, first)
        return start, prefix_end(start)
    at = prefix + encode_sort_value(sk_type, first)
    if op == "EQ":
        return at, prefix_end(at)
    if op == "LT":
        return prefix, at
    if op == "LE":
        return prefix, prefix_end(at)
    if op == "GT":
        return prefix_end(at), prefix_end(prefix)
    if op == "GE":
        return at, prefix_end(prefix)
    return at, prefix_end(prefix + encode_sort_value(sk_type, condition.sk_values[1]))  # BETWEEN


def query_range(table_id: int, schema: KeySchema, condition: KeyCondition) -> tuple[bytes, bytes]:
    """The item keys ``[lower, upper)`` the key condition selects."""
    sk_type = schema[1][1] if len(schema) > 1 else ""
    return _sort_range(partition_prefix(table_id, schema[0][1], condition.pk_value), sk_type, condition)


def index_query_range(index_id: int, schema: KeySchema, condition: KeyCondition,
                      hash_count: int = 1) -> tuple[bytes, bytes]:
    """The index keys ``[lower, upper)`` the key condition selects.

    With a multi-attribute key the partition is that of every HASH value,
    and the equalities on the leading RANGE attributes (``sk_equal``) narrow
    it to the keys starting with their values, in which the last RANGE
    attribute named selects as a single sort key does."""
    types = dict(schema)
    prefix = index_partition_prefix(index_id, partition_parts(schema, condition, hash_count))
    prefix += encode_values([(types[name], value) for name, value in condition.sk_equal])
    return _sort_range(prefix, types.get(condition.sk_name or "", ""), condition)


def partition_parts(schema: KeySchema, condition: KeyCondition, hash_count: int = 1) -> list[tuple[str, Value]]:
    """``(type, value)`` of every HASH attribute the condition fixes, in key schema order."""
    values = dict(condition.partition)
    return [(key_type, values[name]) for name, key_type in schema[:hash_count]]


def index_partition_of(schema: KeySchema, condition: KeyCondition, hash_count: int = 1) -> int:
    """The hash (ring position) of the index partition a Query reads."""
    return index_partition_hash(partition_parts(schema, condition, hash_count))


# --- reading one range on every node ---------------------------------------------------


class _Stream:
    """One node's part of a merged Scan page: its last chunk and how far the merge got."""

    __slots__ = ("node", "chunk", "entry", "item", "items_max", "bytes_max")

    def __init__(self, node: str, chunk: RangeResult, items_max: int, bytes_max: int) -> None:
        self.node = node
        self.chunk = chunk
        self.entry = 0  # next item read (index into positions, sizes, hits)
        self.item = 0  # next item returned (index into items)
        self.items_max = items_max  # the chunk's bounds, doubled for the next one
        self.bytes_max = bytes_max


async def read_merged(storage: Storage, read: RangeRead) -> RangeResult:
    """One Scan page over every node of ``storage``: a k-way merge by scan position.

    The page is cut here, so each node returns every item read with its
    position, size and filter outcome; ``read.items_max`` / ``bytes_max``
    are the page's bounds.  See ``query_scan.py``'s docstring for the chunk sizes.
    """
    node_ids = storage.node_ids
    limit = read.items_max
    page_bytes = read.bytes_max
    headroom = limits.SCAN_CHUNK_HEADROOM_PERCENT

    def chunk(lower: bytes, items_max: int, bytes_max: int) -> RangeRead:
        return dataclasses.replace(read, lower=lower, items_max=items_max, bytes_max=bytes_max, detail=True)

    def share(remaining: int, floor: int) -> int:
        return min(remaining, max(floor, -(-remaining * headroom // (100 * len(node_ids)))))

    first_items = share(limit, limits.SCAN_CHUNK_ITEMS_MIN) if limit else 0
    first_bytes = share(page_bytes, 1)
    chunks = await asyncio.gather(
        *(storage.read_range(node, chunk(read.lower, first_items, first_bytes)) for node in node_ids)
    )
    streams = [_Stream(node, c, first_items, first_bytes) for node, c in zip(node_ids, chunks)]
    heap = [(c.positions[0], k) for k, c in enumerate(chunks) if c.positions]
    heapq.heapify(heap)
    page = RangeResult()
    items = page.items
    fetched_sizes = page.fetched_sizes
    count_only = read.count_only
    scanned = count = bytes_read = fetched_bytes = 0
    while heap:
        position, k = heap[0]
        stream = streams[k]
        current = stream.chunk
        entry = stream.entry
        scanned += 1
        bytes_read += current.sizes[entry]
        page_size = bytes_read
        if read.fetch:  # each fetched item counts too, as DynamoDB bounds such a page
            fetched_sizes.append(current.fetched_sizes[entry])
            fetched_bytes += fetched_page_bytes(current.fetched_sizes[entry])
            page_size = fetching_page_bytes(bytes_read, fetched_bytes)
        if current.hits[entry]:
            count += 1
            if not count_only:
                items.append(current.items[stream.item])
                stream.item += 1
        entry += 1
        stream.entry = entry
        page.last_position = position
        if scanned == limit or page_size >= page_bytes:
            page.more = True
            break
        if entry < len(current.positions):
            heapq.heapreplace(heap, (current.positions[entry], k))
            continue
        if not current.more:
            heapq.heappop(heap)
            continue
        # This stream ran dry before the page is full: read on from where it stopped.
        items_max = min(limit - scanned, max(2 * stream.items_max, limits.SCAN_CHUNK_ITEMS_MIN)) if limit else 0
        bytes_max = min(page_bytes - page_size, 2 * stream.bytes_max)
        refill = await storage.read_range(stream.node, chunk(position + b"\x00", items_max, bytes_max))
        streams[k] = _Stream(stream.node, refill, items_max, bytes_max)
        if refill.positions:
            heapq.heapreplace(heap, (refill.positions[0], k))
        else:
            heapq.heappop(heap)
    page.count = count
    page.scanned = scanned
    page.bytes_read = bytes_read
    return page
