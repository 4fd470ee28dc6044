"""``meridian export`` and ``meridian import`` as users run them, against a real ``meridian serve``.

An export round-trips (JSON and Ion, items compared value for value); an
export ``--at`` a past second holds exactly that second's items (and leaves
no temporary table); an import stopped by a bad line resumes where it
stopped and, with ``--on-error skip``, names every bad line.
"""

from __future__ import annotations

import decimal
import gzip
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess, free_port, wait_for_http_ok
from meridian.lab.export_format import manifest
from tests.conftest import make_client, unique_table_name

#: one import or export run of a few hundred items
RUN_TIMEOUT_S = 120.0
ITEMS = 300


def _meridian(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MERIDIAN_COMMAND, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("import-export")
    port = free_port()
    server = ManagedProcess(["serve", "--port", str(port), "--in-memory"], log_path=tmp / "serve.log", name="serve")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http_ok(url + "/health", STARTUP_TIMEOUT_S, process=server)
        yield url
    finally:
        server.terminate()


def _table(client, name: str) -> None:
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
    )  # fmt: skip


def _item(n: int) -> dict:
    return {
        "pk": {"S": f"user#{n % 37}"}, "sk": {"N": str(n)}, "name": {"S": f"n\u00e9e \"{n}\"\n"},
        "price": {"N": "12.50"}, "blob": {"B": "AAH+/w=="}, "ok": {"BOOL": n % 2 == 0}, "none": {"NULL": True},
        "tags": {"SS": ["a", f"t{n}"]}, "scores": {"NS": ["1", "-2.5", "1E+3"]}, "bins": {"BS": ["AA==", "AQ=="]},
        "doc": {"M": {"list": {"L": [{"N": "1"}, {"S": "x"}, {"M": {}}]}, "empty": {"L": []}}},
    }  # fmt: skip


def _normal(value):
    """An attribute value with numbers compared as numbers and sets as sets."""
    (kind, inner), = value.items()
    if kind == "N":
        return ("N", decimal.Decimal(inner))
    if kind in ("SS", "BS"):
        return (kind, frozenset(inner))
    if kind == "NS":
        return (kind, frozenset(decimal.Decimal(n) for n in inner))
    if kind == "L":
        return ("L", tuple(_normal(v) for v in inner))
    if kind == "M":
        return ("M", frozenset((k, _normal(v)) for k, v in inner.items()))
    return (kind, inner)


