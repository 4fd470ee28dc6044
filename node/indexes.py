"""Secondary indexes as a node sees them: which tables have which indexes,
and which index entry an item makes.

A node learns a table's indexes from its copy of the catalog (every node
keeps one, ``Engine.catalog_put``): ``IndexRegistry.apply`` turns each newer
catalog entry into compiled ``IndexPlan`` records and reports which indexes
appeared and which went, so the engine can drop the entries of a removed
index and the GSI maintainer (``node/gsi.py``) can start on a new one.

An item has an entry in an index when it holds every index key attribute
(every one of a multi-attribute key's), with the attribute's declared type
and a non-empty value (indexes are sparse); the entry holds the item's
projection (``IndexPlan.entry``).  Index keys are laid out in ``model/ops.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from meridian.model.keycodec import TABLE_PREFIX_BYTES
from meridian.model.ops import (
    PROJECTION_ALL,
    CatalogEntry,
    IndexSpec,
    Item,
    encode_index_key,
    index_specs_from_catalog,
)
from meridian.model.index_keys import check_index_keys, index_key_size_error
from meridian.model.values import item_size

_dumps = orjson.dumps

class IndexPlan:
    """One index of one table, compiled for the write path."""

    __slots__ = ("spec", "index_id", "table_id", "name", "is_global", "key_schema", "table_schema", "projected")

    def __init__(self, spec: IndexSpec, table_id: int, table_schema: list[tuple[str, str]]) -> None:
        self.spec = spec
        self.index_id = spec.index_id
        self.table_id = table_id
        self.name = spec.name
        self.is_global = spec.is_global
        self.key_schema = spec.key_schema
        self.table_schema = tuple(table_schema)
        #: attribute names an entry keeps; None keeps the whole item (ALL)
        self.projected: frozenset[str] | None = None
        if spec.projection_type != PROJECTION_ALL:
            names = [name for name, _ in (*table_schema, *spec.key_schema)]
            self.projected = frozenset((*names, *spec.non_key_attributes))

    def __repr__(self) -> str:
        kind = "GSI" if self.is_global else "LSI"
        return f"<IndexPlan {kind} {self.name} id={self.index_id} table={self.table_id}>"

    def has_key(self, item: Item) -> bool:
        """Whether ``item`` belongs in this index (sparse indexes).

        A key value past DynamoDB's key limits keeps an item out too: writes
        refuse such items, but a backfill finds those written before the
        index existed and skips them, as DynamoDB's does.
        """
        hash_count = self.spec.hash_count
        for position, (name, key_type) in enumerate(self.key_schema):
            value = item.get(name)
            if value is None:
                return False
            inner = value.get(key_type)
            if inner is None or inner == "":
                return False
            if index_key_size_error(key_type, inner, position < hash_count) is not None:
                return False
        return True

    def entry_key(self, item: Item, table_key: bytes) -> bytes | None:
        """The index key of ``item`` stored under ``table_key``, None if it has no entry."""
        if not self.has_key(item):
            return None
        return encode_index_key(self.index_id, self.key_schema, table_key[TABLE_PREFIX_BYTES:], item,
                                self.spec.hash_count)

    def entry(
        self, item: Item, item_json: bytes, size_bytes: int, table_key: bytes
    ) -> tuple[bytes, bytes, int] | None:
        """``(index key, projected item JSON, its size)``, None if the item has no entry.

        ``item_json`` and ``size_bytes`` are the whole item's, reused as they
        are when the index projects everything.
        """
        key = self.entry_key(item, table_key)
        if key is None:
            return None
        projected = self.projected
        if projected is None:
            return key, item_json, size_bytes
        kept = {name: value for name, value in item.items() if name in projected}
        return key, _dumps(kept), item_size(kept)


@dataclass(frozen=True, slots=True)
class TableIndexes:
    """The secondary indexes of one table."""

    table_id: int
    local: tuple[IndexPlan, ...]
    global_: tuple[IndexPlan, ...]

    def check_item(self, item: Item, *, updating: bool) -> None:
        """Reject an item whose index key attributes break their declared types.

        An attribute may be absent (the item is then not in that index), but
        if present it must have the type of the index's attribute definition
        and, for S and B, a value.
        """
        check_index_keys(item, ((plan.name, plan.key_schema, plan.spec.hash_count)
                                for plan in (*self.global_, *self.local)), updating=updating)


class IndexRegistry:
    """Every secondary index of every table in this node's catalog copy."""

    def __init__(self) -> None:
        self.tables: dict[int, TableIndexes] = {}  # only tables that have indexes
        self.indexes: dict[int, IndexPlan] = {}  # index id -> plan
        self.global_tables: frozenset[int] = frozenset()  # tables with at least one GSI
        self._by_name: dict[str, tuple[int, ...]] = {}  # catalog name -> index ids

    def __repr__(self) -> str:
        return f"<IndexRegistry tables={len(self.tables)} indexes={len(self.indexes)}>"

    def global_indexes(self) -> list[IndexPlan]:
        return [plan for plan in self.indexes.values() if plan.is_global]

    def apply(self, entries: Iterable[CatalogEntry]) -> tuple[list[IndexPlan], list[IndexPlan]]:
        """Take catalog entries (each newer than what was applied for its name)
        into account; return the index plans that appeared and those that went."""
        added: list[IndexPlan] = []
        removed: list[IndexPlan] = []
        for entry in entries:
            for index_id in self._by_name.pop(entry.name, ()):
                plan = self.indexes.pop(index_id)
                removed.append(plan)
                self.tables.pop(plan.table_id, None)
            if entry.deleted or not entry.description.get("indexes"):
                continue
            table_id, table_schema, specs = index_specs_from_catalog(entry.description)
            plans = [IndexPlan(spec, table_id, table_schema) for spec in specs]
            self.tables[table_id] = TableIndexes(
                table_id,
                tuple(p for p in plans if not p.is_global),
                tuple(p for p in plans if p.is_global),
            )
            self._by_name[entry.name] = tuple(p.index_id for p in plans)
            for plan in plans:
                self.indexes[plan.index_id] = plan
                added.append(plan)
        # A plan both removed and added (an unchanged index of a changed
        # table) did neither.
        kept = {p.index_id for p in removed} & {p.index_id for p in added}
        self.global_tables = frozenset(t.table_id for t in self.tables.values() if t.global_)
        return [p for p in added if p.index_id not in kept], [p for p in removed if p.index_id not in kept]
