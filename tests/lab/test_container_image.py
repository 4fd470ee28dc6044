"""The image as a one-line DynamoDB endpoint: ``docker run -p PORT:8000 IMAGE``, then the aws CLI.

First, without Docker: how the entrypoint (``meridian.lab.entrypoint``)
picks a bare ``serve``'s data folder, and that every other command (the
lab's compose services) passes through untouched.

Then, with Docker: the image built as ``meridian lab build --offline``
builds it (the same ``meridian:lab`` the compose lab test uses: when the
source has not changed since, the build is a fingerprint check), one
container with no volume that serves the README's aws CLI challenge
(create-table, put-item, get-item) and passes its own HEALTHCHECK command,
and two containers in turn on one named volume, the second reading what the
first wrote.  Containers and the volume are removed whatever happens; the
wall time of each phase is printed (``pytest -s``).

Like the other Docker tests: skipped when Docker is not usable (a dockerd is
started when we are root and one is installed), FAILS instead when
``MERIDIAN_REQUIRE_DOCKER=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from meridian.cluster.procs import free_port
from meridian.lab import entrypoint
from meridian.lab.cli import default_lab_dir
from meridian.lab.compose import DEFAULT_IMAGE
from meridian.lab.dockerd import DockerUnavailable, ensure_docker, started_dockerd_pid, stop_started_dockerd
from meridian.lab.lock import exclusive_lab
from tests.conftest import make_client
from tests.lab.test_compose_lab import LOCK_TIMEOUT_S, _lab, _unavailable
from tests.waiting import wait_until

#: A cold build (debootstrap base, wheelhouse, image) takes minutes.
CONTAINER_TEST_TIMEOUT_S = 1500
SERVE_TIMEOUT_S = 60.0
DOCKER_TIMEOUT_S = 120
AWS_TIMEOUT_S = 60

DOCKER_MOUNTINFO = """\
1290 1102 0:139 / / rw,relatime master:511 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A
1291 1290 0:141 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1300 1290 8:1 /var/lib/docker/volumes/meridian-data/_data /data rw,relatime master:1 - ext4 /dev/sda1 rw
1301 1290 0:143 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
"""
NO_VOLUME_MOUNTINFO = "\n".join(line for line in DOCKER_MOUNTINFO.splitlines() if " /data " not in line)
SERVE = ["serve", "--host", "0.0.0.0", "--port", "8000"]


# --- the entrypoint's choice, no Docker -------------------------------------------------


def test_a_mounted_volume_keeps_the_data():
    assert entrypoint.is_mount_point("/data", DOCKER_MOUNTINFO)
    extra, why = entrypoint.data_choice(SERVE, {}, DOCKER_MOUNTINFO)
    assert extra == ["--data-dir", "/data"] and "mounted volume" in why


def test_without_a_volume_the_data_lives_for_the_run_outside_data():
    assert not entrypoint.is_mount_point("/data", NO_VOLUME_MOUNTINFO)
    extra, why = entrypoint.data_choice(SERVE, {}, NO_VOLUME_MOUNTINFO)
    assert extra == ["--data-dir", entrypoint.SCRATCH_DIR] and entrypoint.SCRATCH_DIR != "/data"
    assert "for this run only" in why and "-v meridian-data:/data" in why


def test_meridian_data_overrides_the_detection():
    assert entrypoint.data_choice(SERVE, {"MERIDIAN_DATA": "memory"}, DOCKER_MOUNTINFO)[0] == ["--in-memory"]
    assert entrypoint.data_choice(SERVE, {"MERIDIAN_DATA": "/srv/x"}, NO_VOLUME_MOUNTINFO)[0] == ["--data-dir", "/srv/x"]


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--data-dir", "/elsewhere"],
        ["serve", "--data-dir=/elsewhere"],
        ["serve", "--in-memory"],
        ["--log-level=WARNING", "node", "--listen", "0.0.0.0:7000", "--data-dir", "/data"],
        ["--log-level", "INFO", "router", "--port", "8000", "--nodes", "a=a:7000"],
        ["--help"],
        [],
    ],
)
def test_other_commands_and_explicit_folders_pass_through(args):
    assert entrypoint.data_choice(args, {"MERIDIAN_DATA": "/srv/x"}, DOCKER_MOUNTINFO) == ([], "")


def test_the_global_log_level_value_is_not_the_command():
    assert entrypoint.command_word(["--log-level", "serve", "node"]) == "node"
    assert entrypoint.command_word(["--log-level", "DEBUG", "serve"]) == "serve"


def test_an_escaped_mount_point_is_read_back():
    assert entrypoint.is_mount_point("/my data", "7 1 0:1 / /my\\040data rw - tmpfs t rw\n")


# --- the image, with Docker --------------------------------------------------------------


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=DOCKER_TIMEOUT_S)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def _aws(endpoint: str, *args: str) -> dict:
    beside = os.path.join(os.path.dirname(sys.executable), "aws")
    binary = beside if os.path.exists(beside) else shutil.which("aws")
    assert binary is not None, "the aws CLI is a test dependency (awscli) but is not installed"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")  # fmt: skip
    done = subprocess.run([binary, "dynamodb", *args, "--endpoint-url", endpoint, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=AWS_TIMEOUT_S)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


def _serves(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


class Containers:
    """The containers and volumes a test started, removed at the end (by the names it gave them)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def volume(self) -> str:
        name = f"meridian-test-data-{self.tag}"
        self.volumes.append(name)
        return name

    def run(self, *docker_args: str) -> tuple[str, str]:
        """``docker run -d -p PORT:8000 [docker_args] IMAGE``; (container name, endpoint) once it serves."""
        name = f"meridian-test-serve-{self.tag}-{len(self.containers)}"
        port = free_port()
        self.containers.append(name)
        _docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", *docker_args, DEFAULT_IMAGE)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _serves(endpoint), SERVE_TIMEOUT_S, 0.1, f"{name} to serve on {endpoint}")
        except BaseException:
            print(_docker("logs", name, check=False).stdout + _docker("logs", name, check=False).stderr)
            raise
        return name, endpoint

    def remove(self) -> None:
        for name in self.containers:
            _docker("rm", "--force", "--volumes", name, check=False)
        for name in self.volumes:
            _docker("volume", "rm", "--force", name, check=False)


