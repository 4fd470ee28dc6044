"""Meridian: a DynamoDB-compatible, multi-node, multi-region database.

This package holds only the ``meridian`` command's entry point (``main.py``).
The top-level folders of the repository are the subpackages of this namespace
(``docs/architecture.md`` has the table): ``meridian.model`` (model/),
``meridian.proto`` (proto/), ``meridian.node`` (node/), ``meridian.router``
(router/), ``meridian.replication`` (replication/), ``meridian.cluster``
(cluster/: process supervision, ``meridian up``, the control client) and
``meridian.lab`` (lab/: the Docker lab, load, chaos, demo, report).
"""

__version__ = "0.1.0"
