"""``meridian demo dax``: GetItem through DAX beside GetItem straight to the table, live.

    meridian demo dax [--endpoint URL [--dax-endpoint dax://HOST:PORT]] [--items N] [--duration-s S] [--plain]

What runs, in one process:

* without ``--endpoint``, its own ``meridian serve --in-memory --dax-port``
  (a child process on free ports, stopped on the way out);
* a table of ``--items`` items, loaded with boto3 (so, not through DAX: the
  first DAX read of each item is an item cache miss, as it would be on AWS);
* one reading thread that, for random keys, reads each item twice, once
  with the published Python DAX client (``amazondax``, DAX's binary protocol
  to the DAX node) and once with boto3 (DynamoDB's HTTP API to the router),
  alternating which goes first so neither path always warms the other's;
* the DAX node's item cache hits and misses, read from the router's
  ``/console/api/dax`` (the console's DAX panel; the same counters as
  ``/metrics``), turned into the hit rate of the last seconds;
* rich's ``Live`` redrawing ``dax_view.render`` (in a terminal), or a plain
  line a second (``--plain``, or no terminal), then the summary.

The DAX client is a test dependency of Meridian, not a runtime one: without
it the demo says how to install it (``pip install amazon-dax-client``).
Latencies are the clients' own, Python client overhead included: this shows
what an application written in Python sees on each path.
"""

from __future__ import annotations

import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from meridian.cluster import limits as cluster_limits
from meridian.model import limits

from . import DAX_DEFAULT_TABLE as DEFAULT_TABLE  # noqa: F401 - the table's name lives with the arguments
from .dax_stats import HitRate, PathLatency
from .dax_view import DaxDemoState, plain_line, render, summary_record, summary_table

REGION = "us-east-1"
#: Each item: its key and a payload of about this many bytes (a typical small record).
PAYLOAD_BYTES = 200
INSTALL_HINT = "meridian demo dax needs the DAX client: pip install amazon-dax-client"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class DaxDemoOptions:
    endpoint: str | None  # a router's URL; None: start an own meridian serve
    dax_endpoint: str | None  # its DAX node; None: asked of the router's /console/api/dax
    items: int
    duration_s: float | None
    plain: bool
    table: str
    summary_json: Path | None
    seed: int


def dax_client_module() -> Any | None:
    try:
        import amazondax  # noqa: PLC0415 - a test dependency, only when the demo runs
    except ImportError:
        return None
    return amazondax


class OwnServer:
    """``meridian serve --in-memory --dax-port`` on free ports, in a temporary directory."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.process = None

    def start(self) -> tuple[str, str]:
        """(router URL, DAX URL) once both answer; stops it again on failure."""
        from meridian.cluster.procs import ManagedProcess, free_port, wait_for_http_ok, wait_for_port  # noqa: PLC0415

        self.directory = Path(tempfile.mkdtemp(prefix="meridian-demo-dax-"))
        http_port, dax_port = free_port(), free_port()
        try:
            self.process = ManagedProcess(
                ["serve", "--host", "127.0.0.1", "--port", str(http_port), "--in-memory", "--dax-port", str(dax_port)],
                log_path=self.directory / "serve.log", name="meridian serve (demo dax)",
            )  # fmt: skip
            wait_for_http_ok(f"http://127.0.0.1:{http_port}/health", limits.DEMO_DAX_START_TIMEOUT_S, process=self.process)
            wait_for_port("127.0.0.1", dax_port, limits.DEMO_DAX_START_TIMEOUT_S, process=self.process)
        except BaseException:
            self.stop()
            raise
        return f"http://127.0.0.1:{http_port}", f"dax://127.0.0.1:{dax_port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def console_dax(http_url: str) -> dict:
    """The router's ``/console/api/dax`` answer; ``OSError``/``ValueError`` when it has none."""
    with _DIRECT.open(http_url.rstrip("/") + "/console/api/dax", timeout=limits.DEMO_DAX_CALL_TIMEOUT_S) as answer:
        return orjson.loads(answer.read())


