"""``meridian export``: a table in DynamoDB's export format, from now or from a point in time.

From now: a parallel Scan (``EXPORT_SCAN_SEGMENTS`` segments, strongly
consistent pages) written as it is read.  Each page is consistent, the whole
is not a snapshot: a write made while the export runs may or may not be in
it.  For a snapshot, ``--at``.

From a point in time (``at_s``): RestoreTableToPointInTime into a temporary
table (the source needs point-in-time recovery), wait for it to be ACTIVE,
export that, delete it, whatever happened.  The manifests name the source
table and the point in time (``exportTime``).

Each segment writes its own data files (a new one every
``EXPORT_ITEMS_PER_FILE_MAX`` items, and one, maybe empty, per segment, as
DynamoDB writes one per partition); the manifests are written last, the
summary after the files manifest, so a folder with a summary holds a whole
export.  The folder is ``DIR/AWSDynamoDB/<ExportId>/``, the keys an export
to a bucket with no prefix would have.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from meridian.lab.load.client import DynamoClient
from meridian.model import limits
from meridian.model.values import item_size

from . import lines, manifest
from .writer import call_with_retries, message_of


class ExportFailed(Exception):
    pass


@dataclass(slots=True)
class ExportResult:
    export_dir: Path
    items: int
    files: int
    elapsed_s: float

    @property
    def rate_per_s(self) -> float:
        return self.items / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def _call(client: DynamoClient, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    reply = await call_with_retries(client, action, payload)
    if not reply.ok:
        raise ExportFailed(f"{action}: {message_of(reply)}")
    return reply.body or {}


class _SegmentWriter:
    """One Scan segment's data files."""

    def __init__(self, data_dir: Path, output_format: str) -> None:
        self._data_dir = data_dir
        self._suffix = lines.data_suffix(output_format)
        self._encode = lines.encoder(output_format)
        self._file: gzip.GzipFile | None = None
        self._path: Path | None = None
        self._count = 0
        self.done: list[tuple[Path, int]] = []  # (data file, items)
        self.billed_bytes = 0

    def _open(self) -> None:
        self._path = self._data_dir / (manifest.new_data_name() + self._suffix)
        self._file = gzip.GzipFile(self._path, mode="wb", compresslevel=6)
        self._count = 0

    def write(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            if self._file is None or self._count >= limits.EXPORT_ITEMS_PER_FILE_MAX:
                self.close()
                self._open()
            assert self._file is not None
            self._file.write(self._encode(item))
            self._count += 1
            self.billed_bytes += item_size(item)

    def close(self) -> None:
        if self._file is not None and self._path is not None:
            self._file.close()
            self.done.append((self._path, self._count))
            self._file = None

    def finish(self) -> None:
        if self._file is None and not self.done:
            self._open()  # an empty segment still has its (empty) file
        self.close()


async def _scan_segment(client: DynamoClient, table: str, segment: int, total: int, writer: _SegmentWriter,
                        on_items: Callable[[int], None]) -> None:  # fmt: skip
    payload: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "Segment": segment, "TotalSegments": total}
    while True:
        page = await _call(client, "Scan", payload)
        items = page.get("Items", [])
        writer.write(items)
        on_items(len(items))
        start = page.get("LastEvaluatedKey")
        if not start:
            break
        payload["ExclusiveStartKey"] = start
    writer.finish()


def _file_entry(key_prefix: str, path: Path, count: int) -> dict[str, Any]:
    """A files-manifest line; the etag is S3's for a one-part upload: the object's MD5 in hex."""
    data = path.read_bytes()
    return {
        "itemCount": count, "md5Checksum": manifest.md5_b64(data), "etag": hashlib.md5(data).hexdigest(),
        "dataFileS3Key": f"{key_prefix}/{manifest.DATA}/{path.name}",
    }  # fmt: skip


