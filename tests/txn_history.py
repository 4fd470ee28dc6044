"""A serializability checker for histories of committed transactions (after Jepsen's Elle).

The history is what clients saw: every committed transaction with, per key,
the **version** it read and the version it installed.  Versions of one key
are integers in the order the database installed them (0 is the key's
initial state, before any write of the history): a test gets them from a
version counter every write bumps (``v = v + 1``) or from an append-only
list every write appends its transaction id to (``versions_from_appends``:
the final list is the key's whole version order, Elle's list-append model).

From those versions the checker builds Adya's direct serialization graph:

* ``ww``: the writer of version n of a key -> the writer of the next version;
* ``wr``: the writer of version n -> every other transaction that read n;
* ``rw``: a transaction that read version n -> the writer of the next version
  (an anti-dependency: it must come before the write it did not see);
* ``rt`` (only with ``realtime=True``, strict serializability): a transaction
  that completed -> every transaction that started after, kept small with
  Elle's frontier (a transitive reduction of real-time order).

The history is serializable in that version order exactly when the graph has
no cycle.  A cycle is reported with its edges and named as Adya does: G0
(write cycle: ww only), G1c (ww and wr), G2 (it needs an anti-dependency,
e.g. write skew, a lost update); ``-realtime`` when it needs an ``rt`` edge
(serializable, but not strictly).  Checks that need no graph come first: two transactions
installing the same version, a read of a version nobody in the history
installed past the last known one, and a transaction reading a key at or
after the version it wrote itself ("internal": a transaction's reads happen
before its writes).

Pure and deterministic (no I/O, no clock): ``tests/unit/test_txn_history.py``
checks it against a brute-force search over serial orders.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Key = Hashable

EDGE_KINDS = ("ww", "wr", "rw", "rt")


@dataclass(frozen=True)
class Txn:
    """One committed transaction: key -> version read, key -> version installed.

    ``start``/``end`` (any monotonic clock) matter only to ``realtime=True``.
    """

    id: str
    reads: Mapping[Key, int] = field(default_factory=dict)
    writes: Mapping[Key, int] = field(default_factory=dict)
    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    kind: str  # one of EDGE_KINDS
    key: Key = None
    version: int = -1

    def __str__(self) -> str:
        where = "" if self.kind == "rt" else f" on {self.key!r}@{self.version}"
        return f"{self.src} -{self.kind}-> {self.dst}{where}"


@dataclass(frozen=True)
class Anomaly:
    kind: str  # "G0", "G1c", "G2", "duplicate-version", "future-read", "internal"
    detail: str
    cycle: tuple[Edge, ...] = ()

    def __str__(self) -> str:
        path = "; ".join(str(e) for e in self.cycle)
        return f"{self.kind}: {self.detail}" + (f" [{path}]" if path else "")


@dataclass
class Report:
    """What ``check`` found: ``ok`` when there is no anomaly at all."""

    transactions: int
    edges: dict[str, int]
    anomalies: list[Anomaly]

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def __str__(self) -> str:
        head = f"{self.transactions} transactions, edges {self.edges}"
        if self.ok:
            return head + ": serializable"
        return head + ": " + "\n  ".join(["NOT serializable"] + [str(a) for a in self.anomalies])


def check(history: Iterable[Txn], *, realtime: bool = False) -> Report:
    """Build the dependency graph of ``history`` and look for cycles."""
    txns = list(history)
    ids = [t.id for t in txns]
    if len(set(ids)) != len(ids):
        raise ValueError("transaction ids must be unique")
    anomalies: list[Anomaly] = []

    # Per key: version -> writer, and the sorted installed versions.
    writer: dict[Key, dict[int, str]] = {}
    for t in txns:
        for key, version in t.writes.items():
            if version < 1:
                raise ValueError(f"{t.id} installs version {version} of {key!r}: written versions start at 1")
            previous = writer.setdefault(key, {}).setdefault(version, t.id)
            if previous != t.id:
                anomalies.append(Anomaly("duplicate-version", f"{previous} and {t.id} both installed {key!r}@{version}"))
        for key, version in t.reads.items():
            if key in t.writes and version >= t.writes[key]:
                anomalies.append(Anomaly("internal", f"{t.id} read {key!r}@{version} but installed {key!r}@{t.writes[key]}"))
    order = {key: sorted(versions) for key, versions in writer.items()}

    edges: dict[tuple[str, str], Edge] = {}

    def add(edge: Edge) -> None:
        # One edge per pair: the strongest dependency, so a cycle is named as low as it can be.
        if edge.src == edge.dst:
            return
        held = edges.get((edge.src, edge.dst))
        if held is None or EDGE_KINDS.index(edge.kind) < EDGE_KINDS.index(held.kind):
            edges[(edge.src, edge.dst)] = edge

    for key, versions in order.items():
        for older, newer in zip(versions, versions[1:]):
            add(Edge(writer[key][older], writer[key][newer], "ww", key, newer))
    for t in txns:
        for key, version in t.reads.items():
            versions = order.get(key, [])
            if version < 0:
                raise ValueError(f"{t.id} read {key!r}@{version}: versions are >= 0")
            if version > 0 and version > (versions[-1] if versions else 0):
                anomalies.append(Anomaly("future-read", f"{t.id} read {key!r}@{version}, past every installed version"))
                continue
            source = writer.get(key, {}).get(version)
            if source is not None:
                add(Edge(source, t.id, "wr", key, version))
            following = _next_after(versions, version)
            if following is not None:
                add(Edge(t.id, writer[key][following], "rw", key, following))
    if realtime:
        for edge in _realtime_edges(txns):
            add(edge)

    counts = {kind: 0 for kind in EDGE_KINDS}
    for edge in edges.values():
        counts[edge.kind] += 1
    anomalies += [_classify(cycle) for cycle in _cycles(ids, edges)]
    return Report(len(txns), counts, anomalies)


def _next_after(versions: Sequence[int], version: int) -> int | None:
    """The smallest installed version greater than ``version`` (binary search)."""
    lo, hi = 0, len(versions)
    while lo < hi:
        mid = (lo + hi) // 2
        if versions[mid] <= version:
            lo = mid + 1
        else:
            hi = mid
    return versions[lo] if lo < len(versions) else None


def _realtime_edges(txns: list[Txn]) -> list[Edge]:
    """Real-time order as few edges: from the frontier of completed transactions to each start.

    A transaction that ends drops from the frontier every transaction it
    already follows; whatever completed before a start stays reachable.
    """
    # b follows a only when a ended strictly before b started: starts first at a tie.
    events = sorted([(t.start, 0, t.id) for t in txns] + [(t.end, 1, t.id) for t in txns])
    frontier: set[str] = set()
    preds: dict[str, frozenset[str]] = {}
    out = []
    for _, is_end, tid in events:
        if not is_end:
            preds[tid] = frozenset(frontier)
            out += [Edge(p, tid, "rt") for p in sorted(frontier)]
        else:
            frontier -= preds.get(tid, frozenset())
            frontier.add(tid)
    return out


def _cycles(ids: list[str], edges: dict[tuple[str, str], Edge]) -> list[list[Edge]]:
    """One cycle per strongly connected component with more than one node (iterative Tarjan)."""
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst in edges:
        succ[src].append(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in ids:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(succ[node])):
                nxt = succ[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return [_cycle_in(component, succ, edges) for component in components]


def _cycle_in(component: list[str], succ: dict[str, list[str]], edges: dict[tuple[str, str], Edge]) -> list[Edge]:
    """A shortest cycle through the component's first node (breadth-first, inside the component)."""
    members = set(component)
    start = min(component)
    parent: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for nxt in succ[node]:
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                nodes = path + [start]
                return [edges[(a, b)] for a, b in zip(nodes, nodes[1:])]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError("a strongly connected component without a cycle")  # unreachable


