"""The coordinator of transactions across storage nodes (``model/transactions.py``).

``execute_write`` runs a TransactWriteItems whose actions the action module
(``router/actions/transact.py``) has validated, routed and turned into
``ItemOp``s:

* **one node** holds every item (always in ``meridian serve``): one
  ``Storage.transact`` call, which judges and applies everything in one
  write batch or nothing;
* **several nodes**: two phases.  Prepare on every participant at once;
  if any action fails (a condition, a conflict, an invalid update) or a
  node cannot be reached, the prepared ones are aborted and the answers say
  why.  Otherwise the decision COMMIT is recorded on the coordinator, the
  node of the first action (``txn_decide``, which also commits that node's
  share); only then do the other participants commit (``txn_finish``), and
  the coordinator forgets the decision once all of them did (told with its
  next decision, so forgetting costs no call of its own).  Whatever
  happens to this router after the decision, the participants apply it
  (``node/txn_recovery.py``); whatever happens before it, they abort.

The answer goes back once every participant committed, so a client that
reads after a successful TransactWriteItems sees all of it.  A participant
that cannot be reached after the decision commits when its resolver asks
the coordinator; the answer is still a success, since the decision is
durable.

``execute_read`` serves TransactGetItems.  On one node a read is one
critical section.  Over several, the items are read twice: nothing a
transaction holds (a lock answers a conflict) and every version the same
both times means there is a moment between the two rounds at which every
item held what was read, so no transaction is seen half applied.

Test hook: ``MERIDIAN_TXN_TEST_PAUSE=after-prepare:SECONDS`` (or
``after-decide:SECONDS``) in the router's environment makes every
multi-node transaction wait there, after logging
``txn <id> paused <point>``, so crash tests can kill a process at that
moment.  Unset, it costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os

from meridian.model import limits
from meridian.model.errors import DynamoError, InternalServerError, TransactionConflictException
from meridian.model.ops import ItemOp, ItemResult
from meridian.model.transactions import TRANSACTION_ONGOING, TXN_ID_BYTES, TxnOutcome, TxnRequest

from .context import RouterContext
from .storage import Storage

log = logging.getLogger("meridian.router.transactions")

_PAUSE_ENV = "MERIDIAN_TXN_TEST_PAUSE"


def _pause_point() -> tuple[str, float] | None:
    raw = os.environ.get(_PAUSE_ENV)
    if not raw:
        return None
    point, _, seconds = raw.partition(":")
    if point not in ("after-prepare", "after-decide"):
        raise ValueError(f"{_PAUSE_ENV}={raw!r}: the point is after-prepare or after-decide")
    return point, float(seconds or 0)


_PAUSE = _pause_point()

#: forget calls in flight (kept so the loop does not drop them)
_forgetting: set[asyncio.Task[None]] = set()
#: ctx.txn_forgets of contexts built without a server (tests): none kept
_NO_FORGETS: dict[str, list[bytes]] = {}


async def _pause(point: str, txn_id: bytes) -> None:
    if _PAUSE is not None and _PAUSE[0] == point:
        log.warning("txn %s paused %s", txn_id.hex(), point)
        await asyncio.sleep(_PAUSE[1])


def _by_node(calls: list[tuple[str, ItemOp]]) -> dict[str, list[int]]:
    """Positions of the calls per node, nodes in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for position, (node_id, _op) in enumerate(calls):
        groups.setdefault(node_id, []).append(position)
    return groups


async def _finish(storage: Storage, nodes: list[str], txn_id: bytes, commit: bool) -> list[str]:
    """Finish the transaction on ``nodes``; returns the nodes that could not be reached."""
    replies = await asyncio.gather(
        *(storage.txn_finish(node_id, txn_id, commit) for node_id in nodes), return_exceptions=True
    )
    missed = []
    for node_id, reply in zip(nodes, replies):
        if isinstance(reply, BaseException):
            if not isinstance(reply, DynamoError):
                log.error("finishing transaction %s on %s failed", txn_id.hex(), node_id, exc_info=reply)
            missed.append(node_id)
    if missed:
        log.warning("transaction %s: %s not %s yet; its resolver will ask the coordinator",
                    txn_id.hex(), ",".join(missed), "committed" if commit else "aborted")
    return missed


def _forget_later(ctx: RouterContext, coordinator: str, txn_id: bytes) -> None:
    """Drop a finished transaction's decision: with the coordinator's next
    decision (no call of its own), or in one call once
    ``TXN_FORGET_BATCH_MAX`` are waiting."""
    forgets = getattr(ctx, "txn_forgets", None)
    if forgets is None:
        forgets = _NO_FORGETS
    waiting = forgets.setdefault(coordinator, [])
    waiting.append(txn_id)
    if len(waiting) < limits.TXN_FORGET_BATCH_MAX:
        return
    del forgets[coordinator]
    storage = ctx.storage

    async def forget() -> None:
        try:
            await storage.txn_forget(coordinator, waiting)
        except DynamoError as err:  # kept until TXN_DECISION_RETENTION_S: harmless
            log.info("%d decisions not forgotten on %s: %s", len(waiting), coordinator, err)

    task = asyncio.get_running_loop().create_task(forget())
    _forgetting.add(task)
    task.add_done_callback(_forgetting.discard)


