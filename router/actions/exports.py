"""Export to and import from S3: ExportTableToPointInTime, DescribeExport,
ListExports, ImportTable, DescribeImport, ListImports.

Meridian has no S3, so every bucket is one DynamoDB cannot reach, and these
actions answer exactly as DynamoDB answers for a bucket that does not exist:
the request is checked and accepted (IN_PROGRESS, with its ARN), and the job
then fails.  DescribeExport / ListExports show the export FAILED with
``FailureCode`` ``S3NoSuchBucket`` (measured on AWS: ScyllaDB's
test_export.py, test_export_nonexistent_bucket); DescribeImport shows the
import FAILED the same way, with no table created ("Since the error was
caught before the data was imported into the table, a new DynamoDB table is
not created": the developer guide's Import format quotas and validation,
"The specified bucket does not exist", whose example answer is the model
here).  To move real data in DynamoDB's export format use ``meridian export``
and ``meridian import`` (``lab/export_format/``), which read and write the
same files on local disk.

Checks, in DynamoDB's order where it is known: the request's shape (the
schema, ``router/validation.py``), then for an export the table (by ARN),
PITR enabled, the export time inside the restorable window, the ClientToken;
for an import CreateTable's own rules on TableCreationParameters, the table
name free, the ClientToken.  Messages marked "guess" were not captured live.

Each router remembers the jobs it accepted (``EXPORT_RECORDS_MAX``, for
``EXPORT_RECORD_RETENTION_S``), in memory: another router of a cluster does
not know them, and a restart forgets them (docs/compatibility.md).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import os
import time
import uuid
import weakref
from collections import OrderedDict
from typing import Any

from meridian.model import limits
from meridian.model.errors import (
    AccessDeniedException,
    ExportConflictException,
    ExportNotFoundException,
    ImportConflictException,
    ImportNotFoundException,
    InvalidExportTimeException,
    PointInTimeRecoveryUnavailableException,
    ResourceInUseException,
    TableNotFoundException,
    ValidationException,
)

from ..backup_cut import oldest_checkpoint_s
from ..context import RouterContext
from ..table_record import ACCOUNT_ID, Table
from ..validation_rules import RULES


_NO_SUCH_BUCKET = "S3NoSuchBucket"
_DUPLICATE = "Duplicate request detected with conflicting parameters"  # ImportTable's, measured; ExportTable's: a guess
_LOG_GROUP = "arn:aws:logs:{region}:{account}:log-group:/aws-dynamodb/imports:*"


@dataclasses.dataclass(slots=True)
class Job:
    """One export or import this router accepted."""

    arn: str
    kind: str  # "export" or "import"
    table_name: str
    table_uuid: str
    client_token: str
    fingerprint: tuple  # what a replay with the same ClientToken must repeat
    started_s: float
    accepted: dict[str, Any]  # the description the request was answered with (IN_PROGRESS)
    failed: dict[str, Any]  # the description from then on (FAILED)


class Jobs:
    """A router's exports and imports, newest last, bounded and expiring."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def _expire(self, now_s: float) -> None:
        while self._jobs:
            oldest = next(iter(self._jobs.values()))
            if len(self._jobs) <= limits.EXPORT_RECORDS_MAX and oldest.started_s > now_s - limits.EXPORT_RECORD_RETENTION_S:
                break
            self._jobs.popitem(last=False)

    def add(self, job: Job) -> None:
        self._jobs[job.arn] = job
        self._expire(job.started_s)

    def get(self, arn: str) -> Job | None:
        self._expire(time.time())
        return self._jobs.get(arn)

    def by_token(self, kind: str, token: str, now_s: float) -> Job | None:
        for job in reversed(self._jobs.values()):
            if job.kind == kind and job.client_token == token and job.started_s > now_s - limits.EXPORT_CLIENT_TOKEN_WINDOW_S:
                return job
        return None

    def newest_first(self, kind: str) -> list[Job]:
        self._expire(time.time())
        return [job for job in reversed(self._jobs.values()) if job.kind == kind]


_JOBS: weakref.WeakKeyDictionary[Any, Jobs] = weakref.WeakKeyDictionary()


