"""``meridian import`` and ``meridian export``: DynamoDB's S3 export format on local disk.

    meridian import DIR --table T [--endpoint URL] [--on-error skip|fail]
        [--state-dir DIR] [--restart] [--create-key NAME:TYPE[,NAME:TYPE]]
    meridian export --table T DIR [--at TIME] [--format DYNAMODB_JSON|ION] [--endpoint URL]

Exit codes: 0 done (an import may have skipped bad lines: the summary and the
errors file say which), 1 stopped by an error (progress kept: run the same
command again to resume), 2 bad arguments or not an export, 130 interrupted
(progress kept).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import signal
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
DEFAULT_REGION = "us-east-1"
_KEY_TYPES = ("S", "N", "B")

IMPORT_HELP = """Load a DynamoDB table export (the folder `aws s3 cp --recursive` made of
s3://BUCKET/PREFIX/AWSDynamoDB/EXPORT_ID, or a folder holding one such export)
into an existing table: DynamoDB JSON or Amazon Ion (amazon.ion package), as the
export's manifest-summary.json says.  Items are written with BatchWriteItem
(UnprocessedItems retried with backoff) over keep-alive connections.  A bad line
is reported with its file and line number, then skipped (--on-error skip, the
default; every one also goes to the errors file) or fatal (--on-error fail).
Progress (which files and lines are done) is kept in a file beside the export
(or in --state-dir): after an interruption, the same command resumes where it
stopped; redoing a partly written batch is safe (a put of the same item twice
leaves one item)."""

EXPORT_HELP = """Write a table in DynamoDB's S3 export format (DIR/AWSDynamoDB/EXPORT_ID/:
manifest-summary.json, manifest-files.json, their .md5, _started, data/*.json.gz or
*.ion.gz), which `meridian import` (and DynamoDB's ImportTable) reads back.
Without --at: a parallel, strongly consistent Scan of the table as it is now
(not a snapshot: writes during the export may or may not be in it).  With --at:
the table as it was at that time: RestoreTableToPointInTime into a temporary
table (point-in-time recovery must be enabled on the table), export that, then
delete the temporary table."""


def _key_spec(text: str) -> dict[str, str]:
    out = {}
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        name, sep, key_type = entry.rpartition(":")
        if not sep or not name or key_type not in _KEY_TYPES:
            raise argparse.ArgumentTypeError(f"expected NAME:S|N|B, got {entry!r}")
        out[name] = key_type
    if not 1 <= len(out) <= 2:
        raise argparse.ArgumentTypeError("a key is a partition key and at most one sort key")
    return out


def _time_arg(text: str) -> float:
    """Seconds since the epoch, or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (epoch seconds or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def add_arguments(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="load a DynamoDB S3 export (JSON or Ion) into a table, resumably",
                       description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("dir", type=Path, metavar="DIR", help="the export's folder (or one holding a single export)")
    p.add_argument("--table", required=True, help="the table to load into")
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT, metavar="URL", help=f"(default {DEFAULT_ENDPOINT})")
    p.add_argument("--region", default=DEFAULT_REGION, help=f"signing region (default {DEFAULT_REGION})")
    p.add_argument("--on-error", choices=("skip", "fail"), default="skip",
                   help="a bad line is skipped and reported (default), or stops the import before it")
    p.add_argument("--state-dir", type=Path, metavar="DIR",
                   help="where the progress file goes (default: beside the export's manifests)")
    p.add_argument("--restart", action="store_true", help="forget earlier progress and start from the first line")
    p.add_argument("--create-key", type=_key_spec, metavar="NAME:TYPE[,NAME:TYPE]",
                   help="create the table (on-demand) with this key when it does not exist, e.g. pk:S,sk:N")
    e = sub.add_parser("export", help="write a table (now, or --at a past time) in DynamoDB's S3 export format",
                       description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    e.add_argument("dir", type=Path, metavar="DIR", help="where AWSDynamoDB/EXPORT_ID/ is written")
    e.add_argument("--table", required=True)
    e.add_argument("--at", type=_time_arg, metavar="TIME",
                   help="export the table as it was then (epoch seconds or ISO 8601): restores it to a temporary "
                   "table with RestoreTableToPointInTime, exports that, deletes it; needs PITR on the table")
    e.add_argument("--format", choices=("DYNAMODB_JSON", "ION"), default="DYNAMODB_JSON",
                   help="DYNAMODB_JSON (default) or ION (needs the amazon.ion package)")
    e.add_argument("--endpoint", default=DEFAULT_ENDPOINT, metavar="URL", help=f"(default {DEFAULT_ENDPOINT})")
    e.add_argument("--region", default=DEFAULT_REGION, help=f"signing region (default {DEFAULT_REGION})")


def run(ns: argparse.Namespace) -> int:
    import uvloop

    main = _import_main(ns) if ns.command == "import" else _export_main(ns)
    return uvloop.run(main)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False, soft_wrap=not sys.stdout.isatty())


class _Bar:
    """A rich progress bar with items/s and ETA (plain lines when not on a terminal)."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        )  # fmt: skip
        self._task = self._progress.add_task(label, total=None, rate="")
        self._started = time.monotonic()

    def __enter__(self) -> "_Bar":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def total(self, n: int) -> None:
        self._progress.update(self._task, total=n or None)

    def update(self, done: int, rate_from: int = 0) -> None:
        span = time.monotonic() - self._started
        rate = (done - rate_from) / span if span > 0 else 0.0
        self._progress.update(self._task, completed=done, rate=f"{rate:,.0f} items/s")


async def _import_main(ns: argparse.Namespace) -> int:
    from meridian.lab.load.client import DynamoClient

    from . import lines, manifest
    from .importer import FAIL, ImportFailed, Importer, describe_stop, key_schema_of
    from .progress import Progress
    from .writer import BatchWriter, ImportStopped, call_with_retries, message_of

    console = _console()
    try:
        export_dir = manifest.find_export(ns.dir)
        summary = manifest.read_summary(export_dir)
        files = manifest.read_files(export_dir)
    except (manifest.ExportFormatError, OSError) as exc:
        console.print(f"[red]meridian import: {exc}[/red]")
        return 2
    output_format = summary.get("outputFormat", lines.DYNAMODB_JSON)
    if output_format not in lines.FORMATS:
        console.print(f"[red]meridian import: outputFormat {output_format!r} is neither of {', '.join(lines.FORMATS)}[/red]")
        return 2
    if output_format == lines.ION:
        try:
            import amazon.ion  # noqa: F401 - checked before anything is written
        except ImportError:
            console.print(f"[red]meridian import: {lines.ION_MISSING}[/red]")
            return 2
    export_name = str(summary.get("exportArn") or export_dir.resolve())
    state_dir = ns.state_dir or export_dir
    progress_path = state_dir / f".meridian-import-{ns.table}.json"
    if ns.restart and progress_path.exists():
        Progress(progress_path, export_name, ns.table).remove()
    try:
        progress = Progress.load(progress_path, export_name, ns.table)
    except ValueError as exc:
        console.print(f"[red]meridian import: {exc}[/red]")
        return 2
    client = DynamoClient(ns.endpoint, ns.region)
    try:
        described = await call_with_retries(client, "DescribeTable", {"TableName": ns.table})
        if not described.ok and described.error == "ResourceNotFoundException" and ns.create_key:
            described = await _create_table(client, ns.table, ns.create_key)
        if not described.ok:
            hint = " (create it first, or pass --create-key NAME:TYPE)" if described.error == "ResourceNotFoundException" else ""
            console.print(f"[red]meridian import: table {ns.table}: {message_of(described)}{hint}[/red]")
            return 2
        key_schema = key_schema_of((described.body or {})["Table"])
        importer = Importer(BatchWriter(client, ns.table), export_dir, files, output_format, key_schema, progress,
                            on_error=ns.on_error, report=lambda text: console.print(text, markup=False))
        before, _ = importer.settled()
        console.print(f"importing {export_dir} ({output_format}, {len(files)} data files, "
                      f"{importer.items_expected:,} items) into {ns.table} at {ns.endpoint}"
                      + (f"; resuming: {before:,} items already imported" if progress.files else ""))
        return await _run_import(console, importer, progress, FAIL, (ImportFailed, ImportStopped), describe_stop)
    finally:
        await client.close()


async def _create_table(client: Any, table: str, key: dict[str, str]) -> Any:
    from .writer import call_with_retries

    names = list(key)
    payload = {
        "TableName": table, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": key[n]} for n in names],
        "KeySchema": [{"AttributeName": n, "KeyType": t} for n, t in zip(names, ("HASH", "RANGE"))],
    }  # fmt: skip
    created = await call_with_retries(client, "CreateTable", payload)
    if not created.ok:
        return created
    while True:
        described = await call_with_retries(client, "DescribeTable", {"TableName": table})
        if not described.ok or described.body["Table"]["TableStatus"] == "ACTIVE":
            return described
        await asyncio.sleep(0.1)


async def _run_import(console: Any, importer: Any, progress: Any, fail: str, stops: tuple, describe: Any) -> int:
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        console.print("interrupted: finishing the batches in flight and saving progress")
        importer.stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    started = time.monotonic()
    base, _ = importer.settled()
    stopped = None
    with _Bar(console, "import") as bar:
        bar.total(importer.items_expected)
        task = loop.create_task(importer.run())
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            bar.update(importer.settled()[0], rate_from=base)
        try:
            task.result()
        except stops as exc:
            stopped = describe(exc)
    loop.remove_signal_handler(signal.SIGINT)
    elapsed = time.monotonic() - started
    imported, skipped, complete = progress.totals()
    now = imported - base
    console.print(
        f"imported {imported:,} items ({now:,} in this run, {now / elapsed if elapsed else 0:,.0f} items/s), "
        f"skipped {skipped:,} bad lines, files {complete}/{importer.files_total}"
    )
    for warning in importer.warnings:
        console.print(f"[yellow]warning: {warning}[/yellow]", markup=True)
    if skipped:
        console.print(f"bad lines (file, line, error): {progress.errors_path}")
    if stopped is not None:
        console.print(f"[red]stopped: {stopped}[/red]")
        console.print(f"progress kept in {progress.path}: run the same command again to resume")
        return 1
    if interrupted:
        console.print(f"progress kept in {progress.path}: run the same command again to resume")
        return 130
    console.print(f"[green]done[/green]: every data file imported; progress file {progress.path}")
    return 0


async def _export_main(ns: argparse.Namespace) -> int:
    from meridian.lab.load.client import DynamoClient

    from . import lines
    from .exporter import ExportFailed, export_table

    console = _console()
    if ns.format == lines.ION:
        try:
            import amazon.ion  # noqa: F401
        except ImportError:
            console.print(f"[red]meridian export: {lines.ION_MISSING}[/red]")
            return 2
    client = DynamoClient(ns.endpoint, ns.region)
    done = 0
    try:
        with _Bar(console, "export") as bar:
            def on_items(n: int) -> None:
                nonlocal done
                done += n
                bar.update(done)

            result = await export_table(client, ns.table, ns.dir, ns.format, at_s=ns.at, on_total=bar.total,
                                        on_items=on_items, report=lambda text: console.print(text, markup=False))
    except ExportFailed as exc:
        console.print(f"[red]meridian export: {exc}[/red]")
        return 1
    finally:
        await client.close()
    console.print(f"exported {result.items:,} items into {result.files} data files in {result.elapsed_s:.1f} s "
                  f"({result.rate_per_s:,.0f} items/s): {result.export_dir}")
    return 0
