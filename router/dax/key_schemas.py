"""Tables' key schemas, as a DAX node needs them to read and write key bytes.

Key bytes carry values without names, so both sides must know each table's
key attributes and their types.  The clients ask ``defineKeySchema`` once per
table; the node asks its upstream (DescribeTable) and remembers the answer
for ``limits.DAX_KEY_SCHEMA_TTL_S`` — a table dropped and created again with
another key within that time is read with the old schema until the entry
expires or a call on it finds the table missing (``forget``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from meridian.model import limits

from .upstream import Upstream

KeySchema = list[tuple[str, str]]


class KeySchemas:
    """Table name -> [(hash name, type), (range name, type)?], fetched on first use."""

    def __init__(self, upstream: Upstream, *, monotonic_s: Callable[[], float] = time.monotonic) -> None:
        self._upstream = upstream
        self._monotonic_s = monotonic_s
        self._known: dict[str, tuple[KeySchema, float]] = {}

    def __repr__(self) -> str:
        return f"<KeySchemas tables={len(self._known)}>"

    async def of(self, table_name: str) -> KeySchema:
        """Raises ResourceNotFoundException (from DescribeTable) for a table that does not exist."""
        now_s = self._monotonic_s()
        known = self._known.get(table_name)
        if known is not None and now_s - known[1] < limits.DAX_KEY_SCHEMA_TTL_S:
            return known[0]
        answer = await self._upstream.call("DescribeTable", {"TableName": table_name})
        table = answer["Table"]
        types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
        ordered = sorted(table["KeySchema"], key=lambda element: element["KeyType"] != "HASH")
        schema = [(element["AttributeName"], types[element["AttributeName"]]) for element in ordered]
        if len(self._known) >= limits.DAX_KEY_SCHEMAS_MAX:
            self._known.clear()
        self._known[table_name] = (schema, now_s)
        return schema

    def forget(self, table_name: str) -> None:
        self._known.pop(table_name, None)
