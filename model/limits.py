"""Every limit Meridian enforces, in one place.

DynamoDB's documented limits come first; Meridian's own bounds (queues,
batches, buffers, in-flight work) follow.  Relations between them are
asserted at import time so that a change to one that breaks another fails
loudly rather than silently.
"""

from __future__ import annotations

# --- DynamoDB's limits -------------------------------------------------------
ITEM_SIZE_BYTES_MAX = 400 * 1024
PARTITION_KEY_BYTES_MAX = 2048
SORT_KEY_BYTES_MAX = 1024
TABLE_NAME_LENGTH_MIN = 3
TABLE_NAME_LENGTH_MAX = 255
ATTRIBUTE_NAME_BYTES_MAX = 65535
KEY_ATTRIBUTE_NAME_BYTES_MAX = 255
DOCUMENT_DEPTH_MAX = 32
NUMBER_PRECISION_DIGITS_MAX = 38
NUMBER_EXPONENT_MAX = 125  # largest positive magnitude < 1E+126
NUMBER_EXPONENT_MIN = -130  # smallest positive magnitude >= 1E-130
EXPRESSION_BYTES_MAX = 4096
EXPRESSION_ATTRIBUTE_NAME_BYTES_MAX = 255  # "#name" placeholder length
EXPRESSION_IN_OPERANDS_MAX = 100
EXPRESSION_ATTRIBUTE_VALUES_BYTES_MAX = 2 * 1024 * 1024  # all values of one request
PAGE_BYTES_MAX = 1024 * 1024
BATCH_GET_KEYS_MAX = 100
BATCH_GET_RESPONSE_BYTES_MAX = 16 * 1024 * 1024
BATCH_WRITE_ITEMS_MAX = 25
TRANSACT_ITEMS_MAX = 100
LIST_TABLES_LIMIT_MAX = 100
TAGS_PER_RESOURCE_MAX = 50
TAG_KEY_LENGTH_MAX = 128
TAG_VALUE_LENGTH_MAX = 256
LOCAL_SECONDARY_INDEXES_MAX = 5
GLOBAL_SECONDARY_INDEXES_MAX = 20
# DescribeLimits answers with the default account quotas.
ACCOUNT_MAX_READ_CAPACITY_UNITS = 80000
ACCOUNT_MAX_WRITE_CAPACITY_UNITS = 80000
TABLE_MAX_READ_CAPACITY_UNITS = 40000
TABLE_MAX_WRITE_CAPACITY_UNITS = 40000
# UpdateTable's per-table quotas, as live DynamoDB enforced them in 2026 (parity
# catalog DDB-TABLE-184/185/326, DDB-TABLE-283, DDB-TABLE-003): provisioned
# throughput decreases per table (and per index) and UTC day before the hourly
# allowance, then one each interval after the last; table class changes per
# window; the pause after a DeletionProtectionEnabled change.
PROVISIONED_DECREASES_PER_DAY_FREE = 4
PROVISIONED_DECREASE_INTERVAL_S = 3600
TABLE_CLASS_CHANGES_MAX = 2
TABLE_CLASS_CHANGE_WINDOW_DAYS = 30
DELETION_PROTECTION_COOLDOWN_S = 15
# An on-demand table starts able to serve this many reads / writes a second
# (WarmThroughput may not ask for less: DDB-TABLE-039).
ON_DEMAND_INITIAL_READ_UNITS_PER_S = 12000
ON_DEMAND_INITIAL_WRITE_UNITS_PER_S = 4000
# DynamoDB's OnDemandThroughput value that removes a maximum (UpdateTable only).
ON_DEMAND_NO_MAXIMUM = -1
# DynamoDB's (2025): a table switches from PROVISIONED to PAY_PER_REQUEST at most
# this many times in a rolling window of this many days (back to PROVISIONED: any time).
PAY_PER_REQUEST_SWITCHES_MAX = 4
PAY_PER_REQUEST_SWITCH_WINDOW_DAYS = 1
# Keys and values of one resource's tags together (DDB-TABLE-109).
TAG_SET_BYTES_MAX = 10240
# A SigV4 request's X-Amz-Date may differ from the server's clock by this much either way.
SIGV4_CLOCK_SKEW_S = 15 * 60

# --- Meridian's own bounds ---------------------------------------------------
HTTP_REQUEST_BYTES_MAX = 16 * 1024 * 1024  # a body larger than this closes the connection
# The request line plus headers of one request; past it: 400 and the connection closes
# (DynamoDB's front limits the header section to 16 KB and answers 400 Bad Request).
HTTP_HEADER_BYTES_MAX = 16 * 1024
# After refusing a malformed request, a router reads and drops what the client
# still sends for at most this long before closing (so no reset destroys the answer).
HTTP_LINGER_CLOSE_S = 2.0
# A response body at least this large is compressed when the client accepts gzip or deflate
# (DynamoDB's threshold: 4 KB; smaller answers are sent as they are).
HTTP_RESPONSE_COMPRESS_BYTES_MIN = 4096
# zlib level of compressed answers: 1 compresses a 1 MB page in a few ms of the router's CPU,
# several times less than zlib's default 6 (DynamoDB's level is unknown).
HTTP_RESPONSE_COMPRESS_LEVEL = 1
# How long a browser may cache a CORS preflight answer (guess: DynamoDB's value is not documented).
HTTP_CORS_MAX_AGE_S = 172800
HTTP_PIPELINED_REQUESTS_MAX = 128  # requests started but not yet answered, per connection; past it reading pauses
# Answers are written once per event-loop round, all connections' together (router/http_outbox.py);
# a connection holding this many bytes of them writes at once instead.
HTTP_WRITE_COALESCE_BYTES_MAX = 64 * 1024
# A connection paused by the bound above reads again once fewer than this many wait.
HTTP_PIPELINED_REQUESTS_RESUME_BELOW = 64
HTTP_INFLIGHT_REQUESTS_MAX = 4096  # DynamoDB requests suspended in their action, per router; beyond it: RequestLimitExceeded
# Connections the kernel queues for a router before it accepts them (listen backlog).
HTTP_LISTEN_BACKLOG_CONNECTIONS = 1024
# GET /meridian/replication and GET /metrics wait this long for the region's replicator.
ROUTER_REPLICATOR_TIMEOUT_S = 5.0
# POST /meridian/control waits this long: a command may be forwarded to another
# region's replicator, and a digest reads a whole table.
ROUTER_CONTROL_TIMEOUT_S = 40.0
# The largest POST /meridian/control body (a verify's leaf list is the biggest).
ROUTER_CONTROL_BODY_BYTES_MAX = 256 * 1024
# Derived SigV4 signing keys a router keeps, one per (secret, date, region, service);
# past it the oldest goes (a key changes once a day per access key).
SIGV4_SIGNING_KEYS_MAX = 1024
assert SIGV4_SIGNING_KEYS_MAX >= 1 and SIGV4_CLOCK_SKEW_S > 0
assert 1 <= HTTP_PIPELINED_REQUESTS_RESUME_BELOW <= HTTP_PIPELINED_REQUESTS_MAX
assert HTTP_PIPELINED_REQUESTS_MAX <= HTTP_INFLIGHT_REQUESTS_MAX  # one connection alone never trips the router's bound
assert ROUTER_CONTROL_BODY_BYTES_MAX <= HTTP_REQUEST_BYTES_MAX
assert HTTP_HEADER_BYTES_MAX < HTTP_REQUEST_BYTES_MAX
STORAGE_BATCH_OPS_MAX = 512  # item operations carried in one router->node stream message
STORAGE_BATCH_BYTES_MAX = 8 * 1024 * 1024  # a batch is closed once its encoded ops pass this size
STORAGE_INFLIGHT_OPS_MAX = 8192  # per router->node stream, awaiting replies
GROUP_COMMIT_WRITES_MAX = 1024  # writes fsynced together by one group commit
GRPC_MESSAGE_BYTES_MAX = 64 * 1024 * 1024
EXPRESSION_CACHE_ENTRIES_MAX = 4096
CATALOG_REFRESH_INTERVAL_S = 0.5
#: A starting router retries its first catalog read this long while storage
#: nodes are still coming up (containers started together, a loaded machine).
CATALOG_START_TIMEOUT_S = 60.0
#: Pause between two of those attempts.
CATALOG_START_RETRY_S = 0.25
TABLE_CREATING_DURATION_S = 0.0  # CREATING -> ACTIVE happens on the next DescribeTable
STORAGE_CALL_TIMEOUT_S = 30.0
#: A router checks its unanswered storage calls against that timeout this
#: often (router/storage_grpc.py): a call fails at most this late.
STORAGE_CALL_SWEEP_INTERVAL_S = 1.0
#: Result batches of one Execute stream a node holds awaiting their answer
#: (node/service.py); with this many, it stops reading the stream until the
#: writer catches up, so a sender faster than the answers is slowed by
#: HTTP/2 flow control instead of growing the node's memory.  A router's
#: whole in-flight window, sent in full batches, fits (asserted below).
NODE_STREAM_ANSWERS_MAX = 1024
#: A stopping node gives its open streams this long to finish (node/server.py).
NODE_STOP_GRACE_S = 5.0
assert STORAGE_CALL_SWEEP_INTERVAL_S <= STORAGE_CALL_TIMEOUT_S
assert STORAGE_INFLIGHT_OPS_MAX // STORAGE_BATCH_OPS_MAX <= NODE_STREAM_ANSWERS_MAX <= STORAGE_INFLIGHT_OPS_MAX
#: A router reconnects to a restarted node after this long at first, doubling up to the maximum.
NODE_RECONNECT_BACKOFF_S_MIN = 0.05
NODE_RECONNECT_BACKOFF_S_MAX = 2.0
#: Clients ping an idle long-lived gRPC connection this often, and give it this
#: long to answer, to notice a dead peer; servers accept pings this often.
GRPC_KEEPALIVE_TIME_MS = 10_000
GRPC_KEEPALIVE_TIMEOUT_MS = 5_000
GRPC_PING_INTERVAL_MS_MIN = 5_000
# Points each storage node owns on the consistent-hashing ring (model/ring.py).
RING_VNODES_PER_NODE = 64

