"""Deterministic simulation of multi-region replication (see ``world.py``).

Every run drives the real ``Replicator``, last-writer-wins apply and
``SimulatedLink`` on virtual time, with faults, then heals and demands
convergence.  A failing run names its seed; replay it alone with
``MERIDIAN_SIM_SEED=<seed> /tmp/venv/bin/pytest tests/sim -k replay``.
``MERIDIAN_SIM_SEEDS=<n>`` runs more seeds than the default.

Most runs use the in-memory model of a storage node
(``replication/sim_store.py``); a few run every region on real storage
engines (``engine_store.py``: RocksDB, ``node/replica.py``'s apply) and must
give the model's trace byte for byte, which keeps the model honest.
``MERIDIAN_SIM_ENGINE_SEEDS=<n>`` runs more of those.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sim.world import SimResult, WorldConfig, replay_hint, run_world

SEEDS = int(os.environ.get("MERIDIAN_SIM_SEEDS", "200"))
#: Seeds run on real engines: chosen to include garbage collection (log
#: truncation and dropped tombstones), replicator crashes, 2 to 4 regions of 1 to 3
#: nodes, tiny and default batches; each costs about half a second (RocksDB).
ENGINE_SEEDS = (3, 14, 19, 23, 32)
ENGINE_SEEDS_EXTRA = int(os.environ.get("MERIDIAN_SIM_ENGINE_SEEDS", "0"))


def _run(config: WorldConfig) -> SimResult:
    try:
        return run_world(config)
    except Exception as exc:
        raise AssertionError(f"{replay_hint(config)}\n{config}\n{exc!r}") from exc


def test_many_seeds_converge() -> None:
    started = time.perf_counter()
    results = [_run(WorldConfig.for_seed(seed)) for seed in range(SEEDS)]
    elapsed_s = time.perf_counter() - started
    print(
        f"\n{SEEDS} seeds in {elapsed_s:.2f} s wall: {sum(r.virtual_s for r in results):.0f} virtual s, "
        f"{sum(r.writes for r in results)} writes, {sum(r.batches_delivered for r in results)} batches, "
        f"{sum(r.faults for r in results)} faults ({sum(r.replicator_crashes for r in results)} replicator crashes), "
        f"{sum(r.tombstones_dropped for r in results)} tombstones "
        f"and {sum(r.log_entries_truncated for r in results)} log entries garbage-collected"
    )
    # The seeds must between them exercise what they claim to.
    assert sum(r.faults for r in results) > SEEDS
    assert sum(r.replicator_crashes for r in results) > 0
    assert sum(r.tombstones_dropped for r in results) > 0
    assert sum(r.log_entries_truncated for r in results) > 0


def test_same_seed_same_trace() -> None:
    config = WorldConfig(seed=7, regions=3, nodes_per_region=2, writes=150, mean_gap_ms=20.0)
    first, second = _run(config), _run(config)
    assert first.trace_hash == second.trace_hash
    assert first.trace_events == second.trace_events
    assert first.batches_delivered > 50 and first.faults > 5
    assert _run(WorldConfig(seed=8, regions=3, writes=150)).trace_hash != first.trace_hash


def test_same_seed_same_trace_in_another_process() -> None:
    """String hashing is salted per process: nothing may depend on it."""
    config = WorldConfig.for_seed(11)
    here = _run(config).trace_hash
    code = (
        "from sim.world import WorldConfig, run_world\n"
        "print(run_world(WorldConfig.for_seed(11)).trace_hash)\n"
    )
    tests_dir = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(tests_dir)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


@pytest.mark.parametrize(
    "config",
    [
        # Large workload, every fault, long gaps: long partitions and many restarts.
        WorldConfig(seed=1001, regions=4, nodes_per_region=3, writes=600, keys=25, mean_gap_ms=50.0),
        # Heavy conflict: few keys, many deletes, bursts faster than any link.
        WorldConfig(seed=1002, regions=3, nodes_per_region=2, writes=400, keys=3, delete_ratio=0.5, mean_gap_ms=2.0),
        # No faults, no GC: tombstones must converge too (compared byte for byte).
        WorldConfig(seed=1003, regions=2, nodes_per_region=1, writes=300, keys=10, faults=False, gc=False),
    ],
    ids=["large", "contended", "fault-free"],
)
def test_shaped_worlds_converge(config: WorldConfig) -> None:
    result = _run(config)
    assert result.batches_delivered > 0


@pytest.mark.parametrize("seed", ENGINE_SEEDS + tuple(range(100, 100 + ENGINE_SEEDS_EXTRA)))
def test_real_engines_converge_exactly_as_the_model_does(seed: int) -> None:
    """The production apply path (``Engine.apply_replicated_many``, LWW by
    ``model.stamps.lww_wins``, the engine's own change log, clock and GC)
    under the same seed, faults and all: same trace as the model."""
    model = WorldConfig.for_seed(seed)
    on_engines = _run(dataclasses.replace(model, engines=True))
    assert on_engines.trace_hash == _run(model).trace_hash
    assert on_engines.batches_delivered > 0


@pytest.mark.skipif("MERIDIAN_SIM_SEED" not in os.environ, reason="set MERIDIAN_SIM_SEED=<seed> to replay one run")
def test_replay() -> None:
    seed = int(os.environ["MERIDIAN_SIM_SEED"])
    config = WorldConfig.for_seed(seed)
    print(f"\n{config}")
    print(_run(config))
