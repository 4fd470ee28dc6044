"""SigV4 verification, pure (``router/sigv4.py``): no sockets, an injected clock.

* the canonical forms and the key against AWS's documented SigV4 examples
  (the signature test suite's ``get-vanilla`` family, the key derivation example);
* whitespace folding, repeated headers, query ordering, path normalization;
* requests signed by botocore's own signer verify, and each check fails in
  DynamoDB's order with DynamoDB's type and message;
* the signing-key cache stays within its bound.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from meridian.model import limits
from meridian.model.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    UnrecognizedClientException,
)
from meridian.router import sigv4

# AWS's documentation example key (the SigV4 test suite and the key-derivation example).
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_DATE = "20150830T123600Z"
SUITE_SCOPE = "20150830/us-east-1/service/aws4_request"
SUITE_HEADERS = [("host", "example.amazonaws.com"), ("x-amz-date", SUITE_DATE)]
VANILLA_SIGNATURE = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
NOW_S = NOW.timestamp()
KEYS = {
    "AKIDPLAIN": sigv4.Credential("plain-secret"),
    "ASIATEMP": sigv4.Credential("temp-secret", "the-session-token"),
}
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def suite_signature(method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes = b"") -> str:
    signed = sorted({name for name, _ in headers})
    canonical = sigv4.canonical_request(method, path, query, headers, signed, body)
    key = sigv4.signing_key(EXAMPLE_SECRET, "20150830", "us-east-1", "service")
    return hmac.new(key, sigv4.string_to_sign(SUITE_DATE, SUITE_SCOPE, canonical).encode(), hashlib.sha256).hexdigest()


# --- AWS's documented examples -----------------------------------------------------


def test_derived_key_matches_the_documented_example():
    key = sigv4.signing_key(EXAMPLE_SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_get_vanilla():
    canonical = sigv4.canonical_request("GET", "/", "", SUITE_HEADERS, ["host", "x-amz-date"], b"")
    assert canonical == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert sigv4.string_to_sign(SUITE_DATE, SUITE_SCOPE, canonical) == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    )
    assert suite_signature("GET", "/", "", SUITE_HEADERS) == VANILLA_SIGNATURE


def test_get_vanilla_query_order_key_case():
    assert sigv4.canonical_query("Param2=value2&Param1=value1") == "Param1=value1&Param2=value2"
    signature = suite_signature("GET", "/", "Param2=value2&Param1=value1", SUITE_HEADERS)
    assert signature == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"


@pytest.mark.parametrize("path", ["/example/..", "/./", "//", "/example1/example2/../.."])
def test_relative_and_repeated_path_segments_sign_as_the_root(path):
    # The suite's get-relative, get-slash-dot-slash, get-slashes...: the vanilla signature.
    assert sigv4.canonical_uri(path) == "/"
    assert suite_signature("GET", path, "", SUITE_HEADERS) == VANILLA_SIGNATURE


# --- canonical forms -------------------------------------------------------------------


def test_query_sorts_by_name_then_value_and_encodes_the_rfc3986_way():
    assert sigv4.canonical_query("Param1=value2&Param1=Value1") == "Param1=Value1&Param1=value2"
    assert sigv4.canonical_query("b=&a") == "a=&b="
    assert sigv4.canonical_query("k=a b+c%2Fd~e") == "k=a%20b%2Bc%2Fd~e"
    assert sigv4.canonical_query("%7Ek=%41") == "~k=A"  # over-encoded unreserved characters are decoded


def test_path_is_encoded_a_second_time():
    assert sigv4.canonical_uri("/example%20space/") == "/example%2520space/"
    assert sigv4.canonical_uri("/a/b/") == "/a/b/"
    assert sigv4.canonical_uri("") == "/"


def test_header_values_are_trimmed_and_whitespace_folded():
    headers = [("my-header1", "  value1  "), ("my-header2", '"a   b \t  c"'), ("unsigned", "x")]
    assert sigv4.canonical_headers(headers, ["my-header1", "my-header2"]) == 'my-header1:value1\nmy-header2:"a b c"\n'


def test_repeated_headers_join_with_commas_in_order():
    headers = [("my-header1", "value4"), ("my-header1", "value1"), ("my-header1", " value3 ")]
    assert sigv4.canonical_headers(headers, ["my-header1"]) == "my-header1:value4,value1,value3\n"


def test_payload_hash_is_the_body_or_unsigned_payload():
    assert sigv4.payload_hash([], b"{}") == hashlib.sha256(b"{}").hexdigest()
    assert sigv4.payload_hash([], b"") == hashlib.sha256(b"").hexdigest()
    assert sigv4.payload_hash([("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], b"{}") == "UNSIGNED-PAYLOAD"
    # a claimed hash is not trusted: the body's own is signed
    assert sigv4.payload_hash([("x-amz-content-sha256", "0" * 64)], b"{}") == hashlib.sha256(b"{}").hexdigest()


# --- requests signed by botocore ---------------------------------------------------------


def signed(
    monkeypatch,
    *,
    key: str = "AKIDPLAIN",
    secret: str = "plain-secret",
    token: str | None = None,
    at: datetime.datetime = NOW,
    body: bytes = b'{"TableName":"t"}',
    url: str = "http://127.0.0.1:8000/",
    region: str = "us-east-1",
    service: str = "dynamodb",
    extra: dict[str, str] | None = None,
) -> dict:
    """A request as botocore signs it, in ``sigv4.verify``'s terms (headers as the server sees them)."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *a, **k: at.replace(tzinfo=None))
    request = AWSRequest(
        method="POST", url=url, data=body,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem", **(extra or {})},
    )  # fmt: skip
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    netloc = url.split("/")[2]
    headers = [("host", netloc)] + [(name.lower(), value) for name, value in request.headers.items()]
    path_query = url.split(netloc, 1)[1]
    path, _, query = path_query.partition("?")
    return dict(method="POST", path=path, query=query, headers=headers, body=body)


