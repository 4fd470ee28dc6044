"""The process-control side of ``meridian up``: its state file and HTTP API.

Chaos experiments (``meridian chaos``) and tests need to kill, pause and
restart one process of a running ``meridian up`` and to know what runs where.
``up`` therefore keeps ``<data-dir>/up.json`` current::

    {"pid": <up's pid>, "control": "127.0.0.1:<port>",
     "regions": {"us-east-1": "http://127.0.0.1:8000", ...},
     "replicators": {"us-east-1": "127.0.0.1:<port>", ...},
     "processes": [{"name": "us-east-1/node-0", "role": "node", "region": "us-east-1",
                    "pid": 123, "state": "running|killed|paused|exited"}, ...]}

(written once everything is up, rewritten whenever a state changes, removed
when ``up`` stops) and serves, on 127.0.0.1 only, a port of the kernel's
choosing named in that file::

    GET  /processes                      {"processes": [...]}
    POST /processes/<name>/kill          SIGKILL, wait until it is gone
    POST /processes/<name>/restart       start again: same arguments, ports and data;
                                         answers once it serves again
    POST /processes/<name>/pause         SIGSTOP
    POST /processes/<name>/resume        SIGCONT

A name holds a slash (``us-east-1/node-0``); the action is the last path
segment.  Answers are JSON: ``{"process": {...}}`` after an action, or
``{"message": ...}`` with 404 (unknown process or path) or 500 (a restart
that did not come up).  A process killed here is ``killed``, not
``exited``: ``up`` reports only deaths nobody asked for.

Threading: the HTTP server runs on its own thread but every request is
carried out by the supervisor on the main thread.  ``PR_SET_PDEATHSIG``
ties a child to the thread that started it (see ``meridian.cluster.procs``): a
child restarted from a short-lived request thread would be killed as soon
as that thread ended.
"""

from __future__ import annotations

import http.server
import os
import queue
import threading
import urllib.parse
from concurrent.futures import Future
from pathlib import Path

import orjson

from meridian.cluster import limits
from meridian.cluster.procs import LocalCluster, Member

#: The state file, in ``--data-dir``.
STATE_FILE_NAME = "up.json"
#: The process actions the API offers.
ACTIONS = ("kill", "restart", "pause", "resume")


class ProcessControlError(Exception):
    """A request that cannot be carried out; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def state_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where ``meridian up --data-dir data_dir`` keeps its state file."""
    return Path(data_dir).absolute() / STATE_FILE_NAME