# --- relations ---------------------------------------------------------------
assert SORT_KEY_BYTES_MAX < PARTITION_KEY_BYTES_MAX < ITEM_SIZE_BYTES_MAX
assert ITEM_SIZE_BYTES_MAX < HTTP_REQUEST_BYTES_MAX
assert BATCH_GET_KEYS_MAX <= STORAGE_BATCH_OPS_MAX
assert TRANSACT_ITEMS_MAX <= STORAGE_BATCH_OPS_MAX
assert STORAGE_BATCH_OPS_MAX <= STORAGE_INFLIGHT_OPS_MAX
assert 2 * HTTP_REQUEST_BYTES_MAX <= GRPC_MESSAGE_BYTES_MAX  # one op never overflows a message
assert STORAGE_BATCH_BYTES_MAX + HTTP_REQUEST_BYTES_MAX <= GRPC_MESSAGE_BYTES_MAX

# --- the expression language (model/expressions) ------------------------------
EXPRESSION_OPERATORS_MAX = 300  # DynamoDB's: operators and functions in one UpdateExpression
# Meridian's: parentheses (and NOTs) nested deeper than this are a syntax error,
# which keeps the recursive-descent parser and the tree walks far from Python's
# recursion limit (DynamoDB has no documented bound; real expressions nest a
# handful of levels).
EXPRESSION_NESTING_MAX = 64

# --- request validation (router/validation.py) ---------------------------------
# DynamoDB's: a ReadCapacityUnits/WriteCapacityUnits above this is "Given value N
# for ReadCapacityUnits is out of bounds" (CreateTable, UpdateTable).
CAPACITY_UNITS_VALUE_MAX = 1_000_000_000_000
# DynamoDB's: one ValidationException lists at most this many constraint
# failures ("10 validation errors detected: ..."); the rest go unreported.
VALIDATION_ERRORS_MAX = 10
# DynamoDB's deserializer reads integer members into Java's int and long: a
# JSON number outside these is a SerializationException (router/validation_types.py).
JAVA_INT_MIN, JAVA_INT_MAX = -(2**31), 2**31 - 1
JAVA_LONG_MIN, JAVA_LONG_MAX = -(2**63), 2**63 - 1

# --- table, account and global-table actions (router/actions/, router/regions.py) ---
# DynamoDB's: ListGlobalTables answers this many global tables when no Limit
# is given (the legacy 2017.11.29 API).
LIST_GLOBAL_TABLES_LIMIT_DEFAULT = 100
# DynamoDB's: DescribeEndpoints tells clients to cache its endpoint list for a
# day (CachePeriodInMinutes).
ENDPOINT_CACHE_PERIOD_MINUTES = 24 * 60
# Meridian's: a request needing another region's catalog (ReplicaUpdates,
# the legacy global-table calls) waits this long for this region's
# replicator, which answers or forwards it; past it: InternalServerError.
REMOTE_CATALOG_TIMEOUT_S = 5.0
# DynamoDB's capacity accounting (router/capacity.py): a read unit is
# 4 KB read (half of one when eventually consistent), a write unit 1 KB written,
# each item rounded up to a whole unit.
READ_CAPACITY_UNIT_BYTES = 4 * 1024
WRITE_CAPACITY_UNIT_BYTES = 1024
#: DynamoDB's: an eventually consistent read costs this share of a strongly consistent one.
EVENTUAL_READ_FACTOR = 0.5
# DynamoDB's: ItemCollectionMetrics' SizeEstimateRangeGB is a range of this
# width (one GB) around the item collection's size.
ITEM_COLLECTION_ESTIMATE_STEP_BYTES = 1024 ** 3
# DynamoDB's: UpdateTimeToLive refuses a table's next change this long after
# its last one (documented as one hour; live tables were seen to accept it
# after about 31 minutes).  A router option may shorten it for labs
# (RouterContext.ttl_change_interval_s, router/actions/ttl.py).
TTL_CHANGE_INTERVAL_S = 3600.0
# Meridian's: DescribeTimeToLive shows ENABLING / DISABLING this long after a
# change, then ENABLED / DISABLED (0: settled on the next describe, as live
# DynamoDB shows ENABLED almost at once).
TTL_TRANSITION_S = 0.0
assert LIST_GLOBAL_TABLES_LIMIT_DEFAULT >= 1
assert TTL_CHANGE_INTERVAL_S >= 0 and TTL_TRANSITION_S >= 0
assert WRITE_CAPACITY_UNIT_BYTES <= READ_CAPACITY_UNIT_BYTES

# --- the web console (router/console/) ----------------------------------------------
# Meridian's: the console lists at most this many tables (read with ListTables
# in pages of LIST_TABLES_LIMIT_MAX) ...
CONSOLE_TABLES_MAX = 1000
# ... and runs at most this many DescribeTable calls of one listing at once
# (each asks every node for statistics).
CONSOLE_DESCRIBE_CONCURRENCY = 8
# A router's GET /metrics reads this many tables' statistics at once (TTL deletions).
METRICS_STATS_CONCURRENCY = 8
# Items per page of the console's items browser: by default, and at most.
CONSOLE_PAGE_ITEMS_DEFAULT = 25
CONSOLE_PAGE_ITEMS_MAX = 100
# One console control command (to this region's replicator, or forwarded by
# it to another region) may take this long; past it the console shows 503.
CONSOLE_CONTROL_TIMEOUT_S = 5.0
# The console shows the newest this-many control events of every region.
CONSOLE_EVENTS_MAX = 500
assert 1 <= CONSOLE_PAGE_ITEMS_DEFAULT <= CONSOLE_PAGE_ITEMS_MAX
assert LIST_TABLES_LIMIT_MAX <= CONSOLE_TABLES_MAX

# --- Query and Scan (router/actions/query_scan.py) ------------------------------
# Meridian's: a Scan over several nodes merges one stream per node; each node
# is first asked for its even share of what the page still needs, times this
# headroom (percent), so one round trip usually fills the page, and a stream
# that runs dry is refilled with twice its previous chunk.
SCAN_CHUNK_HEADROOM_PERCENT = 150
# Meridian's: the smallest item count asked of a node per merge chunk (a small
# Limit split over many nodes would otherwise cost one round trip per item).
SCAN_CHUNK_ITEMS_MIN = 16
assert SCAN_CHUNK_HEADROOM_PERCENT >= 100
assert PAGE_BYTES_MAX < GRPC_MESSAGE_BYTES_MAX // 8  # a page's JSON (base64, quoting) fits a reply

