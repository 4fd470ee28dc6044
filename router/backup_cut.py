"""Checkpoints across every storage node of the region: backups' consistent cuts, PITR's start.

A backup is one checkpoint per node, all named by the backup id.  Taken
one after the other, they would not be one moment of the region: a
writer's second write could land in node B's checkpoint while its first,
on node A, missed A's.  So the router first pauses writes on every node
(``Storage.hold_writes``: new writes wait, none is refused, reads go on),
then has every node checkpoint, then lets writes go: every write
acknowledged before the pause is in the backup, and none made after it,
on any node.  The pause ends on its own after
``limits.WRITE_HOLD_TIMEOUT_S_MAX`` if this router dies holding it.

Enabling point-in-time recovery also starts with a checkpoint on every
node (``pitr-<ms>``, the name the nodes' periodic ones have), so a restore
to the very moment PITR was enabled has a checkpoint to start from.  The
window a table can be restored in follows from the nodes' oldest kept
periodic checkpoints (``Storage.pitr_window``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from meridian.model import limits
from meridian.model.backups import CheckpointInfo, pitr_checkpoint_name
from meridian.model.errors import DynamoError, InternalServerError

from .storage import Storage

log = logging.getLogger("meridian.router.backups")


async def _each_node(storage: Storage, call) -> list:
    """``call(node_id)`` on every node at once; the first failure is raised
    once every call has ended (so the caller can undo what succeeded)."""
    results = await asyncio.gather(*(call(node_id) for node_id in storage.node_ids), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def take_cut(storage: Storage, name: str) -> list[CheckpointInfo]:
    """A checkpoint named ``name`` on every node, at one moment of the region.

    Raises InternalServerError (no checkpoint left behind) when a node fails.
    """
    token = uuid.uuid4().hex
    held: list[str] = []

    async def hold(node_id: str) -> None:
        await storage.hold_writes(node_id, token, limits.WRITE_HOLD_TIMEOUT_S_MAX)
        held.append(node_id)

    try:
        await _each_node(storage, hold)
        return await _each_node(storage, lambda node_id: storage.create_checkpoint(node_id, name))
    except Exception as exc:  # noqa: BLE001 - any node failure: undo, answer InternalServerError
        log.error("checkpoint %s failed: %r", name, exc)
        await delete_everywhere(storage, name)
        raise InternalServerError(None) from exc
    finally:
        await asyncio.gather(*(storage.release_writes(node_id, token) for node_id in held), return_exceptions=True)


async def delete_everywhere(storage: Storage, name: str) -> None:
    """Delete the checkpoint ``name`` on every node that answers (a node
    that does not keeps it until a later delete; it harms nothing)."""
    results = await asyncio.gather(
        *(storage.delete_checkpoint(node_id, name) for node_id in storage.node_ids), return_exceptions=True
    )
    for node_id, result in zip(storage.node_ids, results):
        if isinstance(result, BaseException) and not isinstance(result, DynamoError):
            log.warning("deleting checkpoint %s on %s failed: %r", name, node_id, result)


async def start_pitr(storage: Storage) -> float:
    """A periodic-style checkpoint on every node; returns the time (epoch s)
    from which the table can be restored: the latest of the checkpoints'."""
    now_ms = int(time.time() * 1000)
    try:
        infos = await _each_node(storage, lambda node_id: storage.create_checkpoint(node_id, pitr_checkpoint_name(now_ms)))
    except DynamoError:
        raise
    except Exception as exc:  # noqa: BLE001 - a node's failure is the service's
        raise InternalServerError(None) from exc
    return max([now_ms] + [info.created_ms for info in infos]) / 1000


async def oldest_checkpoint_s(storage: Storage) -> float:
    """The latest, over the nodes, of each node's oldest kept periodic
    checkpoint (epoch s; 0 when no node has one): no time before it can be
    restored on every node."""
    oldest_ms = await _each_node(storage, storage.pitr_window)
    return max([0] + [ms for ms in oldest_ms if ms]) / 1000