async def _wait_active(client: DynamoClient, table: str) -> None:
    deadline = time.monotonic() + limits.EXPORT_RESTORE_TIMEOUT_S
    while time.monotonic() < deadline:
        described = await _call(client, "DescribeTable", {"TableName": table})
        if described["Table"]["TableStatus"] == "ACTIVE":
            return
        await asyncio.sleep(limits.EXPORT_POLL_INTERVAL_S)
    raise ExportFailed(f"the restored table {table} was not ACTIVE after {limits.EXPORT_RESTORE_TIMEOUT_S:g} s")


async def export_table(client: DynamoClient, table: str, out_dir: Path, output_format: str, *,
                       at_s: float | None = None, on_total: Callable[[int], None] = lambda n: None,
                       on_items: Callable[[int], None] = lambda n: None,
                       report: Callable[[str], None] = print) -> ExportResult:  # fmt: skip
    """Export ``table`` (as it is now, or as it was at ``at_s``) into ``out_dir``."""
    started_s = time.time()
    source = (await _call(client, "DescribeTable", {"TableName": table}))["Table"]
    scanned = table
    if at_s is not None:
        scanned = f"{table[:200]}-meridian-export-{int(started_s)}"
        report(f"restoring {table} as it was at {manifest.iso_ms(at_s)} into the temporary table {scanned}")
        await _call(client, "RestoreTableToPointInTime", {
            "SourceTableName": table, "TargetTableName": scanned, "RestoreDateTime": at_s,
        })  # fmt: skip
    try:
        if at_s is not None:
            await _wait_active(client, scanned)
            on_total(int((await _call(client, "DescribeTable", {"TableName": scanned}))["Table"].get("ItemCount", 0)))
        else:
            on_total(int(source.get("ItemCount", 0)))
        return await _write_export(client, scanned, source, out_dir, output_format, started_s,
                                   at_s if at_s is not None else started_s, on_items)
    finally:
        if at_s is not None:
            reply = await call_with_retries(client, "DeleteTable", {"TableName": scanned})
            if reply.ok:
                report(f"deleted the temporary table {scanned}")
            else:
                report(f"could not delete the temporary table {scanned}: {message_of(reply)}")


async def _write_export(client: DynamoClient, scanned: str, source: dict[str, Any], out_dir: Path,
                        output_format: str, started_s: float, export_s: float,
                        on_items: Callable[[int], None]) -> ExportResult:  # fmt: skip
    export_id = manifest.new_export_id(started_s)
    key_prefix = f"AWSDynamoDB/{export_id}"
    export_dir = out_dir / key_prefix
    (export_dir / manifest.DATA).mkdir(parents=True)
    (export_dir / manifest.STARTED).write_bytes(b"")
    segments = limits.EXPORT_SCAN_SEGMENTS
    writers = [_SegmentWriter(export_dir / manifest.DATA, output_format) for _ in range(segments)]
    try:
        await asyncio.gather(*(
            _scan_segment(client, scanned, n, segments, writers[n], on_items) for n in range(segments)
        ))  # fmt: skip
    finally:
        for writer in writers:
            writer.close()
    files = [_file_entry(key_prefix, path, count) for writer in writers for path, count in writer.done]
    items = sum(entry["itemCount"] for entry in files)
    table_arn = source["TableArn"]
    summary = {
        "version": manifest.VERSION, "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": manifest.iso_ms(started_s), "endTime": manifest.iso_ms(time.time()),
        "tableArn": table_arn, "tableId": source.get("TableId"), "exportTime": manifest.iso_ms(export_s),
        "s3Bucket": None, "s3Prefix": None, "s3SseAlgorithm": None, "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{key_prefix}/{manifest.FILES}",
        "billedSizeBytes": sum(writer.billed_bytes for writer in writers), "itemCount": items,
        "outputFormat": output_format,
    }  # fmt: skip
    manifest.write_manifests(export_dir, summary, files)
    return ExportResult(export_dir, items, len(files), time.time() - started_s)
