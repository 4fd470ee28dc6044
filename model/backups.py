"""Backups and point-in-time recovery: the records the router and the nodes exchange.

A node keeps RocksDB checkpoints of its whole database (``node/checkpoints.py``):
named ones taken for an on-demand backup (the name is the backup id), and
periodic ones (``pitr-<ms>``) from which a point-in-time restore replays the
change log forward (``node/restore.py``, ``node/pitr.py``).  These records
cross the storage seam (``router/storage.py``) unchanged in embedded mode and
through ``proto/storage_codec.py`` in a cluster.  Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meridian.model import limits

#: Periodic checkpoints are named this prefix + their creation time in epoch ms.
PITR_CHECKPOINT_PREFIX = "pitr-"

# A checkpoint's name is a folder name on every node, beside its manifest
# ``<name>.json``: letters, digits, ``_`` and ``-`` (no dots: no ``..``, no
# hidden folders, no name that could be taken for a manifest or a temporary).
_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """One node's checkpoint: its name, the last change-log sequence it holds,
    when it was taken (epoch ms, the node's clock) and its size on disk (the
    files it shares with the live database through hard links included)."""

    name: str
    sequence: int
    created_ms: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    """Copy one table's items on one node into a new table id.

    Exactly one of ``checkpoint`` (a named checkpoint: a backup) and
    ``at_ms`` (a point in time, epoch ms: the newest periodic checkpoint at
    or before it, then the change log up to it) is set.
    """

    source_table_id: int
    target_table_id: int
    checkpoint: str | None = None
    at_ms: int | None = None

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (self.at_ms is None):
            raise ValueError("a restore names exactly one of a checkpoint and a point in time")
        if self.source_table_id == self.target_table_id:
            raise ValueError("a restore writes into a new table id")


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What one node restored: live items written and their total size."""

    item_count: int = 0
    size_bytes: int = 0


def check_checkpoint_name(name: str) -> str:
    """``name`` if it can name a checkpoint folder, else ValueError."""
    if len(name) > limits.CHECKPOINT_NAME_CHARS_MAX or _NAME.fullmatch(name) is None:
        raise ValueError(f"invalid checkpoint name {name!r}")
    return name


def pitr_checkpoint_name(created_ms: int) -> str:
    return f"{PITR_CHECKPOINT_PREFIX}{created_ms}"


def is_pitr_checkpoint(name: str) -> bool:
    return name.startswith(PITR_CHECKPOINT_PREFIX)
