"""``meridian demo dax``: GetItem through the DAX client beside boto3, run briefly, non-interactively.

The demo runs as a separate process (``--plain``: a line a second, then the
summary; ``--summary-json``: the closing figures), against its own
``meridian serve --dax-port``, against a router named by ``--endpoint`` (its
DAX node found through the console's ``/console/api/dax``), and against a
router without DAX; and without the DAX client installed.
"""

from __future__ import annotations

import os
import subprocess

import orjson
import pytest

from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess, free_port, wait_for_http_ok, wait_for_port

pytest.importorskip("amazondax")

#: The demo's own server starting, loading, reading for DURATION_S and stopping.
RUN_TIMEOUT_S = 120.0
DURATION_S = 3
ITEMS = 100


def _demo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*MERIDIAN_COMMAND, "demo", "dax", "--plain", "--duration-s", str(DURATION_S), *args],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    """Two ``meridian serve`` processes: one with a DAX node, one without."""
    folder = tmp_path_factory.mktemp("demo-dax")
    processes, urls = [], {}
    try:
        for name, extra in (("dax", True), ("plain", False)):
            http_port, dax_port = free_port(), free_port()
            args = ["serve", "--host", "127.0.0.1", "--port", str(http_port), "--in-memory"]
            process = ManagedProcess(args + (["--dax-port", str(dax_port)] if extra else []),
                                     log_path=folder / f"{name}.log", name=f"serve-{name}")  # fmt: skip
            processes.append(process)
            wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 60, process=process)
            if extra:
                wait_for_port("127.0.0.1", dax_port, 60, process=process)
            urls[name] = (f"http://127.0.0.1:{http_port}", f"dax://127.0.0.1:{dax_port}")
        yield urls
    finally:
        for process in processes:
            process.terminate()


def _check_summary(path, dax_url: str | None = None) -> dict:
    summary = orjson.loads(path.read_bytes())
    dax, direct, cache = summary["dax"], summary["direct"], summary["item_cache"]
    assert summary["items"] == ITEMS and summary["elapsed_s"] >= DURATION_S
    assert dax["reads"] > 0 and direct["reads"] > 0 and dax["errors"] == direct["errors"] == 0, summary
    assert abs(dax["reads"] - direct["reads"]) <= 1  # each key is read on both paths
    assert 0 < dax["total_p50_ms"] <= dax["total_p99_ms"] and 0 < direct["total_p50_ms"] <= direct["total_p99_ms"]
    # Every DAX GetItem is one item cache lookup; each item misses once at most (loaded by boto3, then cached).
    assert cache["unavailable"] is None and cache["hits"] + cache["misses"] == dax["reads"], summary
    assert 1 <= cache["misses"] <= ITEMS and cache["hit_rate"] == cache["hits"] / dax["reads"]
    assert summary["speedup_p50"] == direct["total_p50_ms"] / dax["total_p50_ms"]
    if dax_url is not None:
        assert summary["dax_url"] == dax_url
    return summary


def test_demo_dax_with_its_own_server(tmp_path):
    run = _demo("--items", str(ITEMS), "--summary-json", str(tmp_path / "summary.json"), "--seed", "7")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "starting meridian serve --in-memory --dax-port" in run.stdout
    lines = [line for line in run.stdout.splitlines() if line.startswith("[00:")]
    assert len(lines) >= DURATION_S - 1 and "item cache hit rate" in lines[-1], run.stdout
    assert "DAX p50 speed-up over the direct path" in run.stdout and "item cache hit rate:" in run.stdout
    _check_summary(tmp_path / "summary.json")


def test_demo_dax_against_a_router(serve, tmp_path):
    http_url, dax_url = serve["dax"]
    run = _demo("--endpoint", http_url, "--items", str(ITEMS), "--summary-json", str(tmp_path / "summary.json"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "starting meridian serve" not in run.stdout
    _check_summary(tmp_path / "summary.json", dax_url)


def test_demo_dax_against_a_router_without_dax(serve):
    run = _demo("--endpoint", serve["plain"][0])
    assert run.returncode == 2 and "serves no DAX" in run.stderr and "--dax-port" in run.stderr, run.stderr


def test_demo_dax_without_the_dax_client(tmp_path):
    (tmp_path / "amazondax.py").write_text("raise ImportError('not installed here')\n")
    run = _demo(env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))})
    assert run.returncode == 2 and "pip install amazon-dax-client" in run.stderr, run.stderr
