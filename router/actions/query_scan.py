"""Query and Scan: one page of a partition, one page of a table.

What a page is (DynamoDB's rules, which the node and the router share)
----------------------------------------------------------------------
Items are *read* in order (Query: the partition in sort-key order, reversed
when ``ScanIndexForward`` is false; Scan: the table in scan order, see
``model/ops.py``).  Every item read counts: ``Limit`` bounds the number of
items read, and the page ends once the items read reach 1 MB, the item that
crosses 1 MB included.  Only then is the filter applied, so ``ScannedCount``
(items read) may exceed ``Count`` (items that passed).  When the page ended
on ``Limit`` or on 1 MB, ``LastEvaluatedKey`` is the key of the last item
*read* (whether it passed the filter or not), even if nothing follows.
An item's size is its DynamoDB item size, kept in its record header (so
pages are cut without parsing items); dynalite instead fits DynamoDB's
internal storage size with a formula adding a few bytes per attribute, so a
page of very many small items may hold slightly more items here.
Read capacity is computed from the bytes read, rounded up to 4 KB once per
page (``router/capacity.py`` holds the rules).

Who does what
-------------
The router checks the request in DynamoDB's order (request-only checks,
the table lookup, the checks against the key schema), folds the key
condition and ``ExclusiveStartKey`` into a key range, and sends one
``RangeRead`` per node.  The node reads its range, applies the bounds, the
filter and the projection, and returns only what passed the filter; so the
bytes on the wire are those of the answer, not of everything read.  It
returns with them how many items it read, how many bytes, where it stopped
and whether it stopped on a bound (``RangeResult``).

* **Query**: the partition lives on one node, so one read on that node is
  the page: the node applies ``Limit`` and 1 MB exactly.
* **Scan, one node** (embedded mode): the same, over the whole table or
  segment.
* **Scan, several nodes**: each node holds a subset of the table, in the
  same scan order.  The router merges one stream per node (a k-way merge
  by scan position) and cuts the page itself, so it needs, for every item
  read, its position, size and filter outcome (``detail``).  Each node is
  first asked for its share of what the page still needs, with headroom
  (``limits.SCAN_CHUNK_HEADROOM_PERCENT``); a stream that runs dry before
  the page is full is refilled from its last position with twice its
  previous chunk.  What a node read beyond the page's end is dropped and
  read again by the next page.  Memory is bounded by about one page per
  node and the work by one page plus the headroom, never by the table.

A parallel-scan segment is a range of partition hashes, cut the same way on
every node, so segments are disjoint and cover the table however the ring
places partitions.  ``ExclusiveStartKey`` becomes a position in the same
order (its partition's hash, then its key), so pages resume exactly.
The key ranges and the merged read are ``ranges.py``'s; this module checks
requests, plans the reads and builds the answers.

Secondary indexes (``IndexName``)
---------------------------------
An index is read like a table (``RangeKind.INDEX``): its entries are keyed
by index id, the hash of the index partition key, the index key, then the
table key (``model/ops.py``), so a Query reads one index partition on the
node that owns it (a local index's is its table partition's node) and a
Scan merges every node's entries in the same scan order as a table's.  A
page's ``LastEvaluatedKey`` holds the index key attributes and the table's
(every one of a multi-attribute key's, whose key condition rules are in
``model/expressions/key_condition.py``).  A request that needs attributes
a local index does not project (``Select`` ALL_ATTRIBUTES, a projection
naming others, or any filter, which is then
evaluated against whole items) reads each entry's item from the table on
the same node (``RangeRead.fetch``); a global index never does, as in
DynamoDB: ``Select`` ALL_ATTRIBUTES is refused, and other attributes are
simply absent.  Reads from a global index are eventually consistent
(``ConsistentRead`` is refused) and refused while it is being built.
"""

from __future__ import annotations

from typing import Any

import orjson

