"""``meridian streams tail``: watch a table's DynamoDB stream, one line per record.

    meridian streams tail --endpoint URL --table T [--region R] [--from trim-horizon|latest]

For people who would rather watch than poll: it finds the table's stream
(``LatestStreamArn`` in DescribeTable), follows every shard and the shards
that follow them, and prints each record as it arrives::

    17:04:41  INSERT  {pk: "a"}  new {pk: "a", n: 1}
    17:04:42  MODIFY  {pk: "a"}  old {pk: "a", n: 1}  new {pk: "a", n: 2}
    17:04:49  REMOVE  {pk: "a"}  old {pk: "a", n: 2}  TTL: dynamodb.amazonaws.com

Only the public API is used (``DynamoDBStreams_20120810.*`` over HTTP, signed
like any SDK signs), so it works against any endpoint that serves streams.

**Lineage** (``Lineage``): a shard is read only once its parent has been
read to its end (its last GetRecords answered no ``NextShardIterator``), so
the records of one item come out in the order they were written even when
its shard closes and a child takes over (the way the Kinesis adapter and
Lambda's pollers consume).  A parent DescribeStream no longer lists (trimmed)
does not hold its children back.  ``--from latest`` skips the shards already
closed when the tail starts and reads the open ones from LATEST; shards that
appear later are read from their start, since all of them is new.

**Polling** (``Follower``): each pass reads one page (GetRecords, up to
``RECORDS_PER_PAGE``) from every readable shard; while any shard answered
records, or one ended, the next pass starts at once; when every shard is
quiet it waits ``POLL_INTERVAL_S`` (DynamoDB's recommended GetRecords rate is
a few per second per shard).  The shard list is refreshed at most every
``POLL_INTERVAL_S``, and at once after a shard ends (its children).  An
expired iterator is renewed after the last record printed; an iterator
into trimmed data restarts at the shard's oldest record (with a warning: the
records in between are gone).  When the stream is disabled and read to its
end, the table is checked for a newer stream (a re-enabled one), which is
then followed from its start.

Errors the server or network cause while tailing (5xx, a refused or broken
connection) are reported on stderr and retried at the next poll; a refusal
(4xx) ends the command with DynamoDB's message.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

#: A quiet pass (no shard answered records) waits this long before the next.
POLL_INTERVAL_S = 1.0
#: GetRecords ``Limit``: DynamoDB's largest.
RECORDS_PER_PAGE = 1000
#: DescribeStream ``Limit``: DynamoDB's largest.
SHARDS_PER_PAGE = 100
#: One HTTP request may take this long.
REQUEST_TIMEOUT_S = 10.0
#: A folded image longer than this is cut (with an ellipsis) when printed.
IMAGE_CHARS_MAX = 400

TRIM_HORIZON, LATEST = "trim-horizon", "latest"
_DYNAMODB = "DynamoDB_20120810."
_STREAMS = "DynamoDBStreams_20120810."
_SERVICE_PRINCIPAL = "dynamodb.amazonaws.com"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EVENT_STYLES = {"INSERT": "green", "MODIFY": "yellow", "REMOVE": "red"}


# --- HTTP ----------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than 200: DynamoDB's ``__type`` short name and message.

    ``code`` is ``"Unavailable"`` when no DynamoDB answer came back (a refused
    or broken connection, a timeout) and ``transient`` says whether trying
    again later may succeed (5xx answers and network failures)."""

    def __init__(self, code: str, message: str, transient: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient


class StreamsClient:
    """DynamoDB and DynamoDB Streams JSON calls to one endpoint, over one
    keep-alive connection, signed with SigV4 (credentials from the
    environment, else the dummies Meridian accepts)."""

    def __init__(self, endpoint: str, region: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        from meridian.lab.load.client import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, SigV4Signer

        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._parts = parts
        self._timeout_s = timeout_s
        self._signer = SigV4Signer(
            region,
            os.environ.get("AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID),
            os.environ.get("AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_ACCESS_KEY),
        )
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"<StreamsClient {self.endpoint}>"

    def dynamodb(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._call(_DYNAMODB + action, payload)

    def streams(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._call(_STREAMS + action, payload)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            self._conn = kind(self._parts.hostname, self._parts.port, timeout=self._timeout_s)
        return self._conn

    def _call(self, target: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(payload)
        headers = self._signer.headers(self._parts.netloc, target, body)
        for attempt in (1, 2):  # one reconnect: the server may have closed an idle connection
            try:
                conn = self._connection()
                conn.request("POST", "/", body, headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2:
                    raise ApiError("Unavailable", f"{self.endpoint}: {exc}", transient=True) from None
        try:
            answer = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            answer = None
        if response.status == 200 and isinstance(answer, dict):
            return answer
        if not isinstance(answer, dict):
            answer = {"message": data[:200].decode(errors="replace")}
        code = str(answer.get("__type", "")).rpartition("#")[2] or f"HTTP{response.status}"
        message = str(answer.get("message") or answer.get("Message") or "")
        raise ApiError(code, message, transient=response.status >= 500)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- lineage -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """What DescribeStream says of one shard."""

    shard_id: str
    parent_id: str | None
    closed: bool  # it has an EndingSequenceNumber: it will not grow

    @classmethod
    def from_wire(cls, shard: dict[str, Any]) -> ShardInfo:
        return cls(
            shard["ShardId"], shard.get("ParentShardId"), "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
        )


class Lineage:
    """The shards of one stream and which of them may be read now.

    A shard is readable while not finished and its parent is finished or
    unknown (never listed, or trimmed away).  Shards are kept in the order
    DescribeStream lists them (by period, then node), which is also the
    order ``readable`` answers in."""

    def __init__(self) -> None:
        self._shards: dict[str, ShardInfo] = {}
        self._finished: set[str] = set()

    def __repr__(self) -> str:
        return f"<Lineage {len(self._shards)} shards, {len(self._finished)} finished>"

    def add(self, shards: Iterable[ShardInfo]) -> list[ShardInfo]:
        """Record a listing; returns the shards not seen before.  A known shard
        that closed since is updated (a finished one stays finished)."""
        new = []
        for shard in shards:
            if shard.shard_id not in self._shards:
                new.append(shard)
            self._shards[shard.shard_id] = shard
        return new

    def finish(self, shard_id: str) -> None:
        """``shard_id`` was read to its end (or is gone): its children may start."""
        self._finished.add(shard_id)

    def finished(self, shard_id: str) -> bool:
        return shard_id in self._finished

    def readable(self) -> list[str]:
        out = []
        for shard_id, shard in self._shards.items():
            if shard_id in self._finished:
                continue
            parent = shard.parent_id
            if parent is None or parent not in self._shards or parent in self._finished:
                out.append(shard_id)
        return out

    def all_finished(self) -> bool:
        return all(shard_id in self._finished for shard_id in self._shards)

    def __len__(self) -> int:
        return len(self._shards)


# --- folding records into one line ---------------------------------------------------


def fold_value(value: dict[str, Any]) -> str:
    """One attribute value, compactly: ``"text"``, ``12.5``, ``true``, ``null``,
    ``b"AAE="`` (base64), ``[..]``, ``{name: ..}``, sets as ``<<..>>`` (PartiQL's)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return orjson.dumps(inner).decode()
    if kind == "N":
        return inner
    if kind == "B":
        return f'b"{inner}"'
    if kind == "BOOL":
        return "true" if inner else "false"
    if kind == "NULL":
        return "null"
    if kind == "L":
        return "[" + ", ".join(fold_value(v) for v in inner) + "]"
    if kind == "M":
        return fold_image(inner)
    if kind == "SS":
        return "<<" + ", ".join(orjson.dumps(s).decode() for s in inner) + ">>"
    if kind == "NS":
        return "<<" + ", ".join(inner) + ">>"
    if kind == "BS":
        return "<<" + ", ".join(f'b"{b}"' for b in inner) + ">>"
    return orjson.dumps(value).decode()  # a type this version does not know: as is


def fold_image(image: dict[str, Any]) -> str:
    """An item (or its keys) as ``{name: value, ...}``; names that are not
    identifiers are quoted."""
    parts = []
    for name, value in image.items():
        shown = name if _NAME.match(name) else orjson.dumps(name).decode()
        parts.append(f"{shown}: {fold_value(value)}")
    return "{" + ", ".join(parts) + "}"


def _cut(text: str, chars_max: int = IMAGE_CHARS_MAX) -> str:
    return text if len(text) <= chars_max else text[: chars_max - 1] + "…"


def by_service(record: dict[str, Any]) -> bool:
    """A Time to Live deletion: the service's, not a client's."""
    identity = record.get("userIdentity") or {}
    return identity.get("Type") == "Service" and identity.get("PrincipalId") == _SERVICE_PRINCIPAL


def record_time(record: dict[str, Any], tz: datetime.tzinfo | None = None) -> str:
    """``HH:MM:SS`` of the record's ApproximateCreationDateTime (local time by default)."""
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if created is None:
        return "--:--:--"
    return datetime.datetime.fromtimestamp(float(created), tz).strftime("%H:%M:%S")


def record_parts(record: dict[str, Any], tz: datetime.tzinfo | None = None) -> list[tuple[str, str]]:
    """The pieces of a record's line, each with its rich style (``""``: none)."""
    data = record.get("dynamodb", {})
    event = record.get("eventName", "?")
    style = f"bold {_EVENT_STYLES.get(event, '')}".strip()
    parts = [(record_time(record, tz), "dim"), ("  ", ""), (f"{event:<6}", style)]
    parts += [("  ", ""), (fold_image(data.get("Keys", {})), "bold")]
    for label, field in (("old", "OldImage"), ("new", "NewImage")):
        if field in data:
            parts += [("  ", ""), (label + " ", "dim"), (_cut(fold_image(data[field])), "")]
    if by_service(record):
        parts += [("  ", ""), (f"TTL: {_SERVICE_PRINCIPAL}", "magenta")]
    return parts


def record_line(record: dict[str, Any], tz: datetime.tzinfo | None = None) -> str:
    """The record's line as plain text."""
    return "".join(text for text, _ in record_parts(record, tz))


# --- following a stream --------------------------------------------------------------


@dataclass
class _Position:
    iterator: str | None = None
    last_sequence: str | None = None  # the last record emitted from the shard


class Follower:
    """Reads one table's stream, shard after shard along the lineage, and
    hands every record to ``emit`` (see the module docstring)."""

    def __init__(
        self,
        client: StreamsClient,
        table: str,
        start: str = TRIM_HORIZON,
        *,
        emit: Callable[[dict[str, Any]], None],
        warn: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
        sleep: Callable[[float], None] = time.sleep,
        monotonic_s: Callable[[], float] = time.monotonic,
    ) -> None:
        if start not in (TRIM_HORIZON, LATEST):
            raise ValueError(f"start must be {TRIM_HORIZON} or {LATEST}, got {start!r}")
        self._client = client
        self.table = table
        self._start = start
        self._emit = emit
        self._warn = warn
        self._sleep = sleep
        self._monotonic_s = monotonic_s
        self.stream_arn: str | None = None
        self.lineage = Lineage()
        self._positions: dict[str, _Position] = {}
        self._latest: set[str] = set()  # shards to start at LATEST (open when the tail started)
        self._listed_at: float | None = None
        self._status = ""
        self.records = 0

    def __repr__(self) -> str:
        return f"<Follower {self.table} {self.stream_arn} {self.lineage!r} records={self.records}>"

    def open(self) -> None:
        """Find the table's stream; ``ApiError`` ``NoStream`` when it has none."""
        arn = self._client.dynamodb("DescribeTable", {"TableName": self.table})["Table"].get("LatestStreamArn")
        if arn is None:
            hint = "--stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES"
            raise ApiError("NoStream", f"table {self.table} has no stream: enable one with update-table {hint}", False)
        self._follow(arn, self._start)

    def _follow(self, arn: str, start: str) -> None:
        self.stream_arn = arn
        self.lineage = Lineage()
        self._positions.clear()
        self._latest.clear()
        self._listed_at = None
        shards = self._list()
        if start == LATEST:
            for shard in shards:
                if shard.closed:
                    self.lineage.finish(shard.shard_id)  # history: nothing after "now" can be in it
                else:
                    self._latest.add(shard.shard_id)

    def _list(self) -> list[ShardInfo]:
        """Every shard DescribeStream lists now (all pages); new ones join the lineage."""
        shards, after = [], None
        while True:
            payload: dict[str, Any] = {"StreamArn": self.stream_arn, "Limit": SHARDS_PER_PAGE}
            if after is not None:
                payload["ExclusiveStartShardId"] = after
            description = self._client.streams("DescribeStream", payload)["StreamDescription"]
            self._status = description.get("StreamStatus", "")
            shards += [ShardInfo.from_wire(s) for s in description.get("Shards", [])]
            after = description.get("LastEvaluatedShardId")
            if after is None:
                break
        self.lineage.add(shards)
        self._listed_at = self._monotonic_s()
        return shards

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Poll until ``stop()`` (or forever); transient failures are retried."""
        while not stop():
            try:
                busy = self.poll()
            except ApiError as exc:
                if not exc.transient:
                    raise
                self._warn(f"meridian streams tail: {exc} (retrying)")
                busy = False
            if not busy:
                self._sleep(POLL_INTERVAL_S)

    def poll(self) -> bool:
        """One pass: a page from every readable shard.  True when another pass
        should follow at once (records came, or a shard ended)."""
        if self.stream_arn is None:
            self.open()
        if self._listed_at is None or self._monotonic_s() - self._listed_at >= POLL_INTERVAL_S:
            self._list()
        busy = False
        for shard_id in self.lineage.readable():
            got, ended = self._read_page(shard_id)
            if ended:
                self.lineage.finish(shard_id)
                self._positions.pop(shard_id, None)
                self._listed_at = None  # its children may be listed by now
            busy = busy or got > 0 or ended
        if not busy and self.lineage.all_finished() and self._status in ("DISABLED", "DISABLING"):
            self._next_stream()
        return busy

    def _read_page(self, shard_id: str) -> tuple[int, bool]:
        """GetRecords once on ``shard_id``: (records emitted, shard read to its end)."""
        position = self._positions.setdefault(shard_id, _Position())
        try:
            if position.iterator is None:
                position.iterator = self._iterator(shard_id, position)
            answer = self._client.streams("GetRecords", {"ShardIterator": position.iterator, "Limit": RECORDS_PER_PAGE})
        except ApiError as exc:
            if exc.code == "ExpiredIteratorException":
                position.iterator = None  # renewed after the last record emitted, next pass
                return 0, False
            if exc.code == "TrimmedDataAccessException":
                self._warn(f"meridian streams tail: {shard_id}: records trimmed before they were read ({exc.message})")
                position.iterator, position.last_sequence = None, None
                self._latest.discard(shard_id)
                return 0, False
            if exc.code == "ResourceNotFoundException":
                return 0, True  # the shard is gone (trimmed): its children go on
            raise
        records = answer.get("Records", [])
        for record in records:
            self._emit(record)
            position.last_sequence = record.get("dynamodb", {}).get("SequenceNumber", position.last_sequence)
        self.records += len(records)
        position.iterator = answer.get("NextShardIterator")
        return len(records), position.iterator is None

    def _iterator(self, shard_id: str, position: _Position) -> str:
        payload: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if position.last_sequence is not None:
            payload |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": position.last_sequence}
        elif shard_id in self._latest:
            payload["ShardIteratorType"] = "LATEST"
        else:
            payload["ShardIteratorType"] = "TRIM_HORIZON"
        # Once positioned, a renewed iterator continues after what was printed,
        # never from LATEST again (that would skip what came in between).
        self._latest.discard(shard_id)
        return self._client.streams("GetShardIterator", payload)["ShardIterator"]

    def _next_stream(self) -> None:
        """The stream is disabled and read to its end: follow a newer one, if any."""
        arn = self._client.dynamodb("DescribeTable", {"TableName": self.table})["Table"].get("LatestStreamArn")
        if arn is not None and arn != self.stream_arn:
            self._follow(arn, TRIM_HORIZON)


# --- the command ---------------------------------------------------------------------


def add_arguments(sub: argparse._SubParsersAction) -> None:
    """Register ``meridian streams tail``."""
    streams = sub.add_parser("streams", help="DynamoDB Streams from the command line")
    actions = streams.add_subparsers(dest="streams_command", required=True)
    p = actions.add_parser(
        "tail", help="print a table's stream records as they arrive, one line each",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--endpoint", required=True, metavar="URL", help="a router's URL, or meridian serve's")
    p.add_argument("--table", required=True)
    p.add_argument(
        "--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="the region requests are signed for (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)",
    )  # fmt: skip
    p.add_argument(
        "--from", dest="start", choices=(TRIM_HORIZON, LATEST), default=TRIM_HORIZON,
        help="trim-horizon (default): every record still kept, then new ones; latest: only new ones",
    )  # fmt: skip


def run(ns: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())

    def emit(record: dict[str, Any]) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        for text, style in record_parts(record):
            line.append(text, style=style or None)
        console.print(line, crop=console.is_terminal)

    try:
        client = StreamsClient(ns.endpoint, ns.region)
    except ValueError as exc:
        raise SystemExit(f"meridian streams tail: {exc}") from None
    follower = Follower(client, ns.table, ns.start, emit=emit)
    try:
        follower.open()
        follower.run()
    except ApiError as exc:
        print(f"meridian streams tail: {exc}", file=sys.stderr)
        return 2 if exc.code in ("NoStream", "ResourceNotFoundException", "Unavailable") else 1
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
    return 0
