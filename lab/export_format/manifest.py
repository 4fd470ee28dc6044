"""An export's manifests: finding them in a folder, reading them, writing them.

Layout (the developer guide's "DynamoDB table export output format", and
what AWS writes, as ScyllaDB's test_export.py measured it on AWS)::

    [PREFIX/]AWSDynamoDB/<ExportId>/
        _started                  empty: the bucket was writable
        manifest-summary.json     one JSON object (version 2020-06-30, ...)
        manifest-summary.md5      base64 MD5 of manifest-summary.json
        manifest-files.json       JSON lines: itemCount, md5Checksum, etag, dataFileS3Key
        manifest-files.md5        base64 MD5 of manifest-files.json
        data/<26 chars>.json.gz   (or .ion.gz) gzipped lines, one item each

``dataFileS3Key`` is the object's key in the bucket (prefix included), so a
local copy is found by its last two parts, ``data/<name>``.  ``ExportId``
is 14 digits of milliseconds, a dash and 8 hex digits.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SUMMARY = "manifest-summary.json"
FILES = "manifest-files.json"
STARTED = "_started"
DATA = "data"
VERSION = "2020-06-30"


class ExportFormatError(Exception):
    """The folder is not a DynamoDB export (or not all of one)."""


@dataclass(frozen=True, slots=True)
class DataFile:
    key: str  # dataFileS3Key, as the manifest names it
    path: Path  # the local copy
    item_count: int
    md5_b64: str | None


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def iso_ms(at_s: float) -> str:
    """``2020-11-04T07:28:34.028Z``, the manifests' time format."""
    moment = datetime.datetime.fromtimestamp(at_s, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def find_export(folder: Path) -> Path:
    """The folder holding ``manifest-summary.json``: ``folder`` itself, or the one
    export below it (``aws s3 cp --recursive`` of a prefix keeps ``AWSDynamoDB/<id>/``)."""
    if (folder / SUMMARY).is_file():
        return folder
    if not folder.is_dir():
        raise ExportFormatError(f"{folder}: no such folder")
    found = sorted(path.parent for path in folder.glob(f"**/{SUMMARY}"))
    if not found:
        raise ExportFormatError(f"{folder}: no {SUMMARY} here or below: not a DynamoDB export")
    if len(found) > 1:
        listed = ", ".join(str(path) for path in found)
        raise ExportFormatError(f"{folder} holds {len(found)} exports ({listed}): name one of them")
    return found[0]


def _checked(path: Path) -> bytes:
    """A manifest's bytes, compared with its ``.md5`` beside it when there is one."""
    data = path.read_bytes()
    digest = path.with_suffix(".md5")
    if digest.is_file() and digest.read_text().strip() != md5_b64(data):
        raise ExportFormatError(f"{path}: its MD5 differs from {digest.name}: the copy is damaged")
    return data


def read_summary(export_dir: Path) -> dict[str, Any]:
    try:
        summary = orjson.loads(_checked(export_dir / SUMMARY))
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError(f"{export_dir / SUMMARY}: not JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise ExportFormatError(f"{export_dir / SUMMARY}: not a JSON object")
    if summary.get("exportType", "FULL_EXPORT") != "FULL_EXPORT":
        raise ExportFormatError(f"{export_dir}: an {summary['exportType']}; only full exports can be imported")
    return summary


def read_files(export_dir: Path) -> list[DataFile]:
    """The data files the manifest lists, in its order; each must be here."""
    out = []
    text = _checked(export_dir / FILES)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
            key = str(entry["dataFileS3Key"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ExportFormatError(f"{export_dir / FILES}:{number}: not a data file entry") from None
        parts = key.rsplit("/", 2)
        path = export_dir / DATA / parts[-1]
        if len(parts) < 2 or parts[-2] != DATA or not path.is_file():
            raise ExportFormatError(f"{export_dir / FILES}:{number}: data file {key} is not in {export_dir / DATA}")
        out.append(DataFile(key, path, int(entry.get("itemCount", 0)), entry.get("md5Checksum")))
    return out


def new_export_id(now_s: float) -> str:
    return f"{int(now_s * 1000):014d}-{os.urandom(4).hex()}"


def new_data_name() -> str:
    """26 lowercase base32 characters, as DynamoDB names data files."""
    return base64.b32encode(os.urandom(20)).decode().lower()[:26]


def _write_with_md5(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.with_suffix(".md5").write_text(md5_b64(data) + "\n")


def write_manifests(export_dir: Path, summary: dict[str, Any], files: list[dict[str, Any]]) -> None:
    """``manifest-files.json`` (JSON lines) and ``manifest-summary.json``, each with its ``.md5``;
    the summary last, so a folder with one holds a whole export."""
    _write_with_md5(export_dir / FILES, b"".join(orjson.dumps(entry) + b"\n" for entry in files))
    _write_with_md5(export_dir / SUMMARY, orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
