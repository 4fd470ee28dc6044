"""A linearizability checker for single-key register histories (Wing & Gong, as Knossos and Porcupine do).

A history is, per key, the operations clients ran with the time each was
invoked and the time its answer arrived.  It is linearizable when every
operation can be given one instant between those two times such that, taken
in that order, a plain register explains every answer.  Keys are independent
(P-compositionality), so each key is checked alone.

Operations (``Operation``):

* ``put(value)``: output ``True`` (acknowledged);
* ``get()``: output the value read (``None``: absent);
* ``cas(value, expected)``, a conditional update: sets ``value`` only when
  the register holds ``expected``; output ``True`` (applied) or ``False``
  (condition failed).

An operation whose answer never came (timed out, crashed client) has
``complete_ms=None``: it may have taken effect at any instant after its
invocation, or never, and its output is unknown.  Operations known not to
have happened (refused, definitely lost) belong in no history.

The search (Wing & Gong's, with Lowe's memoization as in Porcupine), depth
first: the operations that may be linearized next are those invoked before
the first return of an operation not yet linearized; try each whose output
the register allows from the current state, and go on from there; when none
is left, undo the last choice.  Configurations already explored (the set of
linearized operations, the register's value) are not explored again, nor
those that only add unanswered operations to one explored (``_Explored``).
Unanswered operations return after everything else, so they can always be
linearized last, where they change nothing anyone saw: the search is done
once every answered operation is placed.  Ties: an operation invoked at the
instant another completed counts as concurrent with it (the checker may
accept a little more, never reject a correct history).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The search gives up (``CheckerGaveUp``) past this many steps for one key.
SEARCH_STEPS_MAX = 2_000_000


class CheckerGaveUp(RuntimeError):
    """The history is too concurrent to decide within ``SEARCH_STEPS_MAX`` steps."""


@dataclass(frozen=True)
class Operation:
    id: int
    kind: str  # put | get | cas
    args: tuple[object, object]  # (value, expected): put and cas use value, cas expected
    invoke_ms: float
    complete_ms: float | None  # None: never answered
    output: object  # put/cas: True / False / None (unknown); get: the value read


def step(state: object, op: Operation) -> tuple[bool, object]:
    """The register: (does the model allow this op's output from ``state``, the state after)."""
    value, expected = op.args
    if op.kind == "put":
        return op.output is not False, value
    if op.kind == "get":
        return op.complete_ms is None or op.output == state, state
    if op.kind == "cas":
        applies = state == expected
        allowed = op.output is None or op.output == applies
        return allowed, (value if applies else state)
    raise ValueError(f"unknown operation {op.kind!r}")


@dataclass
class _Event:
    op: Operation
    is_call: bool
    bit: int
    match: _Event | None = None
    prev: _Event | None = None
    next: _Event | None = None


def _events(ops: list[Operation]) -> _Event:
    """The calls and returns as a doubly linked list behind a sentinel head."""
    never = float("inf")
    timed: list[tuple[float, int, int, _Event]] = []
    for position, op in enumerate(ops):
        call = _Event(op, True, 1 << position)
        ret = _Event(op, False, 1 << position)
        call.match = ret
        complete = never if op.complete_ms is None else op.complete_ms
        assert complete >= op.invoke_ms, op
        timed.append((op.invoke_ms, 0, position, call))  # calls before returns at the same instant
        timed.append((complete, 1, position, ret))
    timed.sort(key=lambda item: item[:3])
    head = _Event(Operation(-1, "head", (None, None), 0, 0, None), True, 0)
    tail = head
    for *_, event in timed:
        tail.next, event.prev = event, tail
        tail = event
    return head


def _lift(event: _Event) -> None:
    """Take a call and its return out of the list (it is linearized)."""
    for item in (event, event.match):
        assert item is not None and item.prev is not None
        item.prev.next = item.next
        if item.next is not None:
            item.next.prev = item.prev


def _unlift(event: _Event) -> None:
    for item in (event.match, event):
        assert item is not None and item.prev is not None
        if item.next is not None:
            item.next.prev = item
        item.prev.next = item


def _candidates(head: _Event) -> list[_Event]:
    """The calls that may be linearized next (those before the first pending return),
    last first (they are popped)."""
    calls: list[_Event] = []
    entry = head.next
    while entry is not None and entry.is_call:
        calls.append(entry)
        entry = entry.next
    return calls[::-1]


class _Explored:
    """The configurations already explored, and found to lead nowhere.

    A configuration is the set of linearized operations and the register's
    value.  Operations that never answered make one more rule sound: having
    linearized *fewer* of them is never worse (those left can still go last,
    where they change nothing anyone saw), so a configuration is skipped when
    one with the same answered operations, the same value and a subset of its
    unanswered ones was explored.  Without this, every unanswered write doubles
    the search."""

    def __init__(self, unanswered_mask: int) -> None:
        self._unanswered_mask = unanswered_mask
        self._seen: dict[tuple[int, object], list[int]] = {}

    def visit(self, linearized: int, state: object) -> bool:
        """False if (linearized, state) is covered by an explored configuration; else note it."""
        unanswered = linearized & self._unanswered_mask
        variants = self._seen.setdefault((linearized & ~self._unanswered_mask, state), [])
        if any(known & ~unanswered == 0 for known in variants):
            return False
        variants.append(unanswered)
        return True


def check_key(ops: list[Operation], initial: object = None) -> bool:
    """Is this one key's history linearizable, starting from ``initial``?"""
    head = _events(ops)
    unanswered_mask = sum(1 << position for position, op in enumerate(ops) if op.complete_ms is None)
    answered_mask = (1 << len(ops)) - 1 - unanswered_mask
    explored = _Explored(unanswered_mask)
    state: object = initial
    linearized = 0
    # one level per linearized operation: (the operation, the state before it, the candidates left)
    levels: list[tuple[_Event | None, object, list[_Event]]] = [(None, state, _candidates(head))]
    steps = 0
    # done when every answered operation is placed: the unanswered ones left go last (or never happened)
    while linearized & answered_mask != answered_mask:
        steps += 1
        if steps > SEARCH_STEPS_MAX:
            raise CheckerGaveUp(f"{len(ops)} operations")
        chosen, before, left = levels[-1]
        if not left:
            # no operation can come next here: undo the choice that led here
            if chosen is None:
                return False
            levels.pop()
            state = before
            linearized &= ~chosen.bit
            _unlift(chosen)
            continue
        entry = left.pop()
        allowed, new_state = step(state, entry.op)
        if allowed and explored.visit(linearized | entry.bit, new_state):
            _lift(entry)
            levels.append((entry, state, _candidates(head)))
            state, linearized = new_state, linearized | entry.bit
    return True


def check_history(per_key: dict[str, list[Operation]]) -> list[str]:
    """The keys whose histories are not linearizable (empty: the whole history is)."""
    return sorted(key for key, ops in per_key.items() if not check_key(ops))
