"""Shared by every test: markers, dummy AWS credentials, a boto3 client maker.

No test may ever reach real AWS: every client points at a local endpoint
and signs with the dummy credentials ``test``/``test``, and the session
environment carries the same dummies (plus no config files, no metadata
service) for the ``aws`` CLI and anything else that reads it.
"""

from __future__ import annotations

import os
import uuid

import boto3
import pytest
from botocore.config import Config

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PAGER": "",
}

#: One attempt per call (a retry would hide the error a test checks for) and
#: timeouts short enough that a hung server fails a test instead of the run.
CLIENT_CONFIG = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=20)

MARKERS = {
    "integration": "starts real meridian processes (tests/integration is marked automatically)",
    "slow": "takes more than a few seconds",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration_dir = os.path.join(os.path.dirname(__file__), "integration") + os.sep
    for item in items:
        if str(item.path).startswith(integration_dir):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _dummy_aws_environment():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DUMMY_AWS_ENV.items():
            patch.setenv(name, value)
        yield


def make_client(endpoint: str):
    """A boto3 DynamoDB client for a local endpoint, dummy credentials, no retries."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=CLIENT_CONFIG,
    )


def unique_table_name(prefix: str = "test") -> str:
    """A valid table name no other test (or earlier run on the same data) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
