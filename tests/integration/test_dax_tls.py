"""``daxs://``: Meridian's DAX port over TLS, with the published Python and JavaScript DAX clients.

One ``meridian serve --dax-port --dax-tls`` process with a data folder: it
makes a self-signed certificate there (``router/dax/tls.py``) and prints its
path.  The clients are told to trust it the way a user would: the Python
client through ``SSL_CERT_FILE`` (read by ``ssl.create_default_context()``, so
the client runs in a subprocess with it set), the JavaScript client through
``NODE_EXTRA_CA_CERTS``; both dial the IP literal 127.0.0.1, which the
certificate names.  A plain ``dax://`` client against the TLS port fails and
the server keeps serving; ``--dax-tls-cert``/``--dax-tls-key`` serve the
operator's own files; a restart reuses the certificate it made.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import botocore.config
import pytest

from tests.waiting import wait_until
from cryptography import x509

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from meridian.router.dax import tls
from tests.integration.test_dax_js_client import node_modules  # noqa: F401 - a fixture: the JS client's install

amazondax = pytest.importorskip("amazondax")

REGION = "us-east-1"
TABLE = "dax_tls_h"
START_TIMEOUT_S = 30
CLIENT_TIMEOUT_S = 120
#: the plain client gives up on its seed after this long (botocore Config, seconds)
PLAIN_CLIENT_TIMEOUT_S = 3


def _serve(args: list[str], tmp: Path, name: str) -> tuple[ManagedProcess, dict]:
    """``meridian serve`` with a TLS DAX port; TMPDIR kept inside the test's folder (for the per-user temp folder)."""
    http_port, dax_port = free_port(), free_port()
    log = tmp / f"{name}.log"
    process = ManagedProcess(["serve", "--port", str(http_port), "--dax-port", str(dax_port), "--no-throttling", *args],
                             log_path=log, name=name, env={"TMPDIR": str(tmp)})  # fmt: skip
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", START_TIMEOUT_S, process=process)
        wait_for_port("127.0.0.1", dax_port, START_TIMEOUT_S, process=process)
    except BaseException:
        process.terminate()
        raise
    return process, {"http": f"http://127.0.0.1:{http_port}", "dax_port": dax_port, "log": log}


def _banner(log: Path) -> str:
    """The log once the banner is complete: serve prints its DAX lines after both ports listen."""
    def complete() -> str | None:
        text = log.read_text(errors="replace")
        return text if "DAX daxs://" in text else None

    return wait_until(complete, START_TIMEOUT_S, 0.05, "the DAX banner lines")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dax-tls")
    process, info = _serve(["--data-dir", str(tmp / "data"), "--dax-tls"], tmp, "serve-dax-tls")
    info["cert"] = tmp / "data" / tls.CERT_FILE_NAME
    info["key"] = tmp / "data" / tls.KEY_FILE_NAME
    info["process"] = process
    try:
        yield info
    finally:
        process.terminate()


