"""Resolving prepared transactions whose router went away (``node/transactions.py``).

A router that dies (or is cut off) between a transaction's prepare and its
finish leaves the participants prepared: their keys locked, their staged
versions unapplied.  Once a transaction has been prepared on this node for
``TXN_RESOLVE_AFTER_S``, the resolver asks the transaction's coordinator
node for its decision with ``txn_decide(ABORT)``: the coordinator answers
the recorded decision if there is one (the router got that far) and
otherwise records ABORT, which every later question then gets too.  The
resolver applies the answer to this node's share.  A coordinator that
cannot be reached is asked again at the next pass: the locks last as long
as the coordinator is away, never longer than it takes to reach it.

It also drops decision records older than ``TXN_DECISION_RETENTION_S``:
a router forgets the decisions of the transactions it finished, so these
are decisions whose router died after deciding; every participant then
resolved long ago, or has been down for the whole retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from meridian.model import limits
from meridian.model.errors import DynamoError
from meridian.model.transactions import TxnOutcome
from meridian.node.background import BackgroundTask

log = logging.getLogger("meridian.node.transactions")

#: asks a coordinator node for a transaction's decision: (node id, txn id, outcome if undecided) -> outcome
RemoteDecide = Callable[[str, bytes, TxnOutcome], Awaitable[TxnOutcome]]


class TxnResolver(BackgroundTask):
    task_prefix = "txn-recovery"

    def __init__(
        self,
        engine,
        remote_decide: RemoteDecide | None = None,
        *,
        interval_s: float = limits.TXN_RECOVERY_INTERVAL_S,
        resolve_after_s: float = limits.TXN_RESOLVE_AFTER_S,
    ) -> None:
        self._engine = engine
        self._remote_decide = remote_decide
        self._interval_s = interval_s
        self._resolve_after_ms = int(resolve_after_s * 1000)
        self.resolved_commit = 0
        self.resolved_abort = 0
        self.failures = 0

    def __repr__(self) -> str:
        return (
            f"<TxnResolver {self._engine.node_id} {self._state()} commit={self.resolved_commit} "
            f"abort={self.resolved_abort} failures={self.failures}>"
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.resolve_once()
            except DynamoError as err:  # the engine failed: every later op says so
                log.warning("node %s: transaction recovery stopped: %s", self._engine.node_id, err)
                return

    async def resolve_once(self) -> int:
        """One pass; returns how many transactions it resolved."""
        engine = self._engine
        now_ms = engine._now_ms()
        resolved = 0
        for txn in engine.txn_stale(now_ms - self._resolve_after_ms):
            try:
                if txn.coordinator == engine.node_id or self._remote_decide is None:
                    outcome = await engine.txn_decide_async(txn.txn_id, TxnOutcome.ABORT)
                else:
                    outcome = await self._remote_decide(txn.coordinator, txn.txn_id, TxnOutcome.ABORT)
                    await engine.txn_finish_async(txn.txn_id, outcome is TxnOutcome.COMMIT)
            except DynamoError as err:
                self.failures += 1
                log.info("node %s: transaction %s not resolved yet (coordinator %s): %s",
                         engine.node_id, txn.txn_id.hex(), txn.coordinator, err)
                continue
            resolved += 1
            if outcome is TxnOutcome.COMMIT:
                self.resolved_commit += 1
            else:
                self.resolved_abort += 1
            log.info("node %s: transaction %s resolved from its coordinator %s: %s",
                     engine.node_id, txn.txn_id.hex(), txn.coordinator, outcome.name)
        expired = engine.txn_expired_decisions(now_ms - int(limits.TXN_DECISION_RETENTION_S * 1000))
        if expired:
            await engine.txn_forget_async(expired)
        return resolved
