"""Signatures verified over real 127.0.0.1 sockets (``RouterOptions.credentials``, ``--credentials``).

* boto3 with the right keys works, the aws CLI too; a wrong secret, an
  unknown key, a skewed clock, a wrong or missing session token each get
  DynamoDB's error;
* a gzip body is verified over the bytes as sent (botocore signs the
  compressed body);
* a router without credentials still takes any signature;
* ``meridian serve --credentials FILE`` wires the flag through.

Two routers (``start_router`` over the embedded storage) serve the module,
each on its own uvloop thread: one with credentials, one without.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import uvloop
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from rawhttp import Connection  # noqa: E402

from meridian.router.sigv4 import Credential  # noqa: E402
from tests.conftest import CLIENT_CONFIG, DUMMY_AWS_ENV, make_client  # noqa: E402

WAIT_S = 20.0
KEYS = {
    "AKIDGOOD": Credential("good-secret"),
    "ASIATEMP": Credential("temp-secret", "the-session-token"),
}


class Router:
    def __init__(self, data_dir: str, credentials=None) -> None:
        from meridian.node.engine import Engine
        from meridian.router.server import RouterOptions, start_router
        from meridian.router.storage_embedded import EmbeddedStorage

        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start():
            storage = EmbeddedStorage(Engine(data_dir, node_id="embedded", region="us-east-1", sync=False))
            return await start_router(
                storage, host="127.0.0.1", port=0, region="us-east-1", shared_catalog=False,
                options=RouterOptions(credentials=credentials),
            )  # fmt: skip

        self.router = asyncio.run_coroutine_threadsafe(start(), self.loop).result(WAIT_S)
        self.endpoint = f"http://127.0.0.1:{self.router.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.router.close(), self.loop).result(WAIT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT_S)
        self.loop.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    r = Router(str(tmp_path_factory.mktemp("sigv4")), credentials=KEYS)
    yield r
    r.close()


@pytest.fixture(scope="module")
def open_router(tmp_path_factory):
    r = Router(str(tmp_path_factory.mktemp("sigv4-open")))
    yield r
    r.close()


def client(endpoint: str, key: str = "AKIDGOOD", secret: str = "good-secret", token: str | None = None):
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=CLIENT_CONFIG,
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
    )  # fmt: skip


def error_of(call) -> tuple[str, str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_right_keys_work(secured):
    assert "TableNames" in client(secured.endpoint).list_tables()
    assert "TableNames" in client(secured.endpoint, "ASIATEMP", "temp-secret", "the-session-token").list_tables()


def test_a_table_round_trip_with_the_right_keys(secured):
    ddb = client(secured.endpoint)
    ddb.create_table(
        TableName="signed", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    item = {"id": {"S": "a b  c"}, "text": {"S": "é" * 100}}
    ddb.put_item(TableName="signed", Item=item)
    assert ddb.get_item(TableName="signed", Key={"id": {"S": "a b  c"}})["Item"] == item


def test_wrong_secret(secured):
    code, message, status = error_of(client(secured.endpoint, secret="wrong-secret").list_tables)
    assert (code, status) == ("InvalidSignatureException", 400)
    assert message == (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


def test_unknown_key(secured):
    code, message, _ = error_of(client(secured.endpoint, key="test", secret="test").list_tables)
    assert (code, message) == ("UnrecognizedClientException", "The security token included in the request is invalid.")


@pytest.mark.parametrize("token", ["another-token", None])
def test_session_token_wrong_or_missing(secured, token):
    code, message, _ = error_of(client(secured.endpoint, "ASIATEMP", "temp-secret", token).list_tables)
    assert (code, message) == ("UnrecognizedClientException", "The security token included in the request is invalid")


@pytest.mark.parametrize("minutes,start", [(-20, "Signature expired: "), (20, "Signature not yet current: ")])
def test_skewed_clock(secured, monkeypatch, minutes, start):
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *a, **k: skewed)
    code, message, _ = error_of(client(secured.endpoint).list_tables)
    assert code == "InvalidSignatureException"
    assert message.startswith(start + skewed.strftime("%Y%m%dT%H%M%SZ")) and message.endswith("15 min.)")


def _send_signed(endpoint: str, body: bytes, headers: dict[str, str], secret: str = "good-secret"):
    """A request signed by botocore's signer, sent byte for byte as signed."""
    host = endpoint.split("//", 1)[1]
    request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=headers)
    SigV4Auth(Credentials("AKIDGOOD", secret), "dynamodb", "us-east-1").add_auth(request)
    lines = [f"Host: {host}", f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in request.headers.items()]
    with Connection(endpoint) as conn:
        conn.send(("POST / HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return conn.read_response()


def test_gzip_body_is_verified_as_sent(secured):
    headers = {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Content-Encoding": "gzip",
    }  # fmt: skip
    answer = _send_signed(secured.endpoint, gzip.compress(b"{}"), headers)
    assert answer.status == 200 and "TableNames" in answer.json()
    answer = _send_signed(secured.endpoint, gzip.compress(b"{}"), headers, secret="wrong")
    assert answer.json()["__type"] == "com.amazon.coral.service#InvalidSignatureException"


def test_headers_with_folded_whitespace_and_repeats(secured):
    headers = {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "X-Custom": "  several   spaces\tand a tab  ",
    }  # fmt: skip
    answer = _send_signed(secured.endpoint, b"{}", headers)
    assert answer.status == 200, answer.body


def test_errors_are_counted(secured):
    before = secured.router.app.errors_by_type.get("UnrecognizedClientException", 0)
    error_of(client(secured.endpoint, key="nobody").list_tables)
    assert secured.router.app.errors_by_type["UnrecognizedClientException"] == before + 1


def test_without_credentials_anything_passes(open_router):
    assert "TableNames" in make_client(open_router.endpoint).list_tables()
    assert "TableNames" in client(open_router.endpoint, key="whatever", secret="wrong").list_tables()


def _aws_binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    if not os.path.exists(beside):
        pytest.fail("the aws CLI is a test dependency (awscli) but is not installed")
    return beside


def _aws(endpoint: str, key: str, secret: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **DUMMY_AWS_ENV, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    return subprocess.run(
        [_aws_binary(), "dynamodb", "list-tables", "--endpoint-url", endpoint, "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_aws_cli_with_env_credentials(secured):
    done = _aws(secured.endpoint, "AKIDGOOD", "good-secret")
    assert done.returncode == 0, done.stderr
    assert "TableNames" in json.loads(done.stdout)
    done = _aws(secured.endpoint, "AKIDGOOD", "bad-secret")
    assert done.returncode != 0 and "InvalidSignatureException" in done.stderr


def test_meridian_serve_credentials_flag(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# lab keys\nAKIDFILE:file-secret\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "meridian.main", "serve", "--in-memory", "--port", "0", "--credentials", str(keys)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        endpoint = f"http://127.0.0.1:{found.group(1)}"
        assert "TableNames" in client(endpoint, "AKIDFILE", "file-secret").list_tables()
        code, _, _ = error_of(client(endpoint, "AKIDGOOD", "good-secret").list_tables)
        assert code == "UnrecognizedClientException"
    finally:
        proc.terminate()
        proc.wait(WAIT_S)


def test_front_options_take_pairs():
    from meridian.main import build_parser, _front_options

    ns = build_parser().parse_args(["serve", "--credentials", "AK1:s1, AK2:s2"])
    assert _front_options(ns).credentials == {"AK1": Credential("s1"), "AK2": Credential("s2")}
    ns = build_parser().parse_args(["serve"])
    assert _front_options(ns).credentials is None
    with pytest.raises(SystemExit):
        _front_options(build_parser().parse_args(["serve", "--credentials", "no-secret"]))
