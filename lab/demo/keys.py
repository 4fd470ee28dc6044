"""Single key presses from the terminal, read on a thread, handed to the event loop.

The terminal is put in cbreak mode (``tty.setcbreak``: no line buffering,
no echo) rather than full raw mode: output processing stays on, so the
dashboard's newlines still return the carriage, and Ctrl-C still raises
SIGINT. The previous settings are restored by ``close`` (and by the
context manager), whatever happened meanwhile.

Reading blocks, so it happens on a daemon thread that polls the descriptor
with ``select`` (so ``close`` stops it within ``limits.KEY_POLL_INTERVAL_S``) and
posts each key to the loop with ``call_soon_threadsafe`` into a bounded
queue; keys pressed faster than the dashboard takes them are dropped
(counted in ``dropped``), never queued without limit.
"""

from __future__ import annotations

import asyncio
import os
import select
import sys
import termios
import threading
import tty

from meridian.cluster import limits


UP, DOWN = "up", "down"
_ESCAPES = {b"\x1b[A": UP, b"\x1b[B": DOWN, b"\x1bOA": UP, b"\x1bOB": DOWN}


def decode_keys(data: bytes) -> list[str]:
    """Key names in ``data``: printable characters as themselves, arrows as ``up``/``down``.

    Other escape sequences and control bytes are ignored.
    """
    keys, i = [], 0
    while i < len(data):
        for sequence, name in _ESCAPES.items():
            if data.startswith(sequence, i):
                keys.append(name)
                i += len(sequence)
                break
        else:
            byte = data[i]
            if byte == 0x1B:  # an escape sequence we do not know: skip it whole
                i += 1
                if i < len(data) and data[i] in b"[O":
                    i += 1
                    while i < len(data) and not 0x40 <= data[i] <= 0x7E:
                        i += 1
                i += 1
                continue
            if 0x20 <= byte < 0x7F:
                keys.append(chr(byte))
            i += 1
    return keys


class KeyReader:
    """Reads key presses from ``fd`` (a terminal) into ``queue`` until closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        if not os.isatty(self.fd):
            raise OSError(f"file descriptor {self.fd} is not a terminal: no keys to read")
        self.queue: asyncio.Queue[str] = asyncio.Queue(limits.KEY_QUEUE_MAX)
        self.dropped = 0
        self._loop = loop
        self._saved = termios.tcgetattr(self.fd)
        self._stop = threading.Event()
        tty.setcbreak(self.fd)
        self._thread = threading.Thread(target=self._read, name="meridian-demo-keys", daemon=True)
        self._thread.start()

    def _put(self, key: str) -> None:  # on the loop
        try:
            self.queue.put_nowait(key)
        except asyncio.QueueFull:
            self.dropped += 1

    def _read(self) -> None:  # on the thread
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], limits.KEY_POLL_INTERVAL_S)
                if not ready:
                    continue
                data = os.read(self.fd, limits.KEY_READ_BYTES)
            except OSError:
                return  # the terminal went away
            if not data:
                return
            for key in decode_keys(data):
                try:
                    self._loop.call_soon_threadsafe(self._put, key)
                except RuntimeError:  # the loop is closed
                    return

    def close(self) -> None:
        """Stop reading and restore the terminal's settings (idempotent)."""
        self._stop.set()
        self._thread.join(limits.KEY_POLL_INTERVAL_S * 5)
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def __enter__(self) -> KeyReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
