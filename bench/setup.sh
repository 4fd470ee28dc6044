#!/usr/bin/env bash
# Install what bench/run.py compares Meridian against, and the load generator.
#
#   bash bench/setup.sh            (uses the python on PATH, or $PYTHON)
#
# Idempotent: every step checks first and only installs what is missing.
#   - dynalite and Dynoxide (npm) go into bench/.peers/ (gitignored), so the
#     repository never grows a node_modules and the versions stay local;
#   - moto[server] and py-spy go into the current Python environment (the one
#     that runs bench/run.py); py-spy is only for `run.py --profile`;
#   - wrk comes from apt: a C load generator that keeps 64 connections busy
#     with one thread, so the client costs far less CPU than any server here.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="$BENCH_DIR/.peers"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"

say() { printf 'bench/setup.sh: %s\n' "$*"; }

# --- npm peers -------------------------------------------------------------
if [[ -f "$PEERS_DIR/node_modules/dynalite/cli.js" && -d "$PEERS_DIR/node_modules/@dynoxide/linux-x64" ]]; then
    say "dynalite and @dynoxide/linux-x64 already in $PEERS_DIR"
else
    command -v npm >/dev/null || { say "npm not found: install Node.js first"; exit 1; }
    mkdir -p "$PEERS_DIR"
    say "installing dynalite and @dynoxide/linux-x64 into $PEERS_DIR"
    npm install --prefix "$PEERS_DIR" --no-audit --no-fund dynalite @dynoxide/linux-x64
fi

# --- Python peers ------------------------------------------------------------
if "$PYTHON" -c 'import moto.server, flask, werkzeug' 2>/dev/null; then
    say "moto[server] already installed for $PYTHON"
else
    say "installing moto[server] for $PYTHON"
    "$PYTHON" -m pip install --quiet 'moto[server]>=5'
fi
if "$PYTHON" -m pip show py-spy >/dev/null 2>&1; then
    say "py-spy already installed for $PYTHON"
else
    say "installing py-spy for $PYTHON"
    "$PYTHON" -m pip install --quiet py-spy
fi

# --- wrk ----------------------------------------------------------------------
if command -v wrk >/dev/null; then
    say "wrk already installed: $(command -v wrk)"
else
    SUDO=""
    [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    say "installing wrk with apt-get"
    if ! $SUDO apt-get install -y wrk; then
        $SUDO apt-get update
        $SUDO apt-get install -y wrk
    fi
fi

say "done"
