"""AWS Signature Version 4, verified as DynamoDB verifies it (``--credentials``).

Pure: ``verify(...)`` gets the request's method, path, query, headers and
body as sent, the operator's credentials and the time, and returns None or
the ``DynamoError`` DynamoDB would answer.  Nothing here runs unless the
router was given credentials; without them any signature passes (``app.py``
only checks that the request looks signed), as with every local DynamoDB.

The checks, in DynamoDB's order (live replies recorded in mhart/dynalite's
``index.js``; ``app.py`` has already answered a missing or incomplete
``Authorization`` header):

1. ``X-Amz-Date`` (else ``Date``) not ``YYYYMMDD'T'HHMMSS'Z'``  -> IncompleteSignatureException
2. that time more than ``limits.SIGV4_CLOCK_SKEW_S`` from now -> InvalidSignatureException
   (``Signature expired: ...`` / ``Signature not yet current: ...``)
3. ``host`` not among the signed headers                       -> InvalidSignatureException
4. algorithm other than ``AWS4-HMAC-SHA256``                   -> IncompleteSignatureException
5. ``Credential`` not 5 ``/``-separated parts                  -> IncompleteSignatureException
6. scope: service not ``dynamodb``, terminator not ``aws4_request``,
   date not the request's day (all failures in one message)   -> InvalidSignatureException
7. unknown access key                                          -> UnrecognizedClientException
8. signature differs (constant-time comparison)                -> InvalidSignatureException
9. ``X-Amz-Security-Token`` not the key's session token        -> UnrecognizedClientException

What is signed (the canonical request, AWS's SigV4 documentation)::

    METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n \\n signed headers \\n payload hash

* canonical URI: the path as sent (already percent-encoded once), dot
  segments and empty segments removed, percent-encoded again (every service
  but S3 signs each segment encoded twice);
* canonical query: each name and value decoded then encoded with only
  ``A-Z a-z 0-9 - _ . ~`` left as they are, sorted by name then value;
* canonical headers: the signed headers, lower-cased, each ``name:value``
  with the value trimmed and its runs of whitespace folded to one space,
  repeated headers joined with ``,``;
* payload hash: the hex SHA-256 of the body as sent (before any
  Content-Encoding is undone), or ``UNSIGNED-PAYLOAD`` when the client's
  ``x-amz-content-sha256`` says so.  Any other ``x-amz-content-sha256`` is
  not trusted: the body's real hash is signed, so a false claim fails as a
  wrong signature.

Then the string to sign is ``AWS4-HMAC-SHA256 \\n date \\n scope \\n
hex(SHA-256(canonical request))``, and the key
``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")``.
Deriving that key is four HMACs: ``SigningKeys`` keeps them (bounded by
``limits.SIGV4_SIGNING_KEYS_MAX``), so a request costs one SHA-256 of its
body, one of its canonical request and one HMAC.

The region in the scope is not checked against the router's (a lab's
regions need not be AWS names); it is signed, so it must be the one the
client signed with.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import quote, unquote

from meridian.model import limits
from meridian.model.errors import (
    DynamoError,
    IncompleteSignatureException,
    InvalidSignatureException,
    UnrecognizedClientException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dynamodb"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# DynamoDB's own words (recorded replies; see the module docstring).
_UNKNOWN_KEY = "The security token included in the request is invalid."
_BAD_TOKEN = "The security token included in the request is invalid"  # DynamoDB's reply has no full stop here
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_HOST_UNSIGNED = "'Host' must be a 'SignedHeader' in the AWS Authorization."


@dataclass(frozen=True)
class Credential:
    """One access key's secret, and its session token if it is a temporary one."""

    secret: str
    session_token: str | None = None


