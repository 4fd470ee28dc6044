"""Meridian: a DynamoDB-compatible, multi-node, multi-region database.

This package holds only the ``meridian`` command's entry point (``main.py``).
The top-level folders of the repository are the subpackages of this namespace
(``docs/architecture.md`` has the table): ``meridian.model`` (model/),
``meridian.proto`` (proto/), ``meridian.node`` (node/), ``meridian.router``
(router/), ``meridian.replication`` (replication/), ``meridian.cluster``
(cluster/: process supervision, ``meridian up``, the control client) and
``meridian.lab`` (lab/: the Docker lab, load, chaos, demo, report).
"""


def _version() -> str:
    """The installed distribution's version; a checkout that was never
    installed reads it from its ``pyproject.toml``."""
    from importlib import metadata

    try:
        return metadata.version("meridian-db")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        try:
            text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
            return str(tomllib.loads(text)["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


def __getattr__(name: str) -> str:
    """``meridian.__version__``, looked up on first use: importing
    ``importlib.metadata`` costs ~10 ms that ``meridian serve`` need not pay
    before it has anything to say."""
    if name == "__version__":
        version = _version()
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
