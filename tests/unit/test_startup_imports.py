"""`meridian serve` loads only what the embedded mode needs (issue 18).

Start-up time is mostly imports; these tests pin the two decisions that
halved it: the server commands' parser does not import the operator tools,
and the embedded router does not import gRPC (only a router with a
replicator, or a cluster router, talks gRPC).
"""

from __future__ import annotations

import subprocess
import sys

from meridian.main import _command_word, build_parser

_HEAVY = ("grpc", "prometheus_client", "aiohttp", "meridian.cluster.up", "meridian.lab.cli", "meridian.replication.peers")


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {_HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_the_command_word_skips_global_options():
    assert _command_word(["--log-level", "INFO", "serve", "--port", "1"]) == "serve"
    assert _command_word(["serve"]) == "serve"
    assert _command_word(["--help"]) is None
    assert _command_word([]) is None


def test_the_embedded_server_imports_no_grpc_and_no_operator_tools():
    loaded = _loaded_after(
        "from meridian.main import build_parser, _command_word\n"
        "build_parser(_command_word(['serve'])).parse_args(['serve'])\n"
        "import meridian.router.server, meridian.router.storage_embedded, meridian.node.engine"
    )
    assert loaded == set()


def test_a_server_command_parser_still_knows_its_flags():
    ns = build_parser("serve").parse_args(["serve", "--port", "0", "--stream-retention-s", "60"])
    assert (ns.command, ns.port, ns.stream_retention_s) == ("serve", 0, 60.0)


def test_the_full_parser_has_every_command():
    parser = build_parser(None)
    for argv in (["up"], ["verify", "--endpoint", "http://127.0.0.1:1", "--table", "T"], ["streams", "tail", "--endpoint", "http://127.0.0.1:1", "--table", "T"], ["chaos", "list"]):
        assert parser.parse_known_args(argv)[0].command == argv[0]