from meridian.model.errors import ValidationException
from meridian.model.expressions import Compiled, KeyCondition, compile_expressions
from meridian.model.expressions.legacy import (
    bind_legacy_key_conditions,
    check_not_mixed,
    translate_attributes_to_get,
    translate_filter,
    translate_key_conditions,
)
from meridian.model.keycodec import (
    TABLE_PREFIX_BYTES,
    decode_item_key,
    encode_item_key,
    encode_value,
    partition_hash,
    table_prefix,
)
from meridian.model.numbers import NOT_NUMERIC_MESSAGE, OVERFLOW_MESSAGE, PRECISION_MESSAGE, UNDERFLOW_MESSAGE
from meridian.model.ops import (
    PROJECTION_ALL,
    RangeKind,
    RangeRead,
    RangeResult,
    decode_index_key,
    encode_index_key,
    index_partition_hash,
    scan_position,
    scan_position_item_key,
    scan_segment_bounds,
    scan_segment_hashes,
)
from meridian.model.values import (
    EMPTY_NS_MESSAGE,
    KEY_SCHEMA_MISMATCH_MESSAGE,
    NS_DUPLICATES_MESSAGE,
    KeySchema,
    validate_attribute_value,
    validate_key,
)

from .. import capacity
from ..capacity import Consistency
from ..context import RouterContext
from ..contributors import THROTTLED
from ..table_record import Index, Table
from ..throttle import READ, Throttle
from .items import _merge, check_projected_keys as _check_projected_keys, metering
from .ranges import index_partition_of, index_query_range, query_range, read_merged

STARTING_KEY_INVALID = "The provided starting key is invalid"
_STARTING_KEY_PREFIX = STARTING_KEY_INVALID + ": "
_QUERY_PREFIX = "1 validation error detected: "  # DynamoDB words Query's Select errors as constraint failures
START_KEY_SIZE = "Exclusive Start Key must have same size as table's key schema"
OUTSIDE_BOUNDARIES = "The provided starting key is outside query boundaries based on provided conditions"
RANGE_PREDICATE = "The provided starting key does not match the range key predicate"
CANNOT_RESTART = "The query can return at most one row and cannot be restarted"
NO_KEY_CONDITION = "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
GSI_CONSISTENT_READ = "Consistent reads are not supported on global secondary indexes"
GSI_BACKFILLING = "Cannot read from backfilling global secondary index: "

# Errors of an ExclusiveStartKey value that DynamoDB reports as they are,
# without "The provided starting key is invalid: " (dynalite records them).
_UNPREFIXED_STARTS = (NOT_NUMERIC_MESSAGE, OVERFLOW_MESSAGE, UNDERFLOW_MESSAGE, PRECISION_MESSAGE,
                      EMPTY_NS_MESSAGE, NS_DUPLICATES_MESSAGE)
_SELECT_WORDS = {"COUNT": "only the Count", "ALL_ATTRIBUTES": "ALL_ATTRIBUTES",
                 "ALL_PROJECTED_ATTRIBUTES": "ALL_PROJECTED_ATTRIBUTES"}

_dumps = orjson.dumps


# --- request-only checks ------------------------------------------------------------


