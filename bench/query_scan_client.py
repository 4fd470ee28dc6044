"""query_scan's measuring client: keep-alive HTTP on uvloop and httptools, reading pages cheaply.

http.client costs ~120 µs of CPU per request here, as much as Meridian
spends serving a 100-item Query page: measured with it, the client would be
the bottleneck. So the measuring client is one uvloop event loop with one
asyncio.Protocol per connection and httptools (llhttp, in C) parsing the
answers; and it reads from each page only what paginating needs, ``Count``
and ``LastEvaluatedKey``, instead of decoding every item (orjson takes
~0.6 µs per item, a third of what a server spends producing it). Pages are
still checked: one in VERIFY_EVERY_PAGES (query_scan_measure.py) is decoded
in full and compared.
"""

from __future__ import annotations

import asyncio
import json
import re

# Dependencies of Meridian itself (pyproject.toml), so present wherever `meridian` is:
# orjson for JSON, httptools (llhttp) and uvloop for a client costing far less than the servers.
import httptools
import orjson
import uvloop

import dynamo  # bench/ is on sys.path (query_scan.py puts it there)

#: Bytes after ``"LastEvaluatedKey":`` that certainly hold the whole key (a
#: key is at most 2048 + 1024 bytes of values, in JSON with its names).
LAST_KEY_JSON_BYTES_MAX = 16 * 1024
CONNECT_TIMEOUT_S = 10.0
#: How much of a page without ``Count`` an error message shows.
BAD_PAGE_SHOWN_BYTES = 200

_COUNT = re.compile(rb'"Count":\s*(\d+)')
_LAST_KEY = b'"LastEvaluatedKey":'
_JSON = json.JSONDecoder()


def page_count_and_last_key(raw: bytes) -> tuple[int, dict | None]:
    """A page's ``Count`` and ``LastEvaluatedKey`` without decoding its items.

    Safe for this benchmark's items only: their attribute names are ``pk``,
    ``sk`` and ``data``, and their values digits and hex, so neither marker
    can occur inside an item.
    """
    count = _COUNT.search(raw)
    if count is None:
        raise RuntimeError(f"no Count in the page: {raw[:BAD_PAGE_SHOWN_BYTES]!r}")
    at = raw.rfind(_LAST_KEY)
    if at < 0:
        return int(count.group(1)), None
    start = at + len(_LAST_KEY)
    window = raw[start : start + LAST_KEY_JSON_BYTES_MAX].decode("utf-8", "replace")
    return int(count.group(1)), _JSON.raw_decode(window.lstrip())[0]


def verify_page(raw: bytes, count: int, last_key: dict | None) -> None:
    """Decode the whole page and fail loudly if the cheap reading got it wrong."""
    page = orjson.loads(raw)
    if len(page["Items"]) != count or page["Count"] != count or page.get("LastEvaluatedKey") != last_key:
        raise RuntimeError(
            f"page check failed: {len(page['Items'])} items, Count {page['Count']}, "
            f"LastEvaluatedKey {page.get('LastEvaluatedKey')!r}; read as {count}, {last_key!r}"
        )


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, port: int):
        self.port = port
        self.requests = 0
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._waiter: asyncio.Future | None = None
        self._heads: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<Connection 127.0.0.1:{self.port} open={self._transport is not None} requests={self.requests}>"

    @classmethod
    async def open(cls, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, connection = await asyncio.wait_for(
            loop.create_connection(lambda: cls(port), "127.0.0.1", port), CONNECT_TIMEOUT_S
        )
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"connection to port {self.port} lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:  # httptools callback
        self._body.append(body)

    def on_message_complete(self) -> None:  # httptools callback
        body, self._body = b"".join(self._body), []
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((self._parser.get_status_code(), body))

    def _head(self, action: str) -> bytes:
        head = self._heads.get(action)
        if head is None:
            target = f"DynamoDB_20120810.{action}"
            headers = {**dynamo.HEADERS, "Host": f"127.0.0.1:{self.port}", "X-Amz-Target": target}
            head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            self._heads[action] = head = head.encode()
        return head

    async def call(self, action: str, body: bytes) -> bytes:
        """POST one request; the answer's body, or DynamoError for a non-200 answer."""
        if self._transport is None:
            raise ConnectionError(f"connection to port {self.port} is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.writelines((self._head(action), b"Content-Length: %d\r\n\r\n" % len(body), body))
        status, answer = await self._waiter
        self.requests += 1
        if status != 200:
            raise dynamo.DynamoError(action, status, answer)
        return answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def run_async(coroutine) -> object:
    """Run ``coroutine`` to its end on a fresh uvloop event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
