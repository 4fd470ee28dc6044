"""When a request needs another region and it cannot be reached (router/regions.py).

One rule: the client gets DynamoDB's InternalServerError (500, "Internal
server error"); the one deliberate exception is UpdateTable's early check
that a new replica's region has no table of that name, which the
coordinating replicator makes again before it installs anything.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from meridian.cluster.procs import free_port
from meridian.model.errors import InternalServerError
from meridian.router.actions import global_tables, replica_updates
from meridian.router.regions import RegionDirectory, RegionUnavailable
from meridian.router.table_record import Table


class _Unreachable:
    """A RegionDirectory whose replicator never answers."""

    knows_other_regions = True

    def __init__(self, regions: list[str] | None = None) -> None:
        self._regions = regions

    async def regions(self) -> list[str]:
        if self._regions is not None:
            return self._regions
        raise RegionUnavailable("b", "UNAVAILABLE test")

    async def table(self, region: str, name: str) -> Any:
        raise RegionUnavailable(region, "UNAVAILABLE test")


def _ctx(directory: Any) -> Any:
    return SimpleNamespace(region="a", catalog=SimpleNamespace(directory=directory))


def _table() -> Table:
    return Table(name="t", table_id=1, uuid="u", key_schema=[("pk", "S")],
                 attribute_definitions=[{"AttributeName": "pk", "AttributeType": "S"}], created_s=0.0, region="a")


def test_region_unavailable_is_an_internal_server_error_without_details() -> None:
    err = RegionUnavailable("b", "UNAVAILABLE connection refused")
    assert isinstance(err, InternalServerError)
    assert err.status == 500
    assert err.body() == InternalServerError("Internal server error").body()
    assert "b" in repr(err) and "connection refused" in repr(err)


async def test_an_unreachable_replicator_raises_region_unavailable() -> None:
    directory = RegionDirectory("a", f"127.0.0.1:{free_port()}")
    with pytest.raises(RegionUnavailable):
        await directory.regions()
    with pytest.raises(RegionUnavailable):
        await directory.table("b", "t")


async def test_without_a_replicator_other_regions_are_unknown_not_unavailable() -> None:
    assert await RegionDirectory("a", None).regions() is None


async def test_create_global_table_fails_with_internal_server_error() -> None:
    body = {"GlobalTableName": "t", "ReplicationGroup": [{"RegionName": "a"}, {"RegionName": "b"}]}
    with pytest.raises(InternalServerError, match="Internal server error"):
        await global_tables.create_global_table(_ctx(_Unreachable()), body)


async def test_list_global_tables_needs_no_other_region_for_its_own() -> None:
    ctx = _ctx(_Unreachable())
    ctx.catalog.tables = lambda: []
    assert await global_tables.list_global_tables(ctx, {"RegionName": "a"}) == {"GlobalTables": []}
    with pytest.raises(InternalServerError):
        await global_tables.list_global_tables(ctx, {"RegionName": "b"})


async def test_replica_updates_fail_when_the_regions_cannot_be_known() -> None:
    actions = [("Create", {"RegionName": "b"})]
    with pytest.raises(InternalServerError):
        await replica_updates._check_replica_actions(_ctx(_Unreachable()), _table(), actions)


async def test_replica_create_tolerates_an_unreachable_region_table_check() -> None:
    # The one deliberate exception: the replicator checks the region's table again.
    actions = [("Create", {"RegionName": "b"})]
    await replica_updates._check_replica_actions(_ctx(_Unreachable(["a", "b"])), _table(), actions)