# --- replication (replication/) -------------------------------------------------
# Meridian's: one batch carries at most this many changes of one node's log ...
REPLICATION_BATCH_CHANGES_MAX = 1000
# ... and is closed before its changes pass this size (one change always fits).
REPLICATION_BATCH_BYTES_MAX = 1024 * 1024
# Batches sent to one peer region and not yet acknowledged; with the window
# full nothing more is read, so a slow or cut link's backlog waits in the
# change log on disk.  Eager shipping sends small batches at low rates, so the
# window is sized for them: 32 keeps 5,000 changes/s on a 160 ms round trip
# at link latency (8 added ~50 ms of queueing), and bounds the replicator's
# memory per peer to 32 x the batch bytes.
REPLICATION_INFLIGHT_BATCHES_MAX = 32
# A replicator with nothing to ship still tells each peer, this often, how
# far its stamps have moved on (peers need that to drop tombstones).
REPLICATION_FLOOR_INTERVAL_S = 1.0
# A simulated link gives a transmission up for lost after max(this, 2 x its
# round trip) and sends it again (TCP's minimum retransmission timeout).
LINK_RETRANSMIT_TIMEOUT_MIN_S = 0.2
# The highest loss probability a link may be set to (at 1.0 nothing would
# ever arrive, which is a cut, not loss).
LINK_LOSS_MAX = 0.9
# What a change weighs in a batch beyond its key, item and region name:
# sequence, table id, stamp clock, flags, lengths (model/changes.py).
CHANGE_OVERHEAD_BYTES = 40
# Convergence digests (replication/digest.py): 16 ** depth key-hash ranges.
DIGEST_DEPTH = 3  # 4096 leaves: ~25 items per leaf at 100k items
DIGEST_DEPTH_MAX = 5  # ~1M leaves, the most one digest may hold in memory

assert REPLICATION_BATCH_CHANGES_MAX >= 1
assert ITEM_SIZE_BYTES_MAX + PARTITION_KEY_BYTES_MAX + SORT_KEY_BYTES_MAX < REPLICATION_BATCH_BYTES_MAX
assert REPLICATION_BATCH_BYTES_MAX * 2 <= GRPC_MESSAGE_BYTES_MAX  # a batch always fits one message
assert REPLICATION_INFLIGHT_BATCHES_MAX * REPLICATION_BATCH_BYTES_MAX <= 64 * 1024 * 1024  # memory per peer
assert 1 <= DIGEST_DEPTH <= DIGEST_DEPTH_MAX

# --- secondary indexes (node/indexes.py, node/gsi.py) ----------------------------
# DynamoDB's: a partition key value's items plus their local secondary index
# entries (an "item collection") may not grow past 10 GB.
ITEM_COLLECTION_BYTES_MAX = 10 * 1024 ** 3
# Meridian's: a node's GSI maintainer reads at most this many change-log
# entries (or backfilled items) per index per round ...
GSI_BATCH_CHANGES_MAX = 512
# ... and closes the round once they pass this size, so what it sends to one
# owner always fits one gRPC message.
GSI_BATCH_BYTES_MAX = 4 * 1024 * 1024
# Meridian's: with nothing signalled, a maintainer still looks for work this
# often (a wake-up from the engine normally comes first) ...
GSI_POLL_INTERVAL_S = 1.0
# ... and after a failed round (an owner down, an index not yet known there)
# it waits from this long, doubling up to the maximum, before trying again.
GSI_RETRY_BACKOFF_S_MIN = 0.05
GSI_RETRY_BACKOFF_S_MAX = 2.0
# Meridian's: one round trip to an index owner may take this long.
GSI_SEND_TIMEOUT_S = 10.0

assert GSI_BATCH_BYTES_MAX + ITEM_SIZE_BYTES_MAX < GRPC_MESSAGE_BYTES_MAX // 4  # a round's entries fit a message
assert GSI_RETRY_BACKOFF_S_MIN <= GSI_RETRY_BACKOFF_S_MAX
assert NODE_RECONNECT_BACKOFF_S_MIN <= NODE_RECONNECT_BACKOFF_S_MAX
assert GRPC_PING_INTERVAL_MS_MIN <= GRPC_KEEPALIVE_TIME_MS

# --- Time to Live expiry (node/ttl.py) --------------------------------------------
# DynamoDB's: an item whose TTL attribute (epoch seconds) lies more than five
# years in the past is never expired (a value in milliseconds reads as far in
# the future, one mistyped as far in the past).  Five years of 365 days: the
# exact edge (leap days) is a guess.
TTL_EXPIRED_AGE_S_MAX = 5 * 365 * 24 * 60 * 60
# Meridian's: default of `--ttl-interval-s`, the seconds between the end of one
# sweep of a node's TTL tables and the start of the next (DynamoDB itself
# typically deletes within a few days of expiry).
TTL_SWEEP_INTERVAL_S_DEFAULT = 5.0
# Meridian's: a sweep reads a table's items in chunks of at most this many
# items ...
TTL_SWEEP_CHUNK_ITEMS_MAX = 256
# ... closing a chunk once its records pass this size; between chunks it
# yields to the event loop, so one chunk holds the loop for a few ms at most.
TTL_SWEEP_CHUNK_BYTES_MAX = 1024 * 1024
# Meridian's: a node deletes at most this many expired items per second,
# sustained ...
TTL_DELETES_PER_S_MAX = 1000
# ... in bursts (one engine call, one write batch) of at most this many.
TTL_DELETES_BURST_MAX = 100

assert TTL_SWEEP_INTERVAL_S_DEFAULT > 0
assert 1 <= TTL_DELETES_BURST_MAX <= TTL_DELETES_PER_S_MAX
assert TTL_DELETES_BURST_MAX <= GROUP_COMMIT_WRITES_MAX  # a burst fits one group commit
assert ITEM_SIZE_BYTES_MAX <= TTL_SWEEP_CHUNK_BYTES_MAX  # a chunk holds at least the largest item

# --- DynamoDB Streams (model/streams.py, node/streams.py, node/stream_retention.py) --
# DynamoDB's: a stream sequence number has 21 to 40 digits (botocore's bounds).
STREAM_SEQUENCE_NUMBER_DIGITS_MIN = 21
STREAM_SEQUENCE_NUMBER_DIGITS_MAX = 40
# DynamoDB's: stream records are kept 24 hours (default of `--stream-retention-s`).
STREAM_RETENTION_S_DEFAULT = 24 * 60 * 60
# DynamoDB's (observed): a shard takes records for about four hours, then a new
# one follows it (default of `--stream-shard-period-s`; a lab shortens it).
STREAM_SHARD_PERIOD_S_DEFAULT = 4 * 60 * 60
# Meridian's: a node trims its expired stream periods this often
# (node/stream_retention.py) ...
STREAM_TRIM_INTERVAL_S = 60.0
# A node no replicator reads (`meridian serve`, a one-region cluster) trims
# its own change log this often (node/log_compaction.py): the log then holds
# about this many seconds of writes, plus what a GSI maintainer has not read.
LOCAL_LOG_TRIM_INTERVAL_S = 10.0
# ... and never less often than a retention period allows: at most this
# fraction of the retention (so a short lab retention is honoured closely).
STREAM_TRIM_INTERVAL_FRACTION = 0.25
# Meridian's: one stream read (GetRecords on one shard) returns at most this
# many records and stops before this many bytes (DynamoDB's GetRecords caps).
STREAM_READ_RECORDS_MAX = 1000
STREAM_READ_BYTES_MAX = 1024 * 1024
# Meridian's: a node lists at most this many shards (periods) of one stream,
# the newest; with the defaults it has 7 (24 h of 4 h periods), but a lab's
# tiny shard period under a long retention could make millions.
STREAM_SHARDS_LISTED_MAX = 1000

assert STREAM_SEQUENCE_NUMBER_DIGITS_MIN == 21  # a period (>= 1 digit) + 20 sequence digits
assert STREAM_RETENTION_S_DEFAULT > 0 and STREAM_SHARD_PERIOD_S_DEFAULT > 0
assert STREAM_TRIM_INTERVAL_S > 0 and 0 < STREAM_TRIM_INTERVAL_FRACTION <= 1
assert STREAM_READ_BYTES_MAX <= GRPC_MESSAGE_BYTES_MAX // 4  # a page fits one gRPC message
assert STREAM_SHARDS_LISTED_MAX >= STREAM_RETENTION_S_DEFAULT // STREAM_SHARD_PERIOD_S_DEFAULT + 1

