"""Restore speed on one embedded engine (issue 13): items restored per second.

    python bench/restore_speed.py                  # 100,000 items, 3 rounds
    python bench/restore_speed.py --items 1000000 --rounds 1 --sync

One ``Engine`` in a scratch folder (as ``meridian serve`` builds it: no
replicator, so ``replicated=False``), table id 1 (hash key ``pk`` S, a
local secondary index on ``lsi_sk``, items of about 200 bytes).  Loaded
through the write path in batches of 1000; a periodic checkpoint is taken
halfway, the second half written after it.  Each round then times:

* ``backup``: a restore from a named checkpoint taken after the load (every
  item copied from the checkpoint);
* ``pitr``: a restore to now (half the items from the halfway checkpoint,
  the other half replayed from the change log after it).

Each restore goes into a fresh table id, written through replicated apply
(LSI entries and statistics included; the engine's GSI maintainer is not
running, as the table has no GSI).  Prints items/s per round and the
median, and writes ``bench/results/<stamp>-restore-speed.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time

from meridian.model.backups import RestoreRequest, pitr_checkpoint_name
from meridian.model.keycodec import encode_item_key
from meridian.model.ops import CatalogEntry, IndexSpec, ItemOp, OpKind
from meridian.node.engine import Engine

SOURCE = 1
SCHEMA = [("pk", "S"), ("sk", "S")]
LOAD_BATCH = 1000
PAD = "x" * 150


def _description(table_id: int) -> dict:
    lsi = IndexSpec("by_lsi", 10_000 + table_id, False, (("pk", "S"), ("lsi_sk", "S")), "ALL")
    return {"table_id": table_id, "key_schema": [list(k) for k in SCHEMA], "indexes": [lsi.to_record()]}


def _put(i: int) -> ItemOp:
    key = {"pk": {"S": f"p{i % 5000:05d}"}, "sk": {"S": f"s{i:08d}"}}
    item = {**key, "lsi_sk": {"S": f"l{i % 97:03d}"}, "data": {"S": PAD}}
    return ItemOp(OpKind.PUT, SOURCE, encode_item_key(SOURCE, SCHEMA, key), key, item=item)


async def _load(engine: Engine, start: int, end: int) -> None:
    for first in range(start, end, LOAD_BATCH):
        ops = [_put(i) for i in range(first, min(first + LOAD_BATCH, end))]
        results, durable = engine.execute_many(ops)
        if durable is not None:
            await durable
        assert all(r.error is None for r in results)


async def _restore(engine: Engine, target: int, **where) -> tuple[float, int]:
    engine.catalog_put(CatalogEntry(f"restored-{target}", 1, _description(target), False))
    started = time.perf_counter()
    result = await engine.restore_table(RestoreRequest(SOURCE, target, **where))
    elapsed = time.perf_counter() - started
    engine.drop_table(target)
    return elapsed, result.item_count


async def main(ns: argparse.Namespace) -> dict:
    folder = tempfile.mkdtemp(prefix="meridian-restore-bench-")
    engine = Engine(os.path.join(folder, "db"), node_id="bench", sync=ns.sync, replicated=False)
    try:
        engine.catalog_put(CatalogEntry("source", 1, _description(SOURCE), False))
        started = time.perf_counter()
        await _load(engine, 0, ns.items // 2)
        checkpoint_started = time.perf_counter()
        await engine.create_checkpoint(pitr_checkpoint_name(engine.physical_now_ms()))
        checkpoint_s = time.perf_counter() - checkpoint_started
        await _load(engine, ns.items // 2, ns.items)
        load_s = time.perf_counter() - started
        await engine.create_checkpoint("backup")
        await asyncio.sleep(0.002)
        at_ms = engine.physical_now_ms()
        rounds = []
        target = SOURCE
        for _ in range(ns.rounds):
            target += 1
            backup_s, backup_items = await _restore(engine, target, checkpoint="backup")
            target += 1
            pitr_s, pitr_items = await _restore(engine, target, at_ms=at_ms)
            assert backup_items == pitr_items == ns.items, (backup_items, pitr_items)
            rounds.append({"backup_items_per_s": backup_items / backup_s, "pitr_items_per_s": pitr_items / pitr_s})
            print(f"round {len(rounds)}: backup {rounds[-1]['backup_items_per_s']:,.0f} items/s, "
                  f"pitr {rounds[-1]['pitr_items_per_s']:,.0f} items/s", flush=True)  # fmt: skip
        return {
            "items": ns.items,
            "sync": ns.sync,
            "load_items_per_s": ns.items / load_s,
            "checkpoint_s": checkpoint_s,
            "rounds": rounds,
            "backup_items_per_s_median": statistics.median(r["backup_items_per_s"] for r in rounds),
            "pitr_items_per_s_median": statistics.median(r["pitr_items_per_s"] for r in rounds),
        }
    finally:
        await engine.aclose()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync", action="store_true", help="fsync every write (group commit)")
    args = parser.parse_args()
    out = asyncio.run(main(args))
    print(f"median: backup {out['backup_items_per_s_median']:,.0f} items/s, "
          f"pitr {out['pitr_items_per_s_median']:,.0f} items/s "
          f"(load {out['load_items_per_s']:,.0f} items/s, checkpoint {out['checkpoint_s'] * 1000:.0f} ms)")  # fmt: skip
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(results, exist_ok=True)
    path = os.path.join(results, time.strftime("%Y%m%d-%H%M%S") + "-restore-speed.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {path}")
