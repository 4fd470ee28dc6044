"""The containers' health checks (``meridian.lab.probe``) against real Meridian processes.

A two-region local cluster (one node each, so a replicator each) stands in
for the containers: the probe must get a real answer from each role, and
must fail, quickly and with a reason, when pointed at the wrong role or at
nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from meridian.lab import probe
from meridian.cluster.procs import LocalCluster, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LocalCluster needs Linux")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(["a", "b"], 1, None, tmp_path_factory.mktemp("probe"), sync=False) as running:
        yield running


def _port_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_each_role_answers_its_probe(cluster):
    assert probe.probe_node(cluster.node_addresses["a"][0]) == "node a-node-0 answers"
    assert probe.probe_replicator(cluster.replicator_addresses["a"]) == "replicator answers, peers ['b']"
    assert probe.probe_router(_port_of(cluster.endpoints["b"])) == "router of b ok, 1 node(s)"


def test_a_wrong_role_or_nothing_is_unhealthy(cluster):
    with pytest.raises(probe.ProbeFailed, match="no message"):
        probe.probe_node(cluster.replicator_addresses["a"])  # a replicator has no Storage service
    with pytest.raises(OSError):
        probe.probe_node(f"127.0.0.1:{free_port()}")


def test_the_command_line_is_dockers_convention(cluster):
    """Exit 0 and what was seen when healthy; 1 otherwise; fast (it runs every few seconds)."""
    started = time.monotonic()
    ok = subprocess.run([sys.executable, "-m", "meridian.lab.probe", "node", cluster.node_addresses["b"][0]],
                        capture_output=True, text=True, timeout=30)  # fmt: skip
    elapsed_s = time.monotonic() - started
    assert (ok.returncode, ok.stdout.strip()) == (0, "node b-node-0 answers")
    assert elapsed_s < 5
    bad = subprocess.run([sys.executable, "-m", "meridian.lab.probe", "router", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode == 1 and bad.stdout.startswith("unhealthy:")
    usage = subprocess.run([sys.executable, "-m", "meridian.lab.probe", "nope"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2


def test_protobuf_fields_round_trip():
    message = probe._protobuf_bytes_field(1, b"x" * 300) + probe._protobuf_bytes_field(3, b"yz")
    assert probe.protobuf_bytes_fields(message) == {1: b"x" * 300, 3: b"yz"}