def jobs_of(ctx: RouterContext) -> Jobs:
    """This router's jobs (kept with its catalog, so they go when the router goes)."""
    jobs = _JOBS.get(ctx.catalog)
    if jobs is None:
        jobs = _JOBS[ctx.catalog] = Jobs()
    return jobs


def _job_id(now_s: float) -> str:
    """``01658528578619-c4d4e311``: milliseconds, then 8 hex digits, as DynamoDB's export and import ids."""
    return f"{int(now_s * 1000):014d}-{os.urandom(4).hex()}"


def _no_such_bucket() -> str:
    """S3's answer as DynamoDB quotes it (the developer guide's example, with fresh request ids)."""
    request_id = base64.b32encode(os.urandom(10)).decode()[:16]
    extended = base64.b64encode(os.urandom(57)).decode()
    return (
        "The specified bucket does not exist (Service: Amazon S3; Status Code: 404; Error Code: NoSuchBucket; "
        f"Request ID: {request_id}; S3 Extended Request ID: {extended}; Proxy: null)"
    )


def _table_name_of(arn: str, ctx: RouterContext) -> str:
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
        raise ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    name = parts[5][len("table/"):]
    if not name or "/" in name or parts[3] != ctx.region or parts[4] != ACCOUNT_ID:
        raise TableNotFoundException(f"Table not found: {name}")
    return name


async def _table(ctx: RouterContext, arn: str) -> Table:
    name = _table_name_of(arn, ctx)
    table = await ctx.catalog.fresh(name)
    if table is None or table.restoring:
        raise TableNotFoundException(f"Table not found: {name}")
    return table


