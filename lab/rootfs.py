"""A Debian root filesystem made with debootstrap, imported as a Docker base image.

For machines that cannot pull the public Python image.  The Debian suite is
the one whose Python matches the image's wheels (bookworm: Python 3.11, as
``python:3.11-slim``); the mirror is the one this machine's apt already uses,
read from ``/etc/apt/sources.list.d/*.sources`` (deb822) or
``/etc/apt/sources.list`` at run time, so no mirror is ever written down
here.  The result is trimmed (apt lists and caches, documentation, man pages,
locales) and streamed into ``docker import``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from meridian.cluster import limits

#: Debian suite of the local base image: its python3 is 3.11, like the public image.
BASE_SUITE = "bookworm"
BASE_PYTHON = "3.11"
#: Packages on top of minbase: the interpreter, venv (for ``python3 -m venv``), CA certificates.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")
#: Trimmed from the root filesystem before import: nothing the lab runs reads them.
TRIMMED_PATHS = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/log",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
)


class RootfsError(RuntimeError):
    """The base image could not be made, with the reason."""


def _deb822_mirrors(text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each ``Types: deb`` stanza of a deb822 ``.sources`` file."""
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key is not None:  # continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split()))
    return found


def _one_line_mirrors(text: str) -> list[tuple[str, list[str]]]:
    """(URI, [suite]) of each ``deb`` line of a one-line-style sources list."""
    found = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options, e.g. [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            found.append((words[0], [words[1]]))
    return found


def apt_mirror(suite: str = BASE_SUITE) -> str:
    """The Debian archive URI this machine's apt uses (the main archive, not security)."""
    entries: list[tuple[str, list[str]]] = []
    if APT_SOURCES_DIR.is_dir():
        for path in sorted(APT_SOURCES_DIR.glob("*.sources")):
            entries += _deb822_mirrors(path.read_text(errors="replace"))
        for path in sorted(APT_SOURCES_DIR.glob("*.list")):
            entries += _one_line_mirrors(path.read_text(errors="replace"))
    if APT_SOURCES_LIST.is_file():
        entries += _one_line_mirrors(APT_SOURCES_LIST.read_text(errors="replace"))
    main_archive = [uri for uri, suites in entries if "security" not in uri]
    for uri, suites in entries:  # best: the archive that serves our suite itself
        if suite in suites and uri in main_archive:
            return uri
    if main_archive:  # a Debian of another release: its archive also serves ours
        return main_archive[0]
    raise RootfsError(
        f"no Debian mirror found in {APT_SOURCES_DIR}/*.sources or {APT_SOURCES_LIST}; "
        "build with the public base image instead (--base-image)"
    )


def _trim(root: Path) -> None:
    for relative in TRIMMED_PATHS:
        path = root / relative
        if path.is_dir():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def build_base_image(tag: str, work_dir: Path, *, log=print) -> None:
    """debootstrap ``BASE_SUITE`` (minbase + ``BASE_PACKAGES``) and ``docker import`` it as ``tag``."""
    if shutil.which("debootstrap") is None:
        raise RootfsError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise RootfsError("debootstrap needs root; run as root, or use a base image you can pull (--base-image)")
    mirror = apt_mirror()
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=work_dir) as scratch:
        root = Path(scratch) / "root"
        log(f"meridian lab: debootstrap {BASE_SUITE} ({', '.join(BASE_PACKAGES)}) from {mirror}")
        result = subprocess.run(
            [
                "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE, str(root), mirror,
            ],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=limits.DEBOOTSTRAP_TIMEOUT_S,
        )  # fmt: skip
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise RootfsError(f"debootstrap failed (exit {result.returncode}):\n{tail}")
        python = root / "usr" / "bin" / f"python{BASE_PYTHON}"
        if not python.exists():
            raise RootfsError(f"{BASE_SUITE} has no python{BASE_PYTHON}: the wheels would not fit it")
        _trim(root)
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-c", "."], stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            imported = subprocess.run(
                ["docker", "import", "--change", "CMD [\"/bin/bash\"]",
                 "--message", f"debootstrap {BASE_SUITE} minbase + {' '.join(BASE_PACKAGES)}", "-", tag],
                stdin=tar.stdout, capture_output=True, text=True, timeout=limits.DOCKER_IMPORT_TIMEOUT_S,
            )  # fmt: skip
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar_status = tar.wait()
        if tar_status != 0 or imported.returncode != 0:
            raise RootfsError(f"docker import failed (tar exit {tar_status}): {imported.stderr.strip()}")
    log(f"meridian lab: base image {tag} built in {time.monotonic() - started:.0f} s")