def _check_select(body: dict[str, Any], prefix: str) -> bool:
    """DynamoDB's rules combining Select with a projection; True for COUNT."""
    select = body.get("Select")
    if select is None:
        return False
    projection = body.get("ProjectionExpression") is not None
    attributes = body.get("AttributesToGet") is not None
    if select == "SPECIFIC_ATTRIBUTES":
        if not projection and not attributes:
            raise ValidationException(
                prefix + "Must specify the AttributesToGet or ProjectionExpression when choosing to get "
                "SPECIFIC_ATTRIBUTES"
            )
        return False
    words = _SELECT_WORDS[select]
    if attributes:
        raise ValidationException(prefix + f"Cannot specify the AttributesToGet when choosing to get {words}")
    if projection:
        raise ValidationException(prefix + f"Cannot specify the ProjectionExpression when choosing to get {words}")
    if select == "ALL_PROJECTED_ATTRIBUTES" and body.get("IndexName") is None:
        raise ValidationException(prefix + "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
    return select == "COUNT"


def _filter(body: dict[str, Any], legacy_member: str) -> tuple[str | None, dict | None, dict | None, bool]:
    """The filter as expression text: ``(text, names, values, legacy)``."""
    if "FilterExpression" in body:
        return body["FilterExpression"], None, None, False
    conditions = body.get(legacy_member)
    if conditions is None:
        return None, None, None, False
    text, names, values = translate_filter(conditions, body.get("ConditionalOperator"))
    return text, names or None, values or None, True


def _projection(body: dict[str, Any]) -> tuple[str | None, dict | None, bool]:
    """The projection as expression text: ``(text, names, legacy)``."""
    if "ProjectionExpression" in body:
        return body["ProjectionExpression"], None, False
    attributes = body.get("AttributesToGet")
    if attributes:
        text, names = translate_attributes_to_get(attributes)
        return text, names, True
    return None, None, False


def _start_key_values(body: dict[str, Any]) -> dict[str, Any] | None:
    """ExclusiveStartKey's attribute values, validated and normalised."""
    start_key = body.get("ExclusiveStartKey")
    if start_key is None:
        return None
    out = {}
    for name, value in start_key.items():
        try:
            out[name] = validate_attribute_value(value, context="key")
        except ValidationException as error:
            message = error.message or ""
            if message.startswith(_UNPREFIXED_STARTS) or message.endswith("contains duplicates."):
                raise
            raise ValidationException(_STARTING_KEY_PREFIX + message) from None
    return out


def _check_segments(body: dict[str, Any]) -> tuple[int, int]:
    """``(Segment, TotalSegments)``, ``(0, 1)`` for a whole-table Scan."""
    segment = body.get("Segment")
    total = body.get("TotalSegments")
    if segment is not None and total is None:
        raise ValidationException(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter "
            "is present"
        )
    if total is None:
        return 0, 1
    if segment is None:
        raise ValidationException(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments "
            "is present"
        )
    if segment >= total:
        raise ValidationException(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            f"Segment: {segment} is not less than TotalSegments: {total}"
        )
    return segment, total


def _compile(texts: dict[str, str | None], names: dict | None, values: dict | None, legacy: bool) -> Compiled | None:
    if not names and not values and all(text is None for text in texts.values()):
        return None
    return compile_expressions(names=names, values=values, legacy=legacy, **texts)


# --- checks against the table ----------------------------------------------------------


async def _index(ctx: RouterContext, body: dict[str, Any], table: Table) -> Index | None:
    """The index ``IndexName`` names (None: the table is read), checked as DynamoDB does."""
    name = body.get("IndexName")
    if name is None:
        return None
    index = table.index(name)
    if index is None:
        raise ValidationException(f"The table does not have the specified index: {name}")
    if index.is_global:
        if body.get("ConsistentRead"):
            raise ValidationException(GSI_CONSISTENT_READ)
        if not await ctx.catalog.index_built(table, index):
            raise ValidationException(GSI_BACKFILLING + name)
    return index


def _check_all_attributes(body: dict[str, Any], index: Index | None) -> None:
    """A global index cannot fetch from its table: Select ALL_ATTRIBUTES needs ALL."""
    if (index is not None and index.is_global and body.get("Select") == "ALL_ATTRIBUTES"
            and index.spec.projection_type != PROJECTION_ALL):
        raise ValidationException(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global "
            f"secondary index {index.name} because its projection type is not ALL"
        )


def _index_start_key(start_key: dict[str, Any], table: Table, index: Index) -> None:
    """The shape checks of an index read's ExclusiveStartKey (index keys and table keys)."""
    names = set(table.key_names) | set(index.key_names)
    if len(start_key) != len(names):
        raise ValidationException(STARTING_KEY_INVALID)
    for name, key_type in index.key_schema:
        value = start_key.get(name)
        if value is None:
            raise ValidationException(STARTING_KEY_INVALID)
        if len(value) != 1 or key_type not in value:
            raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)


def _valid_index_start_key(start_key: dict[str, Any], table: Table) -> dict[str, Any]:
    """The table key part of an index read's ExclusiveStartKey, against the table's schema."""
    table_key = _valid_start_key({name: start_key[name] for name in table.key_names if name in start_key},
                                 table.key_schema)
    return {**start_key, **table_key}


