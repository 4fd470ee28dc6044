"""A DynamoDB JSON 1.0 client for the workload: keep-alive HTTP, SigV4, no retries.

Why not boto3: botocore costs about a millisecond of CPU per call in
Python, so threads running it top out well below the rates a lab needs
(measured in ``docs/lab.md``, Workload).  aiohttp keeps a pool of
keep-alive connections per region on the workload's event loop; the
requests are signed with AWS Signature Version 4 as any SDK signs them
(Meridian does not verify signatures, DynamoDB would), so the same traffic
would be accepted by any DynamoDB endpoint.

Every call answers a ``Reply`` instead of raising: the workload records
errors, it does not stop on them, and it never retries (a retry would hide
the error a chaos experiment is looking for).  A reply's ``error`` is the
DynamoDB ``__type`` short name (``ValidationException``,
``InternalServerError``...) or, when no DynamoDB answer came back, one of
the client-side names below.  ``applied_unknown`` says whether the server
may have applied the request although it did not acknowledge it: true for
5xx answers, time-outs and connections lost after sending; false for 4xx
answers and connections that could not be opened.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from meridian.cluster import limits

#: Client-side error names (no DynamoDB answer).
CONNECT_ERROR = "ConnectError"  # the connection could not be opened: nothing was sent
TIMEOUT_ERROR = "Timeout"  # no answer within the request timeout
CONNECTION_LOST_ERROR = "ConnectionLost"  # the connection broke after the request was sent
BAD_ANSWER_ERROR = "BadAnswer"  # an answer that is not DynamoDB JSON

#: Credentials used to sign when the environment has none: Meridian accepts any.
DEFAULT_ACCESS_KEY_ID = "test"
DEFAULT_SECRET_ACCESS_KEY = "test"

_SERVICE = "dynamodb"
_CONTENT_TYPE = "application/x-amz-json-1.0"
_TARGET_PREFIX = "DynamoDB_20120810."


@dataclass(frozen=True, slots=True)
class Reply:
    """One request's outcome."""

    ok: bool
    status: int  # HTTP status, 0 when no answer came back
    body: dict[str, Any] | None  # the decoded answer (success or error)
    error: str | None  # __type short name or a client-side name; None when ok
    latency_ms: float
    applied_unknown: bool  # failed, but the server may still have applied it


class SigV4Signer:
    """AWS Signature Version 4 for POST / with a JSON body (the DynamoDB protocol).

    The signing key is derived once per UTC day; each request costs two
    SHA-256 hashes and two HMACs.
    """

    def __init__(self, region: str, access_key_id: str, secret_access_key: str) -> None:
        self.region = region
        self._access_key_id = access_key_id
        self._secret = secret_access_key
        self._day = ""
        self._key = b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = ("AWS4" + self._secret).encode()
            for part in (day, self.region, _SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return self._key

    def headers(self, host: str, target: str, body: bytes, now_s: float | None = None) -> dict[str, str]:
        """The headers of one signed request (Host is sent by the HTTP client)."""
        amz_date = _amz_date(int(time.time() if now_s is None else now_s))
        day = amz_date[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        signed_headers = "content-type;host;x-amz-date;x-amz-target"
        canonical = (
            f"POST\n/\n\ncontent-type:{_CONTENT_TYPE}\nhost:{host}\nx-amz-date:{amz_date}\n"
            f"x-amz-target:{target}\n\n{signed_headers}\n{payload_hash}"
        )
        scope = f"{day}/{self.region}/{_SERVICE}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Content-Type": _CONTENT_TYPE,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": target,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self._access_key_id}/{scope}, "
                f"SignedHeaders={signed_headers}, Signature={signature}"
            ),
        }


@functools.lru_cache(maxsize=4)
def _amz_date(unix_s: int) -> str:
    """``X-Amz-Date`` of a whole second (cached: formatting a date costs more than signing)."""
    return datetime.datetime.fromtimestamp(unix_s, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def error_name(type_field: object) -> str:
    """``com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`` -> ``ResourceNotFoundException``."""
    return str(type_field).rpartition("#")[2] or BAD_ANSWER_ERROR


class DynamoClient:
    """One region's router: a pool of keep-alive connections, signed requests.

    Create and use it inside the event loop that will run its requests;
    ``close`` it when done.
    """

    def __init__(
        self,
        endpoint: str,
        region: str,
        *,
        connections_max: int = limits.CONNECTIONS_PER_REGION_MAX,
        timeout_s: float = limits.REQUEST_TIMEOUT_S,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self._url = self.endpoint + "/"
        self._host = parts.netloc
        self._signer = SigV4Signer(
            region,
            os.environ.get("AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID),
            os.environ.get("AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_ACCESS_KEY),
        )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections_max, force_close=False, enable_cleanup_closed=False),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def call(self, action: str, payload: dict[str, Any]) -> Reply:
        """Send one action; never raises for what the server or network did."""
        body = orjson.dumps(payload)
        headers = self._signer.headers(self._host, _TARGET_PREFIX + action, body)
        start = time.perf_counter()
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                data = await response.read()
                status = response.status
        except asyncio.TimeoutError:
            return Reply(False, 0, None, TIMEOUT_ERROR, _ms_since(start), True)
        except aiohttp.ClientConnectorError:
            return Reply(False, 0, None, CONNECT_ERROR, _ms_since(start), False)
        except (aiohttp.ClientError, OSError):
            return Reply(False, 0, None, CONNECTION_LOST_ERROR, _ms_since(start), True)
        latency_ms = _ms_since(start)
        try:
            answer = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            return Reply(False, status, None, BAD_ANSWER_ERROR, latency_ms, status >= 500 or status == 200)
        if status == 200:
            return Reply(True, status, answer, None, latency_ms, False)
        return Reply(False, status, answer, error_name(answer.get("__type")), latency_ms, status >= 500)

    async def close(self) -> None:
        await self._session.close()

    def __repr__(self) -> str:
        return f"<DynamoClient {self.region} {self.endpoint}>"


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