# --- checkpoints and point-in-time recovery (model/backups.py, node/checkpoints.py, node/pitr.py,
#     node/restore.py) ------------------------------------------------------------------
# DynamoDB's: a table's point-in-time recovery period is 1 to 35 days (35 by default).
PITR_RECOVERY_DAYS_MIN = 1
PITR_RECOVERY_DAYS_MAX = 35
PITR_RECOVERY_DAYS_DEFAULT = 35
# Meridian's: default of `--pitr-checkpoint-interval-s`, how often a node takes a
# periodic checkpoint while a table has PITR: a point-in-time restore replays at
# most this much change log after the checkpoint before the target time.
PITR_CHECKPOINT_INTERVAL_S_DEFAULT = 3600.0
# ... and how often, at most, the PITR task looks (a new table with PITR, checkpoints
# past the retention), whatever the interval.
PITR_PASS_INTERVAL_S_MAX = 60.0
# Meridian's: with no table with PITR left, a node deletes its periodic checkpoints,
# but none younger than this: the router takes the first one on enabling PITR just
# before it stores the setting (node/pitr.py).
PITR_ORPHAN_GRACE_S = 300.0
# Meridian's: a checkpoint name is a folder name on each node (a backup id is 36 chars).
CHECKPOINT_NAME_CHARS_MAX = 128
# Meridian's: a write pause (hold_writes, for a consistent cut across nodes) ends on its
# own after at most this long, so a router that dies holding it cannot stall a node.
WRITE_HOLD_TIMEOUT_S_MAX = 10.0
# Meridian's: a router waits this long for one node's share of a restore (RestoreTable).
RESTORE_CALL_TIMEOUT_S = 3600.0
# Meridian's: a restore writes the items it copies in batches of at most this many
# (one replicated-apply call each), yielding to the event loop between batches.
RESTORE_BATCH_ITEMS = 512
# ... and reads the change log it replays in chunks of this many batches' worth of
# entries (most are skipped unread: another table's), the loop free between chunks.
RESTORE_LOG_CHUNK_FACTOR = 8

assert 1 <= PITR_RECOVERY_DAYS_MIN <= PITR_RECOVERY_DAYS_DEFAULT <= PITR_RECOVERY_DAYS_MAX
assert PITR_CHECKPOINT_INTERVAL_S_DEFAULT > 0 and PITR_PASS_INTERVAL_S_MAX > 0
assert WRITE_HOLD_TIMEOUT_S_MAX < STORAGE_CALL_TIMEOUT_S  # a held write is answered before the router gives up
assert 1 <= RESTORE_BATCH_ITEMS <= GROUP_COMMIT_WRITES_MAX

# --- on-demand backups and restores: the API (router/actions/backups.py, router/backup_*.py,
#     router/restore*.py) --------------------------------------------------------------
# DynamoDB's: ListBackups returns at most 100 backups a page (Limit 1..100), and that
# many when Limit is not given (a guess: the API reference gives no default).
LIST_BACKUPS_LIMIT_MAX = 100
# DynamoDB's: at most 50 restores run at once per account (the 51st is
# LimitExceededException, parity catalog DDB-TABLE-350).
RESTORES_IN_PROGRESS_MAX = 50
# DynamoDB's: the SYSTEM backup DeleteTable keeps of a table with PITR expires after
# 35 days (DDB-BACKUP-015), whatever the table's recovery period was.
SYSTEM_BACKUP_RETENTION_DAYS = 35

assert 1 <= LIST_BACKUPS_LIMIT_MAX and 1 <= RESTORES_IN_PROGRESS_MAX and SYSTEM_BACKUP_RETENTION_DAYS >= 1

# --- DynamoDB Streams' API (router/actions/streams.py, router/stream_*.py) --------
# DynamoDB's: ListStreams and DescribeStream return at most 100 streams / shards
# (and that many when Limit is not given); GetRecords at most 1000 records.
STREAM_LIST_STREAMS_LIMIT_MAX = 100
STREAM_DESCRIBE_SHARDS_LIMIT_MAX = 100
STREAM_GET_RECORDS_LIMIT_MAX = 1000
# DynamoDB's: a GetRecords answer holds at most 1 MB of records (the first always comes).
STREAM_GET_RECORDS_BYTES_MAX = 1024 * 1024
# DynamoDB's: a shard iterator may be used for 15 minutes after it was issued.
STREAM_ITERATOR_AGE_S_MAX = 15 * 60
# Meridian's: GetShardIterator AT_TIMESTAMP looks for its record this many
# records at a time (pages of one shard read, oldest first).
STREAM_SEEK_RECORDS_PER_READ = 1000

assert STREAM_GET_RECORDS_LIMIT_MAX <= STREAM_READ_RECORDS_MAX
assert STREAM_GET_RECORDS_BYTES_MAX <= STREAM_READ_BYTES_MAX
assert 1 <= STREAM_SEEK_RECORDS_PER_READ <= STREAM_READ_RECORDS_MAX

# --- transactions (router/transactions.py, node/transactions.py, node/txn_recovery.py) ---

#: A prepared transaction whose decision has not reached a participant this
#: long after it prepared is resolved by the participant from the coordinator
#: node (an undecided one is then aborted): how long a dead router's locks live.
TXN_RESOLVE_AFTER_S = 5.0
#: How often a node looks for prepared transactions to resolve.
TXN_RECOVERY_INTERVAL_S = 1.0
#: A coordinator keeps a decision no router forgot (its router died after
#: deciding) this long, for participants that were down meanwhile.
TXN_DECISION_RETENTION_S = 24 * 3600.0
#: Timeout of one node call of a transaction (prepare, decide, finish, read).
TXN_CALL_TIMEOUT_S = 10.0
#: TransactGetItems across nodes reads twice and compares versions; it tries
#: this many times before it reports a conflict.
TXN_READ_ATTEMPTS_MAX = 3
#: DynamoDB's ClientRequestToken window, and the router-side store's bound.
TXN_IDEMPOTENCY_WINDOW_S = 600.0
TXN_IDEMPOTENCY_TOKENS_MAX = 100_000
#: A router tells a coordinator node to drop finished transactions'
#: decisions with its next decision, or in one call once this many wait.
TXN_FORGET_BATCH_MAX = 256
#: DynamoDB's aggregate size bound of one TransactWriteItems.
TRANSACT_AGGREGATE_BYTES_MAX = 4 * 1024 * 1024

assert TXN_RECOVERY_INTERVAL_S < TXN_RESOLVE_AFTER_S < TXN_DECISION_RETENTION_S
assert TXN_READ_ATTEMPTS_MAX >= 1
#: DynamoDB's: a transactional read or write costs this many times the
#: units of a plain one (a prepare and a commit per item).
TRANSACT_CAPACITY_FACTOR = 2

# --- PartiQL (router/actions/partiql.py, router/partiql_*.py) ---

#: DynamoDB reads at most this many partition key values (IN, OR) in one SELECT,
#: one Query each ("Too many decomposed read operations for a given query.").
PARTIQL_READS_PER_STATEMENT_MAX = 50

# --- throughput and throttling (model/throughput.py, node/budget.py, router/throttle.py) ---

#: DynamoDB's: unused provisioned capacity is kept for up to five minutes.
THROUGHPUT_BURST_S = 300.0
#: Meridian's: a router leases this many seconds of a resource's rate at a
#: time from the table's budget node (at least one unit).
THROUGHPUT_LEASE_S = 0.1
#: Meridian's: timeout of one lease call.
THROUGHPUT_LEASE_TIMEOUT_S = 1.0
#: Meridian's: after a lease call to a table's budget node fails, a router
#: meters that node's tables on its own buckets for this long before it asks
#: the node again: a dead budget node must not make its tables unavailable.
THROUGHPUT_LEASE_RETRY_S = 1.0
#: DynamoDB's: one partition serves at most this many units a second.
PARTITION_READ_UNITS_PER_S = 3000
PARTITION_WRITE_UNITS_PER_S = 1000
#: Meridian's: a partition banks this many seconds of its ceiling, so a
#: burst of large writes (a test suite loading 400 KB items) passes while a
#: key kept hot above the ceiling is throttled within seconds.  DynamoDB's
#: partitions burst too (and borrow through adaptive capacity); it publishes
#: no figure for either.
THROUGHPUT_PARTITION_BURST_S = 10.0
#: Meridian's: an on-demand maximum is a rate: one second of it banked.
THROUGHPUT_MAX_BURST_S = 1.0
#: Meridian's: how many (table, revision, operation) plans a router keeps.
THROUGHPUT_PLANS_MAX = 10_000
#: Meridian's: partition ceilings are metered per key range, one of
#: 2 ** this many fixed slices of the partition-hash space.
THROUGHPUT_KEY_RANGE_BITS = 16
#: DynamoDB's: on-demand capacity follows traffic up to double its previous peak.
ON_DEMAND_PEAK_FACTOR = 2
#: Meridian's: how many partition key values' hashes a router remembers.
THROUGHPUT_KEY_HASHES_MAX = 100_000

