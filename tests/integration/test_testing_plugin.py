"""The pytest plugin as another project meets it: a fresh folder of tests, pytest, nothing configured.

Each test writes a small project (no conftest, no AWS settings) that
uses the fixtures, and runs pytest on it in a subprocess:

* through the ``pytest11`` entry point alone, as after ``pip install
  meridian-db``, with warnings as errors (a strict project's ``pytest.ini``);
* with plugin autoloading off and ``-p meridian.testing.plugin``;
* without boto3: the server fixtures still work, the boto3 ones skip and say why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import distributions
from pathlib import Path

PLUGIN = "meridian.testing.plugin"
PYTEST_TIMEOUT_S = 240

PROJECT_TESTS = '''
import urllib.request

import pytest

TABLE = dict(
    TableName="orders",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)


def test_create_and_write(meridian_dynamodb_client):
    meridian_dynamodb_client.create_table(**TABLE)
    meridian_dynamodb_client.put_item(TableName="orders", Item={"pk": {"S": "o-1"}})
    assert meridian_dynamodb_client.get_item(TableName="orders", Key={"pk": {"S": "o-1"}})["Item"]


def test_each_test_starts_clean(meridian_dynamodb_client):
    assert meridian_dynamodb_client.list_tables()["TableNames"] == []
    meridian_dynamodb_client.create_table(**TABLE)  # the name again: no ResourceInUseException


def test_resource(meridian_dynamodb_resource):
    table = meridian_dynamodb_resource.create_table(**TABLE)
    table.put_item(Item={"pk": "o-2", "qty": 3})
    assert table.get_item(Key={"pk": "o-2"})["Item"]["qty"] == 3


def test_endpoint_is_plain_http(meridian_endpoint):
    with urllib.request.urlopen(meridian_endpoint + "/health") as answer:
        assert answer.status == 200


@pytest.fixture(scope="session")
def reference_table(meridian_session_dynamodb_client):
    meridian_session_dynamodb_client.create_table(**{**TABLE, "TableName": "reference"})
    meridian_session_dynamodb_client.put_item(TableName="reference", Item={"pk": {"S": "eur"}})
    return "reference"


@pytest.mark.parametrize("round", [1, 2])
def test_session_tables_stay(reference_table, meridian_session_dynamodb_client, meridian_dynamodb_client, round):
    # the function-scoped reset of the other server leaves the session server alone
    assert meridian_session_dynamodb_client.get_item(TableName=reference_table, Key={"pk": {"S": "eur"}})["Item"]
    assert meridian_dynamodb_client.list_tables()["TableNames"] == []
'''

#: A strict project: every warning is an error, in tests and in fixture set-up and teardown
#: (the session servers stop in the last test's teardown).  pytest-asyncio, installed here
#: for Meridian's own tests, warns about its own configuration: not the plugin's business.
STRICT_INI = """\
[pytest]
filterwarnings =
    error
    ignore:The configuration option "asyncio_default_fixture_loop_scope" is unset:pytest.PytestDeprecationWarning
"""

NO_BOTO3_TESTS = '''
import sys
import urllib.request

sys.modules["boto3"] = None  # as if boto3 were not installed


def test_client_needs_boto3(meridian_dynamodb_client):
    raise AssertionError("not reached")


def test_endpoint_works_without_boto3(meridian_endpoint):
    with urllib.request.urlopen(meridian_endpoint + "/health") as answer:
        assert answer.status == 200
'''


def _project(tmp_path: Path, tests: str, ini: str | None = None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_app.py").write_text(textwrap.dedent(tests))
    if ini is not None:
        (project / "pytest.ini").write_text(ini)
    return project


def _pytest(project: Path, *args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """pytest in ``project``, with no AWS settings in the environment (the fixtures need none)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "PYTEST_"))}
    env.update(env_extra or {})
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir", str(project), *args]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=PYTEST_TIMEOUT_S)
    print(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    return result


def _outcomes(output: str) -> dict[str, int]:
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", output)}


def test_the_entry_point_is_installed():
    """Looked up as pytest does (every distribution on the path, not the first of each name:
    a stale ``*.egg-info`` in a checkout would otherwise hide the installed one)."""
    plugins = {entry.value for dist in distributions() for entry in dist.entry_points if entry.group == "pytest11"}
    assert PLUGIN in plugins, f"no pytest11 entry point {PLUGIN}: reinstall Meridian (pip install -e .)"


def test_fixtures_through_the_entry_point_with_warnings_as_errors(tmp_path):
    result = _pytest(_project(tmp_path, PROJECT_TESTS, STRICT_INI))
    assert result.returncode == 0
    assert _outcomes(result.stdout) == {"passed": 6}


def test_fixtures_with_the_plugin_named_on_the_command_line(tmp_path):
    result = _pytest(_project(tmp_path, PROJECT_TESTS), "-p", PLUGIN, env_extra={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0
    assert _outcomes(result.stdout) == {"passed": 6}


def test_without_boto3_the_boto3_fixtures_skip_and_say_why(tmp_path):
    result = _pytest(_project(tmp_path, NO_BOTO3_TESTS))
    assert result.returncode == 0
    assert _outcomes(result.stdout) == {"passed": 1, "skipped": 1}
    assert "Meridian's boto3 fixtures need boto3: pip install boto3" in result.stdout
