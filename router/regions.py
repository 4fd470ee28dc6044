"""Other regions, as a router may reach them: through its region's replicator.

Routers never talk to other regions: every question goes to this region's
replicator (``--replicator``), which answers for its region or forwards it
to the region named (``replication/peers.py``).  Without a replicator
(embedded, or one region) only this region is known.

When another region cannot be reached
-------------------------------------
One rule: a request that needs an answer from another region (or from this
region's replicator) and cannot get one fails with ``RegionUnavailable``, an
``InternalServerError`` (HTTP 500, "Internal server error").  That is the
error botocore's model lists for every call that may need another region
(``UpdateTable``, ``CreateGlobalTable``, ``UpdateGlobalTable``,
``ListGlobalTables``), and the one SDKs retry: the request did nothing, and
may succeed once the region is back.  ``ServiceUnavailable`` (503) is a
common AWS error that DynamoDB's model does not list for these calls.  The
error is raised here, where the failure enters (a gRPC error of the control
call), and formatted by ``router/app.py`` like every other ``DynamoError``;
what failed is logged, never sent to the client.

Where it is deliberately tolerated, the caller says why beside the
``except``.  What never needs another region does not ask one:
DescribeTable, ListTables and DescribeGlobalTable answer from this region's
catalog, whose replicas the replicator keeps current, so they keep working,
with this region's knowledge, while other regions are unreachable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass


from meridian.model import limits
from meridian.model.errors import InternalServerError

from .table_record import Table

log = logging.getLogger("meridian.router.regions")


@dataclass(frozen=True, slots=True)
class RemoteTable:
    """A table as another region's catalog holds it."""

    region: str
    table: Table
    item_count: int


class RegionUnavailable(InternalServerError):
    """This region's replicator, or through it another region, did not answer.

    The client sees DynamoDB's ``InternalServerError`` (see the module
    docstring); ``region`` and ``detail`` say what failed, for the log.
    """

    def __init__(self, region: str, detail: str) -> None:
        super().__init__("Internal server error")
        self.region = region
        self.detail = detail

    def __repr__(self) -> str:
        return f"RegionUnavailable({self.region!r}, {self.detail!r})"


class RegionDirectory:
    """The deployment's regions and their tables, as far as a router may know them."""

    def __init__(self, region: str, replicator: str | None) -> None:
        self.region = region
        self._replicator = replicator
        self._regions: list[str] | None = None  # the topology is fixed at start: asked once

    @property
    def knows_other_regions(self) -> bool:
        return self._replicator is not None

    async def _call(self, command: dict) -> dict:
        from meridian.proto.errors import RPC_FAILURES
        from meridian.replication.peers import control  # only routers with a replicator load replication

        try:
            return await control(self._replicator, command, timeout_s=limits.REMOTE_CATALOG_TIMEOUT_S)
        except RPC_FAILURES as exc:  # whatever failed, the region could not be asked
            region = command.get("region", self.region)
            detail = f"{exc.__class__.__name__} {exc}"
            log.warning("region %s unavailable through the replicator at %s: %s", region, self._replicator, detail)
            raise RegionUnavailable(region, detail) from exc

    async def regions(self) -> list[str] | None:
        """Every region of the deployment, sorted (None: not known here, no replicator).

        Raises ``RegionUnavailable`` when the replicator does not answer.
        """
        if self._replicator is None:
            return None
        if self._regions is None:
            answer = await self._call({"command": "peers"})
            self._regions = sorted({self.region, *answer["replicators"]})
        return list(self._regions)

    async def table(self, region: str, name: str) -> RemoteTable | None:
        """The live table ``name`` in ``region`` (None if it has none).

        Raises ``RegionUnavailable`` when ``region`` cannot be reached.
        """
        answer = await self._call({"command": "table-describe", "table": name, "region": region})
        if answer.get("description") is None:
            return None
        table = Table.from_record(answer["description"], int(answer["revision"]))
        return RemoteTable(region, table, int(answer["item_count"]))
