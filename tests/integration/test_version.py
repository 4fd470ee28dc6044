"""Which Meridian is running: ``meridian --version``, a server's first line, the console's footer (issue 21)."""

from __future__ import annotations

import json
import subprocess
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

import meridian
from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess, free_port, wait_for_http_ok, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_meridian_version_is_the_installed_package_s():
    done = subprocess.run([*MERIDIAN_COMMAND, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"meridian {metadata.version('meridian-db')}\n"


def test_a_checkout_never_installed_reads_pyproject(monkeypatch):
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert meridian._version() == expected


def test_a_node_says_its_version_first(tmp_path):
    port = free_port()
    node = ManagedProcess(["node", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "n")],
                          log_path=tmp_path / "node.log")  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, READY_TIMEOUT_S, process=node)
        first = node.log_tail(5).splitlines()[1]  # after the supervisor's header line
        assert first == f"meridian node {meridian.__version__} (pid {node.pid}): starting on 127.0.0.1:{port}"
    finally:
        node.terminate()


def test_the_console_footer_and_overview_name_the_version(tmp_path):
    port = free_port()
    serve = ManagedProcess(["serve", "--port", str(port), "--in-memory"], log_path=tmp_path / "serve.log")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for_http_ok(endpoint + "/health", READY_TIMEOUT_S, process=serve)
        with _DIRECT.open(endpoint + "/console", timeout=10) as page:
            html = page.read().decode()
        assert f'<footer class="foot">Meridian <span id="version">{meridian.__version__}</span>' in html
        assert "__MERIDIAN_VERSION__" not in html
        with _DIRECT.open(endpoint + "/console/api/overview", timeout=10) as answer:
            assert json.loads(answer.read())["version"] == meridian.__version__
    finally:
        serve.terminate()


def test_metrics_and_the_first_line_name_the_version(tmp_path):
    port = free_port()
    serve = ManagedProcess(["serve", "--port", str(port), "--in-memory"], log_path=tmp_path / "serve.log")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for_http_ok(endpoint + "/health", READY_TIMEOUT_S, process=serve)
        with _DIRECT.open(endpoint + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        assert f'meridian_build_info{{version="{meridian.__version__}"}} 1' in text.splitlines()
        assert f"meridian serve {meridian.__version__}: listening on {endpoint}" in serve.log_tail(20)
    finally:
        serve.terminate()