def _classify(cycle: list[Edge]) -> Anomaly:
    kinds = {e.kind for e in cycle}
    name = "G2" if "rw" in kinds else "G1c" if "wr" in kinds else "G0"
    if "rt" in kinds:
        name += "-realtime"  # needs real-time order: not strictly serializable
    members = " -> ".join([e.src for e in cycle] + [cycle[0].src])
    return Anomaly(name, f"cycle {members}", tuple(cycle))


# --- list-append histories ------------------------------------------------------------


def versions_from_appends(final: Mapping[Key, Sequence[str]]) -> dict[str, dict[Key, int]]:
    """Per transaction id, the version of each key it installed, from each key's final list.

    Every write appends its transaction's id to the key's list, so the list is
    the key's version order: the id at index i installed version i + 1.  An id
    twice in one list (a write applied twice) raises ``ValueError``.
    """
    out: dict[str, dict[Key, int]] = {}
    for key, ids in final.items():
        for position, tid in enumerate(ids):
            installed = out.setdefault(tid, {})
            if key in installed:
                raise ValueError(f"{tid} appears twice in {key!r}'s list (at versions {installed[key]} and {position + 1})")
            installed[key] = position + 1
    return out


def is_prefix(seen: Sequence[str], final: Sequence[str]) -> bool:
    """Whether a read list is a prefix of the key's final list (no aborted or lost write seen)."""
    return len(seen) <= len(final) and list(final[: len(seen)]) == list(seen)
