"""UpdateTimeToLive / DescribeTimeToLive in one process, with a clock the test moves.

The black-box tests (tests/compat/test_ttl.py) cannot wait out DynamoDB's
hour; here the router's context sets the interval and the clock jumps, so the
whole cycle (enable, disable, re-enable, transitional states) is checked,
and so is the record the storage nodes read.
"""

from __future__ import annotations

import pytest

from meridian.model import limits
from meridian.model.errors import ResourceNotFoundException, ValidationException
from meridian.model.ring import Ring
from meridian.node.engine import Engine
from meridian.router.actions import ACTIONS
from meridian.router.actions import ttl as ttl_actions
from meridian.router.catalog import Catalog
from meridian.router.context import RouterContext
from meridian.router.storage_embedded import EmbeddedStorage
from meridian.router.validation import validate_request

INTERVAL_S = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1_800_000_000.0

    def time(self) -> float:
        return self.now_s


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(ttl_actions, "time", fake)
    return fake


@pytest.fixture
async def ctx(tmp_path):
    engine = Engine(str(tmp_path / "data"), node_id="embedded", region="us-east-1")
    storage = EmbeddedStorage(engine)
    catalog = Catalog(storage, "us-east-1", shared=False)
    await catalog.start()
    context = RouterContext(storage=storage, catalog=catalog, ring=Ring(storage.node_ids), region="us-east-1",
                            address="127.0.0.1:0", ttl_change_interval_s=INTERVAL_S)
    await call(context, "CreateTable", {
        "TableName": "ttl", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    })
    yield context
    await catalog.stop()
    engine.close()


async def call(ctx: RouterContext, action: str, body: dict) -> dict:
    validate_request(action, body)
    return await ACTIONS[action](ctx, body)


async def update(ctx: RouterContext, enabled: bool, attribute: str = "expires") -> dict:
    return await call(ctx, "UpdateTimeToLive", {
        "TableName": "ttl", "TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute},
    })


async def describe(ctx: RouterContext) -> dict:
    return (await call(ctx, "DescribeTimeToLive", {"TableName": "ttl"}))["TimeToLiveDescription"]


async def stored_record(ctx: RouterContext) -> dict:
    """The table's record as the storage nodes hold it."""
    entries = [e for e in await ctx.storage.catalog_list() if e.name == "ttl" and not e.deleted]
    return max(entries, key=lambda e: e.revision).description


async def refused(coro, message: str) -> None:
    with pytest.raises(ValidationException) as info:
        await coro
    assert info.value.message == message


async def test_cycle_follows_the_interval_of_the_context(ctx, clock):
    assert await describe(ctx) == {"TimeToLiveStatus": "DISABLED"}
    assert (await stored_record(ctx)).get("ttl_attribute") is None

    assert await update(ctx, True) == {"TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires"}}
    assert await describe(ctx) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    assert (await stored_record(ctx))["ttl_attribute"] == "expires"

    clock.now_s += INTERVAL_S - 1
    await refused(update(ctx, False), "Time to live has been modified multiple times within a fixed interval")
    clock.now_s += 1
    assert await update(ctx, False) == {"TimeToLiveSpecification": {"Enabled": False, "AttributeName": "expires"}}
    assert await describe(ctx) == {"TimeToLiveStatus": "DISABLED"}
    assert (await stored_record(ctx))["ttl_attribute"] is None

    # Content checks come before the interval: a disabled table says so at once.
    await refused(update(ctx, False), "TimeToLive is already disabled")
    await refused(update(ctx, True, "other"), "Time to live has been modified multiple times within a fixed interval")
    clock.now_s += INTERVAL_S
    await update(ctx, True, "other")
    assert await describe(ctx) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "other"}
    assert (await stored_record(ctx))["ttl_attribute"] == "other"


async def test_a_refused_call_does_not_restart_the_interval(ctx, clock):
    await update(ctx, True)
    clock.now_s += INTERVAL_S / 2
    await refused(update(ctx, False), "Time to live has been modified multiple times within a fixed interval")
    clock.now_s += INTERVAL_S / 2
    await update(ctx, False)


async def test_content_errors_while_enabled(ctx, clock):
    await update(ctx, True)
    await refused(update(ctx, True), "TimeToLive is already enabled")
    different = "TimeToLive is active on a different AttributeName: current AttributeName is expires"
    await refused(update(ctx, True, "other"), different)
    await refused(update(ctx, False, "other"), different)
    clock.now_s += INTERVAL_S  # after the interval the content rules still hold
    await refused(update(ctx, True), "TimeToLive is already enabled")


async def test_transitional_states_last_the_transition(ctx, clock, monkeypatch):
    monkeypatch.setattr(limits, "TTL_TRANSITION_S", 10.0)
    await update(ctx, True)
    assert await describe(ctx) == {"TimeToLiveStatus": "ENABLING", "AttributeName": "expires"}
    # Enabling counts as enabled, and the nodes expire by the attribute already.
    await refused(update(ctx, True), "TimeToLive is already enabled")
    assert (await stored_record(ctx))["ttl_attribute"] == "expires"
    clock.now_s += 10
    assert await describe(ctx) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    clock.now_s += INTERVAL_S
    await update(ctx, False)
    assert await describe(ctx) == {"TimeToLiveStatus": "DISABLING", "AttributeName": "expires"}
    await refused(update(ctx, False), "TimeToLive is already disabled")
    assert (await stored_record(ctx))["ttl_attribute"] is None
    clock.now_s += 10
    assert await describe(ctx) == {"TimeToLiveStatus": "DISABLED"}


async def test_missing_table(ctx, clock):
    for action, body in (
        ("DescribeTimeToLive", {"TableName": "nope"}),
        ("UpdateTimeToLive", {"TableName": "nope", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "a"}}),
    ):
        with pytest.raises(ResourceNotFoundException) as info:
            await call(ctx, action, body)
        assert info.value.message == "Requested resource not found: Table: nope not found"


async def test_setting_survives_a_catalog_reload(ctx, clock):
    await update(ctx, True)
    fresh = Catalog(ctx.storage, "us-east-1", shared=False)
    await fresh.start()
    table = await fresh.get("ttl")
    assert (table.ttl_attribute, table.ttl_last_attribute, table.ttl_changed_s) == ("expires", "expires", clock.now_s)
