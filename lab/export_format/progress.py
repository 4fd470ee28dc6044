"""The progress file: what an interrupted ``meridian import`` has already done.

One small JSON file, rewritten whole (a temporary file renamed over it, so a
crash leaves the old or the new one, never half of one): which export into
which table, and per data file how many of its lines are settled (written
and acknowledged, or reported as bad and skipped) and whether the file is
finished.  A resumed import skips a file's settled lines and redoes the rest:
a put of the same item twice leaves the same item, so redoing a batch whose
answer was lost is safe.  Bad lines are appended to ``<progress>.errors.jsonl``
beside it, one JSON object each (file, line, error).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass(slots=True)
class FileProgress:
    lines_done: int = 0  # lines 1..lines_done are settled
    complete: bool = False
    imported: int = 0  # items acknowledged from this file
    skipped: int = 0  # bad lines skipped in this file


@dataclass(slots=True)
class Progress:
    path: Path
    export: str  # the export's ARN (or folder) and the table: a progress file belongs to one pair
    table: str
    files: dict[str, FileProgress] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, export: str, table: str) -> "Progress":
        """The saved progress of this export into this table, or a fresh one.
        A file left by another export or table is an error (``--restart`` removes it)."""
        if not path.is_file():
            return cls(path, export, table)
        saved = orjson.loads(path.read_bytes())
        if (saved.get("export"), saved.get("table")) != (export, table):
            raise ValueError(
                f"{path} records an import of {saved.get('export')} into {saved.get('table')}, not this one: "
                "pass --restart to start over, or --state-dir elsewhere"
            )
        files = {key: FileProgress(**entry) for key, entry in saved.get("files", {}).items()}
        return cls(path, export, table, files)

    def of(self, key: str) -> FileProgress:
        entry = self.files.get(key)
        if entry is None:
            entry = self.files[key] = FileProgress()
        return entry

    def save(self) -> None:
        record: dict[str, Any] = {
            "export": self.export, "table": self.table,
            "files": {key: {"lines_done": f.lines_done, "complete": f.complete, "imported": f.imported,
                            "skipped": f.skipped} for key, f in self.files.items()},
        }  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.path)

    @property
    def errors_path(self) -> Path:
        return self.path.with_name(self.path.name.removesuffix(".json") + ".errors.jsonl")

    def record_bad_line(self, file_key: str, line: int, error: str) -> None:
        with self.errors_path.open("ab") as out:
            out.write(orjson.dumps({"file": file_key, "line": line, "error": error}) + b"\n")

    def remove(self) -> None:
        for path in (self.path, self.errors_path):
            path.unlink(missing_ok=True)

    def totals(self) -> tuple[int, int, int]:
        """(items imported, bad lines skipped, files complete) so far."""
        return (sum(f.imported for f in self.files.values()), sum(f.skipped for f in self.files.values()),
                sum(f.complete for f in self.files.values()))
