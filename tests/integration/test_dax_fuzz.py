"""The DAX fuzzer against a real ``meridian serve --dax-port`` process, for a bounded time.

The cases are those of ``tests/unit/test_dax_fuzz_methods.py`` (valid requests
of every DAX method framed by the real Python client, then mutated: subtrees
replaced, streams cut short, garbage), each on a new TCP connection.  For
``DAX_FUZZ_SECONDS`` (default 20) it checks every answer as the unit test does
(well formed, never InternalServerError), then that the process is still up, logged no traceback, and answers a normal
GetItem through the real client.  The request count and any 5xx answers are
printed (``pytest -s``).  That a rejected write changes no table is checked
in process by the unit test (a consistent scan per case would halve the rate here).
"""

from __future__ import annotations

import os
import socket
import time
import boto3
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok, wait_for_port
from meridian.router.dax.server import MethodId

amazondax = pytest.importorskip("amazondax")
from tests.unit.test_dax_fuzz_methods import (  # noqa: E402
    REQUESTS,
    TABLES,
    Case,
    cases,
    create_table_bodies,
    describe_case,
    judge,
)

REGION = "us-east-1"
FUZZ_S = float(os.environ.get("DAX_FUZZ_SECONDS", "20"))
#: cases drawn per batch (drawn, then sent, until the time is up)
BATCH_CASES = 50
#: how long a connection may stay silent before its case counts as "waiting for more bytes"
SILENT_S = 0.05
#: ... when a whole request was sent and an answer is due
ANSWER_DUE_S = 5.0
CONNECT_S = 5.0


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    http_port, dax_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("dax-fuzz") / "serve.log"
    process = ManagedProcess(
        ["serve", "--in-memory", "--port", str(http_port), "--dax-port", str(dax_port), "--no-throttling"],
        log_path=log, name="serve-dax-fuzz",
    )
    try:
        wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", 30, process=process)
        wait_for_port("127.0.0.1", dax_port, 30, process=process)
        ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{http_port}", region_name=REGION,
                           aws_access_key_id="test", aws_secret_access_key="test")
        for body in create_table_bodies():
            ddb.create_table(**body)
        yield {"process": process, "ddb": ddb, "dax_port": dax_port, "log": log}
    finally:
        process.terminate()


def exchange(port: int, case: Case) -> tuple[bytes, bool]:
    """Sends the case on a new connection; what came back, and whether the server closed it."""
    data = case.framed.prefix + case.data
    out = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=CONNECT_S) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return bytes(out), True
        # authorizeConnection has no answer of its own; a follower's is still due
        answer_due = case.complete and case.method_id is not None and (
            case.method_id != MethodId.authorizeConnection or case.follow)
        while True:
            if answer_due and out:
                verdict = judge(case, bytes(out), False)
                answered = verdict.answered != "none" or case.method_id == MethodId.authorizeConnection
                if answered and not verdict.problems:
                    return bytes(out), False  # a whole answer (and the follower's, if any)
            sock.settimeout(ANSWER_DUE_S if answer_due else SILENT_S)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return bytes(out), False
            except ConnectionResetError:
                return bytes(out), True
            if not chunk:
                return bytes(out), True
            out += chunk


def test_a_real_dax_port_survives_bounded_fuzzing(serve) -> None:
    ddb, port, process = serve["ddb"], serve["dax_port"], serve["process"]
    counts = {"requests": 0, "5xx": 0, "success": 0, "error": 0, "none": 0}
    failures: list[str] = []
    deadline = time.monotonic() + FUZZ_S

    @settings(max_examples=BATCH_CASES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def batch(case: Case) -> None:
        if time.monotonic() > deadline or len(failures) >= 10:
            return
        out, closed = exchange(port, case)
        verdict = judge(case, out, closed)
        counts["requests"] += 1
        counts[verdict.answered] += 1
        problems = list(verdict.problems)
        if any("5xx" in p for p in problems):
            counts["5xx"] += 1
        if problems:
            failures.append(describe_case(case, problems))

    while time.monotonic() < deadline and len(failures) < 10:
        batch()
    print(f"\nDAX fuzz against meridian serve: {counts} in {FUZZ_S:.0f} s over {len(REQUESTS)} methods")

    assert process.alive, process.log_tail()
    assert counts["requests"] > 0
    assert not failures, "\n".join(failures)
    assert "Traceback" not in serve["log"].read_text(errors="replace"), process.log_tail()
    # and it still answers a plain GetItem, through the real client
    ddb.put_item(TableName="fuzz_h", Item={"pk": {"S": "after-fuzz"}, "v": {"N": "7"}})
    client = amazondax.AmazonDaxClient(endpoint_url=f"dax://127.0.0.1:{port}", region_name=REGION,
                                       aws_access_key_id="test", aws_secret_access_key="test")
    try:
        item = client.get_item(TableName="fuzz_h", Key={"pk": {"S": "after-fuzz"}}, ConsistentRead=True)["Item"]
    finally:
        client.close()
    assert item["v"] == {"N": "7"}