@pytest.fixture
def image():
    """Docker usable (dockerd started if need be) and the lab's image current with the source.

    The lab is held for the test (one build at a time with the compose lab's
    tests, which share the image); a dockerd the test made the lab start is
    stopped again, as those tests do.
    """
    lab_dir = default_lab_dir()
    dockerd_before = started_dockerd_pid(lab_dir)
    try:
        ensure_docker(lab_dir)
    except DockerUnavailable as exc:
        _unavailable(str(exc))
    with exclusive_lab(lab_dir, LOCK_TIMEOUT_S):
        try:
            started = time.monotonic()
            built = _lab("build", "--offline")
            assert built.returncode == 0, built.stderr
            print(f"image {DEFAULT_IMAGE} current in {time.monotonic() - started:.1f} s")
            yield DEFAULT_IMAGE
        finally:
            if dockerd_before is None and started_dockerd_pid(lab_dir) is not None:
                stop_started_dockerd(lab_dir)


@pytest.mark.slow
@pytest.mark.timeout(CONTAINER_TEST_TIMEOUT_S)
def test_docker_run_serves_the_aws_cli_challenge(image):
    containers = Containers()
    timings: dict[str, float] = {}
    try:
        started = time.monotonic()
        name, endpoint = containers.run()
        timings["docker run, until it serves"] = time.monotonic() - started
        logs = _docker("logs", name)
        assert "meridian container: data for this run only" in logs.stdout, logs.stdout + logs.stderr
        health = _docker("inspect", "--format", "{{json .Config.Healthcheck.Test}}", name).stdout
        assert "meridian.lab.probe" in health
        check = _docker("exec", name, *json.loads(health)[1:])  # the HEALTHCHECK's own command, run now
        assert "ok" in check.stdout

        started = time.monotonic()
        created = _aws(endpoint, "create-table", "--table-name", "DevOpsInventory",
                       "--attribute-definitions", "AttributeName=ResourceID,AttributeType=S",
                       "--key-schema", "AttributeName=ResourceID,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST")  # fmt: skip
        assert created["TableDescription"]["TableName"] == "DevOpsInventory"
        item = {"ResourceID": {"S": "i-12345"}, "ResourceType": {"S": "EC2Instance"}, "vCPUs": {"N": "2"},
                "Tags": {"M": {"Team": {"S": "platform"}}}}  # fmt: skip
        _aws(endpoint, "put-item", "--table-name", "DevOpsInventory", "--item", json.dumps(item))
        got = _aws(endpoint, "get-item", "--table-name", "DevOpsInventory", "--key", '{"ResourceID": {"S": "i-12345"}}')
        assert got["Item"] == item
        timings["aws CLI: create-table, put-item, get-item"] = time.monotonic() - started

        started = time.monotonic()
        volume = containers.volume()
        first, endpoint = containers.run("-v", f"{volume}:/data")
        assert "a mounted volume" in _docker("logs", first).stdout
        make_client(endpoint).create_table(
            TableName="kept", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        _docker("stop", first)  # SIGTERM to PID 1: meridian itself, which closes its engine
        _, endpoint = containers.run("-v", f"{volume}:/data")
        assert make_client(endpoint).list_tables()["TableNames"] == ["kept"]
        timings["a volume, two containers in turn"] = time.monotonic() - started
    finally:
        started = time.monotonic()
        containers.remove()
        timings["removing containers and volume"] = time.monotonic() - started
        for phase, seconds in timings.items():
            print(f"{phase}: {seconds:.1f} s")
