"""Wall time of a pytest suite against DynamoDB stand-ins: Meridian's fixture, moto, Dynoxide (issue 21).

    python bench/test_suite_wall.py                     # 500 tests, 3 rounds, every target
    python bench/test_suite_wall.py --tests 200 --rounds 1 --targets meridian,moto

The same generated suite runs once per target per round, in a fresh
``python -m pytest`` (interpreter start to exit is the wall time measured):
``--tests`` tests, each of which creates table ``orders`` (hash ``pk``,
range ``sk``), writes ``--items`` items, reads each back with GetItem and
queries them.  Every test creates the same table name, so a suite only
passes if each test starts with no table; how each target gets there is the
habit of its users:

* ``meridian``: the plugin's ``meridian_dynamodb_client`` (one in-memory
  server per session in the test process, every table dropped before each
  test, ``meridian.testing``);
* ``moto``: each test inside ``mock_aws()``, with the client made inside the
  mock, as moto's documentation asks (moto's state is dropped as the mock
  ends);
* ``dynoxide``: one Dynoxide server started for the session (as
  ``bench/targets.py`` starts it, in memory), one client, and every table
  deleted after each test (ListTables + DeleteTable): a server started once
  has no reset.  (DynamoDB Local is not measured: it needs Java or its
  Docker image, neither of which this machine can fetch.)

A one-test suite per target and round gives the fixed cost (interpreter,
imports, server start); the per-test cost is the difference over the other
tests.  Targets run in an order rotated by one each round.  Prints medians
and writes ``bench/results/<stamp>-test-suite-wall.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
TARGET_NAMES = ("meridian", "moto", "dynoxide")
#: One suite may take this long before the run gives up on it.
SUITE_TIMEOUT_S = 1800.0

TEST_FILE = '''
import pytest

TESTS = {tests}
ITEMS = {items}


@pytest.mark.parametrize("n", range(TESTS))
def test_orders(ddb, n):
    ddb.create_table(
        TableName="orders",
        KeySchema=[{{"AttributeName": "pk", "KeyType": "HASH"}}, {{"AttributeName": "sk", "KeyType": "RANGE"}}],
        AttributeDefinitions=[{{"AttributeName": "pk", "AttributeType": "S"}}, {{"AttributeName": "sk", "AttributeType": "S"}}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(ITEMS):
        ddb.put_item(TableName="orders", Item={{"pk": {{"S": "c-1"}}, "sk": {{"S": f"o-{{i:03d}}"}}, "total": {{"N": str(n + i)}}}})
    for i in range(ITEMS):
        item = ddb.get_item(TableName="orders", Key={{"pk": {{"S": "c-1"}}, "sk": {{"S": f"o-{{i:03d}}"}}}})["Item"]
        assert item["total"] == {{"N": str(n + i)}}
    answer = ddb.query(TableName="orders", KeyConditionExpression="pk = :p", ExpressionAttributeValues={{":p": {{"S": "c-1"}}}})
    assert answer["Count"] == ITEMS
'''

_CLIENT = 'boto3.client("dynamodb", {endpoint}region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")'

CONFTESTS = {
    "meridian": '''
import pytest


@pytest.fixture
def ddb(meridian_dynamodb_client):
    return meridian_dynamodb_client
''',
    "moto": f'''
import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def ddb():
    with mock_aws():
        yield {_CLIENT.format(endpoint="")}
''',
    "dynoxide": f'''
import sys
import tempfile
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, {str(BENCH_DIR)!r})
from targets import TARGETS, start_target


@pytest.fixture(scope="session")
def _endpoint():
    with tempfile.TemporaryDirectory(prefix="dynoxide-") as scratch:
        target = start_target(TARGETS["dynoxide"], Path(scratch), Path(scratch), None)
        try:
            yield f"http://127.0.0.1:{{target.port}}"
        finally:
            target.stop()


@pytest.fixture(scope="session")
def _client(_endpoint):
    return {_CLIENT.format(endpoint="endpoint_url=_endpoint, ")}


@pytest.fixture
def ddb(_client):
    yield _client
    for name in _client.list_tables()["TableNames"]:
        _client.delete_table(TableName=name)
''',
}

#: What each target's suite runs with beyond pytest itself: moto and Dynoxide users do not have Meridian's plugin.
PYTEST_ARGS = {"meridian": [], "moto": ["-p", "no:meridian"], "dynoxide": ["-p", "no:meridian"]}


def _project(root: Path, target: str, tests: int, items: int) -> Path:
    project = root / f"{target}-{tests}"
    project.mkdir()
    (project / "conftest.py").write_text(textwrap.dedent(CONFTESTS[target]))
    (project / "test_suite.py").write_text(TEST_FILE.format(tests=tests, items=items))
    return project


def _environment() -> dict[str, str]:
    """No AWS settings from this machine: every client names its own endpoint, region and dummy keys."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "PYTEST_"))}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


