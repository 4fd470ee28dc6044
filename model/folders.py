"""What can be wrong with a data folder, in words every layer shares.

A storage node's RocksDB folder (``node/data_format.py``) and a
replicator's cursor folder (``replication/cursors.py``) both record the
on-disk format they were written in and are used by one process at a time.
When one of them cannot be opened for either reason, the layer that found
out raises one of these; the command's entry point
(``cluster/startup_errors.py``) turns it into one line for a person and a
distinct exit code.  node and replication never import each other, so the
vocabulary lives here.
"""

from __future__ import annotations


class FolderInUse(Exception):
    """Another process holds the folder's lock.

    ``pid``: the holder, as its pid file names it (None when unknown).
    """

    def __init__(self, path: str, pid: int | None, detail: str = "") -> None:
        self.path = path
        self.pid = pid
        self.detail = detail
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"{path} is in use by {holder}" + (f" ({detail})" if detail else ""))


class DataFormatError(Exception):
    """A folder's recorded format is one this build cannot use.

    ``found``: the folder's format; ``oldest``..``newest``: the formats this
    build reads (``oldest`` is the oldest it can still migrate from).  A
    folder newer than ``newest`` was written by a newer Meridian; one older
    than ``oldest`` by a Meridian whose format this build no longer migrates.
    ``what`` names the folder's kind in messages ("data folder", "cursor folder").
    """

    def __init__(self, path: str, found: int, oldest: int, newest: int, what: str = "data folder") -> None:
        self.path = path
        self.found = found
        self.oldest = oldest
        self.newest = newest
        self.what = what
        age = "newer" if found > newest else "older"
        super().__init__(f"{what} {path} is in format {found}, {age} than this build reads ({oldest}..{newest})")

    @property
    def too_new(self) -> bool:
        return self.found > self.newest
