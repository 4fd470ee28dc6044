"""DynamoDB's S3 export format on local disk: ``meridian import`` and ``meridian export``.

An export (``aws s3 cp --recursive s3://BUCKET/PREFIX/AWSDynamoDB/ID DIR``) is
``manifest-summary.json``, ``manifest-files.json`` (each with its ``.md5``),
``_started`` and ``data/*.json.gz`` (DynamoDB JSON lines) or ``data/*.ion.gz``
(Amazon Ion text lines), as the developer guide's "DynamoDB table export
output format" describes them.

    lines.py     one item per line: DynamoDB JSON and Ion, both ways; a line's own checks
    manifest.py  finding an export in a folder, reading and writing its manifests
    progress.py  the progress file that makes an import resumable
    writer.py    batched puts: BatchWriteItem, UnprocessedItems retried with backoff
    importer.py  ``meridian import``: files -> lines -> batches, bad lines, summary
    exporter.py  ``meridian export``: a Scan (or a restored point in time) -> files
    cli.py       the two commands' arguments, progress bar and exit codes

Nothing here is imported by ``meridian --help`` but ``cli.py`` (the parsers).
"""
