"""Range reads: a Query's partition, a Scan segment, a local index read.

``read_range`` reads one page of a key range, as ``RangeRead`` says (the
router folds the key condition, ExclusiveStartKey and segment into the
bounds, so the node evaluates no key condition): in key order from
``items`` (QUERY) or ``index`` (INDEX), or in scan order from ``scan``
(SCAN), then each item by key (``node/database.py`` describes the column
families).

Range reads read RocksDB directly, not the group-commit overlay
(``node/commit.py``): a write still pending there is not yet acknowledged,
so a read that misses it is simply ordered before it, and every
acknowledged write is in RocksDB.

Wave 2: a TTL sweep (``node/ttl.py``) walks a partition's items with the
same iterators; a consistent cut for a backup reads from a RocksDB snapshot
taken at one stamp; read capacity is charged from ``RangeResult.bytes_read``
(and ``fetched_sizes``: ``router/capacity.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from rocksdict import ReadOptions

from meridian.model.errors import ResourceNotFoundException
from meridian.model.expressions import compile_expressions
from meridian.model.ops import (
    Item,
    RangeKind,
    RangeRead,
    RangeResult,
    fetched_page_bytes,
    fetching_page_bytes,
    index_entry_table_key,
    scan_position_item_key,
)
from meridian.model.records import is_tombstone, record_item_json, record_size

_dumps = orjson.dumps
_loads = orjson.loads


class RangeReadMixin:
    """Range reads of ``Engine`` (its state is set up in ``Engine.__init__``)."""

    def read_range(self, read: RangeRead) -> RangeResult:
        """Read one page of a key range (``RangeRead`` says what a page is).

        Items are read in key order (QUERY: the ``items`` column family,
        backwards when ``reverse``; INDEX: the ``index`` column family, the
        same way) or in scan order (SCAN: the ``scan`` column family, then
        each item by key).  Tombstones are skipped without counting.  Every
        item read counts towards ``items_max`` and ``bytes_max``; the filter
        then decides whether it is returned.  With ``fetch`` each index entry
        is replaced by its base item, which is filtered; the entry's size is
        then ``bytes_read``'s and the item's goes to ``fetched_sizes``, and
        the page ends once the two reach ``bytes_max`` as DynamoDB adds them
        (``fetching_page_bytes``).
        Raises ``DynamoError`` (an expression the router should have
        rejected, an index this node does not know, or a failed engine).
        """
        if self._failure is not None:
            raise self._failure
        compiled = None
        if read.filter is not None or read.projection is not None:
            compiled = compile_expressions(
                key_condition=read.key_condition,
                filter=read.filter,
                projection=read.projection,
                names=read.names,
                values=read.values,
                legacy=read.legacy,
            )
        matches = compiled.filter_matches if compiled is not None and read.filter is not None else None
        project = compiled.project if compiled is not None and read.projection is not None else None
        count_only = read.count_only
        detail = read.detail
        kind = read.kind
        scan = kind == RangeKind.SCAN
        fetch = None
        if read.fetch:
            fetch, project = self._fetcher(read, project)
        items_get = self._items.get
        items_max = read.items_max
        bytes_max = read.bytes_max
        lower = read.lower

        read_options = ReadOptions()
        read_options.set_iterate_upper_bound(read.upper)
        column_family = self._scan if scan else self._index if kind == RangeKind.INDEX else self._items
        it = column_family.iter(read_options)
        if read.reverse:
            it.seek_to_last()
            step = it.prev
        else:
            it.seek(lower)
            step = it.next
        reverse = read.reverse

        result = RangeResult()
        items = result.items
        positions = result.positions
        sizes = result.sizes
        fetched_sizes = result.fetched_sizes
        hits = bytearray()
        scanned = count = bytes_read = fetched_bytes = 0
        last = None
        while it.valid():
            position = it.key()
            if reverse and position < lower:
                break
            if scan:
                record = items_get(scan_position_item_key(position))
            elif fetch is not None:
                entry_size = record_size(it.value())
                record = fetch(position)
            else:
                record = it.value()
            if record is None or is_tombstone(record):
                # SCAN, fetch: the item went after this iterator's snapshot was taken.
                step()
                continue
            size = record_size(record)
            scanned += 1
            if fetch is None:
                bytes_read += size
                page_bytes = bytes_read
            else:
                fetched_sizes.append(size)
                fetched_bytes += fetched_page_bytes(size)
                size = entry_size
                bytes_read += size
                page_bytes = fetching_page_bytes(bytes_read, fetched_bytes)
            last = position
            item_json = record_item_json(record)
            hit = True
            item = None
            if matches is not None:
                item = _loads(item_json)
                hit = matches(item)
            if hit:
                count += 1
                if not count_only:
                    if project is not None:
                        items.append(_dumps(project(item if item is not None else _loads(item_json))))
                    else:
                        items.append(item_json)
            if detail:
                positions.append(position)
                sizes.append(size)
                hits.append(hit)
            if scanned == items_max or page_bytes >= bytes_max:
                result.more = True
                break
            step()
        result.count = count
        result.scanned = scanned
        result.bytes_read = bytes_read
        result.hits = bytes(hits)
        result.last_position = last
        self._range_reads += 1
        self._range_items_read += scanned
        return result

    def _fetcher(
        self, read: RangeRead, project: Callable[[Item], Item] | None
    ) -> tuple[Callable[[bytes], bytes | None], Callable[[Item], Item] | None]:
        """For a local index read that fetches: the base record of an entry
        (by its index key), and the projection of what is returned."""
        plan = self.indexes.indexes.get(read.table_id)
        if plan is None:
            raise ResourceNotFoundException(f"Index {read.table_id} is not known on node {self.node_id}")
        items_get = self._items.get
        index_schema, base_table_id = plan.key_schema, plan.table_id

        def fetch(position: bytes) -> bytes | None:
            return items_get(index_entry_table_key(position, index_schema, base_table_id))

        projected = plan.projected
        if project is not None or read.whole_items or projected is None:
            return fetch, project

        def project_to_index(item: Item) -> Item:
            return {name: value for name, value in item.items() if name in projected}

        return fetch, project_to_index