def _iso_s(at_s: float) -> str:
    return datetime.datetime.fromtimestamp(at_s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _check_export_time(ctx: RouterContext, table: Table, body: dict[str, Any], now_s: float) -> float:
    """The time exported: ExportTime (default now) inside the PITR window; an
    incremental export's period at least 15 minutes long, inside it too."""
    assert table.pitr_enabled_s is not None and table.pitr_recovery_days is not None
    period_s = datetime.timedelta(days=table.pitr_recovery_days).total_seconds()
    earliest = min(max(table.pitr_enabled_s, await oldest_checkpoint_s(ctx.storage), now_s - period_s), now_s)
    if body.get("ExportType") == "INCREMENTAL_EXPORT":
        spec = body.get("IncrementalExportSpecification") or {}
        start, end = spec.get("ExportFromTime"), spec.get("ExportToTime", now_s)
        if start is None:  # message: a guess
            raise ValidationException("IncrementalExportSpecification.ExportFromTime must be specified for INCREMENTAL_EXPORT")
        if end - start < limits.INCREMENTAL_EXPORT_PERIOD_MIN_S:  # the message's start measured, its end a guess
            raise InvalidExportTimeException(
                "Difference between export period start time and end time should be at least 15 minutes"
            )
        times = (float(start), float(end))
    else:
        times = (float(body.get("ExportTime", now_s)),)
    for at_s in times:
        if not earliest <= at_s <= now_s:  # message: a guess, shaped as InvalidRestoreTimeException's
            raise InvalidExportTimeException(
                f"ExportTime '{_iso_s(at_s)}' must be within EarliestRestorableDateTime '{_iso_s(earliest)}' "
                f"and LatestRestorableDateTime '{_iso_s(now_s)}'"
            )
    return times[-1]


_EXPORT_ECHOED = ("S3Bucket", "S3BucketOwner", "S3Prefix", "S3SseAlgorithm", "S3SseKmsKeyId")


async def export_table_to_point_in_time(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    table = await _table(ctx, body["TableArn"])
    if table.pitr_enabled_s is None:
        raise PointInTimeRecoveryUnavailableException(f"Point in time recovery is not enabled for table '{table.name}'")
    now_s = time.time()
    export_s = await _check_export_time(ctx, table, body, now_s)
    jobs = jobs_of(ctx)
    token = body.get("ClientToken") or str(uuid.uuid4())
    fingerprint = (table.arn, *(body.get(name) for name in (*_EXPORT_ECHOED, "ExportFormat", "ExportType")),
                   repr(body.get("IncrementalExportSpecification")))
    replayed = jobs.by_token("export", token, now_s)
    if replayed is not None:
        if replayed.fingerprint != fingerprint:
            raise ExportConflictException(_DUPLICATE)
        return {"ExportDescription": replayed.accepted}
    accepted: dict[str, Any] = {
        "ExportArn": f"{table.arn}/export/{_job_id(now_s)}", "ExportStatus": "IN_PROGRESS", "StartTime": now_s,
        "TableArn": table.arn, "TableId": table.uuid, "ExportTime": export_s, "ClientToken": token,
        **{name: body[name] for name in _EXPORT_ECHOED if name in body},
        "ExportFormat": body.get("ExportFormat", "DYNAMODB_JSON"),
    }  # fmt: skip
    if "ExportType" in body:  # AWS leaves it out unless asked for (ScyllaDB's test_export_basic)
        accepted["ExportType"] = body["ExportType"]
    if "IncrementalExportSpecification" in body:
        accepted["IncrementalExportSpecification"] = body["IncrementalExportSpecification"]
    failed = {**accepted, "ExportStatus": "FAILED", "EndTime": now_s, "FailureCode": _NO_SUCH_BUCKET,
              "FailureMessage": _no_such_bucket()}
    jobs.add(Job(accepted["ExportArn"], "export", table.name, table.uuid, token, fingerprint, now_s, accepted, failed))
    return {"ExportDescription": accepted}


def _check_job_arn(arn: str, ctx: RouterContext, kind: str) -> None:
    """``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/KIND/ID``; measured: a table's
    ARN is "Invalid Export ARN", another partition, service, region or account
    AccessDeniedException (its message, and the import ARN's, a guess)."""
    label = f"Invalid {kind.capitalize()} ARN"
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise ValidationException(label)
    if parts[1] != "aws" or parts[2] != "dynamodb" or parts[3] != ctx.region or parts[4] != ACCOUNT_ID:
        action = "DescribeExport" if kind == "export" else "DescribeImport"
        raise AccessDeniedException(f"User is not authorized to perform: dynamodb:{action} on resource: {arn}")
    resource = parts[5].split("/")
    if len(resource) != 4 or resource[0] != "table" or resource[2] != kind or not 3 <= len(resource[1]) <= 255:
        raise ValidationException(label)


async def describe_export(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = body["ExportArn"]
    _check_job_arn(arn, ctx, "export")
    job = jobs_of(ctx).get(arn)
    if job is None or job.kind != "export":
        raise ExportNotFoundException(f"Export not found: {arn}")  # message: a guess
    return {"ExportDescription": job.failed}


# --- pagination: an opaque token naming the last job of the page -------------------------
def _next_token(arn: str) -> str:
    """The ARN's length and UTF-8 in hex, padded to ListImports' NextToken
    pattern: ``([0-9a-f]{16})+``, at least 112 characters (botocore's model)."""
    text = f"{len(arn):04x}{arn.encode().hex()}"
    quantum, chars_min = 16, 112
    return text.ljust(max(chars_min, -(-len(text) // quantum) * quantum), "0")


def _after_token(token: str | None, action: str) -> str | None:
    if token is None:
        return None
    try:
        size = int(token[:4], 16)
        return bytes.fromhex(token[4 : 4 + 2 * size]).decode()
    except ValueError:
        raise ValidationException(f"Invalid NextToken for {action}") from None  # message: a guess


def _page(jobs: list[Job], after: str | None, size: int) -> tuple[list[Job], str | None]:
    if after is not None:
        arns = [job.arn for job in jobs]
        if after not in arns:
            raise ValidationException("Invalid NextToken")  # message: a guess
        jobs = jobs[arns.index(after) + 1 :]
    page = jobs[:size]
    return page, (_next_token(page[-1].arn) if len(jobs) > size else None)


async def list_exports(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    """Newest first; an export of a deleted table is no longer listed (measured:
    ScyllaDB's test_export_start_and_delete_table), DescribeExport still answers."""
    after = _after_token(body.get("NextToken"), "ListExports")
    wanted = body.get("TableArn")
    jobs = []
    for job in jobs_of(ctx).newest_first("export"):
        table = await ctx.catalog.get(job.table_name)
        if table is None or table.uuid != job.table_uuid or (wanted is not None and job.failed["TableArn"] != wanted):
            continue
        jobs.append(job)
    page, token = _page(jobs, after, body.get("MaxResults", limits.LIST_EXPORTS_PAGE_MAX))
    out: dict[str, Any] = {"ExportSummaries": [
        {"ExportArn": job.arn, "ExportStatus": job.failed["ExportStatus"],
         "ExportType": job.failed.get("ExportType", "FULL_EXPORT")} for job in page
    ]}  # fmt: skip
    if token is not None:
        out["NextToken"] = token
    return out


# --- imports --------------------------------------------------------------------------
async def import_table(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    params = body["TableCreationParameters"]
    RULES["CreateTable"](dict(params))  # CreateTable's request-only rules: key schema, billing, indexes
    if body.get("InputFormatOptions", {}).get("Csv") is not None and body["InputFormat"] != "CSV":
        raise ValidationException("InputFormatOptions.Csv is only supported for CSV input format")  # message: a guess
    name = params["TableName"]
    if await ctx.catalog.fresh(name) is not None:  # before the ClientToken (measured)
        raise ResourceInUseException(f"Table already exists: {name}")
    now_s = time.time()
    jobs = jobs_of(ctx)
    token = body.get("ClientToken") or str(uuid.uuid4())
    replayed = jobs.by_token("import", token, now_s)
    if replayed is not None:  # only another table conflicts; any other change returns the first import (measured)
        if replayed.table_name != name:
            raise ImportConflictException(_DUPLICATE)
        return {"ImportTableDescription": replayed.accepted}
    table_arn = f"arn:aws:dynamodb:{ctx.region}:{ACCOUNT_ID}:table/{name}"
    source = {"S3BucketOwner": ACCOUNT_ID, **body["S3BucketSource"]}
    accepted: dict[str, Any] = {
        "ImportArn": f"{table_arn}/import/{_job_id(now_s)}", "ImportStatus": "IN_PROGRESS", "TableArn": table_arn,
        "TableId": str(uuid.uuid4()), "ClientToken": token, "S3BucketSource": source,
        "CloudWatchLogGroupArn": _LOG_GROUP.format(region=ctx.region, account=ACCOUNT_ID),
        "InputFormat": body["InputFormat"], "InputCompressionType": body.get("InputCompressionType", "NONE"),
        "TableCreationParameters": params, "StartTime": now_s,
        "ProcessedItemCount": 0, "ImportedItemCount": 0, "ErrorCount": 0,
    }  # fmt: skip
    if "InputFormatOptions" in body:
        accepted["InputFormatOptions"] = body["InputFormatOptions"]
    failed = {**accepted, "ImportStatus": "FAILED", "EndTime": now_s, "ProcessedSizeBytes": 0,
              "FailureCode": _NO_SUCH_BUCKET, "FailureMessage": _no_such_bucket()}
    jobs.add(Job(accepted["ImportArn"], "import", name, accepted["TableId"], token, (name,), now_s, accepted, failed))
    return {"ImportTableDescription": accepted}


async def describe_import(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    arn = body["ImportArn"]
    _check_job_arn(arn, ctx, "import")
    job = jobs_of(ctx).get(arn)
    if job is None or job.kind != "import":
        raise ImportNotFoundException(f"Import not found: {arn}")  # message: a guess
    return {"ImportTableDescription": job.failed}


_SUMMARY = ("ImportArn", "ImportStatus", "TableArn", "S3BucketSource", "CloudWatchLogGroupArn", "InputFormat",
            "StartTime", "EndTime")


async def list_imports(ctx: RouterContext, body: dict[str, Any]) -> dict[str, Any]:
    after = _after_token(body.get("NextToken"), "ListImports")
    wanted = body.get("TableArn")
    jobs = [job for job in jobs_of(ctx).newest_first("import") if wanted is None or job.failed["TableArn"] == wanted]
    page, token = _page(jobs, after, body.get("PageSize", limits.LIST_EXPORTS_PAGE_MAX))
    out: dict[str, Any] = {"ImportSummaryList": [{name: job.failed[name] for name in _SUMMARY} for job in page]}
    if token is not None:
        out["NextToken"] = token
    return out


ACTIONS = {
    "ExportTableToPointInTime": export_table_to_point_in_time,
    "DescribeExport": describe_export,
    "ListExports": list_exports,
    "ImportTable": import_table,
    "DescribeImport": describe_import,
    "ListImports": list_imports,
}
