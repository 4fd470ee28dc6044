"""ClientRequestToken: TransactWriteItems' idempotency, kept by the router.

DynamoDB remembers a token for ``TXN_IDEMPOTENCY_WINDOW_S`` after the first
request that used it completed (botocore's ``ClientRequestToken`` doc):

* the same token with the same ``TransactItems``: the first answer again,
  nothing applied a second time; its ``ConsumedCapacity`` is then the read
  units of the items, not the write units (the same doc; the replay is
  billed as a transactional read of the images the first call wrote);
* the same token with other ``TransactItems``: ``IdempotentParameterMismatchException``;
* the same token while the first request still runs:
  ``TransactionInProgressException`` ("Transaction from previous request is
  still in progress", a live DynamoDB reply quoted in aws-sdk-java-v2 issue
  2518), which botocore's retry modes retry, so a client's retry gets the
  first answer once it is there.

Only committed transactions are remembered: one that was cancelled or
failed applied nothing, and forgetting it lets a retry run it again.  What
counts as "the same request" is ``TransactItems`` alone, compared as canonical
JSON (key order ignored): the replay answers with its own
``ReturnConsumedCapacity`` and ``ReturnItemCollectionMetrics``.

Each router keeps its own tokens, in memory, at most
``TXN_IDEMPOTENCY_TOKENS_MAX`` (the oldest forgotten first): a retry that
reaches another router of the cluster, or this one after a restart, runs
again, a difference from DynamoDB.  ``store_for`` keeps one store per action
(PartiQL's ExecuteTransaction has tokens of its own, as DynamoDB scopes them).
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from meridian.model import limits
from meridian.model.errors import IdempotentParameterMismatchException, TransactionInProgressException

from .context import RouterContext

#: DynamoDB's message is not on record; this one says what happened.
MISMATCH_MESSAGE = (
    "Request parameters do not match the parameters of the previous request made with this ClientRequestToken"
)


def request_digest(transact_items: Any) -> bytes:
    """What identifies a request for its token: its TransactItems, key order ignored."""
    canonical = orjson.dumps(transact_items, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).digest()


@dataclass(slots=True)
class Committed:
    """What a committed transaction leaves for its replays."""

    digest: bytes
    #: (table name, size of the item each action was charged on), in request order
    read_sizes: list[tuple[str, int]] = field(default_factory=list)
    #: ItemCollectionMetrics as if SIZE had been asked (table -> entries)
    metrics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    done_at_s: float = 0.0


class TokenStore:
    """Tokens of one router: the running ones, and the committed ones of the last window."""

    def __init__(self, *, window_s: float = limits.TXN_IDEMPOTENCY_WINDOW_S,
                 tokens_max: int = limits.TXN_IDEMPOTENCY_TOKENS_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._tokens_max = tokens_max
        self._clock = clock
        self._running: dict[str, bytes] = {}  # token -> digest; bounded by the router's requests in flight
        self._done: OrderedDict[str, Committed] = OrderedDict()  # oldest completion first
        self.replays = 0
        self.mismatches = 0

    def __len__(self) -> int:
        return len(self._done)

    def __repr__(self) -> str:
        return (f"<TokenStore committed={len(self._done)}/{self._tokens_max} running={len(self._running)} "
                f"replays={self.replays} mismatches={self.mismatches}>")

    def _expire(self, now_s: float) -> None:
        done = self._done
        while done:
            oldest = next(iter(done.values()))
            if now_s - oldest.done_at_s < self._window_s:
                return
            done.popitem(last=False)

    def begin(self, token: str, digest: bytes) -> Committed | None:
        """Claim ``token`` for a request: None to run it (then ``commit`` or
        ``abandon``), or the committed first request to answer from."""
        self._expire(self._clock())
        committed = self._done.get(token)
        running = self._running.get(token) if committed is None else None
        known = committed.digest if committed is not None else running
        if known is not None and known != digest:
            self.mismatches += 1
            raise IdempotentParameterMismatchException(MISMATCH_MESSAGE)
        if committed is not None:
            self.replays += 1
            return committed
        if running is not None:
            raise TransactionInProgressException()
        self._running[token] = digest
        return None

    def commit(self, token: str, record: Committed) -> None:
        """The request holding ``token`` committed: replays answer from ``record``."""
        self._running.pop(token, None)
        record.done_at_s = self._clock()
        self._done[token] = record
        self._done.move_to_end(token)
        while len(self._done) > self._tokens_max:
            self._done.popitem(last=False)

    def abandon(self, token: str) -> None:
        """The request holding ``token`` applied nothing (or cannot tell): forget it."""
        self._running.pop(token, None)


#: the stores of each router (keyed by its catalog, so routers sharing a
#: process keep their tokens apart), one per action
_STORES: weakref.WeakKeyDictionary[Any, dict[str, TokenStore]] = weakref.WeakKeyDictionary()


def forget_all(ctx: RouterContext) -> None:
    """Drop this router's tokens (``meridian.testing``'s reset: a fresh start)."""
    _STORES.pop(ctx.catalog, None)


def store_for(ctx: RouterContext, action: str = "TransactWriteItems") -> TokenStore:
    """This router's tokens of ``action``."""
    stores = _STORES.get(ctx.catalog)
    if stores is None:
        stores = _STORES[ctx.catalog] = {}
    store = stores.get(action)
    if store is None:
        store = stores[action] = TokenStore()
    return store
