"""``meridian load`` as users run it: a subprocess against real servers.

One embedded server (``meridian serve``), then two real regions
(``LocalCluster``: nodes, routers, replicators).  Each run's files are read
back, and the no-acknowledged-write-lost check is run again here, from the
history alone, against the regions the workload wrote to.
"""

from __future__ import annotations

import subprocess
import time

import orjson
import pytest

from meridian.lab.load import check_no_acknowledged_write_lost, writes_from_history
from meridian.lab.load.history import read_jsonl
from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import MERIDIAN_COMMAND, LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from tests.conftest import make_client
from tests.waiting import wait_until

A, B = "region-a", "region-b"
#: A ``meridian load`` run may take this long in all (start, table, run, drain, check).
LOAD_TIMEOUT_S = 120.0
LINK_LATENCY_MS = 25.0
HISTORY_FIELDS = {"t", "region", "op", "key", "ok", "error", "latency_ms", "version"}


def _load(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MERIDIAN_COMMAND, "load", *args], capture_output=True, text=True, timeout=LOAD_TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load-embedded")
    port = free_port()
    server = ManagedProcess(["serve", "--port", str(port), "--in-memory"], log_path=tmp / "serve.log", name="serve")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for_http_ok(endpoint + "/health", STARTUP_TIMEOUT_S, process=server)
        yield endpoint
    finally:
        server.terminate()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(
        [A, B], 1, None, tmp_path_factory.mktemp("load-global"), sync=False, link_latency_ms=LINK_LATENCY_MS
    ) as c:
        yield c


