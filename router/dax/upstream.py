"""Where a DAX node sends what it does not answer from its caches.

A DAX node is a front of the same action layer as the HTTP endpoint, so it
runs DynamoDB actions with DynamoDB JSON bodies and gets DynamoDB JSON
answers (or the ``DynamoError`` the action raised):

* ``InProcessUpstream``: the router in the same process (``meridian serve
  --dax-port``, ``meridian router --dax-port``): the action's coroutine is
  awaited directly, after the same request validation as over HTTP;
* ``HttpUpstream``: a DynamoDB endpoint over HTTP (``meridian dax
  --upstream URL``): one keep-alive connection pool, errors rebuilt from
  their ``__type`` and ``message``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from meridian.model import limits
from meridian.model.errors import DynamoError, InternalServerError, ServiceUnavailable, error_from_type


class Upstream(Protocol):
    async def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one DynamoDB action; raise its ``DynamoError``."""

    async def close(self) -> None: ...


class InProcessUpstream:
    """The router application of this process (``router/app.py``)."""

    def __init__(self, app: Any) -> None:
        self._invoke = app.invoke

    def __repr__(self) -> str:
        return "<InProcessUpstream>"

    async def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._invoke(action, body)

    async def close(self) -> None:
        return None


class HttpUpstream:
    """A DynamoDB endpoint (a Meridian router, or anything that speaks DynamoDB JSON 1.0)."""

    def __init__(self, url: str, region: str) -> None:
        self.url = url.rstrip("/") + "/"
        self.region = region
        self._session = None  # aiohttp.ClientSession, made on the first call (inside the running loop)

    def __repr__(self) -> str:
        return f"<HttpUpstream {self.url}>"

    def _headers(self, action: str) -> dict[str, str]:
        # Meridian's routers accept any signature unless configured with
        # credentials; a DAX node in front of such a router is the one that
        # checks its clients' credentials (``router/dax/auth.py``).
        now = time.gmtime()
        return {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"DynamoDB_20120810.{action}",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", now),
            "Authorization": (f"AWS4-HMAC-SHA256 Credential=dax/{time.strftime('%Y%m%d', now)}/{self.region}/"
                              "dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"),
        }

    async def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        import aiohttp  # noqa: PLC0415 - only a standalone DAX node needs it

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limits.DAX_UPSTREAM_CONNECTIONS_MAX),
                timeout=aiohttp.ClientTimeout(total=limits.DAX_UPSTREAM_TIMEOUT_S),
            )
        try:
            async with self._session.post(self.url, data=orjson.dumps(body), headers=self._headers(action)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable(f"DAX upstream {self.url} is unavailable: {exc}") from exc
        try:
            answer = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError as exc:
            raise InternalServerError("Internal server error") from exc
        if status == 200:
            return answer
        if not isinstance(answer, dict):
            raise InternalServerError("Internal server error")
        type_name = str(answer.get("__type", "")).rsplit("#", 1)[-1]
        message = answer.get("message", answer.get("Message"))
        err = error_from_type(type_name, message, answer.get("Item"))
        if type_name == "TransactionCanceledException":
            err.reasons = answer.get("CancellationReasons")
        raise err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["DynamoError", "HttpUpstream", "InProcessUpstream", "Upstream"]
