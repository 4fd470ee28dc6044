"""Clients, their history and the state machine of the Raft simulation (raft_world.py).

The state machine is a register per key on top of the Raft log: ``put``
sets it, ``cas`` (a conditional update: DynamoDB's PutItem with a condition
on the current value, ``None`` meaning attribute_not_exists) sets it only
when it holds the expected value; ``get`` is a strong read, served through
``RaftNode.read`` and never logged.  Every client operation is recorded with
its invoke and completion times; one that timed out stays incomplete (it may
or may not have taken effect), which is what ``tests/linearizability.py``
checks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import orjson
from linearizability import Operation
from sim.raft_checker import LEADER_COMPLETENESS, InvariantViolation

from meridian.model.raft import Entry, EntryKind

PUT_SHARE = 0.4
GET_SHARE = 0.35  # the rest are conditional updates


@dataclass
class Op:
    id: int
    client: int
    kind: str  # put | get | cas
    key: str
    value: str | None = None  # put / cas: the new value
    expected: str | None = None  # cas: the value it requires (None: absent)
    invoke_ms: int = 0
    complete_ms: int | None = None
    result: tuple[str, object] | None = None  # ok | failed | value | refused | lost

    def command(self) -> bytes:
        return orjson.dumps({"id": self.id, "kind": self.kind, "key": self.key, "value": self.value,
                             "expected": self.expected})


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)

    def add(self, op: Op) -> Op:
        assert op.id == len(self.ops)
        self.ops.append(op)
        return op

    def complete(self, op_id: int, at_ms: int, result: tuple[str, object]) -> None:
        op = self.ops[op_id]
        op.complete_ms, op.result = at_ms, result

    def ok_count(self) -> int:
        return sum(1 for op in self.ops if op.result is not None and op.result[0] in ("ok", "failed", "value"))

    def for_checker(self, ever_logged: set[bytes]) -> dict[str, list[Operation]]:
        """Per key, what may have happened: refused and lost operations did not, reads
        that never answered tell nothing, and a write no log ever held (its request
        died with a node, or on the way) did not happen either - the simulation sees
        every log (``ever_logged``: the commands any node's log ever held)."""
        per_key: dict[str, list[Operation]] = {}
        for op in self.ops:
            outcome = op.result[0] if op.result is not None else None
            if outcome in ("refused", "lost") or (op.kind == "get" and outcome is None):
                continue
            if outcome is None and op.command() not in ever_logged:
                continue
            if op.kind == "get":
                output: object = op.result[1]  # type: ignore[index]
            else:
                output = None if outcome is None else outcome == "ok"
            per_key.setdefault(op.key, []).append(Operation(
                op.id, op.kind, (op.value, op.expected), op.invoke_ms,
                op.complete_ms if outcome is not None else None, output))
        return per_key

    def check_acknowledged(self, committed: dict[int, tuple[int, bytes]]) -> None:
        """No acknowledged write lost: each is in the committed log, once."""
        counts: dict[int, int] = {}
        for _, data in committed.values():
            if data.startswith(b"{"):
                op_id = orjson.loads(data)["id"]
                counts[op_id] = counts.get(op_id, 0) + 1
        for op in self.ops:
            if op.kind != "get" and op.result is not None and op.result[0] in ("ok", "failed"):
                if counts.get(op.id, 0) != 1:
                    raise InvariantViolation({LEADER_COMPLETENESS}, [
                        f"acknowledged write {op} is committed {counts.get(op.id, 0)} times"])


class StateMachine:
    """A register per key; ``applied``: the last log index applied."""

    def __init__(self, state: dict[str, str] | None = None, applied: int = 0) -> None:
        self.state: dict[str, str] = state or {}
        self.applied = applied

    @classmethod
    def restore(cls, data: bytes) -> StateMachine:
        if not data:
            return cls()
        snapshot = orjson.loads(data)
        return cls(snapshot["state"], snapshot["applied"])

    def snapshot(self) -> bytes:
        return orjson.dumps({"state": self.state, "applied": self.applied}, option=orjson.OPT_SORT_KEYS)

    def get(self, key: str) -> str | None:
        return self.state.get(key)

    def apply(self, entry: Entry) -> tuple[str, object]:
        assert entry.index == self.applied + 1, (entry.index, self.applied)
        self.applied = entry.index
        if entry.kind is not EntryKind.COMMAND:
            return ("ok", None)
        command = orjson.loads(entry.data)
        key = command["key"]
        if command["kind"] == "cas" and self.state.get(key) != command["expected"]:
            return ("failed", None)
        self.state[key] = command["value"]
        return ("ok", None)


class Client:
    """One operation at a time, to the node it believes leads."""

    def __init__(self, client_id: int, keys: int, nodes: tuple[str, ...]) -> None:
        self.id = client_id
        self.keys = [f"k{i}" for i in range(keys)]
        self.current: int | None = None
        self.leader: str | None = None
        self.known: dict[str, str | None] = {}
        self.sent_to: str | None = None
        self._made = 0

    def new_op(self, rng: random.Random, history: History, now_ms: int) -> Op:
        self._made += 1
        key = rng.choice(self.keys)
        draw = rng.random()
        kind = "put" if draw < PUT_SHARE else "get" if draw < PUT_SHARE + GET_SHARE else "cas"
        value = f"c{self.id}-{self._made}" if kind != "get" else None
        expected = self.known.get(key) if kind == "cas" else None
        op = history.add(Op(len(history.ops), self.id, kind, key, value, expected, now_ms))
        self.current = op.id
        self._last = op
        return op

    def target(self, rng: random.Random, nodes: list[str]) -> str:
        self.sent_to = self.leader if self.leader is not None and self.leader in nodes else rng.choice(nodes)
        return self.sent_to

    def learn(self, result: tuple[str, object]) -> None:
        outcome, detail = result
        op = self._last
        if outcome == "refused":
            self.leader = detail if isinstance(detail, str) else None
            return
        self.leader = self.sent_to
        if outcome == "value":
            self.known[op.key] = detail  # type: ignore[assignment]
        elif outcome == "ok" and op.kind != "get":
            self.known[op.key] = op.value
