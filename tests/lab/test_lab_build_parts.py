"""Pieces of the image build that need no Docker: mirror discovery, the source fingerprint."""

from __future__ import annotations

import shutil
from pathlib import Path

from meridian.lab import rootfs, source

DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib
deb http://one.example/debian-security bookworm-security main
"""


def test_deb822_sources_give_uris_and_suites():
    assert rootfs._deb822_mirrors(DEB822) == [
        ("http://mirror.example/debian", ["bookworm", "bookworm-updates"]),
        ("http://mirror.example/debian-security", ["bookworm-security"]),
    ]


def test_one_line_sources_skip_options_and_comments():
    assert rootfs._one_line_mirrors(ONE_LINE) == [
        ("http://one.example/debian", ["bookworm"]),
        ("http://one.example/debian-security", ["bookworm-security"]),
    ]


def test_the_mirror_is_the_main_archive_never_security(tmp_path, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    monkeypatch.setattr(rootfs, "APT_SOURCES_DIR", tmp_path / "sources.list.d")
    monkeypatch.setattr(rootfs, "APT_SOURCES_LIST", tmp_path / "missing.list")
    assert rootfs.apt_mirror("bookworm") == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "one.list").write_text(ONE_LINE)
    monkeypatch.setattr(rootfs, "APT_SOURCES_LIST", tmp_path / "one.list")
    assert rootfs.apt_mirror("bookworm") == "http://one.example/debian"


def test_the_fingerprint_follows_the_packaged_files(tmp_path):
    root = Path(__file__).resolve().parents[2]
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, tmp_path / name)
    (tmp_path / "deploy").mkdir()
    shutil.copy(root / "deploy" / "Dockerfile", tmp_path / "deploy" / "Dockerfile")
    shutil.copytree(root / "cli", tmp_path / "cli", ignore=shutil.ignore_patterns("__pycache__"))
    assert source.find_source(tmp_path) == tmp_path
    first = source.source_hash(tmp_path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("# not packaged\n")
    (tmp_path / "cli" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "cli" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    assert source.source_hash(tmp_path) == first
    (tmp_path / "cli" / "main.py").write_text((tmp_path / "cli" / "main.py").read_text() + "\n# changed\n")
    assert source.source_hash(tmp_path) != first