def parse_credentials(entries: list[str]) -> dict[str, Credential]:
    """``["AKID:SECRET", "AKID2:SECRET2:TOKEN", ...]`` -> access key -> ``Credential``.

    Blank entries and ``#`` comments are skipped; anything else without an
    access key and a secret raises ``ValueError`` naming the entry's number.
    """
    out: dict[str, Credential] = {}
    for number, raw in enumerate(entries, 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key, _, rest = entry.partition(":")
        secret, _, token = rest.partition(":")
        if not key or not secret:
            raise ValueError(f"credential {number}: expected ACCESS_KEY:SECRET[:SESSION_TOKEN]")
        out[key] = Credential(secret, token or None)
    if not out:
        raise ValueError("no credentials given")
    return out


class SigningKeys:
    """Derived signing keys by (secret, day, region, service), the oldest dropped past ``size_max``."""

    __slots__ = ("_keys", "_size_max", "derived")

    def __init__(self, size_max: int = limits.SIGV4_SIGNING_KEYS_MAX) -> None:
        assert size_max >= 1
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._size_max = size_max
        self.derived = 0  # keys computed (not found here), for tests and /metrics

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<SigningKeys {len(self._keys)}/{self._size_max} derived={self.derived}>"

    def get(self, secret: str, day: str, region: str, service: str) -> bytes:
        cache_key = (secret, day, region, service)
        key = self._keys.get(cache_key)
        if key is None:
            key = signing_key(secret, day, region, service)
            if len(self._keys) >= self._size_max:
                del self._keys[next(iter(self._keys))]
            self._keys[cache_key] = key
            self.derived += 1
        return key


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, TERMINATOR):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


# --- canonical forms ------------------------------------------------------------


def canonical_uri(path: str) -> str:
    """The path as signed: dot and empty segments removed, then encoded (a second time)."""
    if path == "/" or not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return quote(normalized, safe="/~", encoding="latin-1")


def canonical_query(query: str) -> str:
    """Names and values decoded, re-encoded the RFC 3986 way, sorted by name then value."""
    if not query:
        return ""
    pairs = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((_encode(name), _encode(value)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _encode(text: str) -> str:
    """Percent-decoded, then encoded with only RFC 3986's unreserved characters left as they are."""
    return quote(unquote(text, encoding="latin-1"), safe="-_.~", encoding="latin-1")


def _grouped(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Header name -> its values, in the order sent."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        found = grouped.get(name)
        if found is None:
            grouped[name] = [value]
        else:
            found.append(value)
    return grouped


def canonical_headers(headers: list[tuple[str, str]], signed: list[str]) -> str:
    """``name:value\\n`` for each signed header, in the signed list's order."""
    return _canonical_headers(_grouped(headers), signed)


def _canonical_headers(grouped: dict[str, list[str]], signed: list[str]) -> str:
    lines = []
    for name in signed:
        values = grouped.get(name, ())
        if len(values) == 1:
            lines.append(f"{name}:{' '.join(values[0].split())}\n")
        else:
            lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}\n")
    return "".join(lines)


def payload_hash(headers: list[tuple[str, str]], body: bytes) -> str:
    return _payload_hash(_grouped(headers), body)


def _payload_hash(grouped: dict[str, list[str]], body: bytes) -> str:
    claimed = grouped.get("x-amz-content-sha256")
    if claimed is not None and claimed[0].strip() == UNSIGNED_PAYLOAD:
        return UNSIGNED_PAYLOAD
    return hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256


def canonical_request(
    method: str, path: str, query: str, headers: list[tuple[str, str]], signed: list[str], body: bytes
) -> str:
    return _canonical_request(method, path, query, _grouped(headers), signed, body)


def _canonical_request(
    method: str, path: str, query: str, grouped: dict[str, list[str]], signed: list[str], body: bytes
) -> str:
    return "\n".join((
        method,
        canonical_uri(path),
        canonical_query(query),
        _canonical_headers(grouped, signed),
        ";".join(signed),
        _payload_hash(grouped, body),
    ))


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("latin-1")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


# --- verification ------------------------------------------------------------------


def _iso_basic(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def _parse_iso_basic(value: str) -> float | None:
    """``20130609T095204Z`` -> seconds since the epoch; None if it is not that form.

    The last answer is remembered: requests signed in the same second share it.
    """
    last_value, last_seconds = _last_date[0]
    if value == last_value:
        return last_seconds
    if len(value) != 16 or value[8] != "T" or value[15] != "Z" or not (value[:8] + value[9:15]).isdigit():
        return None
    try:
        moment = datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]),
            int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=timezone.utc,
        )  # fmt: skip
    except ValueError:
        return None
    seconds = moment.timestamp()
    _last_date[0] = (value, seconds)  # one store: another router's thread sees the old pair or the new
    return seconds