def verify(request: dict, now: float = NOW_S, credentials=KEYS, keys=None):
    return sigv4.verify(**request, credentials=credentials, now=now, keys=keys)


def replace_header(request: dict, name: str, value: str) -> dict:
    headers = [(n, value if n == name else v) for n, v in request["headers"]]
    return {**request, "headers": headers}


def test_botocore_signed_request_verifies(monkeypatch):
    assert verify(signed(monkeypatch)) is None


def test_query_and_path_as_botocore_signs_them(monkeypatch):
    request = signed(monkeypatch, url="http://127.0.0.1:8000/some%20path/?b=2&a=1&a=0")
    assert verify(request) is None


def test_header_whitespace_is_folded_like_botocore(monkeypatch):
    request = signed(monkeypatch, extra={"X-Custom": "  a    b  "})
    assert verify(request) is None


def test_unsigned_payload(monkeypatch):
    # botocore's signer signs UNSIGNED-PAYLOAD when the header says so (S3 over HTTPS); the body is then free.
    request = signed(monkeypatch, extra={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert verify({**request, "body": b'{"TableName":"other"}'}) is None


def test_changed_body_fails(monkeypatch):
    request = signed(monkeypatch)
    err = verify({**request, "body": b'{"TableName":"u"}'})
    assert isinstance(err, InvalidSignatureException) and err.message == MISMATCH
    assert err.body() == {"__type": "com.amazon.coral.service#InvalidSignatureException", "message": MISMATCH}


def test_false_content_hash_claim_fails(monkeypatch):
    body = b'{"TableName":"t"}'
    request = signed(monkeypatch, body=body, extra={"X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()})
    assert isinstance(verify(request), InvalidSignatureException)


def test_wrong_secret(monkeypatch):
    err = verify(signed(monkeypatch, secret="not-the-secret"))
    assert isinstance(err, InvalidSignatureException) and err.message == MISMATCH


def test_unknown_access_key(monkeypatch):
    err = verify(signed(monkeypatch, key="AKIDUNKNOWN"))
    assert isinstance(err, UnrecognizedClientException)
    assert err.body() == {
        "__type": "com.amazon.coral.service#UnrecognizedClientException",
        "message": "The security token included in the request is invalid.",
    }


def test_session_token_right_wrong_missing_extra(monkeypatch):
    assert verify(signed(monkeypatch, key="ASIATEMP", secret="temp-secret", token="the-session-token")) is None
    for token in ("another-token", None):
        err = verify(signed(monkeypatch, key="ASIATEMP", secret="temp-secret", token=token))
        assert isinstance(err, UnrecognizedClientException)
        assert err.message == "The security token included in the request is invalid"
    err = verify(signed(monkeypatch, token="a-token-for-a-plain-key"))
    assert isinstance(err, UnrecognizedClientException)


@pytest.mark.parametrize("minutes", [-14.9, 14.9])
def test_skew_within_fifteen_minutes_passes(monkeypatch, minutes):
    request = signed(monkeypatch, at=NOW + datetime.timedelta(minutes=minutes))
    assert verify(request) is None


def test_expired(monkeypatch):
    err = verify(signed(monkeypatch, at=datetime.datetime(2025, 12, 31, 23, 40, tzinfo=datetime.timezone.utc)))
    assert isinstance(err, InvalidSignatureException)
    assert err.message == "Signature expired: 20251231T234000Z is now earlier than 20251231T234500Z (20260101T000000Z - 15 min.)"


def test_not_yet_current(monkeypatch):
    err = verify(signed(monkeypatch, at=datetime.datetime(2026, 1, 1, 0, 20, tzinfo=datetime.timezone.utc)))
    assert isinstance(err, InvalidSignatureException)
    assert err.message == (
        "Signature not yet current: 20260101T002000Z is still later than 20260101T001500Z (20260101T000000Z + 15 min.)"
    )
    assert limits.SIGV4_CLOCK_SKEW_S == 15 * 60


def test_date_not_iso_basic(monkeypatch):
    request = replace_header(signed(monkeypatch), "x-amz-date", "201")
    err = verify(request)
    assert isinstance(err, IncompleteSignatureException)
    assert err.message == "Date must be in ISO-8601 'basic format'. Got '201'. See http://en.wikipedia.org/wiki/ISO_8601"


def _with_auth(request: dict, old: str, new: str) -> dict:
    auth = dict(request["headers"])["authorization"]
    return replace_header(request, "authorization", auth.replace(old, new))


def test_host_must_be_signed(monkeypatch):
    request = _with_auth(signed(monkeypatch), "SignedHeaders=content-type;host;", "SignedHeaders=content-type;")
    err = verify(request)
    assert isinstance(err, InvalidSignatureException)
    assert err.message == "'Host' must be a 'SignedHeader' in the AWS Authorization."


def test_algorithm(monkeypatch):
    err = verify(_with_auth(signed(monkeypatch), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA25"))
    assert isinstance(err, IncompleteSignatureException)
    assert err.message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). "


def test_credential_needs_five_parts(monkeypatch):
    err = verify(_with_auth(signed(monkeypatch), "/aws4_request", ""))
    assert isinstance(err, IncompleteSignatureException)
    assert err.message == (
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
        "got 'AKIDPLAIN/20260101/us-east-1/dynamodb'"
    )
    assert verify(_with_auth(signed(monkeypatch), "/aws4_request", "/aws4_request/")) is None  # trailing slashes ignored


def test_scope_problems_in_one_message(monkeypatch):
    scope = "AKIDPLAIN/20260101/us-east-1/dynamodb/aws4_request"
    request = _with_auth(signed(monkeypatch), scope, "AKIDPLAIN/20251231/us-east-1/s3/aws4_requesx")
    err = verify(request)
    assert isinstance(err, InvalidSignatureException)
    assert err.message == (
        "Credential should be scoped to correct service: 'dynamodb'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requesx'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20251231' != '20260101', from '20260101T000000Z'."
    )


def test_checks_come_in_dynamodb_order(monkeypatch):
    # expired AND unknown key AND wrong secret: the clock is checked first
    late = signed(monkeypatch, key="AKIDUNKNOWN", at=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
    assert verify(late).message.startswith("Signature expired")
    # unknown key before the signature
    assert isinstance(verify(signed(monkeypatch, key="AKIDUNKNOWN", secret="x")), UnrecognizedClientException)
    # the signature before the session token
    wrong = signed(monkeypatch, key="ASIATEMP", secret="wrong", token="another-token")
    assert verify(wrong).message == MISMATCH


def test_any_region_is_accepted_but_signed(monkeypatch):
    assert verify(signed(monkeypatch, region="eu-west-1")) is None
    request = _with_auth(signed(monkeypatch, region="eu-west-1"), "/eu-west-1/", "/us-east-1/")
    assert verify(request).message == MISMATCH


def test_signature_comparison_takes_any_bytes(monkeypatch):
    request = _with_auth(signed(monkeypatch), "Signature=", "Signature=\u00e9")
    assert verify(request).message == MISMATCH


# --- the key cache ------------------------------------------------------------------------


def test_signing_keys_are_cached_and_bounded(monkeypatch):
    keys = sigv4.SigningKeys(size_max=2)
    request = signed(monkeypatch)
    for _ in range(3):
        assert verify(request, keys=keys) is None
    assert keys.derived == 1 and len(keys) == 1
    for region in ("eu-west-1", "eu-west-2", "eu-west-3"):
        assert verify(signed(monkeypatch, region=region), keys=keys) is None
    assert len(keys) == 2 and keys.derived == 4
    assert "2/2" in repr(keys)


# --- the operator's list -----------------------------------------------------------------


def test_parse_credentials():
    parsed = sigv4.parse_credentials(["# a comment", "", "AKID:secret/with+chars=", "ASIA:s:tok:en:with:colons"])
    assert parsed == {
        "AKID": sigv4.Credential("secret/with+chars="),
        "ASIA": sigv4.Credential("s", "tok:en:with:colons"),
    }
    for bad in (["AKID"], ["AKID:"], [":secret"], ["", "# only a comment"]):
        with pytest.raises(ValueError):
            sigv4.parse_credentials(bad)
