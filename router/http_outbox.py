"""Answers written once per event-loop round, every connection's together.

Why: on a virtual machine, waking a process that sleeps on another CPU (the
client reading its answer) costs an inter-processor interrupt, and each
``transport.write`` to an idle client wakes it.  Written as they are made,
answers from one round of reads (one request from each of many connections)
wake the client once per answer: ``perf`` on ``meridian serve`` under wrk
found 13 % of the server's CPU in the wake-up (``sock_def_readable`` ->
``_raw_spin_unlock_irqrestore``), inside the sending ``write``.  Held until
the round's I/O callbacks are done, then written back to back, they wake it
about once per round: the first write does, the others find it awake.

How: a connection's ``HttpProtocol`` keeps its encoded answers in a list
and, with the first of a round, registers itself with ``Outbox.register``; a
single ``call_soon`` per round runs ``flush``, which has each registered
connection write its bytes in one ``transport.write``.  The
loop runs ``call_soon`` callbacks after the I/O callbacks of the round that
scheduled them, so nothing waits longer than that round.  Order is kept per
connection: a protocol flushes its own pending bytes before anything else it
writes or before closing (``HttpProtocol._flush``).  A connection holding
``limits.HTTP_WRITE_COALESCE_BYTES_MAX`` bytes writes at once, so the
transport's high-water mark (``pause_writing``) still bounds what a client
that does not read can make the router hold.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

log = logging.getLogger("meridian.router.http")


class _Flushable(Protocol):
    def _flush(self) -> None: ...


class Outbox:
    """The connections of one event loop with answers waiting for the end of the round."""

    __slots__ = ("_loop", "_waiting", "_scheduled", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[_Flushable] = []
        self._scheduled = False

    def __repr__(self) -> str:
        return f"<Outbox waiting={len(self._waiting)} scheduled={self._scheduled}>"

    def register(self, proto: _Flushable) -> None:
        """``proto`` has bytes to write: flush it at the end of this round."""
        self._waiting.append(proto)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        for proto in waiting:
            try:
                proto._flush()
            except Exception:  # noqa: BLE001 - one connection's failure must not strand the others' answers
                log.exception("writing answers failed")


_OUTBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = weakref.WeakKeyDictionary()


def outbox_of(loop: asyncio.AbstractEventLoop) -> Outbox:
    """The loop's outbox (one per loop, made on first use)."""
    box = _OUTBOXES.get(loop)
    if box is None:
        box = _OUTBOXES[loop] = Outbox(loop)
    return box
