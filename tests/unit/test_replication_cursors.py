"""Cursor stores: a saved cursor survives the store being reopened."""

from __future__ import annotations

import asyncio
import os

from meridian.replication.cursors import FileCursorStore, MemoryCursorStore


async def test_file_cursors_survive_a_reopen(tmp_path) -> None:
    path = os.path.join(tmp_path, "cursors.json")
    store = FileCursorStore(path)
    assert await store.load("eu-west-1", "n1") == 0
    await asyncio.gather(*(store.save("eu-west-1", f"n{i}", 10 * i) for i in range(5)))
    await store.save("ap-south-1", "n1", 7)
    await store.save("eu-west-1", "n1", 11)
    reopened = FileCursorStore(path)
    assert [await reopened.load("eu-west-1", f"n{i}") for i in range(5)] == [0, 11, 20, 30, 40]
    assert await reopened.load("ap-south-1", "n1") == 7
    assert not os.path.exists(path + ".tmp")


async def test_memory_cursors() -> None:
    store = MemoryCursorStore()
    await store.save("b", "n0", 5)
    assert await store.load("b", "n0") == 5 and await store.load("b", "n1") == 0
    assert store.snapshot() == {("b", "n0"): 5}