def discover_dax_url(http_url: str) -> str | None:
    """The first DAX node the router serves (its cluster's leader); None without DAX."""
    clusters = console_dax(http_url).get("clusters") or []
    return clusters[0]["nodes"][0]["url"] if clusters and clusters[0]["nodes"] else None


def item_cache_counters(answer: dict, dax_url: str) -> tuple[int, int]:
    """(hits, misses) of the DAX cluster ``dax_url`` belongs to (the client reads from
    each of its nodes), or of every node when no node has that URL."""
    clusters = answer.get("clusters") or []
    mine = [c for c in clusters if any(node["url"] == dax_url for node in c["nodes"])] or clusters
    nodes = [node for cluster in mine for node in cluster["nodes"]]
    return sum(n["item_cache"]["hits"] for n in nodes), sum(n["item_cache"]["misses"] for n in nodes)


def key_of(i: int) -> dict:
    return {"pk": {"S": f"item-{i:06d}"}}


def load_table(ddb: Any, table: str, items: int) -> None:
    """Create the table (if it is not there) and write every item, straight to the table."""
    try:
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])  # fmt: skip
    except ddb.exceptions.ResourceInUseException:
        pass  # a previous run's: its items are rewritten below
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    payload = "x" * PAYLOAD_BYTES
    for start in range(0, items, limits.BATCH_WRITE_ITEMS_MAX):
        requests = [{"PutRequest": {"Item": {**key_of(i), "n": {"N": str(i)}, "payload": {"S": payload}}}}
                    for i in range(start, min(items, start + limits.BATCH_WRITE_ITEMS_MAX))]  # fmt: skip
        pending = {table: requests}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


class Reader:
    """The reading thread: each key read through both paths, timed."""

    def __init__(self, dax: Any, ddb: Any, table: str, items: int, seed: int) -> None:
        self.dax_latency, self.direct_latency = PathLatency(), PathLatency()
        self.last_error: str | None = None
        self._paths = ((dax, self.dax_latency, "DAX"), (ddb, self.direct_latency, "direct"))
        self._table, self._items, self._random = table, items, random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-dax-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=limits.DEMO_DAX_CALL_TIMEOUT_S)

    def _run(self) -> None:
        first = 0
        while not self._stop.is_set():
            key = key_of(self._random.randrange(self._items))
            for client, latency, name in (self._paths[first], self._paths[1 - first]):
                started = time.perf_counter()
                try:
                    client.get_item(TableName=self._table, Key=key)
                except Exception as exc:  # noqa: BLE001 - counted and shown; the demo goes on
                    latency.record_error()
                    self.last_error = f"{name}: {type(exc).__name__}: {exc}"
                    self._stop.wait(limits.DEMO_DAX_REDRAW_INTERVAL_S)  # a failing path does not spin
                    continue
                latency.record(time.monotonic(), (time.perf_counter() - started) * 1000)
            first = 1 - first


def _sample(state: DaxDemoState, reader: Reader, hit_rate: HitRate, http_url: str, started_s: float) -> None:
    now = time.monotonic()
    state.elapsed_s = now - started_s
    state.dax, state.direct = reader.dax_latency.figures(now), reader.direct_latency.figures(now)
    try:
        hits, misses = item_cache_counters(console_dax(http_url), state.dax_url)
    except (OSError, ValueError, KeyError) as exc:
        state.hit_rate_unavailable = f"no DAX panel at {http_url}: {exc}"
    else:
        state.hit_rate_unavailable = None
        hit_rate.add(now, hits, misses)
        state.hit_rate_window = hit_rate.window()
        state.hit_rate_total, state.hits, state.misses = hit_rate.since_start()
    if reader.last_error and (not state.notes or state.notes[-1] != reader.last_error):
        state.notes = [*state.notes, reader.last_error][-cluster_limits.DEMO_MESSAGES_MAX:]


