"""The hot-partition scenario: a hot key is throttled, the same rate spread over every key is not.

First its essence in seconds, as a user would try it: ``meridian serve``,
then ``meridian load`` twice on one provisioned table with the numbers of
``deploy/scenarios/hot-partition.yaml`` (one region's share of its rate,
its item size, keys and Zipf exponent): hot, then spread.  Then the
scenario itself, ``meridian chaos run hot-partition`` on a two-region
``meridian up`` of its own, and its report's throttle plot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import MERIDIAN_COMMAND, ManagedProcess, free_port, wait_for_http_ok
from meridian.lab.chaos import scenario as sc

SCENARIO = Path(__file__).resolve().parents[2] / "deploy" / "scenarios" / "hot-partition.yaml"
#: A ``meridian load`` run in all (start, table, run, drain, check).
LOAD_TIMEOUT_S = 120.0
#: The 30 s scenario, its cluster's start and the checks, on a busy machine.
CHAOS_TIMEOUT_S = 240.0
#: How long the hot run lasts: the hot partition's 10 s bank is spent in about 5 s.
HOT_S = 9
SPREAD_S = 5
THROTTLED = "ProvisionedThroughputExceededException"


def _history(run_dir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (run_dir / "history.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hot-serve")
    port = free_port()
    server = ManagedProcess(["serve", "--port", str(port), "--in-memory"], log_path=tmp / "serve.log", name="serve")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http_ok(url + "/health", STARTUP_TIMEOUT_S, process=server)
        yield url
    finally:
        server.terminate()


def test_a_hot_key_is_throttled_and_the_same_rate_spread_is_not(endpoint, tmp_path):
    scenario = sc.load(SCENARIO)
    hot_key = next(step for step in scenario.timeline if step.fault == "hot-key")
    workload, table = scenario.workload, scenario.table
    common = [
        "--endpoint", endpoint, "--table", "hot-partition", "--seed", "7", "--write-ratio", str(workload["write_ratio"]),
        "--rate", str(workload["rate_per_s"] / len(scenario.regions)), "--keys", str(workload["keys"]),
        "--item-bytes", str(workload["item_bytes"]), "--billing-mode", table.mode,
        "--read-capacity", str(table.read_capacity), "--write-capacity", str(table.write_capacity),
        "--visibility-probe-every", "0",
    ]  # fmt: skip

    def load(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*MERIDIAN_COMMAND, "load", *common, "--run-dir", str(run_dir), *args],
                              capture_output=True, text=True, timeout=LOAD_TIMEOUT_S, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "no-acknowledged-write-lost: passed" in done.stdout, done.stdout
        return done

    hot = load(tmp_path / "hot", "--duration-s", str(HOT_S), "--key-distribution", "zipf",
               "--zipf-s", str(hot_key.args["zipf_s"]))  # fmt: skip
    assert f"table hot-partition: PROVISIONED, {table.read_capacity} read and {table.write_capacity} write" in hot.stdout
    records = _history(tmp_path / "hot")
    throttled = [r for r in records if r["error"] == THROTTLED]
    assert len(throttled) > 50, hot.stdout
    assert {r["key"] for r in throttled} == {"us-east-1#0"}  # the hot key's partition, nothing else
    assert all(r["throttle"] == ["TableWriteKeyRangeThroughputExceeded"] for r in throttled)
    assert "throttled: " in hot.stdout and "TableWriteKeyRangeThroughputExceeded" in hot.stdout
    # Throttled from when its partition's bank ran out to the end, not from the start.
    t0 = min(r["t"] for r in records)
    assert min(r["t"] for r in throttled) - t0 > 1.0

    # The same rate on the same table, spread: the drained partition gets a share it refills faster than spent.
    spread = load(tmp_path / "spread", "--duration-s", str(SPREAD_S))
    records = _history(tmp_path / "spread")
    assert len(records) > 0.9 * SPREAD_S * workload["rate_per_s"] / len(scenario.regions), spread.stdout
    assert [r for r in records if r["error"] is not None] == [], spread.stdout
    assert "throttled: " not in spread.stdout

    done = subprocess.run([*MERIDIAN_COMMAND, "report", str(tmp_path / "hot")], capture_output=True, text=True,
                          timeout=LOAD_TIMEOUT_S, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hot" / "throttles.png").stat().st_size > 0
    assert "TableWriteKeyRangeThroughputExceeded (us-east-1 " in (tmp_path / "hot" / "report.md").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs PR_SET_PDEATHSIG")
def test_the_hot_partition_scenario_passes_and_its_report_plots_the_throttles(tmp_path):
    run_dir = tmp_path / "run"
    work = tmp_path / "work"
    work.mkdir()
    chaos = ManagedProcess(["chaos", "run", str(SCENARIO), "--seed", "1", "--run-dir", str(run_dir)],
                           log_path=tmp_path / "chaos.log", name="meridian chaos", env={"TMPDIR": str(work)})  # fmt: skip
    try:
        code = chaos.wait(CHAOS_TIMEOUT_S)
    finally:
        chaos.terminate()
    output = chaos.log_path.read_text(errors="replace")
    assert code == 0, output
    checks = {c["name"]: c for c in json.loads((run_dir / "checks.json").read_text())}
    assert set(checks) == {"no-acknowledged-write-lost", "convergence", "throttles"}
    assert all(c["passed"] for c in checks.values()), output
    figures = checks["throttles"]["figures"]
    [window] = figures["windows"]
    assert window["region"] == "us-east-1" and window["throttled"] >= 50
    assert figures["elsewhere"]["eu-west-1"]["throttled"] == 0 and figures["elsewhere"]["eu-west-1"]["requests"] > 1000
    assert figures["elsewhere"]["us-east-1"]["throttled"] == 0 and figures["elsewhere"]["us-east-1"]["requests"] > 1000
    assert set(figures["reasons"]) == {"TableWriteKeyRangeThroughputExceeded"}
    run = json.loads((run_dir / "run.json").read_text())
    assert run["args"]["table"] == {"billing_mode": "PROVISIONED", "read_capacity": 100, "write_capacity": 20000}
    assert run["args"]["workload_stats"]["throttled"] == window["throttled"]

    done = subprocess.run([*MERIDIAN_COMMAND, "report", str(run_dir)], capture_output=True, text=True,
                          timeout=LOAD_TIMEOUT_S, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (run_dir / "throttles.png").stat().st_size > 0
    report = (run_dir / "report.md").read_text()
    assert "| hot-key | us-east-1 |" in report and "](throttles.png)" in report
