"""Flags that every command running a storage node shares (``meridian serve``,
``node``, ``router``, ``up``).

Kept apart from ``cluster/up.py`` so that building ``meridian serve``'s
parser imports nothing but argparse and the limits: the embedded server's
start-up time is part of what users feel (issue 18).
"""

from __future__ import annotations

import argparse

from meridian.model import limits as model_limits


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def add_ttl_interval(parser: argparse.ArgumentParser) -> None:
    """``--ttl-interval-s``, shared by ``meridian serve``, ``node`` and ``up``."""
    default = model_limits.TTL_SWEEP_INTERVAL_S_DEFAULT
    parser.add_argument(
        "--ttl-interval-s", type=positive_seconds, default=default, metavar="SECONDS",
        help=f"seconds between a storage node's sweeps for items whose Time to Live expired, which it deletes "
        f"(default: {default:g}; DynamoDB itself may take up to a few days to delete an expired item)",
    )  # fmt: skip


def add_pitr_interval(parser: argparse.ArgumentParser) -> None:
    """``--pitr-checkpoint-interval-s``, shared by ``meridian serve``, ``node`` and ``up``."""
    default = model_limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT
    parser.add_argument(
        "--pitr-checkpoint-interval-s", type=positive_seconds, default=default, metavar="SECONDS",
        help=f"while a table has point-in-time recovery, how often a storage node takes a checkpoint of its "
        f"database; a restore replays at most this much change log (default: {default:g}; shorten it for labs)",
    )  # fmt: skip


def add_stream_options(parser: argparse.ArgumentParser, *, shard_period: bool = True) -> None:
    """``--stream-retention-s`` (``meridian serve``, ``node``, ``router``, ``up``)
    and ``--stream-shard-period-s`` (the ones running storage nodes)."""
    retention = model_limits.STREAM_RETENTION_S_DEFAULT
    parser.add_argument(
        "--stream-retention-s", type=positive_seconds, default=retention, metavar="SECONDS",
        help=f"how long DynamoDB Streams records are kept, and a disabled stream stays listed "
        f"(default: {retention:g}, DynamoDB's 24 hours; shorten it for labs)",
    )  # fmt: skip
    if shard_period:
        period = model_limits.STREAM_SHARD_PERIOD_S_DEFAULT
        parser.add_argument(
            "--stream-shard-period-s", type=positive_seconds, default=period, metavar="SECONDS",
            help=f"how long one stream shard of a storage node takes records before the next one follows it "
            f"(default: {period:g}, about DynamoDB's; shorten it to watch shards roll over)",
        )  # fmt: skip


def add_resolve_wait(parser: argparse.ArgumentParser) -> None:
    """``--resolve-wait-s`` (``meridian node``, ``router``, ``replicator``): how
    long start-up waits for the addresses of the processes it needs to resolve."""
    from meridian.cluster.limits import ADDRESS_RESOLVE_WAIT_S_DEFAULT as default

    parser.add_argument(
        "--resolve-wait-s", type=float, default=default, metavar="SECONDS",
        help=f"how long to wait at start for the host names of the storage nodes (or peers) this process needs "
        f"to resolve, then give up with exit code 14 (default: {default:g}; in Docker a name resolves once its "
        "container runs; 0: at once)",
    )  # fmt: skip
