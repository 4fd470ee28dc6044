"""Every compatibility test runs against each way of running Meridian.

``endpoint`` is session-scoped and parametrised: ``embedded`` is one
``meridian serve`` process, ``cluster`` is a LocalCluster of one region with
three storage nodes behind a router.  Tests here are black-box (``ddb`` and
``endpoint`` only), so the same file checks both.  Pytest groups the tests
by parameter and stops one server before starting the other.

``MERIDIAN_TEST_MODES=embedded`` (comma-separated) restricts the modes.
"""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from helpers import create_table
from meridian.cluster.limits import STARTUP_TIMEOUT_S
from meridian.cluster.procs import LocalCluster, ManagedProcess, free_port, wait_for_http_ok
from tests.conftest import make_client

MODES = ("embedded", "cluster")


def _selected_modes() -> list[str]:
    raw = os.environ.get("MERIDIAN_TEST_MODES", ",".join(MODES))
    modes = [m.strip() for m in raw.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise pytest.UsageError(f"MERIDIAN_TEST_MODES={raw!r}: choose among {', '.join(MODES)}")
    return modes


def _start_embedded(request: pytest.FixtureRequest, tmp_dir) -> str:
    port = free_port()
    server = ManagedProcess(
        ["serve", "--port", str(port), "--data-dir", str(tmp_dir / "data")],
        log_path=tmp_dir / "serve.log",
        name="serve",
    )
    request.addfinalizer(server.terminate)  # before waiting: a failed start is cleaned up too
    endpoint = f"http://127.0.0.1:{port}"
    wait_for_http_ok(endpoint + "/health", STARTUP_TIMEOUT_S, process=server)
    return endpoint


def _start_cluster(request: pytest.FixtureRequest, tmp_dir) -> str:
    cluster = LocalCluster(["us-east-1"], 3, None, tmp_dir, sync=False)
    request.addfinalizer(cluster.stop)
    cluster.start()
    return cluster.endpoints["us-east-1"]


@pytest.fixture(scope="session", params=_selected_modes())
def endpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Base URL (``http://127.0.0.1:<port>``) of a running Meridian in one mode."""
    tmp_dir = tmp_path_factory.mktemp(request.param)
    if request.param == "embedded":
        return _start_embedded(request, tmp_dir)
    return _start_cluster(request, tmp_dir)


@pytest.fixture(scope="session")
def ddb(endpoint: str):
    """A boto3 DynamoDB client for ``endpoint``."""
    return make_client(endpoint)


@pytest.fixture
def table(ddb):
    """Factory: ``table(pk=("id", "S"), sk=None, **create_table_kwargs) -> name``.

    Creates a uniquely named ACTIVE table; every table made this way is
    deleted when the test ends.
    """
    created: list[str] = []

    def make(**kwargs) -> str:
        name = create_table(ddb, **kwargs)
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            ddb.delete_table(TableName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
