"""query_scan's data set: the table, the items of each partition, and loading them into a target."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import dynamo  # bench/ is on sys.path (query_scan.py puts it there)

TABLE = "qscan"  # DynamoDB table names have at least 3 characters
PK_DIGITS = 6
#: What an item costs besides its ``data`` value, as DynamoDB sizes items:
#: attribute names, the partition key, and at most 3 bytes for ``sk`` (a
#: number of up to 3 digits is 2-3 bytes; larger tables' numbers are 1 more).
ITEM_OVERHEAD_BYTES = len("pk") + 1 + PK_DIGITS + len("sk") + 3 + len("data")


def say(message: str) -> None:
    """A progress line on stderr, the same prefix from every query_scan module."""
    print(f"query_scan: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Layout:
    """Where every item is: partition ``p`` holds sort keys 0 .. partition_items - 1."""

    partition_items: int
    data_len: int
    seed: int

    @staticmethod
    def pk(partition: int) -> str:
        return f"p{partition:0{PK_DIGITS}d}"

    def items(self, partition: int) -> list[dict]:
        """The items of one partition; the same for every target (seeded per partition)."""
        rng = random.Random(self.seed * 1_000_003 + partition)
        pk = {"S": self.pk(partition)}
        half = (self.data_len + 1) // 2
        return [
            {"pk": pk, "sk": {"N": str(sk)}, "data": {"S": rng.randbytes(half).hex()[: self.data_len]}}
            for sk in range(self.partition_items)
        ]


def load(port: int, layout: Layout, partitions: range, loaders: int) -> None:
    """Write ``partitions`` with BatchWriteItem over ``loaders`` concurrent connections."""
    todo = iter(partitions)
    lock = threading.Lock()

    def loader(client: dynamo.DynamoClient) -> None:
        while True:
            with lock:
                partition = next(todo, None)
            if partition is None:
                return
            items = layout.items(partition)
            for start in range(0, len(items), dynamo.BATCH_WRITE_ITEMS_MAX):
                dynamo.write_batch(client, TABLE, items[start : start + dynamo.BATCH_WRITE_ITEMS_MAX])

    _run_clients(port, [loader] * loaders)


def _run_clients(port: int, work: list[Callable[[dynamo.DynamoClient], None]]) -> None:
    """Run each function in its own thread with its own connection; re-raise the first failure."""
    failures: list[BaseException] = []

    def body(fn: Callable[[dynamo.DynamoClient], None]) -> None:
        client = dynamo.DynamoClient(port)
        try:
            fn(client)
        except BaseException as error:  # reported to the caller below
            failures.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=body, args=(fn,), daemon=True) for fn in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