def run_suite(project: Path, target: str) -> dict[str, float | int]:
    """One ``python -m pytest`` of ``project``: wall seconds, pytest's own seconds, passed count."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(project),
               *PYTEST_ARGS[target]]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=_environment(), capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
    wall_s = time.perf_counter() - started
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    passed = re.search(r"(\d+) passed", summary)
    reported = re.search(r"in ([\d.]+)s", summary)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise RuntimeError(f"{target}: pytest exited {result.returncode}:\n{tail}")
    return {
        "wall_s": wall_s,
        "pytest_s": float(reported.group(1)) if reported else float("nan"),
        "passed": int(passed.group(1)) if passed else 0,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("meridian-db", "moto", "boto3", "pytest"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    sys.path.insert(0, str(BENCH_DIR))
    from targets import TARGETS

    found["dynoxide"] = TARGETS["dynoxide"].version()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=500, help="tests in the suite (default 500)")
    parser.add_argument("--items", type=int, default=5, help="items each test writes and reads (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every suite (default 3)")
    parser.add_argument("--targets", default=",".join(TARGET_NAMES), help=f"comma-separated among {', '.join(TARGET_NAMES)}")
    ns = parser.parse_args(argv)
    targets = [name.strip() for name in ns.targets.split(",") if name.strip()]
    unknown = sorted(set(targets) - set(TARGET_NAMES))
    if unknown or not targets:
        parser.error(f"unknown targets {unknown}; choose among {', '.join(TARGET_NAMES)}")

    runs: dict[str, list[dict]] = {target: [] for target in targets}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="suite-wall-") as scratch:
        for round_index in range(ns.rounds):
            order = targets[round_index % len(targets):] + targets[: round_index % len(targets)]
            for target in order:
                root = Path(scratch) / f"round{round_index}"
                root.mkdir(exist_ok=True)
                fixed = run_suite(_project(root, target, 1, ns.items), target)
                full = run_suite(_project(root, target, ns.tests, ns.items), target)
                if full["passed"] != ns.tests:
                    raise RuntimeError(f"{target}: {full['passed']} of {ns.tests} tests passed")
                per_test_ms = (full["wall_s"] - fixed["wall_s"]) / max(ns.tests - 1, 1) * 1000
                runs[target].append({"round": round_index, "one_test": fixed, "suite": full, "per_test_ms": per_test_ms})
                print(f"round {round_index + 1}/{ns.rounds} {target:<9} {ns.tests} tests: wall {full['wall_s']:6.2f} s "
                      f"(pytest {full['pytest_s']:.2f} s), 1 test: {fixed['wall_s']:.2f} s, "
                      f"per test {per_test_ms:.2f} ms", flush=True)  # fmt: skip

    summary = {}
    for target, target_runs in runs.items():
        summary[target] = {
            "suite_wall_s": statistics.median(r["suite"]["wall_s"] for r in target_runs),
            "one_test_wall_s": statistics.median(r["one_test"]["wall_s"] for r in target_runs),
            "per_test_ms": statistics.median(r["per_test_ms"] for r in target_runs),
        }
    print(f"\nmedians over {ns.rounds} round(s), {ns.tests} tests x ({ns.items} PutItem + {ns.items} GetItem + 1 Query + CreateTable):")
    print(f"| target | suite wall (s) | 1-test suite (s) | per test (ms) | vs meridian |")
    print("|---|---:|---:|---:|---:|")
    base = summary.get("meridian", {}).get("suite_wall_s")
    for target, row in summary.items():
        ratio = f"{row['suite_wall_s'] / base:.2f}x" if base else "-"
        print(f"| {target} | {row['suite_wall_s']:.2f} | {row['one_test_wall_s']:.2f} | {row['per_test_ms']:.2f} | {ratio} |")

    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS_DIR / f"{stamp}-test-suite-wall.json"
    out.write_text(json.dumps({
        "tests": ns.tests, "items": ns.items, "rounds": ns.rounds, "versions": _versions(),
        "load_before": load_before, "load_after": os.getloadavg(), "cpus": os.cpu_count(),
        "summary": summary, "runs": runs,
    }, indent=2))  # fmt: skip
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
