"""Content codings of HTTP bodies: compressed requests in, compressed answers out.

Request bodies may arrive compressed (``Content-Encoding``: botocore's
request compression, gzip only today; DynamoDB takes deflate too), and
answers are compressed for clients that send ``Accept-Encoding`` once the
body reaches ``limits.HTTP_RESPONSE_COMPRESS_BYTES_MIN`` (DynamoDB's 4 KB).
``x-amz-crc32`` is then the CRC32 of the compressed bytes, as DynamoDB sends
it and as botocore (retryhandler.CRC32Checker, over the raw bytes it
received, urllib3 never decoding) and the Go/Java SDKs check it.
"""

from __future__ import annotations

import zlib

from meridian.model import limits

_ZLIB_WBITS = {"gzip": 31, "deflate": 15}  # 31: gzip header and trailer; 15: zlib (HTTP's "deflate")


class BodyTooLarge(Exception):
    """A compressed request body that decompresses past the bound."""


class BadEncoding(Exception):
    """A request body that cannot be decoded as its ``Content-Encoding`` says."""


def decode_body(content_encoding: str, body: bytes, max_bytes: int) -> bytes:
    """``body`` decoded as ``content_encoding`` says (codings applied in order).

    Never inflates past ``max_bytes`` (a decompression bomb stops there:
    ``BodyTooLarge``).  Unknown codings, broken or empty compressed data:
    ``BadEncoding``.  Concatenated gzip members are one body (RFC 1952); bytes
    after the last member that do not start another are ignored, as DynamoDB
    does (it answers 200 there).
    """
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    for coding in reversed(codings):  # the last coding listed was applied last
        if coding in ("identity", ""):
            continue
        wbits = _ZLIB_WBITS.get(coding)
        if wbits is None:
            raise BadEncoding(f"unsupported Content-Encoding {coding!r}")
        body = _inflate(body, wbits, max_bytes)
    return body


def _inflate(data: bytes, wbits: int, max_bytes: int) -> bytes:
    if not data:
        raise BadEncoding("empty compressed body")
    out: list[bytes] = []
    size = 0
    members = 0
    while data:
        if members and (wbits != 31 or data[:2] != b"\x1f\x8b"):
            break  # trailing bytes that are not another gzip member: ignored (DynamoDB's behaviour)
        inflater = zlib.decompressobj(wbits)
        pending = data
        while True:
            try:
                chunk = inflater.decompress(pending, max_bytes - size + 1)
            except zlib.error as exc:
                raise BadEncoding(str(exc)) from None
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge()
            out.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof or not pending:
                break
        if not inflater.eof:
            raise BadEncoding("truncated compressed body")
        members += 1
        data = inflater.unused_data
    return b"".join(out)


def choose_coding(accept_encoding: str) -> str | None:
    """The coding to answer with for this ``Accept-Encoding``: "gzip", "deflate" or None.

    Follows what DynamoDB was observed to do (ScyllaDB's Alternator tests
    record it): codings case-insensitive, the highest q wins, q clamped to
    [0, 1], an unparseable q counts as 1, the first q of an entry counts, an
    explicit entry beats ``*`` at equal q, then the first listed, then gzip;
    ``identity`` is ignored; q=0 refuses.
    """
    best: dict[str, tuple[float, int]] = {}  # coding -> (q, position); the highest q of repeats
    for position, entry in enumerate(accept_encoding.split(",")):
        name, _, params = entry.partition(";")
        coding = name.strip().lower()
        if coding not in ("gzip", "deflate", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, eq, value = param.partition("=")
            if eq and key.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value.strip())))
                except ValueError:
                    q = 1.0  # guess: DynamoDB takes "q=0.x" as acceptable
                break
        seen = best.get(coding)
        if seen is None or q > seen[0]:
            best[coding] = (q, position)
    if not best:
        return None
    star = best.get("*")
    choices = []
    for rank, coding in enumerate(("gzip", "deflate")):
        explicit = best.get(coding)
        if explicit is not None:
            q, position, is_explicit = explicit[0], explicit[1], 1
        elif star is not None:
            q, position, is_explicit = star[0], star[1], 0
        else:
            continue
        if q > 0.0:
            choices.append((-q, -is_explicit, position, rank, coding))
    return min(choices)[-1] if choices else None


def compress(body: bytes, coding: str) -> bytes:
    packer = zlib.compressobj(limits.HTTP_RESPONSE_COMPRESS_LEVEL, zlib.DEFLATED, _ZLIB_WBITS[coding])
    return packer.compress(body) + packer.flush()
