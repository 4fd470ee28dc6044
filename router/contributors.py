"""Contributor Insights' rules as one router runs them: each table's and index's hottest keys.

DynamoDB's Contributor Insights (enabled per table and per global index by
``UpdateContributorInsights``, ``router/actions/contributor_insights.py``)
runs CloudWatch rules over the resource's requests: the most accessed
partition keys (PKC) and partition + sort keys (SKC), and the most
throttled ones (PKT, SKT).  The sort-key rules exist only where the
resource has a sort key; the accessed ones only in mode
``ACCESSED_AND_THROTTLED_KEYS`` (``THROTTLED_KEYS`` keeps PKT and SKT).
Here each rule is a ``KeyRanker``, fed by the actions and read by
``GET /metrics`` and the console.

What counts.  DynamoDB's accessed rules (PKC, SKC: "items that consume
the most read and write capacity") sum the capacity units each request
consumed; its throttled rules (PKT, SKT: "items that experience the most
throttling events") count throttling events.  Here the accessed rules sum
the ``units`` each request consumed, which the actions give ``accessed``
after the request ran, the throttled rules count the
requests the throttle refused (``router/throttle.py``), one each.  The
requests: GetItem,
PutItem, UpdateItem, DeleteItem (``router/actions/items.py``,
``router/fast_path.py``), a Query's partition key (``query_scan.py``, its
page's units), each key of a batch (``batch.py``).  A put's item counts in
every enabled global index of its table under its index key, with the
index's write units when they are known (else the table's); an update's or
a delete's does not (its index keys are known only once it ran).

The window.  A request at time t weighs ``e ** ((t - L) / W)`` (forward
decay: ``W`` is ``limits.CONTRIBUTOR_INSIGHTS_WINDOW_S``, ``L`` the rule's
landmark, moved forward with every counter rescaled before the weights
outgrow a float), and a key's count read at time r is the sum of its
weights times ``e ** ((L - r) / W)``: its requests of the last W seconds,
exponentially weighted, so a key that went cold fades out instead of
holding its place.  Decay scales every weight alike, so every guarantee
below holds for the decayed counts.

Bounded memory, with a guarantee.  A rule keeps at most k counters
(``limits.CONTRIBUTOR_INSIGHTS_KEYS_TRACKED``), by Space-Saving (Metwally,
Agrawal, El Abbadi, 2005): a new key takes the smallest counter's place and
value plus its own weight.  So the counters always sum to the total weight
W, a kept key's count is never below its true count and above it by at most
the smallest counter (at most W/k), and every key whose true count exceeds
W/k is kept.  The top n (n <= k) by count then include every key over W/n,
since fewer than n counters can exceed W/n.

Cost.  A table with Contributor Insights off on the table and every index
(never enabled, or disabled since) costs the hooks one attribute test (``if
table.contributor_insights:``, the record's enabled resources) and nothing
else.  An enabled rule costs a clock read and an ``exp`` per request, and
O(log k) when a new key evicts another (about 1 µs a request in all, with
every request on a new key).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from meridian.model import limits
from meridian.model.errors import ProvisionedThroughputExceededException, ThrottlingException

from .table_record import Table

#: What the throttle raises when it refuses a request (``router/throttle.py``).
THROTTLED = (ProvisionedThroughputExceededException, ThrottlingException)

ACCESSED_AND_THROTTLED_KEYS = "ACCESSED_AND_THROTTLED_KEYS"
THROTTLED_KEYS = "THROTTLED_KEYS"

#: A key part: (attribute type, value as in DynamoDB JSON); a rule's key is a
#: part (partition-key rules) or a pair of parts (sort-key rules).
Part = tuple[str, str]


def rule_codes(has_sort_key: bool, mode: str) -> tuple[str, ...]:
    """The rules DynamoDB makes for a resource, in the order it lists them
    (accessed partition, accessed partition + sort, then the throttled ones)."""
    accessed = mode != THROTTLED_KEYS
    if has_sort_key:
        return ("PKC", "SKC", "PKT", "SKT") if accessed else ("PKT", "SKT")
    return ("PKC", "PKT") if accessed else ("PKT",)


class SpaceSaving:
    """Weighted Space-Saving over at most ``capacity`` keys (module docstring).

    The smallest counter is found through a heap holding one entry per kept
    key, made when its count was last looked at: counts only grow (until a
    ``scale``, which scales the entries alike), so an entry is never above
    its key's count, and the top entry is the smallest counter once it is
    current (a stale one is refreshed and sifted down first).  An eviction
    costs O(log k) amortised, a hit on a kept key one dict update."""

    __slots__ = ("capacity", "counts", "errors", "_heap", "_order")

    def __init__(self, capacity: int) -> None:
        assert capacity >= 1
        self.capacity = capacity
        self.counts: dict[Hashable, float] = {}
        #: how much of each kept key's count may belong to keys it evicted
        self.errors: dict[Hashable, float] = {}
        #: (count when looked at, arrival order, key), one per kept key
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()

    def __repr__(self) -> str:
        return f"<SpaceSaving {len(self.counts)}/{self.capacity} keys, total {sum(self.counts.values()):g}>"

    def add(self, key: Hashable, weight: float = 1.0) -> None:
        counts = self.counts
        count = counts.get(key)
        if count is not None:
            counts[key] = count + weight
            return
        heap = self._heap
        if len(counts) < self.capacity:
            counts[key] = weight
            self.errors[key] = 0.0
            heapq.heappush(heap, (weight, next(self._order), key))
            return
        while True:  # the smallest counter: the top entry once it is current
            seen, _order, evicted = heap[0]
            floor = counts[evicted]
            if floor == seen:
                break
            heapq.heapreplace(heap, (floor, next(self._order), evicted))
        del counts[evicted], self.errors[evicted]
        counts[key] = floor + weight
        self.errors[key] = floor
        heapq.heapreplace(heap, (floor + weight, next(self._order), key))

    def scale(self, factor: float) -> None:
        """Multiply every counter (and its error) by ``factor`` (> 0)."""
        for key in self.counts:
            self.counts[key] *= factor
            self.errors[key] *= factor
        # the same products as the counters': a current entry stays current (heapify: values
        # that underflow to equal ones fall back on their arrival order)
        self._heap = [(seen * factor, order, key) for seen, order, key in self._heap]
        heapq.heapify(self._heap)

    def top(self, n: int) -> list[tuple[Hashable, float, float]]:
        """The ``n`` largest counters as (key, count, error), largest first."""
        ranked = heapq.nlargest(n, self.counts.items(), key=lambda entry: entry[1])
        return [(key, count, self.errors[key]) for key, count in ranked]


class KeyRanker:
    """One rule: Space-Saving over forward-decayed request weights (module docstring)."""

    __slots__ = ("summary", "_landmark_s", "_window_s")

    def __init__(self, now_s: float, capacity: int = limits.CONTRIBUTOR_INSIGHTS_KEYS_TRACKED,
                 window_s: float = limits.CONTRIBUTOR_INSIGHTS_WINDOW_S) -> None:
        self.summary = SpaceSaving(capacity)
        self._landmark_s = now_s
        self._window_s = window_s

    def __repr__(self) -> str:
        return f"<KeyRanker window={self._window_s:g}s {self.summary!r}>"

    def add(self, key: Hashable, now_s: float, weight: float = 1.0) -> None:
        """``weight`` at ``now_s``: one request (throttled rules) or its capacity units (accessed ones)."""
        if weight <= 0:
            return
        exponent = (now_s - self._landmark_s) / self._window_s
        if exponent > limits.CONTRIBUTOR_INSIGHTS_WEIGHT_EXPONENT_MAX:
            self.summary.scale(math.exp(-exponent))
            self._landmark_s = now_s
            exponent = 0.0
        self.summary.add(key, weight * math.exp(exponent))

    def top(self, n: int, now_s: float) -> list[tuple[Hashable, float]]:
        """The ``n`` keys with the largest decayed counts at ``now_s``, largest first."""
        factor = math.exp((self._landmark_s - now_s) / self._window_s)
        return [(key, count * factor) for key, count, _error in self.summary.top(n)]


def _part(value: dict[str, Any]) -> Part:
    for key_type, inner in value.items():
        return key_type, inner
    raise ValueError("an empty attribute value")  # validated keys never are


class _Resource:
    """The rules of one table or global index with Contributor Insights on."""

    __slots__ = ("index_name", "pk", "sk", "rankers")

    def __init__(self, index_name: str | None, key_schema: Iterable[tuple[str, str]]) -> None:
        names = [name for name, _type in key_schema]
        self.index_name = index_name
        self.pk = names[0]
        self.sk = names[1] if len(names) > 1 else None
        self.rankers: dict[str, KeyRanker] = {}

    def set_mode(self, mode: str, now_s: float) -> None:
        """Keep the rules of ``mode`` (new ones start empty, dropped ones are forgotten)."""
        codes = rule_codes(self.sk is not None, mode)
        self.rankers = {code: self.rankers.get(code) or KeyRanker(now_s) for code in codes}

    def add(self, key: dict[str, Any], throttled: bool, now_s: float, weight: float = 1.0) -> None:
        pk_value = key.get(self.pk)
        if pk_value is None:
            return  # a put's item without this index's key: not in the index
        rankers = self.rankers
        pk_rule = rankers.get("PKT" if throttled else "PKC")
        if pk_rule is None:
            return  # THROTTLED_KEYS: accesses are not ranked
        pk = _part(pk_value)
        pk_rule.add(pk, now_s, weight)
        if self.sk is not None:
            sk_value = key.get(self.sk)
            if sk_value is not None:
                rankers["SKT" if throttled else "SKC"].add((pk, _part(sk_value)), now_s, weight)


class _Plan:
    """What a table revision's requests feed: its enabled resources."""

    __slots__ = ("table", "indexes", "empty")

    def __init__(self, table: _Resource | None, indexes: dict[str, _Resource]) -> None:
        self.table = table
        self.indexes = indexes
        self.empty = table is None and not indexes


