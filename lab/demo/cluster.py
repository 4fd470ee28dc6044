"""A throw-away two-region ``meridian up`` for a demo started without an endpoint.

It runs as a child process (``meridian.cluster.procs.ManagedProcess``: own process
group, killed with its parent) on free ports, data and log in a temporary
directory; its routers are read from ``up.json``, which ``up`` writes once
every process serves. Its links have the real-world latency between the
two AWS regions (``--realistic-links``). ``stop`` ends it (SIGTERM: ``up`` stops its children
in order) and removes the directory.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import orjson

from meridian.cluster import limits
from meridian.cluster.procs import ManagedProcess, StartupError, wait_for_http_ok

#: The regions of the demo's own cluster (what DynamoDB users know best).
OWN_REGIONS = ("us-east-1", "eu-west-1")
#: Storage nodes per region of the demo's own cluster (one keeps a small machine responsive).
OWN_NODES_PER_REGION = 1


class OwnCluster:
    """``meridian up`` in a temporary directory; ``regions`` maps region -> router URL once started."""

    def __init__(self, regions: tuple[str, ...] = OWN_REGIONS) -> None:
        self.region_names = regions
        self.directory: Path | None = None
        self.process: ManagedProcess | None = None
        self.regions: dict[str, str] = {}

    def start(self, timeout_s: float = limits.DEMO_OWN_UP_TIMEOUT_S) -> dict[str, str]:
        """Start it and wait until every router answers; region -> URL. Stops it again on failure."""
        self.directory = Path(tempfile.mkdtemp(prefix="meridian-demo-"))
        data_dir = self.directory / "cluster"
        try:
            self.process = ManagedProcess(
                ["up", "--regions", ",".join(self.region_names), "--nodes-per-region", str(OWN_NODES_PER_REGION),
                 "--port", "0", "--data-dir", str(data_dir), "--realistic-links"],
                log_path=self.directory / "up.log", name="meridian up (demo)",
            )  # fmt: skip
            state = self._wait_for_state(data_dir / "up.json", timeout_s)
            self.regions = {region: url.rstrip("/") for region, url in state["regions"].items()}
            deadline = time.monotonic() + timeout_s
            for url in self.regions.values():
                wait_for_http_ok(url + "/health", max(0.0, deadline - time.monotonic()), process=self.process)
        except BaseException:
            self.stop()
            raise
        return dict(self.regions)

    def _wait_for_state(self, path: Path, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None
            if not self.process.alive:
                raise StartupError(f"meridian up exited with code {self.process.returncode}:\n{self.process.log_tail()}")
            try:
                state = orjson.loads(path.read_bytes())
                if set(state.get("regions", {})) == set(self.region_names):
                    return state
            except (FileNotFoundError, orjson.JSONDecodeError):
                pass  # not written yet, or being replaced
            if time.monotonic() >= deadline:
                raise StartupError(f"meridian up did not come up within {timeout_s:g} s:\n{self.process.log_tail()}")
            time.sleep(limits.UP_STATE_POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop ``up`` (and through it every process it started); remove the directory."""
        if self.process is not None:
            self.process.terminate()
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __repr__(self) -> str:
        return f"<OwnCluster {self.regions or self.region_names} dir={self.directory}>"