assert THROUGHPUT_LEASE_S < THROUGHPUT_MAX_BURST_S <= THROUGHPUT_PARTITION_BURST_S <= THROUGHPUT_BURST_S

# --- Contributor Insights (router/actions/contributor_insights.py, router/contributors.py) ---
#: Meridian's: ENABLING, DISABLING last this long (live DynamoDB: ~1 s, up to 16 s; ~2 s).
CONTRIBUTOR_INSIGHTS_ENABLING_S = 1.0
CONTRIBUTOR_INSIGHTS_DISABLING_S = 2.0
#: DynamoDB's: ListContributorInsights' MaxResults at most, and a page's size without one.
CONTRIBUTOR_INSIGHTS_LIST_RESULTS_MAX = 100
#: Meridian's: keys counted per rule (Space-Saving: every key above this share of
#: the rule's requests is kept), and shown per rule (CloudWatch's reports: 10).
CONTRIBUTOR_INSIGHTS_KEYS_TRACKED = 64
CONTRIBUTOR_INSIGHTS_KEYS_REPORTED = 10
#: Meridian's: a request's weight decays by e every this many seconds (a key's count is
#: about its last minute's requests); below this count a key is not shown; counters are
#: rescaled once a weight reaches e ** this (a float holds e ** 709).
CONTRIBUTOR_INSIGHTS_WINDOW_S = 60.0
CONTRIBUTOR_INSIGHTS_COUNT_REPORTED_MIN = 0.01
CONTRIBUTOR_INSIGHTS_WEIGHT_EXPONENT_MAX = 64.0
#: Meridian's: tables' and indexes' rules one router keeps (the oldest dropped past it); plans.
CONTRIBUTOR_INSIGHTS_RESOURCES_MAX = 1000
CONTRIBUTOR_INSIGHTS_PLANS_MAX = 10_000
assert 1 <= CONTRIBUTOR_INSIGHTS_KEYS_REPORTED <= CONTRIBUTOR_INSIGHTS_KEYS_TRACKED
assert CONTRIBUTOR_INSIGHTS_WINDOW_S > 0 and 0 < CONTRIBUTOR_INSIGHTS_WEIGHT_EXPONENT_MAX < 700

# --- meridian.testing (testing/): an embedded server inside a test process -------
# Meridian's: how long a test's embedded server may take to open its engine
# and listen (seconds; a cold start is ~0.1 s, a loaded CI machine far slower).
TESTING_START_TIMEOUT_S = 60.0
# Meridian's: how long stopping it may take (in-flight writes made durable,
# the engine closed) before the test process gives up on it.
TESTING_STOP_TIMEOUT_S = 30.0
# Meridian's: how long one reset (every table dropped) may take.
TESTING_RESET_TIMEOUT_S = 30.0

# --- storage engine (node/database.py, node/engine.py, node/replica.py) -----------
# Meridian's: RocksDB's block cache, shared by every column family of a node.
ROCKSDB_BLOCK_CACHE_BYTES = 64 * 1024 * 1024
# Meridian's: memtable size per column family (flushed to an SST file when
# full): largest where every write lands (items, log), smallest for bookkeeping.
ROCKSDB_ITEMS_WRITE_BUFFER_BYTES = 32 * 1024 * 1024
ROCKSDB_LOG_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
ROCKSDB_SCAN_WRITE_BUFFER_BYTES = 8 * 1024 * 1024
ROCKSDB_INDEX_WRITE_BUFFER_BYTES = 8 * 1024 * 1024
ROCKSDB_META_WRITE_BUFFER_BYTES = 4 * 1024 * 1024
ROCKSDB_STREAM_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
# Meridian's: bloom filter bits per key where point lookups dominate (~1% false
# positives: a lookup of a missing key rarely reads a data block).
ROCKSDB_BLOOM_BITS_PER_KEY = 10
# Meridian's: partitioned index and filter pieces are cut at about this size
# (RocksDB's default), small enough that each stays in one block-cache shard.
ROCKSDB_METADATA_BLOCK_BYTES = 4096
# Meridian's: RocksDB flush and compaction threads of one node (the nodes of a
# lab share one machine).
ROCKSDB_BACKGROUND_JOBS_MAX = 2
# Meridian's: tombstone garbage collection (Engine.drop_tombstones) deletes at
# most this many keys per write batch, so no one write holds the engine long.
TOMBSTONE_DELETES_PER_WRITE_MAX = 1000
# Meridian's: a data folder migrated to a newer on-disk format (node/data_format.py)
# shows a progress bar from this many keys in the column family a step walks
# (below, a step takes well under a second); the bar moves by this many keys.
FORMAT_MIGRATION_PROGRESS_KEYS_MIN = 200_000
FORMAT_MIGRATION_PROGRESS_KEYS_STEP = 10_000

assert ROCKSDB_METADATA_BLOCK_BYTES * 1024 <= ROCKSDB_BLOCK_CACHE_BYTES  # a piece is tiny next to the cache
# a memtable holds many largest items (or index entries, or log records)
assert 8 * ITEM_SIZE_BYTES_MAX <= min(
    ROCKSDB_ITEMS_WRITE_BUFFER_BYTES,
    ROCKSDB_LOG_WRITE_BUFFER_BYTES,
    ROCKSDB_INDEX_WRITE_BUFFER_BYTES,
    ROCKSDB_STREAM_WRITE_BUFFER_BYTES,
)
assert ROCKSDB_BACKGROUND_JOBS_MAX >= 1
assert TOMBSTONE_DELETES_PER_WRITE_MAX >= 1
assert 1 <= FORMAT_MIGRATION_PROGRESS_KEYS_STEP <= FORMAT_MIGRATION_PROGRESS_KEYS_MIN

# --- replication transport (replication/grpc_*.py, node/replica_service.py) -------

# A replicator's long poll of a node's change log (WaitBeyond): the node
# answers at the latest after this long, so a dead connection is noticed.
REPLICATION_WAIT_BEYOND_S_MAX = 5.0
# A replicator retries a call to one of its region's nodes after this long
# (a node restarting); the backlog waits in the node's log meanwhile.
REPLICATION_NODE_RETRY_S = 0.2
# ... and reconnects to a node or a peer replicator backing off up to this long.
REPLICATION_RECONNECT_BACKOFF_S_MAX = 2.0
# Deadline of one batch delivery to a peer replicator (apply included);
# past it the link retransmits.
REPLICATION_DELIVER_TIMEOUT_S = 10.0
# How often a replicator garbage-collects its nodes' logs and tombstones.
REPLICATION_GC_INTERVAL_S = 30.0
# A replicator reads its region's catalog this often for replica changes to
# carry out and for which tables replicate where (replication/replicas.py).
REPLICA_MANAGER_INTERVAL_S = 0.5
# A backfilling replica's ReplicaStatusPercentProgress is saved in steps of this.
REPLICA_PROGRESS_STEP_PERCENT = 10
# A replicator's PendingReplicationCount gauge (replication/metrics.py) is
# refreshed this often: each refresh reads every node's log position.
REPLICATION_METRICS_REFRESH_S = 1.0
# A shipping task that read its node's log less than this long ago waits out
# the rest before reading a batch that would not be full, so a busy link
# carries fewer, larger batches (replication/replicator.py); it adds at most
# this much replication latency.
REPLICATION_LINGER_S = 0.005
# Successive saves of one replication cursor (a file rewrite and two fsyncs)
# start at least this far apart; acks meanwhile fold into the next save.
REPLICATION_CURSOR_SAVE_INTERVAL_S = 0.05
# A replicator's WaitBeyond call may take this much longer than the node's
# long poll (REPLICATION_WAIT_BEYOND_S_MAX) before it counts as failed.
REPLICATION_WAIT_BEYOND_GRACE_S = 5.0
# Control changes (link set/cut/heal, pause/resume, clock skew) a replicator
# remembers for ``meridian ... events`` (replication/peers.py).
REPLICATION_CONTROL_EVENTS_MAX = 1000
# One control command sent to a replicator (replication/peers.py ``control``).
REPLICATION_CONTROL_TIMEOUT_S = 10.0
# A command forwarded to another region's replicator may take this long (a
# digest of a large table reads every record).
REPLICATION_CONTROL_FORWARD_TIMEOUT_S = 30.0
# A region's own-origin backfill of a new replica reads its whole table: the
# coordinating region waits this long for it (replication/replicas.py).
REPLICA_PEER_BACKFILL_TIMEOUT_S = 600.0
# A stopping replicator gives its open calls this long to finish.
REPLICATOR_STOP_GRACE_S = 2.0
# A router's control call outlives the forward it causes, so a region that
# does not answer comes back as a clean 503 rather than the router's timeout.
assert REPLICATION_CONTROL_FORWARD_TIMEOUT_S < ROUTER_CONTROL_TIMEOUT_S

