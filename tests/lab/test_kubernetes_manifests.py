"""The Kubernetes manifests (deploy/kubernetes/), checked without a cluster.

No live Kubernetes cluster is available here or in CI, so instead:

* every overlay is rendered with ``kubectl kustomize`` (Debian's
  ``kubernetes-client``: kubectl 1.20 with kustomize 2; newer kubectls read
  the same files) and every object is validated against the Kubernetes API
  schemas, strictly (unknown fields rejected), with ``kubernetes-validate``;
* the shape the docs promise: storage nodes in a StatefulSet with a volume
  claim each and a headless Service, routers behind a Service on 8000 (and
  DAX on 8111), budgets that keep two of three nodes, requests, scrape
  annotations, probes on every container;
* every flag a manifest passes (and every flag of the swarm stack) is one
  ``meridian <command> --help`` lists;
* every probe is run against a real process of its role, started here with
  the manifest's ports mapped to free local ones: the exec probes' commands
  must exit 0 and the HTTP probes' paths must answer 200.

Skipped without kubectl unless ``MERIDIAN_REQUIRE_KUBECTL=1`` (CI installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from meridian.cluster.procs import free_port
from tests.waiting import wait_until

kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("one-region", "three-regions", "region-per-cluster")
#: The oldest Kubernetes the manifests claim (policy/v1 budgets), and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
REGIONS_IN = {"one-region": 1, "three-regions": 3, "region-per-cluster": 1}
PROCESS_START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 60.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("MERIDIAN_REQUIRE_KUBECTL") == "1":
            pytest.fail("MERIDIAN_REQUIRE_KUBECTL=1 but kubectl is not installed (Debian: apt-get install kubernetes-client)")
        pytest.skip("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    return found


def render(overlay: str) -> list[dict]:
    answer = subprocess.run([_kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    return [doc for doc in yaml.safe_load_all(answer.stdout) if doc]


def _containers(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in ("StatefulSet", "Deployment"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                yield doc, container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay):
    docs = render(overlay)
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    regions = REGIONS_IN[overlay]
    assert kinds.count(("StatefulSet", "meridian-node")) == regions
    assert kinds.count(("Deployment", "meridian-router")) == regions
    assert kinds.count(("StatefulSet", "meridian-replicator")) == regions
    assert kinds.count(("PodDisruptionBudget", "meridian-node")) == regions
    for doc in docs:
        name = doc["metadata"]["name"]
        if (doc["kind"], name) == ("StatefulSet", "meridian-node"):
            assert doc["spec"]["replicas"] == 3 and doc["spec"]["serviceName"] == "meridian-node"
            assert [c["metadata"]["name"] for c in doc["spec"]["volumeClaimTemplates"]] == ["data"]
        if (doc["kind"], name) == ("StatefulSet", "meridian-replicator"):
            # A region alone scales it to zero (one without peers has nothing to do and exits).
            assert doc["spec"]["replicas"] == (0 if overlay == "one-region" else 1)
        if (doc["kind"], name) == ("Service", "meridian-node"):
            assert doc["spec"]["clusterIP"] == "None" and doc["spec"]["publishNotReadyAddresses"] is True
        if (doc["kind"], name) == ("Service", "meridian"):
            assert {p["port"] for p in doc["spec"]["ports"]} == {8000, 8111}
        if (doc["kind"], name) == ("PodDisruptionBudget", "meridian-node"):
            assert doc["spec"]["minAvailable"] == 2  # a majority of three
    for doc, container in _containers(docs):
        assert container["resources"]["requests"], container["name"]
        assert "readinessProbe" in container and "livenessProbe" in container, container["name"]
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        if container["name"] in ("router", "replicator"):
            ports = {p["containerPort"] for p in container["ports"]}
            assert annotations["prometheus.io/scrape"] == "true" and int(annotations["prometheus.io/port"]) in ports
            assert annotations["prometheus.io/path"] == "/metrics"


def test_the_validator_rejects_a_bad_manifest():
    """The validation is not vacuous: an unknown field and a wrong type are refused."""
    docs = render("one-region")
    router = next(d for d in docs if d["kind"] == "Deployment")
    router["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(router, KUBERNETES_VERSIONS[-1], strict=True)
    node = next(d for d in docs if d["kind"] == "StatefulSet")
    node["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(node, KUBERNETES_VERSIONS[-1], strict=True)


def _help_flags(*command: str) -> set[str]:
    answer = subprocess.run([sys.executable, "-m", "meridian.main", *command, "--help"], capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT_S, check=True)  # fmt: skip
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", answer.stdout))


def _swarm_commands() -> list[list[str]]:
    stack = yaml.safe_load((ROOT / "deploy" / "swarm" / "stack.yml").read_text())
    return [[str(arg) for arg in service["command"]] for service in stack["services"].values()]


def test_every_flag_passed_exists():
    commands = [container["args"] for _, container in _containers(render("three-regions"))] + _swarm_commands()
    global_flags = _help_flags()
    flags_of: dict[str, set[str]] = {}
    for args in commands:
        at = next(i for i, arg in enumerate(args) if not arg.startswith("-"))  # the subcommand, after global options
        command, leading, rest = args[at], args[:at], args[at + 1:]
        assert {a.split("=")[0] for a in leading} <= global_flags, leading
        if command not in flags_of:
            flags_of[command] = _help_flags(command)
        passed = {a.split("=")[0] for a in rest if a.startswith("--")}
        assert passed <= flags_of[command], f"meridian {command} has no {sorted(passed - flags_of[command])}"
    assert set(flags_of) == {"node", "replicator", "router"}


# --- every probe, against a real process of its role ----------------------------------------


@pytest.fixture
def role_processes(tmp_path):
    """A storage node, a replicator and a router (with DAX), as the manifests start them, on free ports.

    Yields role -> {container port: local port}.
    """
    ports = {"node": {7000: free_port()}, "replicator": {7100: free_port(), 9100: free_port()},
             "router": {8000: free_port(), 8111: free_port()}}  # fmt: skip
    node = f"127.0.0.1:{ports['node'][7000]}"
    replicator = f"127.0.0.1:{ports['replicator'][7100]}"
    commands = [
        ["node", "--listen", node, "--data-dir", str(tmp_path / "node"), "--node-id", "meridian-node-0", "--region", "us-east-1",
         "--peers", f"meridian-node-0={node}"],
        ["replicator", "--region", "us-east-1", "--nodes", f"meridian-node-0={node}", "--peers", f"eu-west-1=127.0.0.1:{free_port()}",
         "--listen", replicator,
         "--data-dir", str(tmp_path / "replicator"), "--metrics-port", str(ports["replicator"][9100])],
        ["router", "--host", "127.0.0.1", "--port", str(ports["router"][8000]), "--region", "us-east-1",
         "--nodes", f"meridian-node-0={node}", "--replicator", replicator, "--dax-port", str(ports["router"][8111])],
    ]  # fmt: skip
    processes = []
    try:
        for args in commands:
            log = open(tmp_path / f"{args[0]}.log", "wb")
            processes.append(subprocess.Popen([sys.executable, "-m", "meridian.main", *args], stdout=log, stderr=subprocess.STDOUT))
            log.close()
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()


def _probe_passes(probe: dict, container: dict, ports: dict[int, int]) -> bool:
    if "exec" in probe:
        command = list(probe["exec"]["command"])
        assert command[:3] == ["python", "-m", "meridian.lab.probe"], command
        host, _, port = command[-1].rpartition(":")
        command = [sys.executable, *command[1:-1], f"{host}:{ports[int(port)]}"]
        return subprocess.run(command, capture_output=True, timeout=COMMAND_TIMEOUT_S).returncode == 0
    http = probe["httpGet"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    port = named.get(http["port"], http["port"])
    try:
        with _DIRECT.open(f"http://127.0.0.1:{ports[int(port)]}{http['path']}", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_every_probe_is_served(role_processes):
    role_of = {"node": "node", "replicator": "replicator", "router": "router"}
    checked = []
    first_of_each = {container["name"]: container for _, container in reversed(list(_containers(render("three-regions"))))}
    for container in first_of_each.values():
        ports = role_processes[role_of[container["name"]]]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in container:
                probe = container[kind]
                wait_until(lambda: _probe_passes(probe, container, ports), PROCESS_START_TIMEOUT_S, 0.5,
                           f"{container['name']}'s {kind} to pass")  # fmt: skip
                checked.append((container["name"], kind))
    assert {name for name, _ in checked} == {"node", "replicator", "router"}
    assert len(checked) == 7  # node: startup, readiness, liveness; the others: readiness, liveness
