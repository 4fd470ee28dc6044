"""SigV4 verified for real with ``--credentials``, in both modes.

The shared endpoints run without credentials (any signature passes, as every
local emulator does: ``test_bad_input.py``); this module starts its own
``meridian serve --credentials`` and a one-node cluster whose router has the
same flag, and checks DynamoDB's answers there.  The signer's details
(canonical request, payload hash, header folding) are
``tests/unit/test_sigv4*.py``'s.
"""

from __future__ import annotations

import datetime
import os

import boto3
import botocore.exceptions
import pytest

from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from tests.conftest import CLIENT_CONFIG

KEYS = "AKIDGOOD:good-secret,ASIATEMP:temp-secret:the-session-token"
MODES = [m.strip() for m in os.environ.get("MERIDIAN_TEST_MODES", "embedded,cluster").split(",") if m.strip()]


@pytest.fixture(scope="module", params=MODES)
def secured(request, tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp(f"signed-{request.param}")
    if request.param == "embedded":
        port = free_port()
        server = ManagedProcess(["serve", "--port", str(port), "--data-dir", str(tmp / "data"), "--credentials", KEYS],
                                log_path=tmp / "serve.log", name="serve")
        request.addfinalizer(server.terminate)
        endpoint = f"http://127.0.0.1:{port}"
        wait_for_http_ok(endpoint + "/health", STARTUP_TIMEOUT_S, process=server)
        return endpoint
    cluster = LocalCluster(["us-east-1"], 1, None, tmp, sync=False, router_args=["--credentials", KEYS])
    request.addfinalizer(cluster.stop)
    cluster.start()
    return cluster.endpoints["us-east-1"]


def _client(endpoint: str, key: str = "AKIDGOOD", secret: str = "good-secret", token: str | None = None):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", config=CLIENT_CONFIG,
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)


def _error(call) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_the_right_keys_work(secured):
    ddb = _client(secured)
    ddb.create_table(TableName="signed", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    item = {"id": {"S": "a b  c"}, "text": {"S": "é" * 100}}
    ddb.put_item(TableName="signed", Item=item)
    assert ddb.get_item(TableName="signed", Key={"id": {"S": "a b  c"}}, ConsistentRead=True)["Item"] == item
    assert "signed" in _client(secured, "ASIATEMP", "temp-secret", "the-session-token").list_tables()["TableNames"]


def test_wrong_secret_unknown_key_and_session_token(secured):
    assert _error(_client(secured, secret="wrong").list_tables) == (
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        "Access Key and signing method. Consult the service documentation for details.")
    assert _error(_client(secured, key="nobody", secret="x").list_tables) == (
        "UnrecognizedClientException", "The security token included in the request is invalid.")
    assert _error(_client(secured, "ASIATEMP", "temp-secret", "another").list_tables) == (
        "UnrecognizedClientException", "The security token included in the request is invalid")


@pytest.mark.parametrize("minutes,start", [(-20, "Signature expired: "), (20, "Signature not yet current: ")])
def test_a_skewed_clock(secured, monkeypatch, minutes, start):
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(minutes=minutes)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *a, **k: skewed)
    code, message = _error(_client(secured).list_tables)
    assert code == "InvalidSignatureException"
    assert message.startswith(start + skewed.strftime("%Y%m%dT%H%M%SZ")) and message.endswith("15 min.)")
