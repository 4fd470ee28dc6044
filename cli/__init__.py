"""Meridian: a DynamoDB-compatible, multi-node, multi-region database.

The top-level folders of the repository are the subpackages of this namespace:
``meridian.model`` (model/), ``meridian.node`` (node/), ``meridian.router``
(router/), ``meridian.replication`` (replication/), ``meridian.proto`` (proto/).
"""

__version__ = "0.1.0"
