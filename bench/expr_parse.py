"""Micro-benchmark: the expression language on the request path.

    python bench/expr_parse.py [--repeat 2000]

For a few typical expressions, prints microseconds per call of:
  parse      the grammar alone, cache bypassed (what a first sight costs)
  cached     the same parse through the LRU cache (what later sights cost)
  compile    compile_expressions() with the parse cached (what every
             request pays: placeholder checks, binding, closures)
  evaluate   running the result on a small item (condition / update /
             projection)
Each figure is the best of five runs of ``--repeat`` calls, so it shows the
code's cost rather than the machine's noise.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

from meridian.model.expressions import compile_expressions
from meridian.model.expressions.compile import parse_cached
from meridian.model.expressions.parser import parse_condition, parse_projection, parse_update

ITEM = {
    "pk": {"S": "user#1"},
    "status": {"S": "active"},
    "count": {"N": "41"},
    "tags": {"SS": ["a", "b"]},
    "profile": {"M": {"name": {"S": "Ada"}, "emails": {"L": [{"S": "a@x"}, {"S": "b@x"}]}}},
}
KEY = {"pk": {"S": "user#1"}}

CASES = [
    (
        "condition",
        "attribute_not_exists(pk)",
        parse_condition,
        dict(condition="attribute_not_exists(pk)"),
        lambda c: c.condition_matches(ITEM),
    ),
    (
        "condition",
        "#s = :s AND #c < :max AND contains(tags, :t)",
        parse_condition,
        dict(
            condition="#s = :s AND #c < :max AND contains(tags, :t)",
            names={"#s": "status", "#c": "count"},
            values={":s": {"S": "active"}, ":max": {"N": "100"}, ":t": {"S": "a"}},
        ),
        lambda c: c.condition_matches(ITEM),
    ),
    (
        "update",
        "SET #c = #c + :one, profile.#n = :n REMOVE tags",
        parse_update,
        dict(
            update="SET #c = #c + :one, profile.#n = :n REMOVE tags",
            names={"#c": "count", "#n": "name"},
            values={":one": {"N": "1"}, ":n": {"S": "Grace"}},
        ),
        lambda c: c.apply_update(ITEM, KEY),
    ),
    (
        "projection",
        "pk, #s, profile.emails[1]",
        parse_projection,
        dict(projection="pk, #s, profile.emails[1]", names={"#s": "status"}),
        lambda c: c.project(ITEM),
    ),
]


def _best_us(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            call()
        best = min(best, time.perf_counter() - start)
    return best / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'kind':<11} {'parse µs':>9} {'cached µs':>10} {'compile µs':>11} {'evaluate µs':>12}  expression")
    for kind, text, parse, request, run in CASES:
        grammar = "update" if kind == "update" else "projection" if kind == "projection" else "condition"
        parse_us = _best_us(lambda: parse(text), args.repeat)
        cached_us = _best_us(lambda: parse_cached(grammar, text), args.repeat)
        compiled = compile_expressions(**request)
        compile_us = _best_us(lambda: compile_expressions(**request), args.repeat)
        evaluate_us = _best_us(lambda: run(compiled), args.repeat)
        print(f"{kind:<11} {parse_us:>9.1f} {cached_us:>10.2f} {compile_us:>11.1f} {evaluate_us:>12.1f}  {text}")


if __name__ == "__main__":
    main()
