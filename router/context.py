"""What every action receives: the router's view of its region."""

from __future__ import annotations

from typing import Any
from dataclasses import dataclass, field

from .catalog import Catalog
from .contributors import Contributors
from meridian.model import limits
from meridian.model.ring import Ring
from .storage import Storage
from .throttle import Throttle


@dataclass(slots=True)
class RouterContext:
    storage: Storage
    catalog: Catalog
    ring: Ring
    region: str
    #: host:port clients use to reach this router (DescribeEndpoints).
    address: str
    #: UpdateTimeToLive refuses a table's next TTL change this soon after its
    #: last one (DynamoDB's hour; a router option may shorten it for labs).
    ttl_change_interval_s: float = limits.TTL_CHANGE_INTERVAL_S
    #: A disabled DynamoDB stream is still listed and readable this long
    #: (DynamoDB's 24 hours; a router option shortens it for labs).
    stream_retention_s: float = limits.STREAM_RETENTION_S_DEFAULT
    #: Throughput limits of provisioned tables (``router/throttle.py``); None:
    #: nothing is metered (a context built without a server, in tests).
    throttle: Throttle | None = None
    #: Contributor Insights' rules: each enabled table's and index's most
    #: accessed and throttled keys (``router/contributors.py``), fed by the
    #: actions; never None, so a hook needs no test but the table's own.
    contributors: Contributors = field(default_factory=Contributors)
    #: per coordinator node, the transactions whose decision it may drop: sent
    #: with the next decision it records (``router/transactions.py``)
    txn_forgets: dict[str, list[bytes]] = field(default_factory=dict)
    #: the DAX clusters served in front of this router, by name (``router/dax/cluster.py``):
    #: the one ``--dax-port`` starts, and those the DAX control plane created
    dax_clusters: dict[str, Any] = field(default_factory=dict)
    #: the DAX control plane's records and work (``router/dax/control_model.py``'s
    #: ``DaxControl``), set by the server; None: no control plane (a bare context)
    dax_control: Any = None
