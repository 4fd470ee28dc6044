"""DAX attribute lists: tuples of attribute names <-> small integer ids.

An item's non-key values travel without their names: the bytes start with
the id of the (sorted) name list, and the values follow in that order.  The
clients fetch a list once (``defineAttributeListId`` / ``defineAttributeList``)
and cache it for good, on every connection and every node of the cluster.

So an id must mean the same list on every connection and every DAX node,
without the nodes talking to each other.  Ids are therefore derived from the
names themselves: a hash of the list, truncated below 2**53 (the JS client
reads integers up to ``Number.MAX_SAFE_INTEGER`` exactly) and kept clear of 0
and 1 (1 is the empty list by the clients' own definition; neither client
ever uses 0).  With up to ``DAX_ATTRIBUTE_LISTS_MAX`` lists in a space of
2**53 a collision is about one chance in a billion; if one happens, the
later list takes the next hash in its own sequence, which stays stable on
this node (nodes could then disagree only for that list).

A node can only name an id it has seen (a hash cannot be inverted), so the
registry keeps every list it handed out or was given, up to
``DAX_ATTRIBUTE_LISTS_MAX``; past that it refuses new lists rather than forget
ids that clients have cached.

Clients cache ids for as long as they run, across a node's restart and
across the nodes of a cluster, so a registry may keep a journal: one JSON
array of names per line, appended when a list is first seen and read back at
start.  Nodes on one host share the file (``meridian up``); a node asked for
an id it does not know reads the lines other nodes appended since.  Ids are a
pure function of the names (and of the order lists collided in, which the
journal keeps), so re-reading reproduces them.
"""

from __future__ import annotations

import hashlib
import os

import orjson

from meridian.model import limits
from meridian.model.errors import LimitExceededException

from .cbor import dumps

# Identifiers of the format, not bounds: the empty list's id, fixed by both
# clients (they never ask the server for it), and the hash width in bytes.
EMPTY_LIST_ID, _HASH_BYTES = 1, 8
# Ids are drawn from [_ID_FIRST, _ID_FIRST + _ID_SPAN): below the JS client's
# exact-integer limit (2**53 - 1), above the reserved 0 and 1.
_ID_FIRST = EMPTY_LIST_ID + 1
_ID_SPAN = (1 << 53) - _ID_FIRST


class AttributeListRegistry:
    """The attribute lists one DAX node knows; ids as described above."""

    __slots__ = ("_ids", "_names", "_lists_max", "_journal_path", "_journal_read_bytes")

    def __init__(self, *, lists_max: int = limits.DAX_ATTRIBUTE_LISTS_MAX, journal_path: str | None = None) -> None:
        self._ids: dict[tuple[str, ...], int] = {(): EMPTY_LIST_ID}
        self._names: dict[int, tuple[str, ...]] = {EMPTY_LIST_ID: ()}
        self._lists_max = lists_max
        self._journal_path = journal_path
        self._journal_read_bytes = 0
        if journal_path is not None:
            self._read_journal()

    def _read_journal(self) -> None:
        """Register the lists appended to the journal since the last read (whole lines only)."""
        assert self._journal_path is not None
        try:
            with open(self._journal_path, "rb") as journal:
                journal.seek(self._journal_read_bytes)
                data = journal.read()
        except FileNotFoundError:
            return
        complete = data.rfind(b"\n") + 1  # a line another node is writing right now waits
        for line in data[:complete].splitlines():
            try:
                names = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn line from a crash: its list is registered again when next seen
            if isinstance(names, list) and all(isinstance(name, str) for name in names):
                self._register(tuple(names))
        self._journal_read_bytes += complete

    def _register(self, names: tuple[str, ...]) -> int:
        known = self._ids.get(names)
        if known is not None:
            return known
        if len(self._names) >= self._lists_max:
            raise LimitExceededException(
                f"Too many distinct attribute lists on this DAX node (at most {self._lists_max})"
            )
        attempt = 0
        while True:
            list_id = derive_id(names, attempt)
            if list_id not in self._names:
                break
            attempt += 1
        self._ids[names] = list_id
        self._names[list_id] = names
        return list_id

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<AttributeListRegistry lists={len(self._names)}/{self._lists_max}>"

    def id_for(self, names: tuple[str, ...]) -> int:
        """The id of ``names`` (order matters), registering the list if new.

        Raises ``LimitExceededException`` when the registry is full.
        """
        names = tuple(names)
        known = self._ids.get(names)
        if known is not None:
            return known
        if not all(isinstance(name, str) for name in names):
            raise TypeError("attribute names must be strings")
        if self._journal_path is not None:
            self._read_journal()  # another node may have registered it first: keep the journal's order
            known = self._ids.get(names)
            if known is not None:
                return known
        list_id = self._register(names)
        if self._journal_path is not None:
            # One short line, appended whole (O_APPEND): nodes sharing the file never interleave.
            line = orjson.dumps(list(names)) + b"\n"
            fd = os.open(self._journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return list_id

    def names_for(self, list_id: int) -> tuple[str, ...]:
        """The names of a known id; ``KeyError`` for an id neither this node nor its journal has."""
        names = self._names.get(list_id)
        if names is None and self._journal_path is not None:
            self._read_journal()
            names = self._names.get(list_id)
        if names is None:
            raise KeyError(list_id)
        return names


def derive_id(names: tuple[str, ...], attempt: int = 0) -> int:
    """The ``attempt``-th candidate id of a name list (0 first): a pure function."""
    digest = hashlib.blake2b(dumps([attempt, list(names)]), digest_size=_HASH_BYTES).digest()
    return _ID_FIRST + int.from_bytes(digest, "big") % _ID_SPAN