_last_date: list[tuple[str, float]] = [("", 0.0)]


def _authorization_params(auth: str) -> tuple[str, dict[str, str]]:
    """``AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`` -> (algorithm, params)."""
    algorithm, _, rest = auth.strip().partition(" ")
    params: dict[str, str] = {}
    for part in rest.replace(" ", "").split(","):
        key, _, value = part.partition("=")
        if value:
            params[key] = value
    return algorithm, params


def _first(grouped: dict[str, list[str]], name: str) -> str | None:
    values = grouped.get(name)
    return None if values is None else values[0]


def verify(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: Mapping[str, Credential],
    now: float,
    keys: SigningKeys | None = None,
    service: str = SERVICE,
) -> DynamoError | None:
    """None if the request is signed by one of ``credentials``, else DynamoDB's error.

    ``service``: the scope's service the request must be signed for
    (``dynamodb``; ``dax`` for the DAX control plane on the same endpoint).

    ``headers``: every header as sent, names lower-cased, in order (repeats
    kept); ``path`` and ``query``: the request target as sent, split at
    ``?``; all of them ``str`` decoded from the wire as latin-1 (byte for
    byte); ``body``: the bytes as sent; ``now``: seconds since the epoch.
    The ``Authorization`` header is assumed to have passed ``app.py``'s
    shape checks (present, ``AWS4-``, Credential/SignedHeaders/Signature and
    a date header).
    """
    grouped = _grouped(headers)
    algorithm, params = _authorization_params(_first(grouped, "authorization") or "")

    amz_date = _first(grouped, "x-amz-date")
    if amz_date is None:
        amz_date = _first(grouped, "date") or ""  # guess: DynamoDB holds a Date header to the same form
    amz_date = amz_date.strip()
    signed_at = _parse_iso_basic(amz_date)
    if signed_at is None:
        return IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )
    skew = limits.SIGV4_CLOCK_SKEW_S
    if signed_at < now - skew:
        return InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {_iso_basic(now - skew)} "
            f"({_iso_basic(now)} - {skew // 60} min.)"
        )
    if signed_at > now + skew:
        return InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than {_iso_basic(now + skew)} "
            f"({_iso_basic(now)} + {skew // 60} min.)"
        )

    signed = params.get("SignedHeaders", "").lower().split(";")
    if "host" not in signed:
        return InvalidSignatureException(_HOST_UNSIGNED)
    if algorithm != ALGORITHM:
        return IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). ")

    credential = params.get("Credential", "")
    parts = credential.rstrip("/").split("/")
    if len(parts) != 5:
        return IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'"
        )
    access_key, day, region, scoped_service, terminator = parts
    problems = []
    if not region:  # guess: any named region is accepted (see the module docstring)
        problems.append(f"Credential should be scoped to a valid region, not '{region}'.")
    if scoped_service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'.")
    if terminator != TERMINATOR:
        problems.append(f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'.")
    if day != amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{day}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if problems:
        return InvalidSignatureException(" ".join(problems))

    known = credentials.get(access_key)
    if known is None:
        return UnrecognizedClientException(_UNKNOWN_KEY)

    canonical = _canonical_request(method, path, query, grouped, signed, body)
    scope = f"{day}/{region}/{service}/{TERMINATOR}"
    if keys is not None:
        key = keys.get(known.secret, day, region, service)
    else:
        key = signing_key(known.secret, day, region, service)
    expected = hmac.digest(key, string_to_sign(amz_date, scope, canonical).encode(), "sha256").hex()
    if not hmac.compare_digest(expected.encode(), params.get("Signature", "").encode("latin-1")):
        return InvalidSignatureException(_MISMATCH)

    token = _first(grouped, "x-amz-security-token")
    wanted = known.session_token
    if token is None or wanted is None:
        # A token for a key that has none, or none for a key that has one
        # (guess: DynamoDB answers both as it answers a wrong token).
        return None if token is wanted else UnrecognizedClientException(_BAD_TOKEN)
    if not hmac.compare_digest(token.strip().encode("latin-1"), wanted.encode()):
        return UnrecognizedClientException(_BAD_TOKEN)
    return None
