"""A GSI maintainer stops when asked, even right after a wake-up.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives as
the awaited wake-up completes; the maintainer's idle wait used it, so a
``stop()`` right after ``wake()`` could wait forever (seen by the PITR
tests, which stop right after a ``catalog_put``).
"""

from __future__ import annotations

import asyncio

from meridian.model.ops import CatalogEntry, IndexSpec
from meridian.node.engine import Engine
from meridian.node.gsi import GsiMaintainer

TABLE = 7
STOP_TIMEOUT_S = 5.0


async def test_stop_right_after_a_wake_up_returns(tmp_path):
    engine = Engine(str(tmp_path / "db"), node_id="n1", region="us-east-1")
    spec = IndexSpec("by_v", 701, True, (("v", "S"),), "ALL")
    engine.catalog_put(CatalogEntry("t", 1, {"table_id": TABLE, "key_schema": [["pk", "S"]],
                                             "indexes": [spec.to_record()]}, False))  # fmt: skip
    try:
        for attempt in range(200):
            maintainer = GsiMaintainer(engine, owner=lambda partition_hash: "n1")
            maintainer.start()
            for _ in range(attempt % 3):
                await asyncio.sleep(0)
            maintainer.wake()
            await asyncio.wait_for(maintainer.stop(), STOP_TIMEOUT_S)
    finally:
        await engine.aclose()
