"""A node's Raft log in memory: entries after the last snapshot, and that snapshot.

Indexes start at 1; index 0 with term 0 is the empty log's sentinel, and the
snapshot stands in for every entry up to ``snapshot.index``.  The log only
answers questions and changes shape; what to persist is the caller's
(``RaftNode``) to say, in its effects.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .messages import Entry, EntryKind, Snapshot, decode_voters


class RaftLog:
    def __init__(self, snapshot: Snapshot, entries: Sequence[Entry] = ()) -> None:
        self.snapshot = snapshot
        self._entries: list[Entry] = list(entries)
        assert all(e.index == snapshot.index + 1 + i for i, e in enumerate(self._entries)), "log not contiguous"
        self._config_indexes = [e.index for e in self._entries if e.kind is EntryKind.CONFIG]  # ascending

    # --- reading ---

    @property
    def first_index(self) -> int:
        """The first index still held as an entry (the one after the snapshot)."""
        return self.snapshot.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot.term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away (before the
        snapshot) or not there yet."""
        if index == self.snapshot.index:
            return self.snapshot.term
        if self.snapshot.index < index <= self.last_index:
            return self._entries[index - self.snapshot.index - 1].term
        return None

    def entry(self, index: int) -> Entry:
        assert self.snapshot.index < index <= self.last_index, (index, self.snapshot.index, self.last_index)
        return self._entries[index - self.snapshot.index - 1]

    def slice(self, start: int, entries_max: int, bytes_max: int) -> tuple[Entry, ...]:
        """Entries from ``start`` on, at most ``entries_max`` and ``bytes_max`` of data
        (but always one, however big, so a large entry still moves)."""
        out: list[Entry] = []
        size_bytes = 0
        for index in range(start, min(self.last_index, start + entries_max - 1) + 1):
            entry = self.entry(index)
            size_bytes += len(entry.data)
            if out and size_bytes > bytes_max:
                break
            out.append(entry)
        return tuple(out)

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries)

    def first_index_of_term(self, index: int) -> int:
        """The first index (after the snapshot) holding the term of the entry at ``index``."""
        term = self.term_at(index)
        while index - 1 > self.snapshot.index and self.term_at(index - 1) == term:
            index -= 1
        return index

    def last_index_of_term(self, term: int) -> int | None:
        """The last index holding ``term``, or None when the log has no entry of it."""
        for entry in reversed(self._entries):
            if entry.term == term:
                return entry.index
            if entry.term < term:
                return None
        return self.snapshot.index if self.snapshot.term == term else None

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: is a log ending at (last_index, last_term) at
        least as up to date as this one?"""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def latest_config(self) -> tuple[int, tuple[str, ...]]:
        """The newest voter set in the log (committed or not, as the Raft thesis §4.1
        wants) and the index of its entry; the snapshot's when no entry has one."""
        return self.config_at(self.last_index)

    def config_at(self, index: int) -> tuple[int, tuple[str, ...]]:
        """The voter set in force at ``index`` (the newest CONFIG entry up to it)."""
        position = bisect.bisect_right(self._config_indexes, index)
        if position:
            entry = self.entry(self._config_indexes[position - 1])
            return entry.index, decode_voters(entry.data)
        return self.snapshot.index, self.snapshot.voters

    # --- changing ---

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            assert entry.index == self.last_index + 1, (entry.index, self.last_index)
            self._entries.append(entry)
            if entry.kind is EntryKind.CONFIG:
                self._config_indexes.append(entry.index)

    def truncate_from(self, index: int) -> None:
        """Drop the entries from ``index`` on (a conflicting, uncommitted suffix)."""
        assert index > self.snapshot.index
        del self._entries[index - self.snapshot.index - 1 :]
        del self._config_indexes[bisect.bisect_left(self._config_indexes, index) :]

    def compact(self, snapshot: Snapshot) -> None:
        """Replace the entries up to ``snapshot.index`` by the snapshot; entries after it
        are kept when the log agrees with it there, else the whole log goes."""
        if self.term_at(snapshot.index) == snapshot.term:
            self._entries = self._entries[snapshot.index - self.snapshot.index :]
        else:
            self._entries = []
        self.snapshot = snapshot
        self._config_indexes = [e.index for e in self._entries if e.kind is EntryKind.CONFIG]
