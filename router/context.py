"""What every action receives: the router's view of its region."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog
from meridian.model.ring import Ring
from .storage import Storage


@dataclass(slots=True)
class RouterContext:
    storage: Storage
    catalog: Catalog
    ring: Ring
    region: str
    #: host:port clients use to reach this router (DescribeEndpoints).
    address: str
