"""The on-disk format of a node's data folder: recorded, checked, migrated.

Every data folder records, in its ``meta`` column family under
``META_FORMAT``, the format it was written in (``FORMATS``: what each one
changed).  A folder with data but no record was written before formats
were recorded: format 1.  When a folder is opened (``node/database.py``):

* format ``FORMAT_CURRENT``: used as it is;
* an older format this build migrates (``MIGRATIONS``): migrated in place,
  then stamped.  Each migration step is idempotent and its writes are made
  durable before the new format is written, so a crash in the middle leaves
  a folder still recorded in its old format, which the next open migrates
  again from the start;
* a newer format, or an older one no migration starts from: refused with
  ``DataFormatError`` (``model/folders.py``), which ``meridian`` reports in
  one line with its own exit code.  A newer folder may hold column families
  this build does not know, which RocksDB refuses to open in read-write
  mode; its format is then read from a read-only open first.

A migration says what it does through ``display`` (``MigrationDisplay``):
by default log lines; the ``meridian`` command installs a progress bar
(``cluster/migration_display.py``) shown for folders of at least
``limits.FORMAT_MIGRATION_PROGRESS_KEYS_MIN`` keys.

The data folder also holds ``meridian.pid``, the pid of the process that has
it open, written once RocksDB's lock is held: a second process refused by the
lock names the first from it (``FolderInUse``).

docs/data-format.md describes each format for people.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from rocksdict import AccessType, Options, Rdict, WriteBatch, WriteOptions

from meridian.model import limits
from meridian.model.folders import DataFormatError
from meridian.model.records import is_tombstone, pack_u64, unpack_u64

log = logging.getLogger(__name__)

META_FORMAT = b"format"  # (meta column family) -> u64: the folder's on-disk format
PID_FILE = "meridian.pid"

#: Each on-disk format, oldest first; a format's number is its place here.
FORMATS: tuple[str, ...] = (
    "column families items, log, meta, scan and index; every delete leaves a tombstone "
    "(every release before formats were recorded, up to commit 7e82490)",
    "adds the stream column family (DynamoDB Streams records); a node no replicator reads "
    "(meridian serve, --no-replicator) removes a deleted item's record instead of keeping a tombstone",
)
FORMAT_CURRENT = len(FORMATS)


class StepProgress:
    """One step's progress; ``advance`` by keys visited.  This one shows nothing."""

    def advance(self, keys: int) -> None:
        pass

    def close(self) -> None:
        pass


class MigrationDisplay:
    """How a migration shows itself.  This default logs; ``meridian`` installs
    one that prints a line and, for big folders, a progress bar."""

    def started(self, path: str, found: int, target: int) -> None:
        log.info("data folder %s: migrating from format %d to %d", path, found, target)

    def step(self, description: str, total_keys: int) -> StepProgress:
        log.info("data folder migration: %s (about %d keys)", description, total_keys)
        return StepProgress()

    def finished(self, path: str, target: int, seconds: float) -> None:
        log.info("data folder %s: now format %d (%.1f s)", path, target, seconds)


#: What migrations report to; ``set_display`` replaces it for the process.
_display: MigrationDisplay = MigrationDisplay()


def set_display(display: MigrationDisplay) -> MigrationDisplay:
    """Install ``display`` for every later migration; return the previous one."""
    global _display
    previous, _display = _display, display
    return previous


@dataclass(frozen=True)
class MigrationContext:
    """What a migration step may depend on besides the folder.

    ``replicated``: whether a replicator will read this node (an engine's
    ``replicated``): only such a node needs tombstones.
    """

    path: str
    replicated: bool
    display: MigrationDisplay


# --- the migrations -------------------------------------------------------------


def _keys_estimate(column_family: Rdict) -> int:
    try:
        return column_family.property_int_value("rocksdb.estimate-num-keys") or 0
    except Exception:  # noqa: BLE001 - an estimate only sizes the progress bar
        return 0


def _progress(context: MigrationContext, description: str, column_family: Rdict) -> StepProgress:
    total = _keys_estimate(column_family)
    if total < limits.FORMAT_MIGRATION_PROGRESS_KEYS_MIN:
        return StepProgress()
    return context.display.step(description, total)


def _migrate_1_to_2(db: Rdict, context: MigrationContext) -> None:
    """Format 1 -> 2.  The ``stream`` column family was created, empty, by
    opening the folder.  On a node no replicator reads, the tombstones format
    1 left are dropped: format 2 writes none there, and only last-writer-wins
    replication ever reads them.  Idempotent (a tombstone already gone is
    not found again)."""
    if context.replicated:
        return
    items = db.get_column_family("items")
    handle = db.get_column_family_handle("items")
    progress = _progress(context, "dropping the tombstones of deleted items", items)
    try:
        wb = WriteBatch(raw_mode=True)
        queued = visited = 0
        for key, record in items.items():
            visited += 1
            if visited % limits.FORMAT_MIGRATION_PROGRESS_KEYS_STEP == 0:
                progress.advance(limits.FORMAT_MIGRATION_PROGRESS_KEYS_STEP)
            if not is_tombstone(record):
                continue
            wb.delete(key, handle)
            queued += 1
            if queued == limits.TOMBSTONE_DELETES_PER_WRITE_MAX:
                db.write(wb)
                wb = WriteBatch(raw_mode=True)
                queued = 0
        if queued:
            db.write(wb)
        progress.advance(visited % limits.FORMAT_MIGRATION_PROGRESS_KEYS_STEP)
    finally:
        progress.close()