def enabled_entries(table: Table) -> list[tuple[str, dict[str, Any]]]:
    """The resources of ``table`` whose Contributor Insights is on ("" the
    table): an index entry counts only while that very index exists (an
    index deleted and created again under its name starts disabled)."""
    out = []
    for name, entry in table.contributor_insights.items():
        if name:
            index = table.index(name)
            if index is None or not index.is_global or index.spec.index_id != entry.get("index_id"):
                continue
        out.append((name, entry))
    return out


class Contributors:
    """One router's rules, per table and index with Contributor Insights on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: (table id, revision) -> what that revision's requests feed
        self._plans: dict[tuple[int, int], _Plan] = {}
        #: (table id, resource name, rules' stamp) -> its rules; a re-enable
        #: (a new stamp) starts afresh, a mode change keeps the rules it shares
        self._resources: dict[tuple[int, str, int], _Resource] = {}

    def __repr__(self) -> str:
        return f"<Contributors resources={len(self._resources)} plans={len(self._plans)}>"

    # --- the hooks (the callers test ``table.contributor_insights`` first) ---
    def accessed(self, table: Table, key: dict[str, Any], index_name: str | None = None,
                 item: Any = None, units: float = 1.0, index_units: dict[str, float] | None = None) -> None:
        """A request on ``key`` (of ``index_name``'s key schema when given)
        that consumed ``units`` capacity units; ``item``: a put's new item,
        which its table's enabled global indexes count under their keys, each
        with its units in ``index_units`` (``units`` when absent; anything
        else but a dict is ignored)."""
        plan = self._plans.get((table.table_id, table.revision))
        if plan is None:
            plan = self._plan(table)
        if not plan.empty:
            self._record(plan, key, index_name, item, False, units, index_units)

    def throttled(self, table: Table, key: dict[str, Any], index_name: str | None = None,
                  item: Any = None) -> None:
        """A request on ``key`` that the throttle refused."""
        if table.contributor_insights:
            plan = self._plans.get((table.table_id, table.revision)) or self._plan(table)
            if not plan.empty:
                self._record(plan, key, index_name, item, True)

    def _record(self, plan: _Plan, key: dict[str, Any], index_name: str | None, item: Any, throttled: bool,
                weight: float = 1.0, index_units: dict[str, float] | None = None) -> None:
        now_s = self._clock()
        if index_name is not None:
            resource = plan.indexes.get(index_name)
            if resource is not None:
                resource.add(key, throttled, now_s, weight)
            return
        if plan.table is not None:
            plan.table.add(key, throttled, now_s, weight)
        if type(item) is dict:  # a put's new item (an update passes a function of the old one)
            for name, resource in plan.indexes.items():
                units = index_units.get(name, weight) if index_units is not None and not throttled else weight
                resource.add(item, throttled, now_s, units)

    # --- plans and resources ---------------------------------------------------
    def _plan(self, table: Table) -> _Plan:
        plans = self._plans
        if len(plans) >= limits.CONTRIBUTOR_INSIGHTS_PLANS_MAX:
            plans.clear()
        now_s = self._clock()
        table_resource = None
        indexes: dict[str, _Resource] = {}
        for name, entry in enabled_entries(table):
            resource = self._resource(table, name, entry["rules_ms"])
            resource.set_mode(entry["mode"], now_s)
            if name:
                indexes[name] = resource
            else:
                table_resource = resource
        plan = plans[table.table_id, table.revision] = _Plan(table_resource, indexes)
        return plan

    def _resource(self, table: Table, name: str, rules_ms: int) -> _Resource:
        key = (table.table_id, name, rules_ms)
        resource = self._resources.get(key)
        if resource is None:
            if len(self._resources) >= limits.CONTRIBUTOR_INSIGHTS_RESOURCES_MAX:
                del self._resources[next(iter(self._resources))]  # the oldest
                self._plans.clear()  # a plan may hold it
            schema = table.key_schema if not name else table.index(name).key_schema  # type: ignore[union-attr]
            resource = self._resources[key] = _Resource(name or None, schema)
        return resource

    # --- reading ------------------------------------------------------------------
    def top(self, table: Table, n: int = limits.CONTRIBUTOR_INSIGHTS_KEYS_REPORTED) -> list[
            tuple[str | None, str, list[tuple[Any, float]]]]:
        """Per enabled resource of ``table`` (None: the table itself) and rule
        (in DynamoDB's order), its top ``n`` keys and their decayed counts;
        keys below ``limits.CONTRIBUTOR_INSIGHTS_COUNT_REPORTED_MIN`` left out."""
        plan = self._plans.get((table.table_id, table.revision)) or self._plan(table)
        now_s = self._clock()
        resources = ([plan.table] if plan.table is not None else []) + list(plan.indexes.values())
        out = []
        for resource in resources:
            for code, ranker in resource.rankers.items():
                ranked = [(key, count) for key, count in ranker.top(n, now_s)
                          if count >= limits.CONTRIBUTOR_INSIGHTS_COUNT_REPORTED_MIN]
                out.append((resource.index_name, code, ranked))
        return out

    def prune(self, tables: Iterable[Table]) -> None:
        """Forget the rules of every resource not enabled in ``tables`` (the
        catalog's: a deleted table's, a disabled or re-enabled resource's)."""
        live = {(table.table_id, name, entry["rules_ms"]) for table in tables for name, entry in enabled_entries(table)}
        for key in [key for key in self._resources if key not in live]:
            del self._resources[key]
        self._plans.clear()


def key_attributes(table: Table, index_name: str | None, code: str, key: Any) -> dict[str, dict[str, str]]:
    """A ranked key as DynamoDB JSON: {partition key name: value, sort key name: value?}."""
    schema = table.key_schema if index_name is None else table.index(index_name).key_schema  # type: ignore[union-attr]
    parts = key if code.startswith("SK") else (key,)
    return {name: {part[0]: part[1]} for (name, _type), part in zip(schema, parts)}
