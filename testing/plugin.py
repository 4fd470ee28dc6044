"""pytest fixtures for tests against Meridian, loaded in every project where Meridian is installed.

Registered as the ``pytest11`` entry point ``meridian`` (``pyproject.toml``),
so ``pip install meridian-db`` is all a project needs:

    def test_put_get(meridian_dynamodb_client):
        meridian_dynamodb_client.create_table(...)

* ``meridian_endpoint`` (function): endpoint URL of the session's server,
  every table dropped before the test;
* ``meridian_dynamodb_client``, ``meridian_dynamodb_resource`` (function):
  boto3 on that server, in the same clean state;
* ``meridian_session_endpoint`` (session): endpoint URL of a second server,
  never reset, for tables a session-scoped fixture creates once;
* ``meridian_session_dynamodb_client``, ``meridian_session_dynamodb_resource``
  (session): boto3 on that second server;
* ``meridian_server`` (session): the ``EmbeddedMeridian`` behind the
  function-scoped fixtures (``endpoint``, ``reset()``).

Both servers are in memory and started on first use (never when no test asks
for them); under pytest-xdist each worker process has its own.  The boto3 clients and resources are made once per session and
shared by the tests (a client holds no table state; a test that changes its
event hooks or stubs it should make its own).  They sign with the dummy
credentials ``test``/``test`` for region ``us-east-1``, so no AWS
configuration is needed or read for credentials.

Fixtures only, on purpose: this module defines no hook and no option, so
loading it changes nothing else in a test run (``-p no:meridian`` unloads
it).  boto3 is optional: a test asking for a boto3 fixture without boto3
installed is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .server import EmbeddedMeridian

#: What the boto3 fixtures sign with: any credentials work on a server that does not verify them.
DUMMY_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        pytest.skip("Meridian's boto3 fixtures need boto3: pip install boto3 (or 'meridian-db[testing]')")
    return boto3


def _client(server: EmbeddedMeridian) -> Any:
    return _boto3().client("dynamodb", endpoint_url=server.endpoint, region_name=server.region, **DUMMY_CREDENTIALS)


def _resource(server: EmbeddedMeridian) -> Any:
    return _boto3().resource("dynamodb", endpoint_url=server.endpoint, region_name=server.region, **DUMMY_CREDENTIALS)


# --- the server reset before every test ----------------------------------------


@pytest.fixture(scope="session")
def meridian_server() -> Iterator[EmbeddedMeridian]:
    """The session's embedded Meridian that ``meridian_endpoint`` resets before each test."""
    with EmbeddedMeridian() as server:
        yield server


@pytest.fixture
def meridian_endpoint(meridian_server: EmbeddedMeridian) -> str:
    """Endpoint URL of the session's Meridian, with no table in it."""
    meridian_server.reset()
    assert meridian_server.endpoint is not None
    return meridian_server.endpoint


@pytest.fixture(scope="session")
def _meridian_client(meridian_server: EmbeddedMeridian) -> Any:
    return _client(meridian_server)


@pytest.fixture(scope="session")
def _meridian_resource(meridian_server: EmbeddedMeridian) -> Any:
    return _resource(meridian_server)


@pytest.fixture
def meridian_dynamodb_client(meridian_endpoint: str, _meridian_client: Any) -> Any:
    """A boto3 DynamoDB client on the session's Meridian, with no table in it."""
    return _meridian_client


@pytest.fixture
def meridian_dynamodb_resource(meridian_endpoint: str, _meridian_resource: Any) -> Any:
    """A boto3 DynamoDB resource on the session's Meridian, with no table in it."""
    return _meridian_resource


# --- a second server, never reset ----------------------------------------------


@pytest.fixture(scope="session")
def _meridian_session_server() -> Iterator[EmbeddedMeridian]:
    with EmbeddedMeridian() as server:
        yield server


@pytest.fixture(scope="session")
def meridian_session_endpoint(_meridian_session_server: EmbeddedMeridian) -> str:
    """Endpoint URL of a Meridian shared by the whole session and never reset."""
    assert _meridian_session_server.endpoint is not None
    return _meridian_session_server.endpoint


@pytest.fixture(scope="session")
def meridian_session_dynamodb_client(_meridian_session_server: EmbeddedMeridian) -> Any:
    """A boto3 DynamoDB client on the session-long Meridian (tables stay from test to test)."""
    return _client(_meridian_session_server)


@pytest.fixture(scope="session")
def meridian_session_dynamodb_resource(_meridian_session_server: EmbeddedMeridian) -> Any:
    """A boto3 DynamoDB resource on the session-long Meridian (tables stay from test to test)."""
    return _resource(_meridian_session_server)