#: format -> the step migrating a folder from it to the next format.
MIGRATIONS: dict[int, Callable[[Rdict, MigrationContext], None]] = {1: _migrate_1_to_2}
FORMAT_OLDEST_MIGRATED = min(MIGRATIONS, default=FORMAT_CURRENT)
assert all(MIGRATIONS.get(found) for found in range(FORMAT_OLDEST_MIGRATED, FORMAT_CURRENT))


# --- before and after opening ------------------------------------------------------


def column_families_on_disk(path: str) -> list[str] | None:
    """The column families of the database at ``path``; None: there is none yet."""
    if not os.path.exists(os.path.join(path, "CURRENT")):
        return None
    return Rdict.list_cf(path)


def refuse_unknown_column_families(path: str, found: list[str], known: set[str]) -> None:
    """Called when the folder holds column families this build does not know:
    raise ``DataFormatError`` if a newer format wrote them (read from a
    read-only open), else ``ValueError`` (not a folder this build wrote)."""
    options = Options(raw_mode=True)
    column_families = {name: Options(raw_mode=True) for name in found if name != "default"}
    db = Rdict(path, options, column_families=column_families, access_type=AccessType.read_only())
    try:
        meta = db.get_column_family("meta") if "meta" in found else None
        stamp = meta.get(META_FORMAT) if meta is not None else None
        del meta
    finally:
        db.close()
    if stamp is not None and unpack_u64(stamp) > FORMAT_CURRENT:
        raise DataFormatError(path, unpack_u64(stamp), FORMAT_OLDEST_MIGRATED, FORMAT_CURRENT)
    unknown = sorted(set(found) - known - {"default"})
    raise ValueError(f"{path} holds column families this Meridian does not know: {', '.join(unknown)}")


def recorded_format(db: Rdict, existed: bool) -> int:
    """The folder's format: its record; format 1 for a folder from before
    records; ``FORMAT_CURRENT`` for one created by this open."""
    stamp = db.get_column_family("meta").get(META_FORMAT)
    if stamp is not None:
        return unpack_u64(stamp)
    return 1 if existed else FORMAT_CURRENT


def stamp_format(db: Rdict, version: int) -> None:
    """Record ``version``, durably: a synced write, after every earlier write
    in the write-ahead log, so the record never survives a crash that the
    writes before it did not."""
    db.flush_wal(True)
    options = WriteOptions()
    options.sync = True
    wb = WriteBatch(raw_mode=True)
    wb.put(META_FORMAT, pack_u64(version), db.get_column_family_handle("meta"))
    db.write(wb, options)


def settle_format(db: Rdict, path: str, existed: bool, *, replicated: bool) -> int:
    """Check the opened folder's format, migrate it to ``FORMAT_CURRENT`` if it
    is older, record it; return the format it was found in.

    Raises ``DataFormatError`` (the caller closes the database) for a format
    this build cannot use."""
    found = recorded_format(db, existed)
    if found > FORMAT_CURRENT or found < FORMAT_OLDEST_MIGRATED:
        raise DataFormatError(path, found, FORMAT_OLDEST_MIGRATED, FORMAT_CURRENT)
    if found == FORMAT_CURRENT:
        if not existed:  # a new folder: recorded at once
            stamp_format(db, FORMAT_CURRENT)
        return found
    display = _display
    context = MigrationContext(path=path, replicated=replicated, display=display)
    started = time.monotonic()
    display.started(path, found, FORMAT_CURRENT)
    for version in range(found, FORMAT_CURRENT):
        MIGRATIONS[version](db, context)
        stamp_format(db, version + 1)
    display.finished(path, FORMAT_CURRENT, time.monotonic() - started)
    return found


# --- the pid file ----------------------------------------------------------------


def write_pid_file(path: str) -> None:
    """Name this process as the folder's user (best effort: only read to
    explain a refused lock)."""
    try:
        with open(os.path.join(path, PID_FILE), "w", encoding="ascii") as out:
            out.write(f"{os.getpid()}\n")
    except OSError as exc:
        log.info("cannot write %s in %s: %s", PID_FILE, path, exc)


def read_pid_file(path: str) -> int | None:
    try:
        with open(os.path.join(path, PID_FILE), encoding="ascii") as pid_file:
            return int(pid_file.read().strip())
    except (OSError, ValueError):
        return None


def remove_pid_file(path: str) -> None:
    """Forget this process as the folder's user, if the file still names it."""
    if read_pid_file(path) == os.getpid():
        try:
            os.unlink(os.path.join(path, PID_FILE))
        except OSError:
            pass