@pytest.fixture(scope="module")
def ddb(server):
    client = boto3.client("dynamodb", endpoint_url=server["http"], region_name=REGION,
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    return client


#: put then get through the DAX client; prints the item it read back (binary as latin-1 text)
_PYTHON_CLIENT = textwrap.dedent("""
    import json, sys
    import amazondax
    endpoint, pk = sys.argv[1], sys.argv[2]
    client = amazondax.AmazonDaxClient(endpoint_url=endpoint, region_name="us-east-1",
                                       aws_access_key_id="test", aws_secret_access_key="test")
    try:
        client.put_item(TableName="%s", Item={"pk": {"S": pk}, "n": {"N": "3.25"}, "b": {"B": b"\\x00\\xff"}})
        item = client.get_item(TableName="%s", Key={"pk": {"S": pk}})["Item"]
        item["b"]["B"] = bytes(item["b"]["B"]).decode("latin-1")
        print(json.dumps(item))
    finally:
        client.close()
""" % (TABLE, TABLE))


def _python_client(endpoint: str, pk: str, cert: Path | None) -> subprocess.CompletedProcess:
    """The Python DAX client in its own process: ``SSL_CERT_FILE`` must be set before it makes its context."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if cert is not None:
        env["SSL_CERT_FILE"] = str(cert)
    return subprocess.run([sys.executable, "-c", _PYTHON_CLIENT, endpoint, pk], capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT_S, env=env)  # fmt: skip


def _assert_put_get(done: subprocess.CompletedProcess, ddb, pk: str) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"pk": {"S": pk}, "n": {"N": "3.25"}, "b": {"B": "\x00\xff"}}
    direct = ddb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True)["Item"]
    assert direct == {"pk": {"S": pk}, "n": {"N": "3.25"}, "b": {"B": b"\x00\xff"}}


# --- the certificate Meridian made ------------------------------------------------------------
def test_banner_says_daxs_and_how_to_trust_the_certificate(server):
    banner = _banner(server["log"])
    assert f"daxs://127.0.0.1:{server['dax_port']}" in banner
    assert f"SSL_CERT_FILE={server['cert']}" in banner and f"NODE_EXTRA_CA_CERTS={server['cert']}" in banner


def test_the_made_certificate_is_its_own_ca_naming_the_loopback_addresses(server):
    cert = x509.load_pem_x509_certificate(server["cert"].read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert server["key"].stat().st_mode & 0o077 == 0  # the key is the owner's alone
    # OpenSSL's strict checks (Python 3.13's default) accept it too
    context = ssl.create_default_context(cafile=str(server["cert"]))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    with context.wrap_socket(socket.create_connection(("127.0.0.1", server["dax_port"])),
                             server_hostname="127.0.0.1") as conn:  # fmt: skip
        assert conn.version() in ("TLSv1.2", "TLSv1.3")


# --- the Python client --------------------------------------------------------------------------
def test_python_client_puts_and_gets_over_daxs(server, ddb):
    done = _python_client(f"daxs://127.0.0.1:{server['dax_port']}", "py", server["cert"])
    _assert_put_get(done, ddb, "py")


def test_python_client_refuses_a_certificate_it_was_not_told_to_trust(server, ddb):
    done = _python_client(f"daxs://127.0.0.1:{server['dax_port']}", "untrusted", None)
    assert done.returncode != 0
    assert "Certificate verification failed" in done.stderr, done.stderr[-2000:]


def test_a_plain_dax_client_on_the_tls_port_fails_and_the_server_keeps_serving(server, ddb):
    config = botocore.config.Config(connect_timeout=PLAIN_CLIENT_TIMEOUT_S, read_timeout=PLAIN_CLIENT_TIMEOUT_S)
    with pytest.raises(Exception) as failure:
        client = amazondax.AmazonDaxClient(endpoint_url=f"dax://127.0.0.1:{server['dax_port']}", region_name=REGION,
                                           aws_access_key_id="test", aws_secret_access_key="test", config=config)
        try:
            client.get_item(TableName=TABLE, Key={"pk": {"S": "py"}})
        finally:
            client.close()
    assert type(failure.value).__module__.startswith("amazondax"), repr(failure.value)
    # the DAX handshake in clear text: the TLS layer drops the connection, nothing is answered
    with socket.create_connection(("127.0.0.1", server["dax_port"]), timeout=START_TIMEOUT_S) as raw:
        raw.sendall(b"gJ7yne5G\x00\xf6\xa1iUserAgentdtest\x00" + b"\x01" * 64)
        assert raw.recv(4096) == b""
    assert server["process"].alive
    _assert_put_get(_python_client(f"daxs://127.0.0.1:{server['dax_port']}", "after", server["cert"]), ddb, "after")


# --- the JavaScript client ------------------------------------------------------------------------
_JS_CLIENT = textwrap.dedent("""
    "use strict";
    const { Dax } = require("@amazon-dax-sdk/client-dax");
    const [endpoint, table, pk] = process.argv.slice(2);
    (async () => {
      const dax = new Dax({ endpoints: [endpoint], region: "us-east-1",
                            credentials: { accessKeyId: "test", secretAccessKey: "test" } });
      try {
        await dax.putItem({ TableName: table, Item: { pk: { S: pk }, n: { N: "7" } } });
        const got = await dax.getItem({ TableName: table, Key: { pk: { S: pk } } });
        console.log(JSON.stringify(got.Item));
      } finally {
        dax.shutdown();
      }
    })().catch((error) => { console.error(error && error.stack ? error.stack : error); process.exit(1); });
""")


def test_js_client_puts_and_gets_over_daxs(server, ddb, node_modules, tmp_path):
    script = tmp_path / "dax_tls_client.cjs"
    script.write_text(_JS_CLIENT)
    env = dict(os.environ, NODE_PATH=str(node_modules), NODE_EXTRA_CA_CERTS=str(server["cert"]))
    done = subprocess.run(["node", str(script), f"daxs://127.0.0.1:{server['dax_port']}", TABLE, "js"],
                          capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"pk": {"S": "js"}, "n": {"N": "7"}}
    assert ddb.get_item(TableName=TABLE, Key={"pk": {"S": "js"}}, ConsistentRead=True)["Item"]["n"] == {"N": "7"}


# --- restarts, the operator's own files, bad flags ----------------------------------------------
def test_a_restart_reuses_the_certificate_it_made(tmp_path):
    data = tmp_path / "data"
    first, info = _serve(["--data-dir", str(data), "--dax-tls"], tmp_path, "first")
    first.terminate()
    made = (data / tls.CERT_FILE_NAME).read_bytes()
    second, info = _serve(["--data-dir", str(data), "--dax-tls"], tmp_path, "second")
    try:
        assert (data / tls.CERT_FILE_NAME).read_bytes() == made
        assert "(reused)" in _banner(info["log"])
    finally:
        second.terminate()


def test_the_operators_certificate_and_key(tmp_path):
    cert_pem, key_pem = tls.make_self_signed("127.0.0.1")
    cert, key = tmp_path / "mine.pem", tmp_path / "mine.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    process, info = _serve(["--in-memory", "--dax-tls-cert", str(cert), "--dax-tls-key", str(key)], tmp_path, "own")
    try:
        ddb = boto3.client("dynamodb", endpoint_url=info["http"], region_name=REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
        _assert_put_get(_python_client(f"daxs://127.0.0.1:{info['dax_port']}", "own", cert), ddb, "own")
        assert f"certificate {cert}" in _banner(info["log"])
        assert not list(tmp_path.glob(f"meridian-dax-tls-*/{tls.CERT_FILE_NAME}"))  # nothing was made
    finally:
        process.terminate()


@pytest.mark.parametrize("flags, words", [
    (["--dax-port", "1", "--dax-tls-cert", "c.pem"], "go together"),
    (["--dax-tls"], "need --dax-port"),
    (["--dax-port", "1", "--dax-tls-cert", "/nonexistent.pem", "--dax-tls-key", "/nonexistent.key"], "cannot serve"),
])  # fmt: skip
def test_bad_tls_flags_are_refused_before_starting(flags, words):
    from meridian.main import _front_options, build_parser

    with pytest.raises(SystemExit, match=words):
        _front_options(build_parser().parse_args(["serve", *flags]))


def test_a_made_certificate_is_made_again_for_another_address(tmp_path):
    first = tls.ensure_self_signed(str(tmp_path), "127.0.0.1")
    again = tls.ensure_self_signed(str(tmp_path), "127.0.0.1")
    assert first.fresh and not again.fresh and again.cert_path == first.cert_path
    other = tls.ensure_self_signed(str(tmp_path), "10.1.2.3")
    assert other.fresh
    san = x509.load_pem_x509_certificate(Path(other.cert_path).read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "10.1.2.3" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    tls.server_context(other)  # the new key goes with the new certificate