def test_a_load_run_against_an_embedded_server(embedded, tmp_path):
    run_dir = tmp_path / "run"
    rate, duration_s = 300, 3
    done = _load(
        "--endpoint", embedded, "--rate", str(rate), "--duration-s", str(duration_s), "--keys", "200",
        "--write-ratio", "0.6", "--table", "load-embedded", "--seed", "11", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed 11" in done.stdout and "no-acknowledged-write-lost: passed" in done.stdout

    run = orjson.loads((run_dir / "run.json").read_bytes())
    assert run["kind"] == "load" and run["seed"] == 11 and run["target"] == "embedded"
    assert run["regions"] == {"us-east-1": embedded} and run["table"] == "load-embedded"
    assert run["ended_at"] - run["started_at"] >= duration_s

    history = list(read_jsonl(run_dir / "history.jsonl"))
    assert all(set(r) == HISTORY_FIELDS for r in history)
    assert 0.9 * rate * duration_s <= len(history) <= rate * duration_s
    assert all(r["ok"] and r["error"] is None for r in history), [r for r in history if not r["ok"]][:3]
    puts = [r for r in history if r["op"] == "put"]
    gets = [r for r in history if r["op"] == "get"]
    assert 0.5 < len(puts) / len(history) < 0.7 and {r["op"] for r in history} == {"put", "get"}
    assert all(r["key"].startswith("us-east-1#") and r["region"] == "us-east-1" for r in history)
    assert any(r["version"] is not None for r in gets)  # reads see what was written
    starts = [r["t"] for r in history]
    assert max(starts) - min(starts) == pytest.approx(duration_s, abs=0.5)  # spread over the run: open loop
    per_key: dict[str, list[int]] = {}
    for r in sorted(puts, key=lambda r: r["t"]):
        per_key.setdefault(r["key"], []).append(r["version"])
    assert all(versions == sorted(set(versions)) for versions in per_key.values())  # strictly increasing per key

    checks = orjson.loads((run_dir / "checks.json").read_bytes())
    assert checks[0]["name"] == "no-acknowledged-write-lost" and checks[0]["passed"], checks
    assert checks[0]["figures"]["keys_checked"] == len(per_key)

    # The same check, from the history alone; then a claim the table cannot back is caught.
    acknowledged, attempted = writes_from_history(run_dir / "history.jsonl")
    regions = run["regions"]
    assert check_no_acknowledged_write_lost(regions, "load-embedded", acknowledged, attempted).passed
    key = next(iter(acknowledged))
    version, region = acknowledged[key]
    forged_ack = {**acknowledged, key: (version + 5, region)}
    forged_attempts = {**attempted, key: {region: version + 5}}
    result = check_no_acknowledged_write_lost(
        regions, "load-embedded", forged_ack, forged_attempts, settle_timeout_s=0.5
    )
    assert not result.passed and result.figures["keys_lost"] == 1 and key in result.detail


def test_a_two_region_load_run_probes_visibility_and_loses_nothing(cluster, tmp_path):
    run_dir = tmp_path / "run"
    regions = ",".join(f"{region}={cluster.endpoints[region]}" for region in (A, B))
    done = _load(
        "--regions", regions, "--rate", "200", "--duration-s", "4", "--keys", "100", "--conflict-keys", "5",
        "--write-ratio", "0.5", "--table", "load-global", "--seed", "5", "--visibility-probe-every", "5",
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no-acknowledged-write-lost: passed" in done.stdout

    run = orjson.loads((run_dir / "run.json").read_bytes())
    assert run["regions"] == {A: cluster.endpoints[A], B: cluster.endpoints[B]} and run["target"] == "up"
    history = list(read_jsonl(run_dir / "history.jsonl"))
    assert {r["region"] for r in history} == {A, B}
    for r in history:
        if r["op"] == "put" and not r["key"].startswith("conflict#"):
            assert r["key"].startswith(r["region"] + "#")  # each region writes only its own keys
    assert {r["key"] for r in history if r["op"] == "put" and r["key"].startswith("conflict#")}

    probes = list(read_jsonl(run_dir / "visibility.jsonl"))
    assert len(probes) >= 10
    assert {(p["source"], p["target"]) for p in probes} == {(A, B), (B, A)}
    assert all(p["visible_ms"] is not None for p in probes), probes  # nothing cut: every write shows up
    sent_at = {(r["key"], r["version"]): r["t"] for r in history if r["op"] == "put" and r["ok"]}
    for p in probes:
        # Seen in the other region no sooner than one link latency after the write was sent
        # (measured from the acknowledgement, which may reach a busy client late; 2 ms for clocks).
        seen_after_send_ms = (p["t"] - sent_at[(p["key"], p["version"])]) * 1000 + p["visible_ms"]
        assert seen_after_send_ms >= LINK_LATENCY_MS - 2, p

    lag = list(read_jsonl(run_dir / "lag.jsonl"))
    assert lag, "no replication lag sampled"
    assert {(row["source"], row["target"]) for row in lag} <= {(A, B), (B, A)}
    assert all(row["table"] == "load-global" and row["window"] in ("delta", "total") for row in lag)
    assert any(row["count"] and row["p50_ms"] >= LINK_LATENCY_MS for row in lag)

    acknowledged, attempted = writes_from_history(run_dir / "history.jsonl")
    assert any(len(writers) == 2 for writers in attempted.values())  # conflict keys written by both
    result = check_no_acknowledged_write_lost(run["regions"], "load-global", acknowledged, attempted)
    assert result.passed, result.detail
    assert result.figures["keys_checked"] == len(attempted)


def test_errors_are_recorded_by_type_and_lost_writes_fail_the_run(embedded, tmp_path):
    """The table is deleted mid-run: requests fail with that __type, and the check cannot find the writes."""
    run_dir = tmp_path / "run"
    table = "load-doomed"
    process = subprocess.Popen(
        [*MERIDIAN_COMMAND, "load", "--endpoint", embedded, "--rate", "200", "--duration-s", "4", "--keys", "50",
         "--write-ratio", "0.8", "--table", table, "--seed", "2", "--run-dir", str(run_dir),
         "--settle-timeout-s", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        ddb = make_client(embedded)

        def writing() -> bool:
            assert process.poll() is None, "meridian load exited early"
            return _has_items(ddb, table)

        wait_until(writing, 30, 0.1, "the workload to create its table and write")
        time.sleep(1.0)  # the point: a second of successful writes before the table goes
        deleted_at = time.time()
        ddb.delete_table(TableName=table)
        output, _ = process.communicate(timeout=LOAD_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, output
    assert "no-acknowledged-write-lost: FAILED" in output and "ResourceNotFoundException" in output
    history = list(read_jsonl(run_dir / "history.jsonl"))
    before = [r for r in history if r["t"] < deleted_at - 0.1]
    after = [r for r in history if r["t"] > deleted_at + 0.5]
    assert before and all(r["ok"] for r in before)
    assert after and all(not r["ok"] and r["error"] == "ResourceNotFoundException" for r in after)
    check = orjson.loads((run_dir / "checks.json").read_bytes())[0]
    assert not check["passed"] and check["figures"]["keys_unreadable"] == check["figures"]["keys_checked"] > 0
    assert "ResourceNotFoundException in us-east-1" in check["detail"]


def _has_items(ddb, table: str) -> bool:
    try:
        return ddb.scan(TableName=table, Limit=1)["Count"] > 0
    except ddb.exceptions.ResourceNotFoundException:
        return False


def test_bad_arguments_are_refused_before_anything_runs(cluster):
    done = _load("--rate", "10")
    assert done.returncode != 0 and "--endpoint" in done.stderr
    done = _load("--regions", "conflict=http://127.0.0.1:1", "--keys", "5")
    assert done.returncode != 0 and "conflict" in done.stderr
    swapped = f"{A}={cluster.endpoints[B]},{B}={cluster.endpoints[A]}"
    done = _load("--regions", swapped)
    assert done.returncode != 0 and f"the router at {cluster.endpoints[B]} serves {B}, not {A}" in done.stderr
    done = _load("--endpoint", cluster.endpoints[A], "--region", B)
    assert done.returncode != 0 and f"serves {A}, not {B}" in done.stderr
