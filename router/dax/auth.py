"""``authorizeConnection``: a DAX connection's SigV4 proof, checked when the node has credentials.

A DAX client proves it holds a key by signing a fixed, bodiless request
(both clients, ``SigV4Gen``) and sending the signature with the string it
signed; the server has no reply to it.  Every client signs the same request::

    POST \\n / \\n (empty query) \\n host:dax.amazonaws.com \\n x-amz-date:<amz date> \\n
    \\n host;x-amz-date \\n hex(SHA-256(""))

    stringToSign = AWS4-HMAC-SHA256 \\n <amz date> \\n <day>/<region>/dax/aws4_request \\n hex(SHA-256(canonical))

so the server rebuilds the canonical request from the date alone, checks its
hash, the scope and the time, and recomputes the HMAC with the key's secret
and the region the client signed for.  The session token is not signed: it
must equal the key's own when the key has one.

Without credentials every connection is accepted (as every local DynamoDB
accepts any signature).  A failed check is not answered at once (the method
has no answer): the server keeps it and answers the connection's next
request with it (``server.py``), codes ``[4, 23, 31, 33]`` (``errors.py``).
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from typing import Callable, Mapping

from meridian.model import limits
from meridian.model.errors import DynamoError, InvalidSignatureException, UnrecognizedClientException
from meridian.router.sigv4 import ALGORITHM, TERMINATOR, Credential, SigningKeys

SERVICE = "dax"
#: the host every client signs, whatever node it talks to
SIGNED_HOST = "dax.amazonaws.com"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_UNKNOWN_KEY = "The security token included in the request is invalid."
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def canonical_request(amz_date: str) -> str:
    """The request every DAX client signs, for the time it signed at."""
    return "\n".join((
        "POST",
        "/",
        "",
        f"host:{SIGNED_HOST}\nx-amz-date:{amz_date}\n",
        "host;x-amz-date",
        _EMPTY_SHA256,
    ))


def _parse_amz_date(value: str) -> float | None:
    """``20240102T030405Z`` -> seconds since the epoch, or None."""
    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


class Authenticator:
    """Checks ``authorizeConnection`` arguments against the node's credentials (None: accept all)."""

    __slots__ = ("_credentials", "_keys", "_now_s", "accepted", "rejected")

    def __init__(
        self,
        credentials: Mapping[str, Credential | str] | None = None,
        *,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = (
            None if credentials is None
            else {key: value if isinstance(value, Credential) else Credential(value) for key, value in credentials.items()}
        )
        self._keys = SigningKeys()
        self._now_s = now_s
        self.accepted = 0  # for statistics()
        self.rejected = 0

    @property
    def required(self) -> bool:
        """Whether a connection must authorize before its first request."""
        return self._credentials is not None

    def __repr__(self) -> str:
        keys = "any key" if self._credentials is None else f"{len(self._credentials)} keys"
        return f"<Authenticator {keys} accepted={self.accepted} rejected={self.rejected}>"

    def check(self, args: list[object]) -> DynamoError | None:
        """None if ``args`` (access key, signature, stringToSign, token, user agent) prove a known key."""
        err = None if self._credentials is None else self._verify(self._credentials, args)
        if err is None:
            self.accepted += 1
        else:
            self.rejected += 1
        return err

    def _verify(self, credentials: Mapping[str, Credential], args: list[object]) -> DynamoError | None:
        access_key, signature, signed, token = (list(args) + [None] * 4)[:4]
        if not isinstance(access_key, str) or not isinstance(signature, str) or not isinstance(signed, bytes):
            return UnrecognizedClientException(_UNKNOWN_KEY)
        known = credentials.get(access_key)
        if known is None:
            return UnrecognizedClientException(_UNKNOWN_KEY)
        try:
            lines = signed.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            return InvalidSignatureException(_BAD_SIGNATURE)
        if len(lines) != 4 or lines[0] != ALGORITHM:
            return InvalidSignatureException(_BAD_SIGNATURE)
        _, amz_date, scope, canonical_hash = lines
        signed_at = _parse_amz_date(amz_date)
        scope_parts = scope.split("/")
        if (
            signed_at is None
            or len(scope_parts) != 4
            or scope_parts[0] != amz_date[:8]
            or not scope_parts[1]
            or scope_parts[2] != SERVICE
            or scope_parts[3] != TERMINATOR
        ):
            return InvalidSignatureException(_BAD_SIGNATURE)
        now_s = self._now_s()
        if abs(signed_at - now_s) > limits.SIGV4_CLOCK_SKEW_S:
            return InvalidSignatureException(f"Signature expired or not yet current: {amz_date}")
        expected_hash = hashlib.sha256(canonical_request(amz_date).encode()).hexdigest()
        if not hmac.compare_digest(canonical_hash.encode(), expected_hash.encode()):
            return InvalidSignatureException(_BAD_SIGNATURE)
        key = self._keys.get(known.secret, scope_parts[0], scope_parts[1], SERVICE)
        expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return InvalidSignatureException(_BAD_SIGNATURE)
        if known.session_token is not None and token != known.session_token:
            return UnrecognizedClientException(_UNKNOWN_KEY)
        return None
