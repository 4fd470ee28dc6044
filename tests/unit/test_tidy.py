"""The layering and the bounds, checked on every run (TigerBeetle's tidy, Trio's export test).

Three rules, each read straight from the source with ``ast`` (no imports, no
processes, well under a second):

* **Never-arrows.**  Each top-level folder is a layer and may import only the
  layers below it (``docs/architecture.md`` draws the table)::

      cli (the `meridian` command)       testing (fixtures: imported by nothing)
       └─ lab (Docker lab, load, ...)       │
           └─ cluster (supervision, `up`)   │
               └─ router ──────────────┐ <──┘
                   ├─ node             ├─ replication
                   └───────┬───────────┘
                          proto
                           └─ model (the pure DynamoDB data model)

  node and replication never import each other: what they share (the change
  record, the ring, the wire codecs, the gRPC options) lives in model/ and proto/.
* **Bounds live in limits modules.**  In node/, router/, replication/ and testing/ a
  numeric bound (a constant named in capitals with a number for its value, or
  a bare number given as a timeout, sleep, queue size or limit) belongs in
  ``model/limits.py``; the operator tools' bounds live in ``cluster/limits.py``.
  ``NOT_BOUNDS`` lists the capitalised numbers that are not bounds, each with why.
* **Files stay small.**  A source file past ``FILE_LINES_MAX`` lines needs an
  entry in ``LONG_FILES`` saying why it is still one file.

Each rule is also run on a small bad example, so a checker that quietly stops
seeing anything fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: folder -> the layer it is; the top-level `meridian` package (cli/) is the entry point.
LAYER_OF_FOLDER = {
    "model": "model",
    "proto": "proto",
    "node": "node",
    "replication": "replication",
    "router": "router",
    "cluster": "cluster",
    "lab": "lab",
    "cli": "cli",
    "testing": "testing",
}
#: layer -> the layers it may import (itself included).
MAY_IMPORT = {
    "model": {"model"},
    "proto": {"proto", "model"},
    "node": {"node", "proto", "model"},
    "replication": {"replication", "proto", "model"},
    "router": {"router", "node", "replication", "proto", "model"},
    "cluster": {"cluster", "router", "node", "replication", "proto", "model"},
    "lab": {"lab", "cluster", "router", "node", "replication", "proto", "model"},
    "cli": {"cli", "lab", "cluster", "router", "node", "replication", "proto", "model"},
    # Test fixtures over an embedded server; no layer imports them (they load in pytest only).
    "testing": {"testing", "router", "node", "replication", "proto", "model"},
}
#: meridian.<first name> -> layer (``meridian.main`` is the entry point's own module).
LAYER_OF_SUBPACKAGE = {name: name for name in LAYER_OF_FOLDER if name != "cli"} | {"main": "cli"}

#: where a bare numeric bound fails the test (model/limits.py and cluster/limits.py are outside them)
BOUNDED_FOLDERS = ("node", "router", "replication", "testing")

#: "path:NAME" -> why this capitalised number is not a bound.
NOT_BOUNDS: dict[str, str] = {
    "replication/clock.py:VIRTUAL_EPOCH_MS": "the fixed date virtual time starts at: a timestamp",
    "replication/digest.py:FANOUT_BITS": "the digest tree's shape (16-way), part of its definition",
    "replication/digest.py:_MODULUS": "entry hashes are summed modulo 2**256: hash arithmetic",
    "replication/digest.py:_LEN": "width of the key-length prefix in an entry's hash input: an encoding",
    "replication/gc.py:NO_PEERS_FLOOR_HLC": "sentinel: the largest u64 clock reading",
    "replication/latency.py:_EXACT_MS": "the latency histogram's bucket layout (exact below 64 ms)",
    "replication/latency.py:_SUB_BITS": "the latency histogram's bucket layout (5 significant bits)",
    "replication/latency.py:_VALUE_MS_MAX": "the largest value that layout encodes (~35 years): a representation, not a cap",
    "router/dax/requests.py:_PATH": "DAX's S-expression function code of a document path: a wire code",
    "router/dax/requests.py:_LIST_INDEX_TAG": "DAX's CBOR tag of a list index in a document path: a wire code",
}

FILE_LINES_MAX = 600
SOURCE_FOLDERS = ("model", "proto", "node", "router", "replication", "cluster", "lab", "cli", "testing", "bench")
#: path -> why it is still one file past FILE_LINES_MAX lines.
LONG_FILES: dict[str, str] = {
    "model/limits.py": "every bound of the database in one module, as the design card asks: one file to read, "
    "its relations asserted together",
}


def _is_generated(path: Path) -> bool:
    return path.name.endswith(("_pb2.py", "_pb2_grpc.py"))


def _python_files(*folders: str) -> list[Path]:
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts and not _is_generated(path)
    )


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- never-arrows -------------------------------------------------------------


def _module_package(rel: str) -> list[str]:
    """``node/engine.py`` -> ["meridian", "node"]; ``cli/main.py`` -> ["meridian"]."""
    parts = rel[: -len(".py")].split("/")
    folder, rest = parts[0], parts[1:-1]  # an __init__'s package is its own folder
    return ["meridian"] if folder == "cli" else ["meridian", folder, *rest]


def imported_modules(rel: str, source: str) -> list[tuple[int, str]]:
    """Every ``meridian...`` module the file imports (lazy imports and ``import_module`` included)."""
    found: list[tuple[int, str]] = []
    package = _module_package(rel)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            if name == "meridian" or (node.level and not node.module):
                # ``from meridian import lab`` / ``from . import up``: the names are modules
                found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return [(line, name) for line, name in found if name == "meridian" or name.startswith("meridian.")]


def arrow_violations(rel: str, source: str) -> list[str]:
    layer = LAYER_OF_FOLDER[rel.split("/")[0]]
    out = []
    for line, name in imported_modules(rel, source):
        parts = name.split(".")
        if len(parts) < 2:
            continue  # ``import meridian`` (the version) is everyone's
        target = LAYER_OF_SUBPACKAGE.get(parts[1])
        if target is None:
            # ``from meridian import __version__``-style names of the top package
            continue
        if target not in MAY_IMPORT[layer]:
            out.append(f"{rel}:{line}: {layer} imports {name} ({target})")
    return out


@pytest.mark.parametrize("path", _python_files(*LAYER_OF_FOLDER), ids=_rel)
def test_no_never_arrow(path: Path) -> None:
    rel = _rel(path)
    assert not arrow_violations(rel, path.read_text()), "\n".join(arrow_violations(rel, path.read_text()))


# --- bounds -------------------------------------------------------------------

#: keyword arguments that are bounds when given a number
_BOUND_KEYWORDS = {"timeout", "maxsize", "maxlen", "limit", "deadline", "interval", "delay"}
_BOUND_SUFFIXES = ("_s", "_ms", "_max", "_min", "_bytes", "timeout", "_interval", "_limit", "_seconds")
#: callables whose positional number is a bound: name -> index of that argument
_BOUND_POSITIONAL = {"sleep": 0, "wait_for": 1, "call_later": 0, "Queue": 0, "deque": 1, "Semaphore": 0}


def _number(node: ast.AST) -> float | None:
    """The value of a literal number expression (``64 * 1024``, ``-1``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(node.operand)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if isinstance(node, ast.BinOp):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        try:
            return eval(compile(ast.Expression(node), "<bound>", "eval"))  # literals only
        except ArithmeticError:
            return None
    return None


def _is_constant_name(name: str) -> bool:
    bare = name.lstrip("_")
    return bool(bare) and bare[0].isalpha() and bare.upper() == bare


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def bound_violations(rel: str, source: str) -> list[str]:
    out = []
    tree = ast.parse(source)
    # An enumeration's members name codes (a protocol's numbers), not bounds.
    scopes: list[ast.AST] = [tree] + [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and not any(
        ast.unparse(base).endswith(("Enum", "IntFlag")) for base in n.bases)]
    for scope in scopes:
        for stmt in scope.body:  # type: ignore[attr-defined]
            targets = (
                stmt.targets if isinstance(stmt, ast.Assign)
                else [stmt.target] if isinstance(stmt, ast.AnnAssign) and stmt.value is not None
                else []
            )
            for target in targets:
                if (
                    isinstance(target, ast.Name)
                    and _is_constant_name(target.id)
                    and _number(stmt.value) is not None  # type: ignore[union-attr]
                    and f"{rel}:{target.id}" not in NOT_BOUNDS
                ):
                    out.append(f"{rel}:{stmt.lineno}: {target.id} = {ast.unparse(stmt.value)}")  # type: ignore[union-attr]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            name = (keyword.arg or "").lower()
            if name in _BOUND_KEYWORDS or name.endswith(_BOUND_SUFFIXES):
                value = _number(keyword.value)
                if value is not None and value not in (0, 1):
                    out.append(f"{rel}:{node.lineno}: {_callee(node)}({keyword.arg}={ast.unparse(keyword.value)})")
        index = _BOUND_POSITIONAL.get(_callee(node))
        if index is not None and len(node.args) > index:
            value = _number(node.args[index])
            if value is not None and value not in (0, 1):
                out.append(f"{rel}:{node.lineno}: {_callee(node)}(... {ast.unparse(node.args[index])} ...)")
    return out


@pytest.mark.parametrize("path", _python_files(*BOUNDED_FOLDERS), ids=_rel)
def test_bounds_live_in_the_limits_module(path: Path) -> None:
    found = bound_violations(_rel(path), path.read_text())
    assert not found, (
        "put these in model/limits.py (named, with units and why), or say in NOT_BOUNDS why they are not bounds:\n"
        + "\n".join(found)
    )


def test_not_bounds_entries_still_exist() -> None:
    for entry in NOT_BOUNDS:
        rel, name = entry.split(":")
        assert name in (ROOT / rel).read_text(), f"stale NOT_BOUNDS entry {entry}"


# --- file size ----------------------------------------------------------------


@pytest.mark.parametrize("path", _python_files(*SOURCE_FOLDERS), ids=_rel)
def test_source_files_stay_small(path: Path) -> None:
    rel = _rel(path)
    lines = len(path.read_text().splitlines())
    assert lines <= FILE_LINES_MAX or rel in LONG_FILES, (
        f"{rel} has {lines} lines: split it by job, or add it to LONG_FILES with the reason it is one file"
    )


def test_long_files_entries_are_still_long() -> None:
    for rel in LONG_FILES:
        path = ROOT / rel
        assert path.is_file() and len(path.read_text().splitlines()) > FILE_LINES_MAX, f"stale LONG_FILES entry {rel}"


# --- packaging: every subpackage is in the wheel -------------------------------------


def test_every_subpackage_is_packaged() -> None:
    """A folder with an ``__init__.py`` that pyproject.toml does not list is left
    out of the wheel: the Docker lab's image then fails to import it."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {folder: package for package, folder in setuptools["package-dir"].items()}
    for top in LAYER_OF_FOLDER:
        for init in (ROOT / top).rglob("__init__.py"):
            folder = init.parent.relative_to(ROOT).as_posix()
            assert folder in folders, f"{folder} has no package-dir entry in pyproject.toml"
            assert folders[folder] in listed, f"{folders[folder]} is not in pyproject.toml's packages"


# --- the checks see what they should -------------------------------------------


def test_the_layers_cover_every_source_folder() -> None:
    packages = {folder for folder in LAYER_OF_FOLDER if (ROOT / folder / "__init__.py").is_file()}
    assert packages == set(LAYER_OF_FOLDER)
    assert set(MAY_IMPORT) == set(LAYER_OF_FOLDER)


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("node/x.py", "from meridian.replication.interfaces import Clock\n"),
        ("node/x.py", "def f():\n    from meridian.router.ring import Ring\n"),
        ("node/x.py", "import meridian.cluster.procs\n"),
        ("replication/x.py", "from meridian.node.records import Change\n"),
        ("replication/x.py", "from meridian.router import catalog\n"),
        ("model/x.py", "from meridian.proto import storage_pb2\n"),
        ("model/expressions/x.py", "from ...node import engine\n"),
        ("proto/x.py", "from meridian.replication.interfaces import Ack\n"),
        ("router/x.py", "from meridian.lab.chaos import faults\n"),
        ("router/actions/x.py", "from ...cluster import procs\n"),
        ("cluster/x.py", "import importlib\nimportlib.import_module('meridian.lab.load')\n"),
        ("lab/x.py", "from meridian import main\n"),
        ("router/x.py", "from meridian.testing import serve\n"),
        ("cli/main.py", "from meridian.testing.plugin import meridian_endpoint\n"),
        ("testing/x.py", "from meridian.cluster import procs\n"),
    ],
)
def test_the_arrow_check_catches_a_never_arrow(rel: str, source: str) -> None:
    assert arrow_violations(rel, source)


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("router/x.py", "from meridian.node.engine import Engine\nfrom meridian.replication.peers import control\n"),
        ("replication/x.py", "from meridian.model.changes import Change\nfrom meridian.proto import channels\n"),
        ("router/actions/x.py", "from ..catalog import Table\nfrom . import items\n"),
        ("cli/main.py", "from meridian.lab.chaos import cli\nfrom meridian.cluster import up\n"),
        ("testing/server.py", "from meridian.router.server import start_router\nfrom meridian.node.engine import Engine\n"),
    ],
)
def test_the_arrow_check_allows_the_arrows(rel: str, source: str) -> None:
    assert not arrow_violations(rel, source)


@pytest.mark.parametrize(
    "source",
    [
        "QUEUE_MAX = 100\n",
        "_STOP_GRACE_S = 5.0\n",
        "BUF_BYTES = 64 * 1024\n",
        "class A:\n    RETRY_S = 0.5\n",
        "x: int\nLIMIT: int = 10\n",
        "import asyncio\nasync def f():\n    await asyncio.sleep(0.05)\n",
        "import asyncio\nasync def f(x):\n    await asyncio.wait_for(x, 5)\n",
        "import asyncio\nq = asyncio.Queue(maxsize=1000)\n",
        "def f(c):\n    c.call(timeout=10.0)\n",
        "def f(c):\n    c.read(bytes_max=4096)\n",
    ],
)
def test_the_bound_check_catches_a_bare_bound(source: str) -> None:
    assert bound_violations("node/x.py", source)


@pytest.mark.parametrize(
    "source",
    [
        "from meridian.model import limits\nQUEUE_MAX = limits.STORAGE_INFLIGHT_OPS_MAX\n",
        "import asyncio\nasync def f():\n    await asyncio.sleep(0)\n",
        "def f(c, limits):\n    c.call(timeout=limits.STORAGE_CALL_TIMEOUT_S)\n",
        "name = 'x'\nFLAGS = 'abc'\n",
        "def f():\n    local_max = 100\n    return local_max\n",
    ],
)
def test_the_bound_check_allows_named_bounds(source: str) -> None:
    assert not bound_violations("node/x.py", source)


def test_the_size_check_sees_the_source() -> None:
    files = {_rel(p) for p in _python_files(*SOURCE_FOLDERS)}
    assert {"model/limits.py", "node/engine.py", "router/app.py", "cli/main.py"} <= files
    assert not any(name.endswith("_pb2.py") for name in files)