# --- DAX server (router/dax/server.py, router/dax/auth.py) --------------------------

# Open DAX connections per DAX node; one more is closed as it is accepted.
# The clients keep a small pool per node (and the JS client caps its own).
DAX_CONNECTIONS_MAX = 4096
# A DAX connection with no traffic for this long is closed.  The clients
# health-check every node every 5 s and reap their own idle connections
# (Python 30 s, JS 5 s), so only a leaked or dead peer's socket gets here.
DAX_CONNECTION_IDLE_S = 600.0
# A closing DAX node waits this long for the requests it is running, then cancels them.
DAX_CLOSE_GRACE_S = 5.0
assert DAX_CONNECTIONS_MAX >= 1 and DAX_CONNECTION_IDLE_S > 0 and DAX_CLOSE_GRACE_S > 0

# --- DAX caches (router/dax/cache.py, router/dax/metrics.py) -------------------------

# DAX's default parameter group: record-ttl-millis and query-ttl-millis are
# 300000 (5 minutes) each; a DAX node takes them unless configured otherwise.
DAX_RECORD_TTL_MS_DEFAULT = 300_000
DAX_QUERY_TTL_MS_DEFAULT = 300_000
# Each DAX node's item cache (GetItem/BatchGetItem answers) and query cache
# (Query/Scan pages) holds at most this many bytes; past it the least recently
# used entries go (DAX's always-on LRU).  A real node sizes them by its memory.
DAX_ITEM_CACHE_BYTES_MAX = 64 * 1024 * 1024
DAX_QUERY_CACHE_BYTES_MAX = 64 * 1024 * 1024
# Bookkeeping charged per cache entry on top of its key's and answer's bytes
# (dict slot, list links, entry record), so many tiny entries cannot exceed
# the byte bound in real memory.
DAX_CACHE_ENTRY_OVERHEAD_BYTES = 128
# The largest item, and a full Query/Scan page, fit many times over.
assert 16 * ITEM_SIZE_BYTES_MAX <= DAX_ITEM_CACHE_BYTES_MAX
assert 16 * PAGE_BYTES_MAX <= DAX_QUERY_CACHE_BYTES_MAX
assert 0 < DAX_CACHE_ENTRY_OVERHEAD_BYTES < ITEM_SIZE_BYTES_MAX

# --- DAX wire format (router/dax/cbor.py, router/dax/values.py, router/dax/attribute_lists.py) ---
# One DAX request (its CBOR items) may hold at most this many bytes; a CBOR
# length or count declaring more is malformed, and a connection buffering more
# is closed.  As large as an HTTP request: a BatchWriteItem of 25 full items fits.
DAX_REQUEST_BYTES_MAX = HTTP_REQUEST_BYTES_MAX
# CBOR containers and tags nest at most this deep in one item.  A document is
# at most DOCUMENT_DEPTH_MAX deep and an expression EXPRESSION_NESTING_MAX, each
# adding a few levels of framing; deeper input is refused before Python's stack is.
DAX_CBOR_DEPTH_MAX = 2 * EXPRESSION_NESTING_MAX
# Attribute lists (sorted attribute-name tuples <-> int ids) one DAX node
# remembers; ids are never evicted (clients cache them for good), so a node
# that is full refuses new lists instead.
DAX_ATTRIBUTE_LISTS_MAX = 100_000
assert ITEM_SIZE_BYTES_MAX < DAX_REQUEST_BYTES_MAX
assert DOCUMENT_DEPTH_MAX + 4 <= DAX_CBOR_DEPTH_MAX and EXPRESSION_NESTING_MAX + 4 <= DAX_CBOR_DEPTH_MAX
assert DAX_ATTRIBUTE_LISTS_MAX >= 1

# --- DAX data methods (router/dax/methods.py, batches.py, key_schemas.py, upstream.py) ---
#: Meridian's: how long a DAX node trusts a table's key schema before asking DescribeTable again.
DAX_KEY_SCHEMA_TTL_S = 60.0
#: Meridian's: how many tables' key schemas a DAX node remembers (past it, it forgets them all).
DAX_KEY_SCHEMAS_MAX = 10_000
#: Meridian's: a standalone DAX node's connections to its upstream endpoint (`meridian dax --upstream`).
DAX_UPSTREAM_CONNECTIONS_MAX = 64
#: Meridian's: a standalone DAX node's timeout for one upstream call.
DAX_UPSTREAM_TIMEOUT_S = 30.0
#: DAX's: a cluster has at most 11 nodes (a primary and up to 10 read replicas).
DAX_CLUSTER_NODES_MAX = 11

# --- DAX console panel and demo (router/console/dax.py, lab/demo/dax.py) ---
#: DAX nodes the console's /console/api/dax lists per router (the rest are counted
#: as truncated): room for many full clusters in one router.
CONSOLE_DAX_NODES_MAX = 100
#: `meridian demo dax`: items it loads by default, and the most it will load
#: (each is read through DAX and directly; a few MB at most).
DEMO_DAX_ITEMS_DEFAULT = 1000
DEMO_DAX_ITEMS_MAX = 100_000
#: `meridian demo dax`: seconds of readings its "now" columns cover (a sliding window).
DEMO_DAX_WINDOW_S = 5.0
#: `meridian demo dax`: reads per path whose latencies the window keeps (more than
#: one Python client thread makes in DEMO_DAX_WINDOW_S).
DEMO_DAX_WINDOW_READS_MAX = 200_000
#: `meridian demo dax`: how often the dashboard is redrawn (and plain mode prints a line).
DEMO_DAX_REDRAW_INTERVAL_S = 0.5
DEMO_DAX_PLAIN_INTERVAL_S = 1.0
#: `meridian demo dax`: waits for its own `meridian serve`, and for one read or console call.
DEMO_DAX_START_TIMEOUT_S = 60.0
DEMO_DAX_CALL_TIMEOUT_S = 10.0
assert DAX_CLUSTER_NODES_MAX <= CONSOLE_DAX_NODES_MAX
assert 1 <= DEMO_DAX_ITEMS_DEFAULT <= DEMO_DAX_ITEMS_MAX
assert 0 < DEMO_DAX_REDRAW_INTERVAL_S <= DEMO_DAX_PLAIN_INTERVAL_S < DEMO_DAX_WINDOW_S

# --- DAX request latency (router/dax/latency.py, router/dax/server.py, router/dax/metrics.py) ---
#: Meridian's: significant bits a DAX node's request-latency histogram keeps per value: 2**4 buckets
#: per power of two, so a percentile is within ~6 % of the true value.
DAX_LATENCY_SIGNIFICANT_BITS = 4
#: Meridian's: the longest request time (ns, ~137 s) that histogram tells apart; longer ones count as it.
#: With the bits above, this fixes the histogram at 544 buckets per node, whatever is recorded.
DAX_LATENCY_NS_MAX = (1 << 37) - 1
assert 1 <= DAX_LATENCY_SIGNIFICANT_BITS <= 8 and DAX_LATENCY_NS_MAX >= 10**9 * 60

