"""One ``meridian serve`` or a two-node local cluster sweeping TTL every ``interval_s``: the
endpoint of the TTL integration tests (``tests/integration/test_ttl_*.py``), stopped when the
test module ends."""

from __future__ import annotations

import pytest

from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok


def ttl_endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, interval_s: float) -> str:
    """``request.param`` is ``"embedded"`` or ``"cluster"``; the region's endpoint URL."""
    tmp = tmp_path_factory.mktemp(f"ttl-{request.param}")
    if request.param == "embedded":
        port = free_port()
        server = ManagedProcess(
            ["serve", "--port", str(port), "--data-dir", str(tmp / "data"), "--ttl-interval-s", str(interval_s)],
            log_path=tmp / "serve.log",
            name="serve",
        )
        request.addfinalizer(server.terminate)
        url = f"http://127.0.0.1:{port}"
        wait_for_http_ok(url + "/health", STARTUP_TIMEOUT_S, process=server)
        return url
    cluster = LocalCluster(["us-east-1"], 2, None, tmp, sync=False, ttl_interval_s=interval_s)
    request.addfinalizer(cluster.stop)
    cluster.start()
    return cluster.endpoints["us-east-1"]
