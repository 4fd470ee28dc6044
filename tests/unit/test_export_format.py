"""DynamoDB's export format, read and written without a server.

Fixtures are the developer guide's own examples ("DynamoDB table export
output format": the summary manifest, a files-manifest line, an item in
DynamoDB JSON and the same item in Ion), plus hand-made files in that layout.
The importer runs against a fake writer, so resuming and bad lines are
checked line by line.
"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import orjson
import pytest

from meridian.lab.export_format import lines, manifest
from meridian.lab.export_format.importer import FAIL, SKIP, ImportFailed, Importer
from meridian.lab.export_format.progress import Progress

pytest.importorskip("amazon.ion")

# The developer guide's examples (an item of the ProductCatalog table).
GUIDE_JSON_ITEM = {
    "Authors": {"SS": ["Author1", "Author2"]}, "Dimensions": {"S": "8.5 x 11.0 x 1.5"},
    "ISBN": {"S": "333-3333333333"}, "Id": {"N": "103"}, "InPublication": {"BOOL": False},
    "PageCount": {"N": "600"}, "Price": {"N": "2000"}, "ProductCategory": {"S": "Book"},
    "Title": {"S": "Book 103 Title"},
}  # fmt: skip
GUIDE_ION_LINE = (
    b'$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",'
    b'ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,ProductCategory:"Book",'
    b'Title:"Book 103 Title"}}\n'
)
GUIDE_SUMMARY = {
    "version": "2020-06-30",
    "exportArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ProductCatalog/export/01234567890123-a1b2c3d4",
    "startTime": "2020-11-04T07:28:34.028Z", "endTime": "2020-11-04T07:33:43.897Z",
    "tableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ProductCatalog",
    "tableId": "12345a12-abcd-123a-ab12-1234abc12345", "exportTime": "2020-11-04T07:28:34.028Z",
    "s3Bucket": "ddb-productcatalog-export", "s3Prefix": "2020-Nov", "s3SseAlgorithm": "AES256",
    "s3SseKmsKeyId": None, "manifestFilesS3Key": "AWSDynamoDB/01345678901234-abc12345/manifest-files.json",
    "billedSizeBytes": 0, "itemCount": 8, "outputFormat": "DYNAMODB_JSON",
}  # fmt: skip
KEY = {"Id": "N"}
EVERY_TYPE = {
    "Id": {"N": "1"}, "s": {"S": "caf\u00e9 \"quoted\"\n"}, "n": {"N": "-1E-130"}, "b": {"B": "AAH+/w=="},
    "t": {"BOOL": True}, "z": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1.5", "2"]},
    "bs": {"BS": ["AA==", "AQ=="]}, "l": {"L": [{"N": "1"}, {"L": []}, {"M": {}}]},
    "m": {"M": {"deep": {"M": {"x": {"SS": ["y"]}}}}},
}  # fmt: skip


def _same(a, b) -> bool:
    """Attribute values equal as DynamoDB compares them (numbers as numbers)."""
    import decimal

    def norm(v):
        (kind, inner), = v.items()
        if kind == "N":
            return decimal.Decimal(inner)
        if kind == "NS":
            return sorted(decimal.Decimal(n) for n in inner)
        if kind == "L":
            return [norm(x) for x in inner]
        if kind == "M":
            return {k: norm(x) for k, x in inner.items()}
        return (kind, inner)

    return {k: norm(v) for k, v in a.items()} == {k: norm(v) for k, v in b.items()}


def test_the_guides_ion_line_is_the_guides_json_item():
    assert _same(lines.decode_ion_line(GUIDE_ION_LINE), GUIDE_JSON_ITEM)


@pytest.mark.parametrize("output_format", lines.FORMATS)
def test_every_type_round_trips(output_format):
    encoded = lines.encoder(output_format)(EVERY_TYPE)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 1
    assert _same(lines.decoder(output_format)(encoded), EVERY_TYPE)


def test_ion_lines_start_with_the_version_marker_and_annotate_sets():
    line = lines.encode_ion_line(EVERY_TYPE)
    assert line.startswith(b"$ion_1_0 {Item:{")
    assert b"$dynamodb_SS::" in line and b"$dynamodb_NS::" in line and b"$dynamodb_BS::" in line


def test_a_json_line_is_the_api_item_wrapped_in_item():
    assert orjson.loads(lines.encode_json_line(GUIDE_JSON_ITEM)) == {"Item": GUIDE_JSON_ITEM}


@pytest.mark.parametrize("line, why", [
    (b"{not json", "not JSON"),
    (b'{"NotAnItem": {}}', 'no "Item"'),
    (b'{"Item": {"Id": {"S": "1"}}}', "Type mismatch for key Id"),
    (b'{"Item": {"x": {"S": "1"}}}', "Missing the key Id"),
    (b'{"Item": {"Id": {"N": "1"}, "e": {"SS": []}}}', "may not be empty"),
])  # fmt: skip
def test_bad_json_lines_say_why(line, why):
    with pytest.raises(lines.BadLine, match=why):
        lines.check_item(lines.decode_json_line(line), KEY)


@pytest.mark.parametrize("line, why", [
    (b"$ion_1_0 {Item:{Id:", "not Ion"),
    (b"$ion_1_0 {Other:{}}", "no Item"),
    (b"$ion_1_0 {Item:{Id:1, t:2020-01-01T}}", "no DynamoDB type"),
])  # fmt: skip
def test_bad_ion_lines_say_why(line, why):
    with pytest.raises(lines.BadLine, match=why):
        lines.decode_ion_line(line)


# --- manifests ------------------------------------------------------------------------------
def _export(folder: Path, files: dict[str, list[bytes]], summary: dict | None = None) -> Path:
    """An export in the documented layout under folder/PREFIX/AWSDynamoDB/ID/."""
    export_dir = folder / "2020-Nov" / "AWSDynamoDB" / "01234567890123-a1b2c3d4"
    (export_dir / "data").mkdir(parents=True)
    entries = []
    for name, file_lines in files.items():
        data = gzip.compress(b"".join(file_lines))
        (export_dir / "data" / name).write_bytes(data)
        entries.append({"itemCount": sum(1 for line in file_lines if line.strip()), "md5Checksum": manifest.md5_b64(data), "etag": "e-1",
                        "dataFileS3Key": f"2020-Nov/AWSDynamoDB/01234567890123-a1b2c3d4/data/{name}"})
    manifest.write_manifests(export_dir, summary or GUIDE_SUMMARY, entries)
    return export_dir


def test_the_export_is_found_below_the_folder_given_and_its_files_listed(tmp_path):
    lines_ = [lines.encode_json_line(GUIDE_JSON_ITEM)]
    export_dir = _export(tmp_path, {"a.json.gz": lines_, "b.json.gz": []})
    assert manifest.find_export(tmp_path) == export_dir
    assert manifest.read_summary(export_dir)["outputFormat"] == "DYNAMODB_JSON"
    assert [(f.path.name, f.item_count) for f in manifest.read_files(export_dir)] == [("a.json.gz", 1), ("b.json.gz", 0)]
    assert (export_dir / "manifest-summary.md5").read_text().strip() == manifest.md5_b64(
        (export_dir / "manifest-summary.json").read_bytes()
    )


def test_a_damaged_manifest_or_a_missing_data_file_is_refused(tmp_path):
    export_dir = _export(tmp_path, {"a.json.gz": []})
    (export_dir / "manifest-files.json").write_bytes(b'{"dataFileS3Key": "x/data/gone.json.gz"}\n')
    with pytest.raises(manifest.ExportFormatError, match="MD5"):
        manifest.read_files(export_dir)
    (export_dir / "manifest-files.md5").unlink()
    with pytest.raises(manifest.ExportFormatError, match="gone.json.gz"):
        manifest.read_files(export_dir)


def test_an_incremental_export_is_refused(tmp_path):
    export_dir = _export(tmp_path, {}, {**GUIDE_SUMMARY, "exportType": "INCREMENTAL_EXPORT"})
    with pytest.raises(manifest.ExportFormatError, match="only full exports"):
        manifest.read_summary(export_dir)


# --- the importer, against a fake writer -------------------------------------------------------
class FakeWriter:
    def __init__(self, refuse: set[str] = frozenset(), stop_after_batches: int | None = None) -> None:
        self.table: dict[str, dict] = {}
        self.batches: list[int] = []
        self._refuse = refuse
        self._stop_after = stop_after_batches
        self.importer = None

    async def put_batch(self, items):
        await asyncio.sleep(0)
        keys = [item["Id"]["N"] for item in items]
        assert len(set(keys)) == len(keys) and len(items) <= 25
        self.batches.append(len(items))
        refused = []
        for index, item in enumerate(items):
            if item["Id"]["N"] in self._refuse:
                refused.append((index, "ValidationException: refused by the server"))
            else:
                self.table[item["Id"]["N"]] = item
        if self._stop_after is not None and len(self.batches) >= self._stop_after:
            self.importer.stop.set()
        return refused


def _run(export_dir: Path, writer: FakeWriter, progress: Progress, on_error: str = SKIP) -> Importer:
    importer = Importer(writer, export_dir, manifest.read_files(export_dir), "DYNAMODB_JSON", KEY, progress,
                        on_error=on_error, report=lambda text: None)  # fmt: skip
    writer.importer = importer

    async def go():
        await importer.run()

    asyncio.run(go())
    return importer


def _item_line(n: int) -> bytes:
    return lines.encode_json_line({"Id": {"N": str(n)}, "v": {"S": "x" * (n % 7)}})


def test_an_interrupted_import_resumes_and_ends_with_every_item(tmp_path):
    export_dir = _export(tmp_path, {"a.json.gz": [_item_line(n) for n in range(500)],
                                    "b.json.gz": [_item_line(n) for n in range(500, 700)]})
    progress = Progress(tmp_path / "p.json", "e", "T")
    first = FakeWriter(stop_after_batches=5)
    _run(export_dir, first, progress)
    saved = Progress.load(tmp_path / "p.json", "e", "T")
    done = saved.files[next(iter(saved.files))]
    assert not done.complete and 0 < done.lines_done < 500 and done.imported >= done.lines_done
    settled = done.lines_done
    second = FakeWriter()
    second.table.update(first.table)
    _run(export_dir, second, saved)
    assert set(second.table) == {str(n) for n in range(700)}
    assert sum(second.batches) <= 700 - settled  # settled lines were not sent again
    final = Progress.load(tmp_path / "p.json", "e", "T")
    assert all(f.complete for f in final.files.values()) and final.totals()[2] == 2


def test_duplicate_keys_go_in_separate_batches_and_the_later_item_wins(tmp_path):
    rows = [lines.encode_json_line({"Id": {"N": "1"}, "v": {"S": str(k)}}) for k in range(3)]
    export_dir = _export(tmp_path, {"a.json.gz": rows})
    writer = FakeWriter()
    _run(export_dir, writer, Progress(tmp_path / "p.json", "e", "T"))
    assert writer.table["1"]["v"] == {"S": "2"} and writer.batches == [1, 1, 1]


def test_bad_lines_are_skipped_and_recorded_with_file_and_line(tmp_path):
    rows = [_item_line(1), b"{oops\n", b"\n", _item_line(2), _item_line(3)]
    export_dir = _export(tmp_path, {"a.json.gz": rows})
    progress = Progress(tmp_path / "p.json", "e", "T")
    writer = FakeWriter(refuse={"3"})
    importer = _run(export_dir, writer, progress)
    assert set(writer.table) == {"1", "2"}
    errors = [orjson.loads(line) for line in progress.errors_path.read_bytes().splitlines()]
    assert [(e["file"].rsplit("/", 1)[1], e["line"]) for e in errors] == [("a.json.gz", 2), ("a.json.gz", 5)]
    assert progress.totals() == (2, 2, 1) and not importer.warnings


def test_a_bad_line_under_fail_stops_before_it(tmp_path):
    rows = [_item_line(n) for n in range(30)] + [b"{oops\n"] + [_item_line(n) for n in range(30, 40)]
    export_dir = _export(tmp_path, {"a.json.gz": rows})
    progress = Progress(tmp_path / "p.json", "e", "T")
    with pytest.raises(ImportFailed, match=r"a.json.gz:31: not JSON"):
        _run(export_dir, FakeWriter(), progress, on_error=FAIL)
    saved = Progress.load(tmp_path / "p.json", "e", "T")
    assert [(f.lines_done, f.imported, f.complete) for f in saved.files.values()] == [(30, 30, False)]


def test_a_progress_file_of_another_export_is_not_reused(tmp_path):
    Progress(tmp_path / "p.json", "export-1", "T").save()
    with pytest.raises(ValueError, match="--restart"):
        Progress.load(tmp_path / "p.json", "export-2", "T")


def test_a_data_file_whose_md5_differs_is_reported(tmp_path):
    export_dir = _export(tmp_path, {"a.json.gz": [_item_line(1)]})
    (export_dir / "data" / "a.json.gz").write_bytes(gzip.compress(_item_line(1), mtime=1))
    importer = _run(export_dir, FakeWriter(), Progress(tmp_path / "p.json", "e", "T"))
    assert any("MD5" in warning for warning in importer.warnings)
