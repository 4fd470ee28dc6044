"""The DAX control plane (``AmazonDAXV3``, JSON 1.1), served on every router's endpoint.

``aws dax create-cluster / describe-clusters / increase-replication-factor /
decrease-replication-factor / reboot-node / delete-cluster``, the parameter
group, subnet group, event and tag calls work against Meridian with
``--endpoint-url``; ``router/app.py`` routes ``X-Amz-Target:
AmazonDAXV3.<Action>`` here and answers ``application/x-amz-json-1.1``.
Creating a cluster really starts its nodes in the router's process
(``router/dax/cluster.py``), and DescribeClusters hands out where they
listen (``ClusterDiscoveryEndpoint``, ``dax://host:port``), so a DAX client
given that URL works; the cluster ``--dax-port`` started is listed too.

Each action's request passes ``check_request`` (JSON types, required
members, enums: ``router/dax/control_faults.py``) before its own checks:

* ``router/dax/control_clusters.py``  the cluster actions
* ``router/dax/control_groups.py``    parameter groups, subnet groups, events, tags
* ``router/dax/control_model.py``     the records and their DAX-shaped descriptions

Known gap: the definitions live in the router process's memory; a
restarted router forgets the clusters it created (and their groups, events
and tags).  With ``--credentials``, requests signed for the ``dax`` service
fail the signature check (``router/sigv4.py`` accepts ``dynamodb``'s scope only).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from ..dax import control_clusters, control_groups
from ..dax.control_faults import check_request

Action = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


def _checked(name: str, fn: Action) -> Action:
    async def action(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
        return await fn(ctx, check_request(name, body))

    action.__name__ = fn.__name__
    return action


#: action name -> function, for ``Application(dax_actions=...)``
ACTIONS: dict[str, Action] = {
    name: _checked(name, fn) for name, fn in {**control_clusters.ACTIONS, **control_groups.ACTIONS}.items()
}