# --- DAX control plane (router/dax/control_model.py, router/actions/dax_control.py) ---
#: Meridian's: DAX clusters one router runs (their nodes live in its process).
DAX_CONTROL_CLUSTERS_MAX = 20
#: Meridian's: DAX nodes one router runs, over all its clusters (NodeQuotaForCustomerExceededFault past it).
DAX_CONTROL_NODES_MAX = 50
#: Meridian's: parameter groups (the default one included) and subnet groups one router keeps.
DAX_CONTROL_PARAMETER_GROUPS_MAX = 20
DAX_CONTROL_SUBNET_GROUPS_MAX = 50
#: Meridian's: subnet ids in one subnet group (SubnetQuotaExceededFault past it).
DAX_CONTROL_SUBNETS_PER_GROUP_MAX = 20
#: DAX's: tags on one cluster (TagQuotaPerResourceExceeded past it).
DAX_CONTROL_TAGS_PER_RESOURCE_MAX = 50
#: DAX's: a cluster name holds 1 to 20 letters, digits or hyphens.
DAX_CLUSTER_NAME_CHARS_MAX = 20
#: DAX's: other names (parameter and subnet groups) hold at most this many characters.
DAX_GROUP_NAME_CHARS_MAX = 255
#: DAX's: MaxResults of the Describe* calls must be between 20 and 100 (100 when absent).
DAX_CONTROL_PAGE_RESULTS_MIN = 20
DAX_CONTROL_PAGE_RESULTS_MAX = 100
#: DAX's: DescribeEvents reaches 14 days back, and the last 24 hours when no time is given
#: (Meridian keeps at most DAX_CONTROL_EVENTS_MAX events, the oldest dropped first).
DAX_CONTROL_EVENTS_RETENTION_S = 14 * 24 * 3600.0
DAX_CONTROL_EVENTS_DEFAULT_WINDOW_S = 24 * 3600.0
DAX_CONTROL_EVENTS_MAX = 1000
assert DAX_CLUSTER_NODES_MAX <= DAX_CONTROL_NODES_MAX
assert 1 <= DAX_CONTROL_PAGE_RESULTS_MIN <= DAX_CONTROL_PAGE_RESULTS_MAX
assert DAX_CONTROL_EVENTS_DEFAULT_WINDOW_S <= DAX_CONTROL_EVENTS_RETENTION_S and DAX_CONTROL_EVENTS_MAX >= 1

# --- DAX TLS, daxs:// (router/dax/tls.py, router/dax/server.py) ---
#: Meridian's: a daxs:// client has this long to finish its TLS handshake (asyncio's default is 60 s),
#: so connections that never finish one do not hold one of DAX_CONNECTIONS_MAX for a minute.
DAX_TLS_HANDSHAKE_TIMEOUT_S = 10.0
#: Meridian's: a certificate made by --dax-tls is valid this long (mkcert's 825 days, the most
#: Apple's clients accept for a server certificate) ...
DAX_TLS_CERT_VALID_DAYS = 825
#: ... and is made again at start-up when it has fewer days than this left.
DAX_TLS_CERT_RENEW_DAYS = 30
#: Meridian's: a made certificate is valid from this long before it was made (clients with a slow clock).
DAX_TLS_CERT_BACKDATE_S = 3600
assert 0 < DAX_TLS_HANDSHAKE_TIMEOUT_S <= DAX_CONNECTION_IDLE_S
assert 0 < DAX_TLS_CERT_RENEW_DAYS < DAX_TLS_CERT_VALID_DAYS and DAX_TLS_CERT_BACKDATE_S >= 0

# --- DynamoDB's export format: meridian import / export (lab/export_format/), S3 export and import actions (router/actions/exports.py) ---
#: Meridian's: BatchWriteItem calls one `meridian import` keeps in flight (each up to BATCH_WRITE_ITEMS_MAX puts),
#: enough to keep a router busy over keep-alive connections without queueing past them.
IMPORT_BATCHES_IN_FLIGHT_MAX = 16
#: Meridian's: a batch's UnprocessedItems (or a throttle, or a lost connection) is retried this many times,
#: with an exponential backoff from IMPORT_BACKOFF_BASE_S up to IMPORT_BACKOFF_MAX_S, before the import stops.
IMPORT_BATCH_RETRIES_MAX = 12
IMPORT_BACKOFF_BASE_S = 0.05
IMPORT_BACKOFF_MAX_S = 5.0
#: Meridian's: the progress file (which data files and lines are done) is rewritten at most this often.
IMPORT_PROGRESS_SAVE_INTERVAL_S = 1.0
#: Meridian's: a data file's line longer than this is a bad line, not read further (a 400 KB item grows
#: in DynamoDB JSON: base64 binaries by 4/3, escaped strings up to 6x).
IMPORT_LINE_BYTES_MAX = 8 * 1024 * 1024
#: Meridian's: bad lines printed as they are met; all of them go to the errors file.
IMPORT_BAD_LINES_SHOWN_MAX = 20
#: Meridian's: items `meridian export` writes to one data file before starting the next.
EXPORT_ITEMS_PER_FILE_MAX = 100_000
#: Meridian's: parallel Scan segments of an export (each writes its own data files).
EXPORT_SCAN_SEGMENTS = 4
#: Meridian's: how long `meridian export --at` waits for its temporary restored table to be ACTIVE,
#: polling every EXPORT_POLL_INTERVAL_S.
EXPORT_RESTORE_TIMEOUT_S = 600.0
EXPORT_POLL_INTERVAL_S = 0.2
#: DynamoDB's: ListExports' MaxResults and ListImports' PageSize are 1 to 25 (25 when absent here).
LIST_EXPORTS_PAGE_MAX = 25
#: DynamoDB's: an incremental export covers at least 15 minutes.
INCREMENTAL_EXPORT_PERIOD_MIN_S = 15 * 60.0
#: DynamoDB's: a ClientToken names the same export or import for 8 hours.
EXPORT_CLIENT_TOKEN_WINDOW_S = 8 * 3600.0
#: Meridian's: exports and imports a router remembers (the oldest forgotten first); DynamoDB lists
#: them for EXPORT_RECORD_RETENTION_S.
EXPORT_RECORDS_MAX = 1000
EXPORT_RECORD_RETENTION_S = 90 * 24 * 3600.0
assert IMPORT_LINE_BYTES_MAX > 6 * ITEM_SIZE_BYTES_MAX and 1 <= IMPORT_BATCHES_IN_FLIGHT_MAX
assert 0 < IMPORT_BACKOFF_BASE_S < IMPORT_BACKOFF_MAX_S and IMPORT_BATCH_RETRIES_MAX >= 1
assert EXPORT_ITEMS_PER_FILE_MAX >= 1 and EXPORT_SCAN_SEGMENTS >= 1 and EXPORT_RECORDS_MAX >= LIST_EXPORTS_PAGE_MAX

# --- multi-attribute GSI keys (model/ops.py, router/validation_key_schema.py, model/expressions/key_condition.py) ---
#: DynamoDB's (2025): a global secondary index's key holds up to four HASH and up to four RANGE
#: attributes (a table's key and a local index's stay one of each).
GSI_HASH_KEY_ATTRIBUTES_MAX = 4
GSI_RANGE_KEY_ATTRIBUTES_MAX = 4
#: DynamoDB's: a KeyConditionExpression names each key attribute once, so no more conditions than this.
KEY_CONDITIONS_MAX = GSI_HASH_KEY_ATTRIBUTES_MAX + GSI_RANGE_KEY_ATTRIBUTES_MAX
assert KEY_CONDITIONS_MAX >= 2 and GSI_HASH_KEY_ATTRIBUTES_MAX >= 1 and GSI_RANGE_KEY_ATTRIBUTES_MAX >= 1

# --- the lab as a Docker Swarm stack (lab/swarm.py, lab/chaos/swarm_target.py) ---
#: Meridian's: one ``docker swarm init|leave``, ``docker node update``, ``inspect`` or ``ps`` call.
SWARM_COMMAND_TIMEOUT_S = 60.0
#: Meridian's: ``docker stack deploy`` (it only submits the services; the wait is below).
SWARM_DEPLOY_TIMEOUT_S = 300.0
#: Meridian's: one storage node's rolling update (``docker service update --detach=false``:
#: stop, start, the health check's start period, then the update's 30 s monitor window).
SWARM_NODE_UPDATE_TIMEOUT_S = 300.0
#: Meridian's: every service of the stack to have a running task whose health check passed.
SWARM_READY_TIMEOUT_S = 300.0
#: Meridian's: ``docker stack rm`` to have removed every container and network of the stack.
SWARM_REMOVE_TIMEOUT_S = 180.0
#: Meridian's: a service killed by chaos to be back (the restart policy's delay, then its health check).
SWARM_TASK_READY_TIMEOUT_S = 120.0
#: Meridian's: pause between two looks at the stack while waiting.
SWARM_POLL_INTERVAL_S = 1.0
assert SWARM_POLL_INTERVAL_S < SWARM_COMMAND_TIMEOUT_S <= SWARM_DEPLOY_TIMEOUT_S
assert SWARM_TASK_READY_TIMEOUT_S <= SWARM_READY_TIMEOUT_S

# --- DAX bad input (router/dax/cbor.py; tests/unit/test_dax_fuzz_methods.py) ---
#: Meridian's: a CBOR bignum (tags 2 and 3) whose magnitude is longer than this is decoded as a
#: tagged byte string, not an int.  No DynamoDB number needs more (38 digits, exponent at most 125:
#: under 64 bytes), and Python refuses to print an int past 4,300 digits (about 1,785 bytes), so no
#: error message or repr downstream may meet one.
DAX_CBOR_BIGNUM_BYTES_MAX = 256
assert 8 * DAX_CBOR_BIGNUM_BYTES_MAX >= 4 * (NUMBER_EXPONENT_MAX + 2) and DAX_CBOR_BIGNUM_BYTES_MAX < 1785

