"""``meridian import``: an export's data files into a table, resumably.

Files are read in the manifest's order, each line by line (gunzipped as it is
read, its MD5 compared with the manifest's at the end).  A line becomes an
item or a bad line (``lines.BadLine``: not JSON or Ion, no ``Item``, a value
DynamoDB refuses, a key missing or of the wrong type); items go out in
batches of 25, ``IMPORT_BATCHES_IN_FLIGHT_MAX`` batches at a time, over one
keep-alive client.  A batch holds one item per key (BatchWriteItem refuses
duplicates), so a repeated key starts a new batch and the later item wins, as
in DynamoDB's own import.

Bad lines are reported with file and line number and, by ``on_error``,
skipped (and written to the errors file) or fatal (the import stops before
that line).  What is settled is saved in the progress file
(``progress.py``): a line is settled when every batch holding it or an
earlier line has been acknowledged, so resuming redoes at most the batches
that were in flight.  The summary says what was imported, skipped and left.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import orjson

from meridian.model import limits

from . import lines, manifest
from .progress import FileProgress, Progress
from .writer import BatchWriter, ImportStopped, message_of

SKIP, FAIL = "skip", "fail"


class ImportFailed(Exception):
    """A bad line under ``--on-error fail``, a damaged file, or a server that kept failing."""


@dataclass(slots=True)
class ImportResult:
    files_total: int
    files_done: int
    imported: int
    skipped: int
    items_expected: int  # the manifest's itemCount
    elapsed_s: float
    imported_now: int  # by this run (the rest by earlier, interrupted ones)
    stopped: str | None = None  # why the import stopped early, None when it finished
    warnings: list[str] = field(default_factory=list)

    @property
    def rate_per_s(self) -> float:
        return self.imported_now / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Hashing:
    """A file object that hashes what is read through it (the gzip member's MD5)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.md5 = hashlib.md5()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.md5.update(data)
        return data


def key_schema_of(description: dict[str, Any]) -> dict[str, str]:
    """DescribeTable's Table -> {key attribute: S, N or B}."""
    types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
    return {k["AttributeName"]: types[k["AttributeName"]] for k in description["KeySchema"]}


class Importer:
    """One import run.  ``stop`` (an event) ends it early, progress saved."""

    def __init__(self, writer: BatchWriter, export_dir: Path, files: list[manifest.DataFile], output_format: str,
                 key_schema: dict[str, str], progress: Progress, *, on_error: str = SKIP,
                 report: Callable[[str], None] = print) -> None:  # fmt: skip
        self._writer = writer
        self._export_dir = export_dir
        self._files = files
        self._decode = lines.decoder(output_format)
        self._key_schema = key_schema
        self._progress = progress
        self._on_error = on_error
        self._report = report
        self._slots = asyncio.Semaphore(limits.IMPORT_BATCHES_IN_FLIGHT_MAX)
        self._saved_at = 0.0
        self.imported_now = 0
        self.shown_bad = 0
        self.stop = asyncio.Event()
        self.warnings: list[str] = []

    @property
    def files_total(self) -> int:
        return len(self._files)

    @property
    def items_expected(self) -> int:
        return sum(f.item_count for f in self._files)

    def settled(self) -> tuple[int, int]:
        """(items imported, lines skipped) so far, for the progress bar."""
        imported, skipped, _ = self._progress.totals()
        return imported, skipped

    def _bad_line(self, key: str, number: int, error: str, state: FileProgress) -> None:
        where = f"{key}:{number}"
        self._progress.record_bad_line(key, number, error)
        if self._on_error == FAIL:
            raise ImportFailed(f"bad line {where}: {error} (fix it, or pass --on-error skip; run again to resume)")
        state.skipped += 1
        if self.shown_bad < limits.IMPORT_BAD_LINES_SHOWN_MAX:
            self._report(f"skipped bad line {where}: {error}")
        elif self.shown_bad == limits.IMPORT_BAD_LINES_SHOWN_MAX:
            self._report(f"more bad lines: see {self._progress.errors_path}")
        self.shown_bad += 1

    def _maybe_save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._saved_at >= limits.IMPORT_PROGRESS_SAVE_INTERVAL_S:
            self._progress.save()
            self._saved_at = now

    async def run(self) -> None:
        """Every file not yet complete; the progress file saved however it ends."""
        try:
            for data_file in self._files:
                state = self._progress.of(data_file.key)
                if state.complete:
                    continue
                if self.stop.is_set():
                    return
                await self._import_file(data_file, state)
                self._maybe_save(force=True)
        finally:
            self._maybe_save(force=True)

    async def _import_file(self, data_file: manifest.DataFile, state: FileProgress) -> None:
        key = data_file.key
        in_flight: list[tuple[int, asyncio.Task]] = []  # (last line of the batch, its task), oldest first
        batch: list[tuple[int, dict[str, Any]]] = []
        batch_keys: set[bytes] = set()
        items_seen = local_bad = 0
        from_start = state.lines_done == 0
        failure: BaseException | None = None

        def settle() -> None:
            nonlocal failure
            while in_flight and in_flight[0][1].done():
                last_line, task = in_flight.pop(0)
                if task.cancelled() or task.exception() is not None:
                    failure = failure or (task.exception() if not task.cancelled() else ImportFailed("cancelled"))
                    in_flight.insert(0, (last_line, task))
                    return
                state.lines_done = max(state.lines_done, last_line)

        async def send(entries: list[tuple[int, dict[str, Any]]]) -> None:
            try:
                refused = await self._writer.put_batch([item for _, item in entries])
            finally:
                self._slots.release()
            state.imported += len(entries) - len(refused)
            self.imported_now += len(entries) - len(refused)
            for index, why in refused:
                self._bad_line(key, entries[index][0], why, state)

        async def flush() -> None:
            if not batch:
                return
            await self._slots.acquire()
            entries = list(batch)
            batch.clear()
            batch_keys.clear()
            in_flight.append((entries[-1][0], asyncio.ensure_future(send(entries))))

        with data_file.path.open("rb") as raw:
            hashing = _Hashing(raw)
            number = 0
            try:
                with gzip.GzipFile(fileobj=hashing, mode="rb") as text:  # type: ignore[arg-type]
                    while failure is None and not self.stop.is_set():
                        line = text.readline(limits.IMPORT_LINE_BYTES_MAX)
                        if not line:
                            break
                        number += 1
                        too_long = not line.endswith(b"\n") and len(line) >= limits.IMPORT_LINE_BYTES_MAX
                        while too_long and not text.readline(limits.IMPORT_LINE_BYTES_MAX).endswith(b"\n"):
                            pass
                        if number <= state.lines_done or not line.strip():
                            continue
                        try:
                            if too_long:
                                raise lines.BadLine(f"line longer than {limits.IMPORT_LINE_BYTES_MAX} bytes")
                            item = self._decode(line)
                            lines.check_item(item, self._key_schema)
                        except lines.BadLine as exc:
                            await flush()
                            await self._drain(in_flight, settle)
                            if failure is None:
                                state.lines_done = number - 1
                            local_bad += 1
                            self._bad_line(key, number, str(exc), state)
                            if failure is None:
                                state.lines_done = number
                            continue
                        items_seen += 1
                        item_key = orjson.dumps([item[name] for name in self._key_schema])
                        if item_key in batch_keys:
                            await flush()
                        batch.append((number, item))
                        batch_keys.add(item_key)
                        if len(batch) == limits.BATCH_WRITE_ITEMS_MAX:
                            await flush()
                        settle()
                        self._maybe_save()
                    finished = failure is None and not self.stop.is_set()
                    if finished:
                        while text.read(1 << 20):  # the rest of the gzip stream, for the MD5
                            pass
            except (OSError, EOFError, zlib.error) as exc:
                await self._drain(in_flight, settle)
                raise ImportFailed(f"{key}: cannot read it after line {number} ({exc})") from None
            finally:
                await flush()
                await self._drain(in_flight, settle)
        if failure is not None:
            self._maybe_save(force=True)
            if isinstance(failure, (ImportFailed, ImportStopped)):
                raise failure
            raise ImportFailed(f"{key}: {failure!r}")
        if not finished:
            return
        if from_start:
            self._check_file(data_file, base64.b64encode(hashing.md5.digest()).decode(), items_seen + local_bad)
        state.lines_done = number
        state.complete = True

    async def _drain(self, in_flight: list, settle: Callable[[], None]) -> None:
        if in_flight:
            await asyncio.wait([task for _, task in in_flight])
        settle()

    def _check_file(self, data_file: manifest.DataFile, md5_b64: str, lines_seen: int) -> None:
        if data_file.md5_b64 and data_file.md5_b64 != md5_b64:
            self.warnings.append(f"{data_file.key}: MD5 {md5_b64} differs from the manifest's {data_file.md5_b64}")
        if data_file.item_count and lines_seen and data_file.item_count != lines_seen:
            self.warnings.append(
                f"{data_file.key}: {lines_seen} item lines read, the manifest says "
                f"{data_file.item_count}"
            )


def describe_stop(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, (ImportFailed, ImportStopped)) else f"{type(exc).__name__}: {exc}"


__all__ = ["FAIL", "SKIP", "ImportFailed", "ImportResult", "Importer", "describe_stop", "key_schema_of", "message_of"]
