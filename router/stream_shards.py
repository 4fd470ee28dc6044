"""A stream's shards, as the region's storage nodes hold them.

Every node keeps its own records of a stream, cut into one shard per shard
period (``model/streams.py``); the stream's shards are all of them, asked
of every node at once (``Storage.stream_shards``) and listed in shard id
order: by period, then node tag.  A node's shards form a chain: the parent
of its shard of period k is its shard of period k-1, when the node still
lists it (the stream's first period has none, and neither has the oldest
shard left once older ones are trimmed: a reader finds nothing to wait for).

A shard's sequence numbers (``format_sequence_number``) are its period
followed by the node's change-log sequence: ``StartingSequenceNumber`` is
the period's sequence 0, below every record; a closed shard's
``EndingSequenceNumber`` is its last record's (its start when it has none).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from meridian.model.streams import ShardState, StreamShards, format_sequence_number, node_tag

from .context import RouterContext
from .stream_catalog import StreamRef
from .stream_ids import shard_id


@dataclass(frozen=True, slots=True)
class ShardView:
    """One shard of a stream: whose, which period, and its state on its node."""

    node_id: str
    tag: str
    state: ShardState
    parent_id: str | None

    @property
    def period(self) -> int:
        return self.state.period

    @property
    def shard_id(self) -> str:
        return shard_id(self.state.period, self.tag)

    def description(self) -> dict[str, Any]:
        """The shard's ``Shard`` in a DescribeStream answer."""
        numbers = {"StartingSequenceNumber": format_sequence_number(self.period, 0)}
        if self.state.closed:
            numbers["EndingSequenceNumber"] = format_sequence_number(self.period, self.state.last_sequence)
        out: dict[str, Any] = {"ShardId": self.shard_id, "SequenceNumberRange": numbers}
        if self.parent_id is not None:
            out["ParentShardId"] = self.parent_id
        return out


def node_tags(ctx: RouterContext) -> dict[str, str]:
    """Node tag -> node id, for the region's nodes."""
    return {node_tag(node_id): node_id for node_id in ctx.storage.node_ids}


async def node_shards(ctx: RouterContext, ref: StreamRef, node_id: str) -> StreamShards:
    return await ctx.storage.stream_shards(node_id, ref.table_id, ref.stream_id)


async def list_shards(ctx: RouterContext, ref: StreamRef) -> list[ShardView]:
    """Every shard of the stream, in shard id order."""
    node_ids = list(ctx.storage.node_ids)
    listings = await asyncio.gather(*(node_shards(ctx, ref, node_id) for node_id in node_ids))
    shards: list[ShardView] = []
    for node_id, listing in zip(node_ids, listings):
        shards.extend(chain(node_id, listing))
    shards.sort(key=lambda shard: (shard.period, shard.tag))
    return shards


def chain(node_id: str, listing: StreamShards) -> list[ShardView]:
    """One node's shards, each with its parent (the same node's previous period)."""
    tag = node_tag(node_id)
    periods = {state.period for state in listing.shards}
    return [
        ShardView(node_id, tag, state, shard_id(state.period - 1, tag) if state.period - 1 in periods else None)
        for state in listing.shards
    ]
