"""Build the lab's image: wheelhouse on the host, a base image, then ``docker build``.

Each step is skipped when its result is already there:

1. **Wheelhouse** (``<lab dir>/context/wheelhouse``): ``pip wheel`` of the
   source checkout, run on the host with a Python 3.11 interpreter (the
   image's Python).  Meridian's own wheel is rebuilt whenever the image is;
   its requirements' wheels are fetched only when the requirements changed.
2. **Base image**: ``python:3.11-slim`` when present or pullable, else
   ``meridian-base:bookworm`` made with debootstrap (``rootfs.py``).
3. **Image** (``meridian:lab``): ``docker build`` of ``deploy/Dockerfile``
   with ``--build-arg BASE_IMAGE=...``; it carries the source fingerprint as
   a label, so it is rebuilt exactly when the source changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from meridian.cluster import limits

from . import rootfs
from .compose import DEFAULT_IMAGE
from .source import source_files, source_hash

PUBLIC_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = f"meridian-base:{rootfs.BASE_SUITE}"
#: The Python every base image runs; the wheelhouse must be built for it.
IMAGE_PYTHON = (3, 11)
PYTHON_ENV = "MERIDIAN_LAB_PYTHON"
SOURCE_HASH_LABEL = "meridian.source-hash"
_DEPS_STAMP = "dependencies.sha256"


class BuildError(RuntimeError):
    """A build step failed, with the reason."""


@dataclass
class BuildResult:
    image: str
    base_image: str
    built: bool  # False when the image was already up to date
    seconds: float


def _docker(args: list[str], timeout_s: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, timeout=timeout_s, text=True, **kwargs)


def image_labels(image: str) -> dict[str, str] | None:
    """The labels of a local image, or None when there is no such image."""
    result = _docker(["image", "inspect", "--format", "{{json .Config.Labels}}", image], limits.DOCKER_INSPECT_TIMEOUT_S,
                     capture_output=True)  # fmt: skip
    if result.returncode != 0:
        return None
    return json.loads(result.stdout or "null") or {}


def image_exists(image: str) -> bool:
    return image_labels(image) is not None


def _try_pull(image: str, log) -> bool:
    log(f"meridian lab: pulling {image}")
    try:
        result = _docker(["pull", image], limits.DOCKER_PULL_TIMEOUT_S, capture_output=True)
    except subprocess.TimeoutExpired:
        log(f"meridian lab: pulling {image} took over {limits.DOCKER_PULL_TIMEOUT_S:g} s; giving up")
        return False
    if result.returncode != 0:
        log(f"meridian lab: cannot pull {image}: {(result.stderr or '').strip().splitlines()[-1:]}")
    return result.returncode == 0


def resolve_base_image(requested: str | None, work_dir: Path, *, offline: bool, log=print) -> str:
    """The base image to build on, making it if needed.

    ``requested`` (``--base-image``) must exist or be pullable.  Otherwise the
    public image if present, else the local debootstrap base if present, else
    the public image if it can be pulled (unless ``offline``), else the local
    base, built now.
    """
    if requested:
        if image_exists(requested) or (not offline and _try_pull(requested, log)):
            return requested
        raise BuildError(f"base image {requested} is neither present nor pullable")
    # A base already here wins over a pull: no network wait on every rebuild,
    # and Docker's layer cache stays valid.
    for present in (PUBLIC_BASE_IMAGE, LOCAL_BASE_IMAGE):
        if image_exists(present):
            return present
    if not offline and _try_pull(PUBLIC_BASE_IMAGE, log):
        return PUBLIC_BASE_IMAGE
    if not image_exists(LOCAL_BASE_IMAGE):
        log(f"meridian lab: building the local base image {LOCAL_BASE_IMAGE} with debootstrap")
        try:
            rootfs.build_base_image(LOCAL_BASE_IMAGE, work_dir, log=log)
        except (rootfs.RootfsError, subprocess.TimeoutExpired) as exc:
            raise BuildError(str(exc)) from exc
    return LOCAL_BASE_IMAGE


def wheel_python() -> str:
    """The interpreter that builds the wheelhouse: ``MERIDIAN_LAB_PYTHON``, else this one."""
    python = os.environ.get(PYTHON_ENV) or sys.executable
    probe = subprocess.run(
        [python, "-c", "import sys, pip; print(*sys.version_info[:2])"], capture_output=True, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if probe.returncode != 0:
        raise BuildError(f"{python} cannot build wheels (no pip): {probe.stderr.strip()}; set {PYTHON_ENV}")
    version = tuple(int(part) for part in probe.stdout.split())
    if version != IMAGE_PYTHON:
        wanted = ".".join(map(str, IMAGE_PYTHON))
        raise BuildError(
            f"the image runs Python {wanted}, so its wheels must be built by a Python {wanted}; "
            f"{python} is {'.'.join(map(str, version))}: set {PYTHON_ENV}=/path/to/python{wanted}"
        )
    return python


def _pip_wheel(python: str, target: str, wheelhouse: Path, extra: list[str]) -> None:
    command = [python, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet", "-w", str(wheelhouse),
               *extra, target]  # fmt: skip
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limits.PIP_WHEEL_TIMEOUT_S)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise BuildError(f"`{' '.join(command)}` failed:\n{tail}")


def wheel_requirements(wheel: Path) -> list[str]:
    """The run-time requirements (``Requires-Dist`` without an extra) in a wheel's metadata."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    requirements = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            requirements.append(line.partition(":")[2].strip())
    return sorted(requirements)