async def execute_write(ctx: RouterContext, actions: list[tuple[str, ItemOp]]) -> list[ItemResult]:
    """Run a TransactWriteItems atomically; ``actions`` in request order as
    ``(node id, op)``.  One result per action, in order: every ``error``
    None means committed; otherwise nothing was applied and the actions that
    caused it carry their reason.  Raises ``DynamoError`` when storage fails."""
    storage = ctx.storage
    txn_id = os.urandom(TXN_ID_BYTES)
    groups = _by_node(actions)
    if len(groups) == 1:
        (node_id,) = groups
        return await storage.transact(node_id, TxnRequest(txn_id, [op for _node, op in actions]))
    coordinator = actions[0][0]
    nodes = list(groups)
    replies = await asyncio.gather(
        *(
            storage.transact(
                node_id,
                TxnRequest(txn_id, [actions[p][1] for p in groups[node_id]], prepare=True, coordinator=coordinator),
            )
            for node_id in nodes
        ),
        return_exceptions=True,
    )
    results: list[ItemResult] = [ItemResult() for _ in actions]
    prepared: list[str] = []
    failure: BaseException | None = None
    cancelled = False
    for node_id, reply in zip(nodes, replies):
        if isinstance(reply, BaseException):
            failure = failure or reply
            continue
        if any(result.error is not None for result in reply):
            cancelled = True
        else:
            prepared.append(node_id)
        for position, result in zip(groups[node_id], reply):
            results[position] = result
    if failure is not None or cancelled:
        # No COMMIT is ever recorded for this transaction: abort what prepared.
        if prepared:
            await _finish(storage, prepared, txn_id, commit=False)
        if isinstance(failure, DynamoError):
            raise failure
        if failure is not None:
            log.error("transaction %s: prepare failed", txn_id.hex(), exc_info=failure)
            raise InternalServerError("Internal server error")
        return results
    await _pause("after-prepare", txn_id)
    # If this call fails the decision may or may not be recorded: the
    # participants learn it from the coordinator (node/txn_recovery.py).
    forgets = getattr(ctx, "txn_forgets", None)
    forget = forgets.pop(coordinator, None) if forgets else None
    outcome = await storage.txn_decide(coordinator, txn_id, TxnOutcome.COMMIT, forget)
    if outcome is not TxnOutcome.COMMIT:
        # A participant's resolver found it prepared too long and aborted it first.
        await _finish(storage, [n for n in prepared if n != coordinator], txn_id, commit=False)
        raise InternalServerError("Internal server error")
    await _pause("after-decide", txn_id)
    missed = await _finish(storage, [n for n in prepared if n != coordinator], txn_id, commit=True)
    if not missed:
        _forget_later(ctx, coordinator, txn_id)
    return results


async def _read_round(storage: Storage, groups: dict[str, list[int]], ops: list[ItemOp]) -> list[ItemResult]:
    nodes = list(groups)
    replies = await asyncio.gather(*(storage.txn_read(node_id, [ops[p] for p in groups[node_id]]) for node_id in nodes))
    results: list[ItemResult] = [ItemResult() for _ in ops]
    for node_id, reply in zip(nodes, replies):
        for position, result in zip(groups[node_id], reply):
            results[position] = result
    return results


async def execute_read(ctx: RouterContext, gets: list[tuple[str, ItemOp]]) -> list[ItemResult]:
    """Run a TransactGetItems as one serializable snapshot.  One result per
    get, in order; ``TransactionConflictException`` for an item an in-flight
    transaction holds (or, after ``TXN_READ_ATTEMPTS_MAX`` tries, one that
    kept changing between the two rounds of a read over several nodes)."""
    storage = ctx.storage
    groups = _by_node(gets)
    ops = [op for _node, op in gets]
    if len(groups) == 1:
        (node_id,) = groups
        return await storage.txn_read(node_id, ops)
    moved: list[int] = []
    for _attempt in range(limits.TXN_READ_ATTEMPTS_MAX):
        first = await _read_round(storage, groups, ops)
        if any(result.error is not None for result in first):
            return first
        second = await _read_round(storage, groups, ops)
        moved = [
            position
            for position, (a, b) in enumerate(zip(first, second))
            if b.error is not None or a.version != b.version
        ]
        if not moved:
            return first
    for position in moved:
        first[position] = ItemResult(error=TransactionConflictException(TRANSACTION_ONGOING))
    return first