class ProcessControl:
    """The cluster's processes as the API sees them; every method but ``submit`` runs on the main thread."""

    def __init__(self, cluster: LocalCluster) -> None:
        self._cluster = cluster
        self._members = {member.name: member for member in cluster.members()}
        self._killed_on_request: set[str] = set()
        self._requests: queue.Queue[tuple[str, str | None, Future]] = queue.Queue(maxsize=limits.UP_CONTROL_QUEUE_MAX)
        self._closed = False
        self._lock = threading.Lock()  # orders submit against close
        self._current: Future | None = None
        self._state_path = state_path(cluster.data_dir)
        self._written: bytes | None = None
        self._server: _ControlServer | None = None
        self._thread: threading.Thread | None = None
        self.address = ""

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Serve the API on 127.0.0.1 (a free port) and write the state file."""
        self._server = _ControlServer(("127.0.0.1", 0), self)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="up-control", daemon=True)
        self._thread.start()
        self.write_state()

    def close(self) -> None:
        """Refuse new requests, fail the waiting ones, stop serving, remove the state file."""
        with self._lock:
            self._closed = True
        failed = [self._current] if self._current is not None else []
        while True:
            try:
                failed.append(self._requests.get_nowait()[2])
            except queue.Empty:
                break
        for future in failed:
            if not future.done():
                future.set_exception(ProcessControlError(503, "meridian up is stopping"))
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._state_path.unlink(missing_ok=True)

    # --- what the supervisor calls -----------------------------------------

    def members(self) -> list[Member]:
        return list(self._members.values())

    def killed_on_request(self, member: Member) -> bool:
        """Whether the member is down because the API killed it (not a death to report)."""
        return member.name in self._killed_on_request and not member.process.alive

    def serve(self, timeout_s: float) -> None:
        """Carry out the queued requests; wait up to ``timeout_s`` for the first one."""
        try:
            item = self._requests.get(timeout=timeout_s)
        except queue.Empty:
            return
        while True:
            name, action, future = item
            self._current = future
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        answer = self._carry_out(name, action)
                    except ProcessControlError as error:
                        future.set_exception(error)
                    else:
                        future.set_result(answer)
            finally:
                self._current = None
            self.write_state()
            try:
                item = self._requests.get_nowait()
            except queue.Empty:
                return

    def write_state(self) -> None:
        """Rewrite the state file if anything in it changed (atomically: temp file, rename)."""
        data = orjson.dumps(self._state(), option=orjson.OPT_INDENT_2)
        if data == self._written:
            return
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path.with_name(self._state_path.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self._state_path)
        self._written = data

    # --- any thread --------------------------------------------------------

    def submit(self, name: str, action: str | None) -> Future:
        """Queue a request for the supervisor; ``action`` None lists every process."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise ProcessControlError(503, "meridian up is stopping")
            try:
                self._requests.put_nowait((name, action, future))
            except queue.Full:
                raise ProcessControlError(503, f"more than {limits.UP_CONTROL_QUEUE_MAX} requests waiting") from None
        return future

    # --- the work ----------------------------------------------------------

    def _state(self) -> dict:
        cluster = self._cluster
        return {
            "pid": os.getpid(),
            "control": self.address,
            "regions": dict(cluster.endpoints),
            "replicators": dict(cluster.replicator_addresses),
            "processes": [self._describe(member) for member in self._members.values()],
        }

    def _describe(self, member: Member) -> dict:
        process = member.process
        if process.alive:
            state = "paused" if process.paused else "running"
        else:
            state = "killed" if member.name in self._killed_on_request else "exited"
        return {"name": member.name, "role": member.role, "region": member.region, "pid": process.pid, "state": state}

    def _carry_out(self, name: str, action: str | None) -> dict:
        if action is None:
            return {"processes": [self._describe(member) for member in self._members.values()]}
        member = self._members.get(name)
        if member is None:
            raise ProcessControlError(404, f"no process named {name!r}; known: {', '.join(self._members)}")
        process = member.process
        if action == "kill":
            if process.alive:
                self._killed_on_request.add(name)
                process.kill()
                try:
                    process.wait(limits.UP_KILL_REAP_TIMEOUT_S)
                except TimeoutError as error:
                    raise ProcessControlError(500, str(error)) from None
        elif action == "restart":
            self._killed_on_request.discard(name)
            process.restart()
            try:
                member.ready(limits.STARTUP_TIMEOUT_S)
            except Exception as error:  # StartupError, or the process died at once
                raise ProcessControlError(500, f"{name} did not come back: {error}") from None
        elif action == "pause":
            if process.alive:
                process.pause()
        elif action == "resume":
            if process.alive:
                process.resume()
        else:
            raise ProcessControlError(404, f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        return {"process": self._describe(member)}


class _ControlServer(http.server.HTTPServer):
    """One request at a time (the supervisor serialises the work anyway)."""

    def __init__(self, address: tuple[str, int], control: ProcessControl) -> None:
        self.control = control
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ControlServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # up's terminal shows the cluster, not every control request

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path != "/processes":
            self._answer(404, {"message": f"no such path: GET {path}; try GET /processes"})
            return
        self._run("", None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, limits.UP_REQUEST_BODY_BYTES_MAX))
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        prefix, _, rest = path.lstrip("/").partition("/")
        name, _, action = rest.rpartition("/")
        if prefix != "processes" or not name or action not in ACTIONS:
            self._answer(404, {"message": f"no such path: POST {path}; try POST /processes/<name>/<{'|'.join(ACTIONS)}>"})
            return
        self._run(name, action)

    def _run(self, name: str, action: str | None) -> None:
        try:
            future = self.server.control.submit(name, action)
            answer = future.result(limits.UP_CONTROL_ANSWER_TIMEOUT_S)
        except ProcessControlError as error:
            self._answer(error.status, {"message": str(error)})
        except TimeoutError:
            self._answer(504, {"message": f"no answer within {limits.UP_CONTROL_ANSWER_TIMEOUT_S:g} s"})
        else:
            self._answer(200, answer)

    def _answer(self, status: int, body: dict) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