# --- Raft replica sets: the protocol core (model/raft/; proven in tests/sim/test_raft_sim.py) ---
#: Meridian's: the host calls RaftNode.tick at least this often (virtual or real milliseconds).
RAFT_TICK_MS = 10
#: Meridian's: a leader sends AppendEntries (a heartbeat when it has nothing new) to each peer this often.
RAFT_HEARTBEAT_INTERVAL_MS = 50
#: Meridian's: a follower that hears no leader for a timeout drawn from [MIN, MAX) starts a (pre-)vote;
#: a voter that heard a leader less than MIN ago refuses votes (that is what makes the lease safe).
#: With the election it keeps failover near 1-2 s, inside issue 19's 3 s target.
RAFT_ELECTION_TIMEOUT_MIN_MS = 500
RAFT_ELECTION_TIMEOUT_MAX_MS = 1000
#: Meridian's: how far a node's clock may stray from true elapsed time over one election timeout
#: (rate drift plus jumps); the simulation jumps clocks within it.
RAFT_CLOCK_DRIFT_MS_MAX = 50
#: Meridian's: a leader serves ConsistentRead locally this long after the heartbeat round a majority
#: acknowledged was sent: the election timeout less the drift of the leader's clock and of a voter's.
RAFT_LEASE_MS = RAFT_ELECTION_TIMEOUT_MIN_MS - 2 * RAFT_CLOCK_DRIFT_MS_MAX
#: Meridian's: entries and bytes in one AppendEntries (one entry is sent whatever its size).
RAFT_APPEND_ENTRIES_MAX = 64
RAFT_APPEND_BYTES_MAX = 1024 * 1024
#: Meridian's: AppendEntries carrying entries a leader keeps unacknowledged per follower.
RAFT_INFLIGHT_APPENDS_MAX = 8
#: Meridian's: a leader refuses proposals while this many of its entries are not yet committed.
RAFT_UNCOMMITTED_ENTRIES_MAX = 4096
#: Meridian's: strong reads a leader holds waiting for a ReadIndex round; more are refused.
RAFT_PENDING_READS_MAX = 1024
#: Meridian's: applied entries past the last snapshot before the node asks its host for a new one
#: (the log before it is then dropped; a follower further behind gets InstallSnapshot).
RAFT_SNAPSHOT_ENTRIES = 10_000
#: Meridian's: a leadership transfer (TimeoutNow) not done within this is abandoned (proposals resume).
RAFT_TRANSFER_TIMEOUT_MS = RAFT_ELECTION_TIMEOUT_MIN_MS
assert 0 < RAFT_TICK_MS <= RAFT_HEARTBEAT_INTERVAL_MS < RAFT_LEASE_MS < RAFT_ELECTION_TIMEOUT_MIN_MS
assert RAFT_ELECTION_TIMEOUT_MIN_MS < RAFT_ELECTION_TIMEOUT_MAX_MS and RAFT_CLOCK_DRIFT_MS_MAX >= 0
assert RAFT_APPEND_ENTRIES_MAX >= 1 and RAFT_INFLIGHT_APPENDS_MAX >= 1 and RAFT_SNAPSHOT_ENTRIES >= 1
assert RAFT_APPEND_BYTES_MAX * 2 <= GRPC_MESSAGE_BYTES_MAX and RAFT_PENDING_READS_MAX >= 1
assert RAFT_UNCOMMITTED_ENTRIES_MAX >= RAFT_APPEND_ENTRIES_MAX

# --- throttling, continued (router/throttle.py, router/throttle_plan.py: data size, GSI partitions, metrics) ---
#: DynamoDB's: a partition holds up to 10 GB; past it the partition splits.
PARTITION_SIZE_BYTES_MAX = 10 * 1024**3
#: Meridian's: how often a router asks the nodes for the size of the tables it meters
#: (DynamoDB's TableSizeBytes itself is refreshed about every six hours), and for how
#: many tables at most in one round (the most recently metered first).
THROUGHPUT_TABLE_SIZE_REFRESH_S = 60.0
THROUGHPUT_TABLE_SIZE_TABLES_MAX = 1000
#: Meridian's: per-resource and per-partition throttle counters one router keeps for
#: /metrics (past it, counters for new resources or partitions are not kept).
THROUGHPUT_THROTTLE_COUNTERS_MAX = 10_000
#: Meridian's: a router reads the clock for its per-second roll (on-demand peaks,
#: the size refresh) once every this many admissions, not on every one.
THROUGHPUT_ROLL_CHECK_ADMISSIONS = 16
assert PARTITION_SIZE_BYTES_MAX > 0 and THROUGHPUT_TABLE_SIZE_REFRESH_S >= 1.0
assert THROUGHPUT_ROLL_CHECK_ADMISSIONS >= 1

# --- fidelity (router/actions/resource_policies.py, model/expressions/parser.py, model/values.py) ---
#: DynamoDB's: a resource-based policy document, whitespace counted ("Maximum policy size of 20480 bytes exceeded").
RESOURCE_POLICY_BYTES_MAX = 20 * 1024
#: Meridian's: NOTs and grouping parentheses a condition may nest.  DynamoDB has no nesting bound
#: of its own but allows EXPRESSION_OPERATORS_MAX operators, each NOT one and each grouping
#: parenthesis that is not redundant holding one, so this admits every condition DynamoDB admits.
CONDITION_NESTING_MAX = 2 * EXPRESSION_OPERATORS_MAX + 2
#: Meridian's: the interpreter's recursion bound the expression parser raises the process's
#: to (its recursive descent takes about six frames a parenthesis level; half the levels at
#: most are parentheses), with room for the server's own frames.
EXPRESSION_RECURSION_LIMIT = 6 * (CONDITION_NESTING_MAX // 2) + 2000
assert RESOURCE_POLICY_BYTES_MAX > 0 and CONDITION_NESTING_MAX > EXPRESSION_NESTING_MAX
assert EXPRESSION_RECURSION_LIMIT >= 1000

# --- DAX peer channel and node processes (router/dax/peers.py, cluster/dax_procs.py) ---
#: Meridian's: cache updates one DAX node holds for one peer before it gives up on that
#: peer's cache (it then drops them all, counts them and clears the peer's item cache
#: once the stream flows again), in number and in bytes of item JSON.
DAX_PEER_QUEUE_UPDATES_MAX = 10_000
DAX_PEER_QUEUE_BYTES_MAX = 32 * 1024 * 1024
#: Meridian's: one WriteThrough message (a batch) at most, in updates and in bytes.
DAX_PEER_BATCH_UPDATES_MAX = 1000
DAX_PEER_BATCH_BYTES_MAX = 4 * 1024 * 1024
#: Meridian's: how soon a DAX node tries a dropped peer stream again (gRPC's backoff inside).
DAX_PEER_RECONNECT_BACKOFF_S_MIN = 0.05
DAX_PEER_RECONNECT_BACKOFF_S_MAX = 1.0
#: Meridian's: how long a node waits for a peer's channel to connect before each attempt's
#: stream (updates meanwhile are dropped and counted), and for its streams to end on close.
DAX_PEER_CONNECT_TIMEOUT_S = 2.0
DAX_PEER_CLOSE_TIMEOUT_S = 2.0
assert ITEM_SIZE_BYTES_MAX * 4 <= DAX_PEER_BATCH_BYTES_MAX <= DAX_PEER_QUEUE_BYTES_MAX
assert DAX_PEER_BATCH_BYTES_MAX * 2 <= GRPC_MESSAGE_BYTES_MAX
assert 1 <= DAX_PEER_BATCH_UPDATES_MAX <= DAX_PEER_QUEUE_UPDATES_MAX
assert 0 < DAX_PEER_RECONNECT_BACKOFF_S_MIN <= DAX_PEER_RECONNECT_BACKOFF_S_MAX
#: Meridian's: how long a write through a DAX node waits, before its answer, for its peers to
#: acknowledge its cache update (a read through any node then sees it); a peer slower than
#: this is waited for no more until it catches up.
DAX_PEER_APPLY_WAIT_S = 0.5
assert 0 < DAX_PEER_APPLY_WAIT_S <= DAX_PEER_CONNECT_TIMEOUT_S
