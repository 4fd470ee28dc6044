"""The Meridian source checkout the lab is built from, and a fingerprint of it.

The image holds a wheel of this checkout, so the lab needs the checkout:
``--source DIR``, else ``MERIDIAN_SOURCE``, else the checkout this package
was installed from in editable mode, else the current directory or one of
its parents.  The fingerprint covers every file that ends up in the wheel
(the package folders ``pyproject.toml`` maps) plus the files that shape the
image, so the image is rebuilt exactly when one of them changed.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path

SOURCE_ENV = "MERIDIAN_SOURCE"
#: Files outside the package folders that change the wheel or the image.
IMAGE_INPUTS = ("pyproject.toml", "README.md", "deploy/Dockerfile")
_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class SourceNotFound(RuntimeError):
    """No Meridian source checkout where one was looked for."""


def _is_checkout(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "deploy" / "Dockerfile").is_file()


def find_source(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The checkout to build from (see the module docstring for the order)."""
    if explicit is None:
        explicit = os.environ.get(SOURCE_ENV) or None
    if explicit is not None:
        path = Path(explicit).resolve()
        if not _is_checkout(path):
            raise SourceNotFound(f"{path} is not a Meridian source checkout (no pyproject.toml and deploy/Dockerfile)")
        return path
    here = Path(__file__).resolve().parent  # <checkout>/lab in an editable install
    candidates = [here.parent, *[Path.cwd(), *Path.cwd().parents]]
    for candidate in candidates:
        if _is_checkout(candidate):
            return candidate
    raise SourceNotFound(
        "the lab builds its image from a Meridian source checkout: run from inside one, "
        f"or pass --source DIR (or set {SOURCE_ENV})"
    )


def package_dirs(source: Path) -> list[Path]:
    """The folders ``pyproject.toml`` maps onto ``meridian.*`` packages."""
    config = tomllib.loads((source / "pyproject.toml").read_text())
    mapped = config.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    return sorted({source / folder for folder in mapped.values()})


def source_files(source: Path) -> list[Path]:
    """Every file the wheel and the image are made from, sorted."""
    files = {source / name for name in IMAGE_INPUTS if (source / name).is_file()}
    for folder in package_dirs(source):
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
            files.update(Path(root) / name for name in names if Path(name).suffix not in _SKIPPED_SUFFIXES)
    return sorted(files)


def source_hash(source: Path) -> str:
    """A SHA-256 over the relative paths and contents of ``source_files``."""
    digest = hashlib.sha256()
    for path in source_files(source):
        digest.update(str(path.relative_to(source)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