def run_dax_demo(opts: DaxDemoOptions, http_url: str, dax_url: str) -> int:
    """Load, read on both paths until ``duration_s`` (or Ctrl-C/SIGTERM), print the summary."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    amazondax = dax_client_module()
    assert amazondax is not None, INSTALL_HINT
    console = Console()
    config = Config(connect_timeout=limits.DEMO_DAX_CALL_TIMEOUT_S, read_timeout=limits.DEMO_DAX_CALL_TIMEOUT_S,
                    retries={"mode": "standard", "total_max_attempts": 1})  # fmt: skip
    credentials = {"region_name": REGION, "aws_access_key_id": "demo", "aws_secret_access_key": "demo"}
    ddb = boto3.client("dynamodb", endpoint_url=http_url, config=config, **credentials)
    print(f"meridian demo dax: loading {opts.items:,} items into {opts.table} at {http_url} ...", flush=True)
    load_table(ddb, opts.table, opts.items)
    dax = amazondax.AmazonDaxClient(endpoint_url=dax_url, config=config, **credentials)
    state = DaxDemoState(table=opts.table, items=opts.items, dax_url=dax_url, http_url=http_url,
                         duration_s=opts.duration_s)  # fmt: skip
    reader, hit_rate = Reader(dax, ddb, opts.table, opts.items, opts.seed), HitRate()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started_s = time.monotonic()
    _sample(state, reader, hit_rate, http_url, started_s)  # the counters before the first read
    reader.start()
    live = None if opts.plain or not console.is_terminal else Live(render(state), console=console, auto_refresh=False)
    interval_s = limits.DEMO_DAX_REDRAW_INTERVAL_S if live else limits.DEMO_DAX_PLAIN_INTERVAL_S
    try:
        if live:
            live.start()
        while not stop.wait(interval_s):
            _sample(state, reader, hit_rate, http_url, started_s)
            if live:
                live.update(render(state), refresh=True)
            else:
                print(plain_line(state), flush=True)
            if opts.duration_s is not None and state.elapsed_s >= opts.duration_s:
                break
    except KeyboardInterrupt:
        pass
    finally:
        reader.stop()
        if live:
            live.stop()
        signal.signal(signal.SIGTERM, previous)
        dax.close()
    _sample(state, reader, hit_rate, http_url, started_s)
    console.print(summary_table(state))
    if opts.summary_json is not None:
        opts.summary_json.write_bytes(orjson.dumps(summary_record(state), option=orjson.OPT_INDENT_2))
    return 0 if state.dax and state.dax.reads and state.direct and state.direct.reads else 1


def run(opts: DaxDemoOptions) -> int:
    """The demo against ``opts.endpoint``, or against its own ``meridian serve``; an exit code."""
    if dax_client_module() is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    own = None
    try:
        if opts.endpoint:
            http_url = opts.endpoint.rstrip("/")
            dax_url = opts.dax_endpoint
            if dax_url is None:
                try:
                    dax_url = discover_dax_url(http_url)
                except (OSError, ValueError, urllib.error.URLError) as exc:
                    print(f"meridian demo dax: cannot ask {http_url} for its DAX nodes ({exc}); "
                          "name one with --dax-endpoint", file=sys.stderr)  # fmt: skip
                    return 2
                if dax_url is None:
                    print(f"meridian demo dax: {http_url} serves no DAX: start it with --dax-port PORT, "
                          "or name a DAX node with --dax-endpoint", file=sys.stderr)  # fmt: skip
                    return 2
        else:
            from meridian.cluster.procs import StartupError  # noqa: PLC0415

            own = OwnServer()
            print("meridian demo dax: starting meridian serve --in-memory --dax-port ...", flush=True)
            try:
                http_url, dax_url = own.start()
            except StartupError as exc:
                print(f"meridian demo dax: could not start meridian serve: {exc}", file=sys.stderr)
                return 1
        return run_dax_demo(opts, http_url, dax_url)
    finally:
        if own is not None:
            own.stop()
