"""Batched puts over ``meridian load``'s keep-alive client, retried as the SDKs retry.

``put_batch`` sends up to 25 items in one BatchWriteItem and resends its
UnprocessedItems (and the whole batch after a throttle, a 5xx or a lost
connection) with exponential backoff and full jitter, ``IMPORT_BATCH_RETRIES_MAX``
times at most; past that the import stops (and can be resumed).  A batch
DynamoDB refuses as a whole (ValidationException: one bad item spoils the
batch) is retried item by item with PutItem, so each bad item is named and
the good ones are written.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from meridian.lab.load.client import (
    CONNECT_ERROR,
    CONNECTION_LOST_ERROR,
    TIMEOUT_ERROR,
    DynamoClient,
    Reply,
)
from meridian.model import limits

#: answers worth another try: throttles, the server's own failures, the network
RETRYABLE = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "LimitExceededException",
    CONNECT_ERROR, CONNECTION_LOST_ERROR, TIMEOUT_ERROR,
})  # fmt: skip


class ImportStopped(Exception):
    """The server kept failing (or refused for a reason retrying cannot fix)."""


def message_of(reply: Reply) -> str:
    body = reply.body or {}
    return f"{reply.error}: {body.get('message') or body.get('Message') or ''}".rstrip(": ")


async def backoff(attempt: int) -> None:
    ceiling_s = min(limits.IMPORT_BACKOFF_MAX_S, limits.IMPORT_BACKOFF_BASE_S * 2**attempt)
    await asyncio.sleep(random.uniform(0, ceiling_s))


async def call_with_retries(client: DynamoClient, action: str, payload: dict[str, Any]) -> Reply:
    """One call, retried while its failure is a retryable one; the last reply otherwise."""
    for attempt in range(limits.IMPORT_BATCH_RETRIES_MAX + 1):
        reply = await client.call(action, payload)
        if reply.ok or reply.error not in RETRYABLE or attempt == limits.IMPORT_BATCH_RETRIES_MAX:
            return reply
        await backoff(attempt)
    raise AssertionError("unreachable")


class BatchWriter:
    """Puts into one table; counts its calls and retries (for the summary)."""

    def __init__(self, client: DynamoClient, table: str) -> None:
        self._client = client
        self._table = table
        self.calls = 0
        self.retries = 0

    async def put_batch(self, items: list[dict[str, Any]]) -> list[tuple[int, str]]:
        """Write ``items``; answer those DynamoDB refused: (index in ``items``, why)."""
        assert 0 < len(items) <= limits.BATCH_WRITE_ITEMS_MAX
        pending = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(limits.IMPORT_BATCH_RETRIES_MAX + 1):
            self.calls += 1
            reply = await self._client.call("BatchWriteItem", {"RequestItems": {self._table: pending}})
            if reply.ok:
                pending = (reply.body or {}).get("UnprocessedItems", {}).get(self._table, [])
                if not pending:
                    return []
            elif reply.error == "ValidationException":
                return await self._one_by_one(items)
            elif reply.error not in RETRYABLE:
                raise ImportStopped(f"BatchWriteItem into {self._table}: {message_of(reply)}")
            self.retries += 1
            await backoff(attempt)
        raise ImportStopped(
            f"BatchWriteItem into {self._table}: still failing or unprocessed after "
            f"{limits.IMPORT_BATCH_RETRIES_MAX} retries (the server is overloaded or down); run again to resume"
        )

    async def _one_by_one(self, items: list[dict[str, Any]]) -> list[tuple[int, str]]:
        refused = []
        for index, item in enumerate(items):
            self.calls += 1
            reply = await call_with_retries(self._client, "PutItem", {"TableName": self._table, "Item": item})
            if reply.ok:
                continue
            if reply.error != "ValidationException":
                raise ImportStopped(f"PutItem into {self._table}: {message_of(reply)}")
            refused.append((index, message_of(reply)))
        return refused
