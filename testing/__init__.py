"""Meridian inside your tests: an embedded server per test session, a clean state per test.

    from meridian import testing

    with testing.serve() as endpoint:        # in memory, on a free port
        ...                                   # any DynamoDB client, endpoint_url=endpoint
        testing.reset(endpoint)               # drop every table, keep the server

``EmbeddedMeridian`` is the same server as an object (``start``, ``reset``,
``stop``).  Installing Meridian also installs a pytest plugin
(``meridian.testing.plugin``, entry point ``meridian``) whose fixtures
``meridian_endpoint``, ``meridian_dynamodb_client`` and
``meridian_dynamodb_resource`` hand each test a clean server.

This layer sits above the router and the engine it starts; nothing in
Meridian imports it.  Importing it is cheap: the server's modules load when
one starts.
"""

from .server import DEFAULT_REGION, EmbeddedMeridian, reset, serve

__all__ = ["DEFAULT_REGION", "EmbeddedMeridian", "reset", "serve"]
