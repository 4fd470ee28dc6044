"""Is Docker usable here; start a Docker daemon when none is running.

``meridian lab`` starts ``dockerd`` itself only when the Docker CLI cannot
reach a daemon and ``dockerd`` is installed and we are root: the usual case
on a CI machine or a fresh container where the package is installed but no
service manager runs.  The daemon started that way is recorded in the lab's
state folder (``dockerd.pid``, its output in ``dockerd.log``) and is left
running for the next ``lab up``; ``lab down --stop-dockerd`` stops it, by
that PID, and only if the lab started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from meridian.cluster import limits
from meridian.cluster.procs import pid_running

PID_FILE = "dockerd.pid"
LOG_FILE = "dockerd.log"


class DockerUnavailable(RuntimeError):
    """Docker cannot be used here, with the reason."""


def docker_usable() -> tuple[bool, str]:
    """(True, server version) when the Docker CLI reaches a daemon, else (False, why)."""
    if shutil.which("docker") is None:
        return False, "the docker CLI is not installed"
    try:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limits.DOCKER_INFO_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False, f"`docker info` did not answer within {limits.DOCKER_INFO_TIMEOUT_S:g} s"
    if probe.returncode != 0 or not probe.stdout.strip():
        return False, (probe.stderr.strip() or probe.stdout.strip() or "`docker info` failed").splitlines()[-1]
    return True, probe.stdout.strip()


def _is_dockerd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
    except OSError:
        return False


def started_dockerd_pid(state_dir: Path) -> int | None:
    """The PID of the dockerd this lab started, if it still runs."""
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_running(pid) and _is_dockerd(pid) else None


def ensure_docker(state_dir: Path, *, start: bool = True) -> str:
    """Return the daemon's version, starting dockerd first if needed and allowed.

    Raises ``DockerUnavailable`` with what is missing.
    """
    usable, detail = docker_usable()
    if usable:
        return detail
    if not start:
        raise DockerUnavailable(f"Docker is not usable: {detail}")
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker CLI is not installed (Debian: apt-get install docker.io)")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailable(f"Docker is not usable ({detail}) and dockerd is not installed to start one")
    if os.geteuid() != 0:
        raise DockerUnavailable(f"Docker is not usable ({detail}); start the Docker service (starting dockerd needs root)")
    if started_dockerd_pid(state_dir) is None:
        _start_dockerd(dockerd, state_dir)
    deadline = time.monotonic() + limits.DOCKERD_START_TIMEOUT_S
    while time.monotonic() < deadline:
        usable, detail = docker_usable()
        if usable:
            return detail
        if started_dockerd_pid(state_dir) is None:
            break
        time.sleep(limits.DOCKERD_POLL_INTERVAL_S)
    raise DockerUnavailable(f"dockerd did not come up ({detail}); see {state_dir / LOG_FILE}")


def _start_dockerd(dockerd: str, state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOG_FILE, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} meridian lab starts {dockerd}\n".encode())
        log.flush()
        # Its own session: it outlives this command, and a Ctrl-C here does not reach it.
        process = subprocess.Popen(
            [dockerd], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (state_dir / PID_FILE).write_text(f"{process.pid}\n")
    print(f"meridian lab: started dockerd (pid {process.pid}, log {state_dir / LOG_FILE})", flush=True)
    return process.pid


def stop_started_dockerd(state_dir: Path) -> int | None:
    """Stop the dockerd this lab started (by its recorded PID); return that PID, or None."""
    pid = started_dockerd_pid(state_dir)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + limits.DOCKERD_STOP_TIMEOUT_S
    while pid_running(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(limits.DOCKERD_POLL_INTERVAL_S)
    if pid_running(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    (state_dir / PID_FILE).unlink(missing_ok=True)
    return pid


def _reap(pid: int) -> None:
    """Collect the exit status if the daemon is our own child (started in this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