def _index_position(table: Table, index: Index, start_key: dict[str, Any]) -> bytes:
    """The index key an index read resumes after."""
    table_key = encode_item_key(table.table_id, table.key_schema, start_key)
    return encode_index_key(index.spec.index_id, index.spec.key_schema, table_key[TABLE_PREFIX_BYTES:], start_key,
                            index.spec.hash_count)


def _fetches(body: dict[str, Any], table: Table, index: Index | None, compiled: Compiled | None,
             filtered: bool) -> bool:
    """Whether a local index read needs whole items from the table (see the module docstring)."""
    if index is None or index.is_global or index.spec.projection_type == PROJECTION_ALL:
        return False
    if body.get("Select") == "ALL_ATTRIBUTES" or filtered:
        return True
    paths = compiled.projection_paths if compiled is not None else None
    if not paths:
        return False
    projected = {*table.key_names, *index.key_names, *index.spec.non_key_attributes}
    return any(path[0] not in projected for path in paths)


def _valid_start_key(start_key: dict[str, Any], schema: KeySchema) -> dict[str, Any]:
    """The key's values against the schema (empty or oversized key values)."""
    try:
        return validate_key(start_key, schema)
    except ValidationException as error:
        raise ValidationException(_STARTING_KEY_PREFIX + (error.message or "")) from None


def _query_start_key(start_key: dict[str, Any], schema: KeySchema) -> None:
    """Query's shape checks of ExclusiveStartKey, before the key condition's."""
    if len(start_key) != len(schema):
        raise ValidationException(START_KEY_SIZE)
    for name, key_type in schema:
        value = start_key.get(name)
        if value is None:
            raise ValidationException(STARTING_KEY_INVALID)
        if len(value) != 1 or key_type not in value:
            raise ValidationException(KEY_SCHEMA_MISMATCH_MESSAGE)


def _check_query_boundaries(start_key: dict[str, Any], schema: KeySchema, condition: KeyCondition) -> None:
    types = dict(schema)
    same_partition = all(encode_value(types[name], start_key[name]) == encode_value(types[name], value)
                         for name, value in condition.partition)
    if condition.sk_name is None:
        if not same_partition:
            raise ValidationException(OUTSIDE_BOUNDARIES)
        return
    if not (condition.sort_key_matches(start_key[condition.sk_name])
            and all(encode_value(types[name], start_key[name]) == encode_value(types[name], value)
                    for name, value in condition.sk_equal)):
        raise ValidationException(RANGE_PREDICATE)
    if not same_partition:
        raise ValidationException(CANNOT_RESTART)


# --- the answer --------------------------------------------------------------------------


def _answer(page: RangeResult, count_only: bool, last_key: dict[str, Any] | None,
            consumed: dict[str, Any] | None) -> bytes:
    """Splice the items' JSON bytes into the answer without re-serialising them."""
    head = b'{"Count":%d,"ScannedCount":%d' % (page.count, page.scanned)
    parts = [head]
    if not count_only:
        parts.append(b',"Items":[' + b",".join(page.items) + b"]")
    if last_key is not None:
        parts.append(b',"LastEvaluatedKey":' + _dumps(last_key))
    if consumed is not None:
        parts.append(b',"ConsumedCapacity":' + _dumps(consumed))
    parts.append(b"}")
    return b"".join(parts)


def _consumed_capacity(body: dict[str, Any], table: Table, page: RangeResult, index: Index | None,
                       throttle: Throttle | None = None, key_hash: int | None = None) -> dict[str, Any] | None:
    """Read capacity of a page (``router/capacity.py``): what it read, charged
    to the table or the index; the items a local index read fetched, to the
    table.  ``throttle`` (admitted with ``key_hash``) is charged it too."""
    mode = body.get("ReturnConsumedCapacity")
    if mode not in capacity.CAPACITY_MODES and throttle is None:
        return None
    usage = capacity.page_read(index, page.bytes_read, page.fetched_sizes, Consistency.of(body.get("ConsistentRead")))
    if throttle is not None:
        throttle.spend_usage(table, READ, usage, index.name if index is not None else None, key_hash)
    return capacity.consumed(mode, table.name, usage)


