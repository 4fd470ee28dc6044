"""Wait until every region of the lab serves: its router's /health, then its catalog.

``GET /health`` answers as soon as the router process runs; a ``ListTables``
goes through the router to every storage node's catalog, so a 200 there
means the region can serve DynamoDB requests.  Plain HTTP from the standard
library (no boto3 at run time): the request is signed in shape only, which
is all Meridian checks.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from meridian.cluster import limits


# Requests go straight to the lab: an HTTP(S)_PROXY must not capture them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LIST_TABLES_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "X-Amz-Date": "20260101T000000Z",
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=lab/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"
    ),
}


class NotReady(RuntimeError):
    """A region did not become ready in time; the message says which and what it last answered."""


def region_ready(endpoint: str) -> str | None:
    """None when ``endpoint`` serves, else what is still wrong."""
    try:
        with _OPENER.open(endpoint + "/health", timeout=limits.LAB_READY_PROBE_TIMEOUT_S) as response:
            if response.status != 200:
                return f"/health answered {response.status}"
        request = urllib.request.Request(endpoint, data=b"{}", headers=_LIST_TABLES_HEADERS, method="POST")
        with _OPENER.open(request, timeout=limits.LAB_READY_PROBE_TIMEOUT_S) as response:
            answer = json.loads(response.read())
        if not isinstance(answer.get("TableNames"), list):
            return f"ListTables answered {answer!r}"
    except urllib.error.HTTPError as exc:
        return f"{exc.url} answered {exc.code}: {exc.read()[:200]!r}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{endpoint}: {getattr(exc, 'reason', exc)}"
    return None


def wait_ready(
    endpoints: Mapping[str, str],
    timeout_s: float = limits.LAB_READY_TIMEOUT_S,
    *,
    on_ready: Callable[[str, float], None] | None = None,
) -> dict[str, float]:
    """Return once every region serves: seconds each took.  Raises ``NotReady``."""
    started = time.monotonic()
    deadline = started + timeout_s
    pending = dict(endpoints)
    ready: dict[str, float] = {}
    problems: dict[str, str] = {}
    while pending:
        for region, endpoint in list(pending.items()):
            problem = region_ready(endpoint)
            if problem is None:
                ready[region] = time.monotonic() - started
                del pending[region]
                if on_ready is not None:
                    on_ready(region, ready[region])
            else:
                problems[region] = problem
        if not pending:
            break
        if time.monotonic() >= deadline:
            detail = "; ".join(f"{region}: {problems[region]}" for region in pending)
            raise NotReady(f"not serving after {timeout_s:g} s: {detail}")
        time.sleep(limits.LAB_READY_PROBE_INTERVAL_S)
    return ready
