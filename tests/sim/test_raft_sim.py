"""Deterministic simulation of Raft (``model/raft``): faults, invariants after every step, linearizability.

Each run (``raft_world.py``) puts 3 or 5 replicas, clients and faults on
virtual time - message loss, duplication, reordering and delay, partitions
(asymmetric ones too), crashes and restarts, pauses, clock jumps within the
drift bound, membership changes and leadership transfers - checks the
invariants of ``raft_checker.py`` after every step, then heals and requires
a leader and convergence in bounded time; the clients' history must be
linearizable (``tests/linearizability.py``).  Every injected bug
(``raft_bugs.py``) must be caught by the invariant meant to catch it.

A failing run names its seed; replay it alone with
``MERIDIAN_SIM_SEED=<seed> .venv/bin/python -m pytest tests/sim/test_raft_sim.py -k replay -s``.
``MERIDIAN_RAFT_SIM_SEEDS=<n>`` runs more seeds than the default (CI's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from linearizability import check_history
from sim.raft_bugs import BUGS, CommitsOldTermsByCounting
from sim.raft_checker import LEADER_COMPLETENESS, InvariantViolation
from sim.raft_script import figure_8
from sim.raft_world import RaftSimConfig, RaftSimResult, run_raft

from meridian.model.raft import RaftNode

SEEDS = int(os.environ.get("MERIDIAN_RAFT_SIM_SEEDS", "150"))
#: seeds a bug test may try before it must have been caught
BUG_SEEDS_MAX = 80


def _run(config: RaftSimConfig) -> RaftSimResult:
    hint = f"replay: MERIDIAN_SIM_SEED={config.seed} pytest tests/sim/test_raft_sim.py -k replay -s"
    try:
        result = run_raft(config)
    except Exception as exc:
        raise AssertionError(f"{hint}\n{config}\n{exc!r}") from exc
    bad_keys = check_history(result.history.for_checker(result.ever_logged))
    assert not bad_keys, f"{hint}\nnot linearizable on keys {bad_keys}"
    return result


@pytest.mark.timeout(max(300, SEEDS))  # a long run (MERIDIAN_RAFT_SIM_SEEDS) takes about 0.15 s a seed
def test_many_seeds_keep_every_invariant() -> None:
    started = time.perf_counter()
    results = [_run(RaftSimConfig.for_seed(seed)) for seed in range(SEEDS)]
    elapsed_s = time.perf_counter() - started
    total = {name: sum(getattr(r, name) for r in results) for name in (
        "steps", "virtual_ms", "commits", "elections", "ops_ok", "lease_reads", "read_index_reads", "crashes",
        "pauses", "partitions", "clock_jumps", "membership_changes", "transfers", "snapshots_installed")}
    heal_ms = sorted(r.heal_to_leader_ms for r in results)
    print(f"\n{SEEDS} seeds in {elapsed_s:.1f} s wall, {total['virtual_ms'] / 1000:.0f} virtual s, "
          + ", ".join(f"{value} {name}" for name, value in total.items() if name != "virtual_ms")
          + f"; leader after healing: median {heal_ms[len(heal_ms) // 2]} ms, max {heal_ms[-1]} ms")
    # the seeds between them must exercise what they claim to
    for name in ("elections", "lease_reads", "read_index_reads", "crashes", "pauses", "partitions", "clock_jumps",
                 "membership_changes", "transfers", "snapshots_installed"):
        assert total[name] > 0, name
    assert total["ops_ok"] > 10 * SEEDS


def test_fault_free_run_is_quick_and_busy() -> None:
    result = _run(RaftSimConfig.for_seed(3, faults=False, loss=0.0, duplicate=0.0))
    assert result.elections == 1 and result.ops_ok > 200 and result.heal_to_leader_ms < 100


def test_same_seed_same_trace() -> None:
    config = RaftSimConfig.for_seed(5)
    first, second = run_raft(config), run_raft(config)
    assert first.trace_hash == second.trace_hash and first.steps == second.steps
    assert run_raft(RaftSimConfig.for_seed(6)).trace_hash != first.trace_hash


def test_same_seed_same_trace_in_another_process() -> None:
    """String hashing is salted per process: nothing may depend on it."""
    here = run_raft(RaftSimConfig.for_seed(11)).trace_hash
    code = "from sim.raft_world import RaftSimConfig, run_raft\nprint(run_raft(RaftSimConfig.for_seed(11)).trace_hash)\n"
    tests_dir = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONHASHSEED": "4242", "PYTHONPATH": str(tests_dir)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


@pytest.mark.parametrize("bug", [bug for bug in BUGS if bug is not CommitsOldTermsByCounting], ids=lambda b: b.__name__)
def test_the_checker_catches_an_injected_bug(bug: type[RaftNode]) -> None:
    """Seeds in order until the run fails; it must fail by the invariant meant to catch the bug."""
    for seed in range(BUG_SEEDS_MAX):
        try:
            run_raft(RaftSimConfig.for_seed(seed), bug)
        except InvariantViolation as violation:
            assert BUGS[bug] in violation.kinds, f"seed {seed}: {violation}"
            return
    pytest.fail(f"{bug.__name__} survived {BUG_SEEDS_MAX} seeds: {BUGS[bug]} never failed")


def test_figure_8_passes_with_the_real_commit_rule() -> None:
    figure_8(RaftNode)


def test_the_checker_catches_commits_of_old_terms_by_counting() -> None:
    """Random faults seldom time a leader's death this precisely: the paper's Figure 8, played by hand."""
    with pytest.raises(InvariantViolation) as caught:
        figure_8(CommitsOldTermsByCounting)
    assert LEADER_COMPLETENESS in caught.value.kinds


@pytest.mark.skipif("MERIDIAN_SIM_SEED" not in os.environ, reason="set MERIDIAN_SIM_SEED=<seed> to replay one run")
def test_replay() -> None:
    config = RaftSimConfig.for_seed(int(os.environ["MERIDIAN_SIM_SEED"]))
    print(f"\n{config}")
    result = _run(config)
    print({name: value for name, value in vars(result).items() if name not in ("history", "ever_logged")})
