"""An embedded Meridian inside a test process: its own thread, its own uvloop loop, a free port.

What moto's ``mock_aws`` is to boto3 tests, with the real server: requests
go over HTTP to the router and engine ``meridian serve`` runs, so a test
sees what Meridian answers, validation and error messages included.

    from meridian import testing

    with testing.serve() as endpoint:          # "http://127.0.0.1:PORT"
        client = boto3.client("dynamodb", endpoint_url=endpoint, ...)
        ...
        testing.reset(endpoint)                 # every table gone, same server

Why a thread rather than a process: starting is one engine open (no new
interpreter), and ``reset`` is a call on the server's own loop rather than
requests, so a clean state between tests costs tens of microseconds.  The
test's thread only hands work to that loop (``run_coroutine_threadsafe``)
and waits for it.

In memory by default, as ``meridian serve --in-memory``: RocksDB in a scratch
folder on a RAM-backed file system (``/dev/shm`` when there is one), removed
on stop; ``data_dir`` keeps the data instead.

The router, the engine and RocksDB are imported when a server starts, not on
``import meridian.testing``: the pytest plugin imports this module in every
pytest run of an environment where Meridian is installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from meridian.model import limits

if TYPE_CHECKING:
    from meridian.router.server import RouterOptions, RouterServer

#: The region a test server says it is in: boto3's usual default, and the
#: region the plugin's clients are made for.
DEFAULT_REGION = "us-east-1"
LOOPBACK = "127.0.0.1"
#: Where an in-memory server's scratch folder goes, when this machine has it.
RAM_FOLDER = "/dev/shm"

_running: dict[str, EmbeddedMeridian] = {}
_running_lock = threading.Lock()


class EmbeddedMeridian:
    """One embedded Meridian (router and engine in this process) served from a background thread.

    ``start()`` returns the endpoint URL; ``reset()`` drops every table;
    ``stop()`` closes it (in-flight writes made durable, engine closed,
    scratch folder removed).  Also a context manager (``with ... as server``).
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        region: str = DEFAULT_REGION,
        host: str = LOOPBACK,
        port: int = 0,
        options: RouterOptions | None = None,
    ) -> None:
        """``data_dir``: keep the data there (default: in memory).  ``port`` 0
        takes a free one.  ``options``: the router's operator settings
        (``meridian.router.server.RouterOptions``: credentials, CORS, ...)."""
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.region = region
        self.host = host
        self.port = port
        self.options = options
        self.endpoint: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._router: RouterServer | None = None
        self._scratch: str | None = None

    def __repr__(self) -> str:
        state = "running" if self._router is not None else "stopped"
        where = self.data_dir or "in memory"
        return f"<EmbeddedMeridian {self.endpoint or '-'} {state} ({where})>"

    def __enter__(self) -> EmbeddedMeridian:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._router is not None

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> str:
        """Open the engine, listen, and return the endpoint URL (``http://HOST:PORT``)."""
        if self._thread is not None:
            raise RuntimeError(f"{self!r} was already started")
        if self.data_dir is None:
            base = RAM_FOLDER if os.path.isdir(RAM_FOLDER) else None
            self._scratch = tempfile.mkdtemp(prefix="meridian-test-", dir=base)
        self._loop = _new_tracking_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="meridian-testing", daemon=True)
        self._thread.start()
        try:
            self._router = self._call(self._open(), limits.TESTING_START_TIMEOUT_S)
        except BaseException:
            self._halt()
            raise
        self.endpoint = f"http://{self.host}:{self._router.port}"
        return self.endpoint

    async def _open(self) -> RouterServer:
        """On the server's loop: the engine, its storage seam and the router, as ``meridian serve`` builds them."""
        from meridian.node.engine import Engine
        from meridian.router.server import RouterOptions, start_router
        from meridian.router.storage_embedded import EmbeddedStorage

        options = self.options if self.options is not None else RouterOptions()
        data_dir = self._scratch or self.data_dir
        assert data_dir is not None
        os.makedirs(data_dir, exist_ok=True)
        engine = Engine(data_dir, node_id="embedded", region=self.region, sync=False, replicated=False,
                        stream_retention_s=options.stream_retention_s)  # fmt: skip
        storage = EmbeddedStorage(engine)
        try:
            return await start_router(
                storage, host=self.host, port=self.port, region=self.region, shared_catalog=False, options=options
            )
        except BaseException:
            await storage.close()
            raise

    def stop(self) -> None:
        """Close the server and its engine; remove an in-memory server's folder.  Idempotent."""
        router, self._router = self._router, None
        try:
            if router is not None:
                self._call(router.close(), limits.TESTING_STOP_TIMEOUT_S)
        finally:
            self._halt()

    def _halt(self) -> None:
        """Stop the loop and its thread, then drop the scratch folder."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            self._call(_close_leftovers(loop.connections), limits.TESTING_STOP_TIMEOUT_S)  # type: ignore[attr-defined]
            loop.call_soon_threadsafe(loop.stop)
            thread.join(limits.TESTING_STOP_TIMEOUT_S)
        if loop is not None and not loop.is_running():
            loop.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _call(self, coro: Any, timeout_s: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    # --- clean state -----------------------------------------------------------

    def reset(self) -> int:
        """Drop every table (items, indexes, streams) without restarting; return how many.

        Each table goes the way DeleteTable takes it (its catalog entry marked
        deleted, its items dropped as one range delete), but all at once and
        without DeleteTable's refusals: deletion protection and indexes still
        being built do not hold a reset back.  Backups go too (a test's
        ListBackups starts empty), and so do the router's remembered
        ClientRequestTokens.
        """
        if self._router is None:
            raise RuntimeError(f"{self!r} is not running")
        return self._call(_drop_every_table(self._router), limits.TESTING_RESET_TIMEOUT_S)


async def _drop_every_table(router: RouterServer) -> int:
    from meridian.router.backup_catalog import BackupCatalog
    from meridian.router.backup_cut import delete_everywhere
    from meridian.router.transact_tokens import forget_all

    catalog, storage = router.catalog, router.storage
    tables = catalog.tables()
    for table in tables:
        await catalog.remove(table)
        await storage.drop_table(table.table_id)
    backups = BackupCatalog(storage)
    for record in await backups.all():
        await backups.remove(record)
        await delete_everywhere(storage, record.backup_id)
    forget_all(router.app.ctx)
    return len(tables)


async def _close_leftovers(connections: set[asyncio.BaseTransport]) -> None:
    """What is still open once the router closed: client connections, and tasks (a request being answered).

    Closing the connections here, not leaving them to ``loop.close()``, is
    what makes stopping clean: uvloop would close them itself with a
    ResourceWarning each, and under ``-W error`` (a common pytest setting)
    that warning, raised inside its handle walk, hangs the close.
    """
    for transport in list(connections):
        transport.close()
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)  # the closed connections' connection_lost callbacks run


#: The protocol methods a tracked connection hands straight to the router's protocol.
_PASSED_THROUGH = ("data_received", "eof_received", "pause_writing", "resume_writing", "get_buffer", "buffer_updated")


class _TrackedProtocol(asyncio.Protocol):
    """A connection of the server, recorded while open; everything else goes to the router's protocol.

    The router's methods are bound on the instance, so the loop calls them
    directly: the tracking costs nothing per request.
    """

    def __init__(self, inner: asyncio.BaseProtocol, connections: set[asyncio.BaseTransport]) -> None:
        self._inner = inner
        self._connections = connections
        self._transport: asyncio.BaseTransport | None = None
        for name in _PASSED_THROUGH:
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._connections.add(transport)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self._transport)  # type: ignore[arg-type]
        self._inner.connection_lost(exc)


class _TrackedBufferedProtocol(_TrackedProtocol, asyncio.BufferedProtocol):
    """The same, for a router protocol that reads into its own buffer."""


def _tracked(inner: asyncio.BaseProtocol, connections: set[asyncio.BaseTransport]) -> _TrackedProtocol:
    if isinstance(inner, asyncio.BufferedProtocol):
        return _TrackedBufferedProtocol(inner, connections)
    return _TrackedProtocol(inner, connections)


def _new_tracking_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop whose servers record their open connections (``loop.connections``)."""
    import uvloop

    class TrackingLoop(uvloop.Loop):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.connections: set[asyncio.BaseTransport] = set()

        async def create_server(self, protocol_factory: Any, *args: Any, **kwargs: Any) -> asyncio.AbstractServer:
            connections = self.connections
            return await super().create_server(
                lambda: _tracked(protocol_factory(), connections), *args, **kwargs
            )

    return TrackingLoop()


@contextmanager
def serve(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    region: str = DEFAULT_REGION,
    options: RouterOptions | None = None,
) -> Iterator[str]:
    """An embedded Meridian on a free loopback port for the ``with`` block; yields its endpoint URL.

    In memory unless ``data_dir`` is given.  ``reset(endpoint)`` drops every
    table while it runs.
    """
    server = EmbeddedMeridian(data_dir=data_dir, region=region, options=options)
    endpoint = server.start()
    with _running_lock:
        _running[endpoint] = server
    try:
        yield endpoint
    finally:
        with _running_lock:
            _running.pop(endpoint, None)
        server.stop()


def reset(endpoint: str) -> int:
    """Drop every table of the server ``serve()`` started at ``endpoint``; return how many."""
    with _running_lock:
        server = _running.get(endpoint.rstrip("/"))
    if server is None:
        raise LookupError(f"no Meridian started by meridian.testing.serve() at {endpoint}")
    return server.reset()