def _scan(client, table: str) -> set:
    items, kwargs = [], {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {frozenset((k, _normal(_wire(v))) for k, v in item.items()) for item in items}


def _wire(value):
    """boto3's decoded binaries back to base64, as the export format holds them."""
    import base64

    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "L":
        return {"L": [_wire(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _wire(v) for k, v in inner.items()}}
    return value


def _fill(client, table: str, numbers) -> None:
    import base64

    for n in numbers:
        item = _item(n)
        item["blob"] = {"B": base64.b64decode(item["blob"]["B"])}
        item["bins"] = {"BS": [base64.b64decode(b) for b in item["bins"]["BS"]]}
        client.put_item(TableName=table, Item=item)


@pytest.mark.parametrize("output_format", ["DYNAMODB_JSON", "ION"])
def test_an_export_round_trips_through_import(endpoint, tmp_path, output_format):
    client = make_client(endpoint)
    source, target = unique_table_name("src"), unique_table_name("dst")
    _table(client, source)
    _fill(client, source, range(ITEMS))
    done = _meridian("export", "--table", source, str(tmp_path), "--endpoint", endpoint, "--format", output_format)
    assert done.returncode == 0, done.stdout + done.stderr
    export_dir = manifest.find_export(tmp_path)
    summary = manifest.read_summary(export_dir)
    assert summary["itemCount"] == ITEMS and summary["outputFormat"] == output_format
    assert summary["tableArn"].endswith(f":table/{source}") and (export_dir / "_started").is_file()
    files = manifest.read_files(export_dir)
    assert sum(f.item_count for f in files) == ITEMS
    suffix = ".ion.gz" if output_format == "ION" else ".json.gz"
    assert all(f.path.name.endswith(suffix) and f.md5_b64 == manifest.md5_b64(f.path.read_bytes()) for f in files)
    done = _meridian("import", str(tmp_path), "--table", target, "--endpoint", endpoint, "--create-key", "pk:S,sk:N")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"imported {ITEMS:,} items" in done.stdout and "skipped 0 bad lines" in done.stdout
    assert _scan(client, target) == _scan(client, source)


def test_export_at_a_past_second_holds_that_seconds_items(endpoint, tmp_path):
    client = make_client(endpoint)
    source, target = unique_table_name("pitr"), unique_table_name("pitr-dst")
    _table(client, source)
    client.update_continuous_backups(TableName=source, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    _fill(client, source, range(50))
    time.sleep(1.1)
    at_s = time.time()
    time.sleep(1.1)
    _fill(client, source, range(50, 80))
    client.delete_item(TableName=source, Key={"pk": {"S": "user#0"}, "sk": {"N": "0"}})
    before = set(client.list_tables()["TableNames"])
    done = _meridian("export", "--table", source, str(tmp_path), "--endpoint", endpoint, "--at", str(at_s))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "deleted the temporary table" in done.stdout
    assert set(client.list_tables()["TableNames"]) == before
    summary = manifest.read_summary(manifest.find_export(tmp_path))
    assert summary["itemCount"] == 50
    done = _meridian("import", str(tmp_path), "--table", target, "--endpoint", endpoint, "--create-key", "pk:S,sk:N")
    assert done.returncode == 0, done.stdout + done.stderr
    keys = {int(item["sk"]["N"]) for item in client.scan(TableName=target, ConsistentRead=True)["Items"]}
    assert keys == set(range(50))


def _hand_made_export(folder: Path, lines: list[bytes]) -> Path:
    """An export in the documented layout, written by hand (one data file)."""
    export_dir = folder / "AWSDynamoDB" / "01234567890123-a1b2c3d4"
    (export_dir / "data").mkdir(parents=True)
    data = gzip.compress(b"".join(lines))
    name = "bafybeiczss3yxay3o4abnabbb.json.gz"
    (export_dir / "data" / name).write_bytes(data)
    key = f"AWSDynamoDB/01234567890123-a1b2c3d4/data/{name}"
    entry = {"itemCount": len(lines), "md5Checksum": manifest.md5_b64(data), "etag": "x", "dataFileS3Key": key}
    summary = {"version": "2020-06-30", "exportArn": "arn:aws:dynamodb:us-east-1:123456789012:table/T/export/01234567890123-a1b2c3d4",
               "itemCount": len(lines), "outputFormat": "DYNAMODB_JSON"}  # fmt: skip
    manifest.write_manifests(export_dir, summary, [entry])
    return export_dir


def test_a_bad_line_stops_the_import_and_a_rerun_resumes_after_it_is_fixed(endpoint, tmp_path):
    client = make_client(endpoint)
    target = unique_table_name("resume")
    good = [orjson.dumps({"Item": _item(n)}) + b"\n" for n in range(60)]
    bad = b'{"Item": {"pk": {"S": "x"}}}\n'  # no sort key
    export_dir = _hand_made_export(tmp_path, [*good[:40], bad, *good[40:]])
    args = ("import", str(tmp_path), "--table", target, "--endpoint", endpoint, "--create-key", "pk:S,sk:N")
    done = _meridian(*args, "--on-error", "fail")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "data/bafybeiczss3yxay3o4abnabbb.json.gz:41" in done.stdout and "Missing the key sk" in done.stdout
    assert len(client.scan(TableName=target)["Items"]) == 40
    progress = orjson.loads((export_dir / f".meridian-import-{target}.json").read_bytes())
    assert [f["lines_done"] for f in progress["files"].values()] == [40]
    done = _meridian(*args, "--on-error", "skip")  # the same bad line, now skipped
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming: 40 items already imported" in done.stdout
    assert "imported 60 items (20 in this run" in done.stdout and "skipped 1 bad lines" in done.stdout
    errors = [orjson.loads(line) for line in (export_dir / f".meridian-import-{target}.errors.jsonl").read_bytes().splitlines()]
    assert errors[-1]["line"] == 41 and "Missing the key sk" in errors[-1]["error"]
    assert len(client.scan(TableName=target)["Items"]) == 60


# --- the S3 actions: accepted, then FAILED as for a bucket that does not exist -------------------
def test_export_to_s3_is_accepted_then_fails_with_no_such_bucket(endpoint):
    from botocore.exceptions import ClientError

    client = make_client(endpoint)
    table = unique_table_name("s3-export")
    _table(client, table)
    arn = client.describe_table(TableName=table)["Table"]["TableArn"]
    with pytest.raises(ClientError, match="PointInTimeRecoveryUnavailableException"):
        client.export_table_to_point_in_time(TableArn=arn, S3Bucket="my-bucket")
    client.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    started = client.export_table_to_point_in_time(TableArn=arn, S3Bucket="my-bucket", ClientToken="t-1")["ExportDescription"]
    assert started["ExportStatus"] == "IN_PROGRESS" and started["ClientToken"] == "t-1" and "ExportType" not in started
    assert started["ExportArn"].startswith(arn + "/export/") and started["ExportFormat"] == "DYNAMODB_JSON"
    again = client.export_table_to_point_in_time(TableArn=arn, S3Bucket="my-bucket", ClientToken="t-1")["ExportDescription"]
    assert again["ExportArn"] == started["ExportArn"]
    with pytest.raises(ClientError, match="ExportConflictException.*Duplicate request detected"):
        client.export_table_to_point_in_time(TableArn=arn, S3Bucket="my-bucket", ClientToken="t-1", ExportFormat="ION")
    described = client.describe_export(ExportArn=started["ExportArn"])["ExportDescription"]
    assert described["ExportStatus"] == "FAILED" and described["FailureCode"] == "S3NoSuchBucket"
    assert "bucket does not exist" in described["FailureMessage"]
    listed = client.list_exports(TableArn=arn)["ExportSummaries"]
    assert listed == [{"ExportArn": started["ExportArn"], "ExportStatus": "FAILED", "ExportType": "FULL_EXPORT"}]
    with pytest.raises(ClientError, match="ValidationException.*Invalid Export ARN"):
        client.describe_export(ExportArn=arn)
    with pytest.raises(ClientError, match="InvalidExportTimeException"):
        client.export_table_to_point_in_time(TableArn=arn, S3Bucket="my-bucket", ExportTime=1)


def test_import_from_s3_is_accepted_then_fails_and_creates_no_table(endpoint):
    from botocore.exceptions import ClientError

    client = make_client(endpoint)
    name = unique_table_name("s3-import")
    params = {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    }  # fmt: skip
    started = client.import_table(S3BucketSource={"S3Bucket": "my-bucket", "S3KeyPrefix": "p/"},
                                  InputFormat="DYNAMODB_JSON", TableCreationParameters=params)["ImportTableDescription"]
    assert started["ImportStatus"] == "IN_PROGRESS" and started["InputCompressionType"] == "NONE"
    assert {"EndTime", "FailureCode", "ProcessedSizeBytes"}.isdisjoint(started)
    assert started["ImportArn"].startswith(started["TableArn"] + "/import/")
    described = client.describe_import(ImportArn=started["ImportArn"])["ImportTableDescription"]
    assert described["ImportStatus"] == "FAILED" and described["FailureCode"] == "S3NoSuchBucket"
    assert described["FailureMessage"].startswith("The specified bucket does not exist (Service: Amazon S3;")
    assert described["ProcessedSizeBytes"] == described["ImportedItemCount"] == described["ErrorCount"] == 0
    assert name not in client.list_tables()["TableNames"]
    summaries = client.list_imports(TableArn=started["TableArn"])["ImportSummaryList"]
    assert [s["ImportStatus"] for s in summaries] == ["FAILED"]
    with pytest.raises(ClientError, match="ImportNotFoundException"):
        client.describe_import(ImportArn=started["ImportArn"][:-8] + "00000000")
    existing = unique_table_name("s3-import-existing")
    _table(client, existing)
    with pytest.raises(ClientError, match="ResourceInUseException.*Table already exists"):
        client.import_table(S3BucketSource={"S3Bucket": "my-bucket"}, InputFormat="ION",
                            TableCreationParameters={**params, "TableName": existing})