def _last_key(page: RangeResult, table: Table, index: Index | None, scanned: bool) -> dict[str, Any] | None:
    """``LastEvaluatedKey``: where the page stopped, in the shape of what was read."""
    if not page.more:
        return None
    if index is not None:
        return decode_index_key(page.last_position, index.key_schema, table.key_schema)
    if scanned:
        return decode_item_key(scan_position_item_key(page.last_position), table.key_schema)
    return decode_item_key(page.last_position, table.key_schema)


# --- the actions -------------------------------------------------------------------------


async def query(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    count_only = _check_select(body, _QUERY_PREFIX)
    check_not_mixed(body, "Query")
    filter_text, filter_names, filter_values, legacy_filter = _filter(body, "QueryFilter")
    projection, projection_names, legacy_projection = _projection(body)
    start_key = _start_key_values(body)
    key_conditions = body.get("KeyConditions")
    key_condition = body.get("KeyConditionExpression")
    if key_conditions is None and key_condition is None:
        raise ValidationException(NO_KEY_CONDITION)
    names = _merge(body.get("ExpressionAttributeNames"), _merge(filter_names, projection_names))
    values = _merge(body.get("ExpressionAttributeValues"), filter_values)
    legacy = legacy_filter or legacy_projection
    texts = {"key_condition": key_condition, "filter": filter_text, "projection": projection}
    compiled = _compile(texts, names, values, legacy)
    if key_condition is None:
        translate_key_conditions(key_conditions)  # DynamoDB's request-only checks of KeyConditions

    table = await ctx.catalog.require(body["TableName"])
    index = await _index(ctx, body, table)
    schema = index.key_schema if index is not None else table.key_schema
    hash_count = index.spec.hash_count if index is not None else 1
    if start_key is not None:
        if index is None:
            _query_start_key(start_key, schema)
        else:
            _index_start_key(start_key, table, index)
    if key_condition is not None:
        condition = compiled.bind_key_condition(schema, hash_count)
    else:
        condition = bind_legacy_key_conditions(key_conditions, schema, hash_count)
    if index is None:
        lower, upper = query_range(table.table_id, schema, condition)
    else:
        lower, upper = index_query_range(index.spec.index_id, schema, condition, hash_count)
    reverse = body.get("ScanIndexForward") is False
    if start_key is not None:
        if index is None:
            start_key = _valid_start_key(start_key, schema)
        else:
            start_key = _valid_index_start_key(start_key, table)
        _check_query_boundaries(start_key, schema, condition)
        if index is None:
            position = encode_item_key(table.table_id, schema, start_key)
        else:
            position = _index_position(table, index, start_key)
        if reverse:
            upper = min(upper, position)
        else:
            lower = max(lower, position + b"\x00")
    _check_projected_keys(compiled, table)
    if filter_text is not None:
        compiled.check_filter_keys(tuple(name for name, _ in schema))
    _check_all_attributes(body, index)
    fetch = _fetches(body, table, index, compiled, filter_text is not None)

    ring = ctx.ring
    throttle = metering(ctx)
    global_index = index is not None and index.is_global
    index_hash = None  # a global index's partition: where the Query runs and whose read ceiling applies
    if global_index and (throttle is not None or ring.single is None):
        index_hash = index_partition_of(schema, condition, hash_count)
    node = ring.single or ring.owner(
        index_hash if index_hash is not None else index_partition_of(schema, condition, hash_count))
    expressions: dict[str, Any] = {}
    if filter_text is not None or projection is not None:  # only then does the node compile them
        expressions = {"key_condition": key_condition, "filter": filter_text, "projection": projection,
                       "names": names, "values": values, "legacy": legacy}
    kind, read_id = (RangeKind.QUERY, table.table_id) if index is None else (RangeKind.INDEX, index.spec.index_id)
    read = RangeRead(kind, read_id, lower, upper, reverse=reverse, items_max=body.get("Limit") or 0,
                     count_only=count_only, fetch=fetch, whole_items=_whole_items(body), **expressions)
    key_hash = None
    index_name = index.name if index is not None else None
    if throttle is not None:
        # the partition's ceiling applies: the global index's, else the table's (a local index's too)
        key_hash = index_hash if global_index else partition_hash(schema[0][1], condition.pk_value)
        try:
            await throttle.admit(table, READ, index_name, key_hash)
        except THROTTLED:
            ctx.contributors.throttled(table, dict(condition.partition), index_name)
            raise
    page = await ctx.storage.read_range(node, read)
    last_key = _last_key(page, table, index, scanned=False)
    consumed = _consumed_capacity(body, table, page, index, throttle, key_hash)
    if table.contributor_insights:  # a Query's partition key, weighed by the page's read units
        usage = capacity.page_read(index, page.bytes_read, page.fetched_sizes,
                                   Consistency.of(body.get("ConsistentRead")))
        ctx.contributors.accessed(table, dict(condition.partition), index_name, units=usage.total.read)
    return _answer(page, count_only, last_key, consumed)


async def scan(ctx: RouterContext, body: dict[str, Any]) -> bytes:
    count_only = _check_select(body, "")
    check_not_mixed(body, "Scan")
    projection, projection_names, legacy_projection = _projection(body)
    filter_text, filter_names, filter_values, legacy_filter = _filter(body, "ScanFilter")
    start_key = _start_key_values(body)
    segment, total_segments = _check_segments(body)
    names = _merge(body.get("ExpressionAttributeNames"), _merge(filter_names, projection_names))
    values = _merge(body.get("ExpressionAttributeValues"), filter_values)
    legacy = legacy_filter or legacy_projection
    compiled = _compile({"filter": filter_text, "projection": projection}, names, values, legacy)

    table = await ctx.catalog.require(body["TableName"])
    index = await _index(ctx, body, table)
    if index is None:
        lower, upper = scan_segment_bounds(table_prefix(table.table_id), segment, total_segments)
    else:
        if start_key is not None:
            _index_start_key(start_key, table, index)
        _check_all_attributes(body, index)
        lower, upper = scan_segment_bounds(table_prefix(index.spec.index_id), segment, total_segments)
    if start_key is not None:
        if index is None:
            start_key = _valid_start_key(start_key, table.key_schema)
            pk_name, pk_type = table.key_schema[0]
            start_hash = partition_hash(pk_type, start_key[pk_name])
        else:
            start_key = _valid_index_start_key(start_key, table)
            start_hash = index_partition_hash([(t, start_key[name]) for name, t in index.spec.hash_schema])
        low, high = scan_segment_hashes(segment, total_segments)
        if not low <= start_hash < high:
            raise ValidationException(
                _STARTING_KEY_PREFIX + "Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct "
                f"Segment. TotalSegments: {total_segments} Segment: {segment}"
            )
        if index is None:
            lower = scan_position(encode_item_key(table.table_id, table.key_schema, start_key), start_hash) + b"\x00"
        else:
            lower = _index_position(table, index, start_key) + b"\x00"
    _check_projected_keys(compiled, table)
    fetch = _fetches(body, table, index, compiled, filter_text is not None)

    kind, read_id = (RangeKind.SCAN, table.table_id) if index is None else (RangeKind.INDEX, index.spec.index_id)
    read = RangeRead(
        kind, read_id, lower, upper,
        items_max=body.get("Limit") or 0,
        filter=filter_text, projection=projection, names=names, values=values, legacy=legacy,
        count_only=count_only, fetch=fetch, whole_items=_whole_items(body),
    )
    throttle = metering(ctx)
    if throttle is not None:
        await throttle.admit(table, READ, index.name if index is not None else None)
    if ctx.ring.single is not None:
        page = await ctx.storage.read_range(ctx.ring.single, read)
    else:
        page = await read_merged(ctx.storage, read)
    last_key = _last_key(page, table, index, scanned=True)
    return _answer(page, count_only, last_key, _consumed_capacity(body, table, page, index, throttle))


def _whole_items(body: dict[str, Any]) -> bool:
    """A fetching read returns whole items only for Select ALL_ATTRIBUTES
    (an index read defaults to ALL_PROJECTED_ATTRIBUTES)."""
    return body.get("Select") == "ALL_ATTRIBUTES"


ACTIONS = {
    "Query": query,
    "Scan": scan,
}