def build_wheelhouse(source: Path, wheelhouse: Path, *, log=print) -> Path:
    """Meridian's wheel, plus wheels of its requirements unless those are already there.

    The requirements are read from the wheel just built (not from
    ``pyproject.toml``, which may change while pip runs): when they differ
    from the last fetched set, pip fetches what is missing.
    """
    python = wheel_python()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    for old in wheelhouse.glob("meridian_db-*.whl"):
        old.unlink()
    started = time.monotonic()
    # From a copy of the packaged files: setuptools would otherwise leave a
    # build/ folder in the checkout, whose stale files can end up in a wheel.
    with tempfile.TemporaryDirectory(prefix="meridian-wheel-") as staging:
        for path in source_files(source):
            target = Path(staging) / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        _pip_wheel(python, staging, wheelhouse, ["--no-deps"])
    wheel = next(wheelhouse.glob("meridian_db-*.whl"))
    requirements_hash = hashlib.sha256("\n".join(wheel_requirements(wheel)).encode()).hexdigest()
    stamp = wheelhouse / _DEPS_STAMP
    if stamp.is_file() and stamp.read_text().strip() == requirements_hash:
        log(f"meridian lab: wheel of {source} built in {time.monotonic() - started:.0f} s (dependencies cached)")
        return wheel
    stamp.unlink(missing_ok=True)
    _pip_wheel(python, str(wheel), wheelhouse, ["--find-links", str(wheelhouse)])
    stamp.write_text(requirements_hash + "\n")
    log(f"meridian lab: wheelhouse built in {time.monotonic() - started:.0f} s ({wheelhouse})")
    return wheel


def build_image(
    source: Path,
    lab_dir: Path,
    *,
    image: str = DEFAULT_IMAGE,
    base_image: str | None = None,
    offline: bool = False,
    force: bool = False,
    log=print,
) -> BuildResult:
    """Make ``image`` current with ``source``; see the module docstring."""
    started = time.monotonic()
    fingerprint = source_hash(source)
    labels = image_labels(image)
    if not force and labels is not None and labels.get(SOURCE_HASH_LABEL) == fingerprint:
        return BuildResult(image, labels.get("meridian.base-image", "?"), False, time.monotonic() - started)
    context = lab_dir / "context"
    build_wheelhouse(source, context / "wheelhouse", log=log)
    base = resolve_base_image(base_image, lab_dir, offline=offline, log=log)
    log(f"meridian lab: building {image} on {base}")
    command = [
        "build", "--force-rm", "--file", str(source / "deploy" / "Dockerfile"), "--tag", image,
        "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"MERIDIAN_SOURCE_HASH={fingerprint}",
        "--label", f"meridian.base-image={base}", str(context),
    ]  # fmt: skip
    # The classic builder: present with every engine (BuildKit needs the buildx plugin).
    env = {**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")}
    result = _docker(command, limits.DOCKER_BUILD_TIMEOUT_S, capture_output=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise BuildError(f"docker build failed:\n{tail}")
    # The images this replaced (and their install stage) are now untagged: drop
    # them, and only them (dangling, labelled by our Dockerfile), so rebuilds
    # do not pile up.
    _docker(["image", "prune", "--force", "--filter", "label=meridian.lab"], limits.DOCKER_INSPECT_TIMEOUT_S, capture_output=True)
    seconds = time.monotonic() - started
    log(f"meridian lab: image {image} built in {seconds:.0f} s")
    return BuildResult(image, base, True, seconds)
