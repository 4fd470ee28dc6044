"""Point-in-time recovery on a node: periodic checkpoints and their retention.

A table has point-in-time recovery while its catalog description holds
``pitr_enabled_s`` (epoch seconds, set by UpdateContinuousBackups) and
``pitr_recovery_days`` (1 to 35).  While any table of the node has it, this
task takes a periodic checkpoint (``pitr-<ms>``, ``node/checkpoints.py``)
every ``interval_s`` (``--pitr-checkpoint-interval-s``), and deletes the
periodic checkpoints no restore can need any more: it keeps the newest one
taken at or before now minus the longest recovery period, and every newer
one (``periodic_to_delete``).  ``Engine.truncate_log`` keeps the change log
after the oldest kept one (``pitr_log_floor``), so a restore to any moment
of the period replays at most ``interval_s`` of log from a checkpoint.  Disk
use stays bounded: checkpoints past the period go, and with them the log.

When no table has it any more (PITR disabled or the tables deleted), the
periodic checkpoints go too - "disabling discards the history", as in
DynamoDB - except those younger than ``PITR_ORPHAN_GRACE_S``: when PITR is
enabled the router takes the first checkpoint on every node *before* it
stores the setting in the catalog, and that checkpoint must survive a pass
that runs between the two.  Started beside the TTL sweeper by
``node/server.py`` and ``EmbeddedStorage``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from meridian.model import limits
from meridian.model.backups import CheckpointInfo, pitr_checkpoint_name
from meridian.model.errors import DynamoError
from meridian.node.background import BackgroundTask
from meridian.node.engine import Engine

log = logging.getLogger(__name__)


def _ms(*, days: float = 0, seconds: float = 0) -> int:
    """A duration in milliseconds (a unit conversion)."""
    return int((days * 24 * 60 * 60 + seconds) * 1000)


def periodic_to_delete(
    periodic: Sequence[CheckpointInfo], now_ms: int, period_days: int | None, in_use: frozenset[str] = frozenset()
) -> list[str]:
    """Names of the periodic checkpoints (oldest first) no restore needs.

    ``period_days``: the longest recovery period of the node's tables with
    PITR (None: no table has it).  Kept: the newest checkpoint taken at or
    before ``now_ms`` minus the period, every newer one, and those a restore
    is reading (``in_use``).  With no table, all go but the young ones."""
    if period_days is None:
        young_ms = now_ms - _ms(seconds=limits.PITR_ORPHAN_GRACE_S)
        return [info.name for info in periodic if info.created_ms < young_ms and info.name not in in_use]
    horizon_ms = now_ms - _ms(days=period_days)
    older = [info for info in periodic if info.created_ms <= horizon_ms]
    return [info.name for info in older[:-1] if info.name not in in_use]


def pass_interval_s(interval_s: float) -> float:
    """How often the task looks: every interval, or more often for a long one."""
    return min(interval_s, limits.PITR_PASS_INTERVAL_S_MAX)


class PitrCheckpointer(BackgroundTask):
    """Takes one node's periodic checkpoints and deletes the expired ones."""

    task_prefix = "pitr"

    def __init__(self, engine: Engine, *, interval_s: float = limits.PITR_CHECKPOINT_INTERVAL_S_DEFAULT) -> None:
        if not interval_s > 0:
            raise ValueError(f"the PITR checkpoint interval must be positive, got {interval_s}")
        self._engine = engine
        self._interval_s = interval_s
        self.passes = 0
        self.checkpoints_taken = 0
        self.checkpoints_deleted = 0
        self.failures = 0

    def __repr__(self) -> str:
        state = self._state()
        return (
            f"<PitrCheckpointer {self._engine.node_id} {state} every {self._interval_s}s "
            f"taken={self.checkpoints_taken} deleted={self.checkpoints_deleted}>"
        )

    async def run_pass(self) -> None:
        """One pass: a checkpoint if one is due, then retention."""
        engine = self._engine
        tables = engine.pitr_tables()
        now_ms = engine.physical_now_ms()
        if tables:
            periodic = engine.periodic_checkpoints()
            due_ms = now_ms - _ms(seconds=self._interval_s)
            if not periodic or periodic[-1].created_ms <= due_ms:
                await engine.create_checkpoint(pitr_checkpoint_name(now_ms))
                self.checkpoints_taken += 1
                now_ms = engine.physical_now_ms()
        period_days = max(tables.values()) if tables else None
        in_use = frozenset(engine.checkpoints_in_use())
        for name in periodic_to_delete(engine.periodic_checkpoints(), now_ms, period_days, in_use):
            if engine.delete_checkpoint(name):
                self.checkpoints_deleted += 1
        self.passes += 1

    async def _run(self) -> None:
        while True:
            try:
                await self.run_pass()
            except DynamoError as err:  # the engine failed, or RocksDB could not checkpoint
                self.failures += 1
                log.warning("node %s: PITR pass failed: %s", self._engine.node_id, err)
            except Exception:  # noqa: BLE001 - the next pass tries again
                self.failures += 1
                log.exception("node %s: PITR pass failed", self._engine.node_id)
            await asyncio.sleep(pass_interval_s(self._interval_s))
