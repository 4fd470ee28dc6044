"""``meridian chaos run``: shipped scenarios against a ``meridian up`` of the run's own.

Each test runs the command as a user does, in a child process (its own
``meridian up`` of three regions is a grandchild, tied to it by the
parent-death signal), then reads the run directory: every check passed, and
the figures show the fault really happened (a backlog built up, errors in
the faulted region only) and was survived.  A last test makes a check
impossible and requires the run to fail.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import orjson
import pytest

from meridian.cluster.procs import ManagedProcess
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and PR_SET_PDEATHSIG")

SCENARIOS = Path(__file__).resolve().parents[2] / "deploy" / "scenarios"
#: A 30 s scenario, the cluster's start and the checks, on a busy CI machine.
RUN_TIMEOUT_S = 240.0


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if text in argv and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def run_chaos(tmp_path: Path, *args: str) -> tuple[int, str, Path]:
    """``meridian chaos run <args> --run-dir <tmp>/run``: (exit code, output, run dir); its own
    cluster lives under ``tmp_path`` (TMPDIR), and nothing of it may outlive the run."""
    run_dir = tmp_path / "run"
    work = tmp_path / "work"
    work.mkdir()
    chaos = ManagedProcess(["chaos", "run", *args, "--run-dir", str(run_dir)], log_path=tmp_path / "chaos.log",
                           name="meridian chaos", env={"TMPDIR": str(work)})  # fmt: skip
    try:
        code = chaos.wait(RUN_TIMEOUT_S)
    finally:
        chaos.terminate()
    output = chaos.log_path.read_text(errors="replace")
    wait_until(lambda: _processes_mentioning(str(work)) == [], 10, 0.1, "the run's cluster processes to be gone")
    return code, output, run_dir


def _checks(run_dir: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((run_dir / "checks.json").read_text())}


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_region_partition_under_load_passes_every_check(tmp_path):
    code, output, run_dir = run_chaos(tmp_path, str(SCENARIOS / "region-partition.yaml"), "--seed", "1")
    assert code == 0, output
    assert any(line.startswith("chaos: scenario region-partition, seed 1") for line in output.splitlines())
    checks = _checks(run_dir)
    assert set(checks) == {"no-acknowledged-write-lost", "convergence", "lag-bound", "availability"}
    assert all(c["passed"] for c in checks.values()), output

    run = json.loads((run_dir / "run.json").read_text())
    assert (run["kind"], run["scenario"], run["seed"], run["target"]) == ("scenario", "region-partition", 1, "up")
    assert set(run["regions"]) == {"us-east-1", "eu-west-1", "ap-southeast-2"}
    assert run["started_at"] < run["ended_at"]

    faults = _lines(run_dir / "faults.jsonl")
    assert [(f["fault"], f["target"], f["phase"], f["error"]) for f in faults] == [
        ("region-isolate", "ap-southeast-2", "inject", None), ("region-isolate", "ap-southeast-2", "revert", None),
    ]  # fmt: skip
    assert 9 < faults[1]["t"] - faults[0]["t"] < 11  # 10 s of partition, however it was jittered

    # The partition was real: ap-southeast-2's changes piled up, and arrived ~10 s late after the heal.
    lag = checks["lag-bound"]["figures"]
    assert lag["backlog_at_heal"] > 50 and lag["lag_peak_ms"] > 5000
    assert lag["catch_up_s"] is not None and lag["lag_after_samples"] > 0
    samples = _lines(run_dir / "lag.jsonl")
    assert {s["window"] for s in samples} == {"total", "delta"}
    isolated = [s for s in samples if faults[0]["t"] + 2 < s["t"] < faults[1]["t"] and "ap-southeast-2" in (s["source"], s["target"])]
    assert isolated and all(s["count"] == 0 for s in isolated if s["window"] == "delta")

    # ... and the partitioned region kept serving its own reads and writes meanwhile.
    regions = checks["availability"]["figures"]["regions"]
    inside = regions["ap-southeast-2"]["inside"]
    assert inside["requests"] > 50 and inside["errors"] == 0
    assert checks["no-acknowledged-write-lost"]["figures"]["keys_lost"] == 0


def test_node_kill_under_load_passes_every_check(tmp_path):
    code, output, run_dir = run_chaos(tmp_path, str(SCENARIOS / "node-kill.yaml"), "--seed", "1")
    assert code == 0, output
    checks = _checks(run_dir)
    assert all(c["passed"] for c in checks.values()), output
    faults = _lines(run_dir / "faults.jsonl")
    assert [(f["fault"], f["phase"]) for f in faults] == [("process-kill", "inject"), ("process-kill", "revert")]
    victim = faults[0]["target"]
    assert victim in ("eu-west-1/node-0", "eu-west-1/node-1")
    # The kill had an effect in its region only: errors there while it was down, none elsewhere.
    errors: dict[str, int] = {}
    for record in _lines(run_dir / "history.jsonl"):
        if not record["ok"] and faults[0]["t"] <= record["t"] <= faults[1]["t"] + faults[1]["took_ms"] / 1000 + 5:
            errors[record["region"]] = errors.get(record["region"], 0) + 1
    assert set(errors) == {"eu-west-1"} and errors["eu-west-1"] > 0
    assert checks["availability"]["figures"]["judged_regions"] == ["us-east-1", "ap-southeast-2"]
    # The node came back with its data: nothing it acknowledged is lost.
    assert checks["no-acknowledged-write-lost"]["passed"] and checks["convergence"]["passed"]
    assert (run_dir / "logs" / f"{victim.replace('/', '-')}.log").read_text().count(" start: ") == 2


def test_a_scenario_with_an_impossible_lag_bound_fails_the_run(tmp_path):
    scenario = (SCENARIOS / "region-partition.yaml").read_text().replace(
        "lag-bound: {max_ms: 2000, settle_s: 4, catch_up_max_s: 15}", "lag-bound: {max_ms: 0, settle_s: 1}"
    )
    assert "max_ms: 0" in scenario
    path = tmp_path / "impossible.yaml"
    path.write_text(scenario)
    # Scaled down, with room after the heal for the backlog to drain and fresh changes to be measured.
    code, output, run_dir = run_chaos(tmp_path, str(path), "--seed", "2", "--duration-scale", "0.8")
    assert code == 1, output
    checks = _checks(run_dir)
    assert not checks["lag-bound"]["passed"] and "exceeds 0 ms" in checks["lag-bound"]["detail"], output
    assert checks["convergence"]["passed"] and checks["no-acknowledged-write-lost"]["passed"]
    assert "lag-bound                   FAIL" in output and "chaos: FAILED (3/4 checks)" in output
