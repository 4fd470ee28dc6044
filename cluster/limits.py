"""Every bound of the operator tools, in one place.

The database's own limits are in ``meridian.model.limits``; these bound what
runs around it: starting, supervising and stopping processes
(``meridian.cluster``), the replication control API, the Docker lab and the
load, chaos, demo and report tools (``meridian.lab``).  Each is a named number
with its unit last (``_S`` seconds, ``_MS``, ``_BYTES``; ``_MAX``/``_MIN`` for
caps) and a line saying what it bounds; relations between them are asserted
at import time, so a change to one that breaks another fails loudly.

Knobs a user picks per run (rates, keys, ports, regions, nodes per region)
stay with their flags; DynamoDB's limits the tools respect come from
``meridian.model.limits``.  This module imports nothing: the lab's container
health checks (``meridian.lab.probe``) load it on every check.
"""

from __future__ import annotations

# --- processes on one machine (cluster/procs.py, cluster/up.py) ----------------
STARTUP_TIMEOUT_S = 60.0  # a whole cluster (or one embedded server) becoming ready
TERMINATE_TIMEOUT_S = 10.0  # between SIGTERM and SIGKILL when stopping a child
READINESS_PROBE_TIMEOUT_S = 1.0  # one readiness probe (TCP connect or GET /health)
READINESS_PROBE_INTERVAL_S = 0.05  # pause between two readiness probes
LOG_TAIL_BYTES_MAX = 64 * 1024  # read back from the end of a log file by ``log_tail``
LOG_TAIL_LINES = 20  # lines of a child's log quoted when it died or did not come up
SUPERVISE_INTERVAL_S = 0.5  # ``meridian up`` looks this often for children that died

# --- start-up failures (cluster/startup_errors.py) ------------------------------
# How long a server waits at start for the addresses of the processes it needs
# (a node's peers, a router's or replicator's nodes) to resolve before giving up
# (--resolve-wait-s): in Docker a name resolves only once its container runs.
ADDRESS_RESOLVE_WAIT_S_DEFAULT = 60.0
ADDRESS_RESOLVE_RETRY_INTERVAL_S = 1.0  # pause between two attempts to resolve them
PROC_FDS_SCANNED_MAX = 100_000  # open files looked at to find who holds a port (/proc/*/fd)

# --- ``meridian up``'s process-control API (cluster/up_control.py) --------------
UP_CONTROL_QUEUE_MAX = 64  # requests waiting for the supervisor; more are refused with 503
# A request may wait this long for the supervisor (a restart stops, then waits for readiness) ...
UP_CONTROL_ANSWER_TIMEOUT_S = TERMINATE_TIMEOUT_S + STARTUP_TIMEOUT_S + 5.0
# ... and its client (a chaos target) longer still, so it gets the API's answer, timeout included.
UP_CONTROL_CLIENT_TIMEOUT_S = UP_CONTROL_ANSWER_TIMEOUT_S + 5.0
UP_KILL_REAP_TIMEOUT_S = 10.0  # a SIGKILLed process being reaped before the answer
UP_REQUEST_BODY_BYTES_MAX = 4096  # the API takes no body; this bounds a stray one
UP_STATE_POLL_INTERVAL_S = 0.1  # a tool that started ``meridian up`` looks this often for its up.json

# --- replication control (cluster/control_client.py, cluster/replication_cli.py) -
# One replication command through a router or straight to a replicator; past it
# the router or replicator counts as unavailable.  One bound for every tool that
# operates a cluster (``meridian link|lag|...``, ``ControlClient``'s default,
# ``meridian chaos``); the demo and the samplers use shorter ones, below.
CONTROL_CALL_TIMEOUT_S = 10.0
# A digest reads a whole table in every region: each such call may take at least
# this long (longer than the router's own wait for it, router/server.py).
DIGEST_TIMEOUT_S = 45.0
VERIFY_TIMEOUT_S = 30.0  # default time replicas get to agree (``meridian verify``, ``ControlClient.verify``)
VERIFY_RETRY_INTERVAL_S = 0.5  # pause between two comparisons while replicas still differ

# --- the Docker lab (lab/*.py) -----------------------------------------------------
LAB_READY_TIMEOUT_S = 180.0  # every region, together, to serve after ``compose up`` (``--timeout-s``)
LAB_READY_PROBE_TIMEOUT_S = 3.0  # one request of that wait
LAB_READY_PROBE_INTERVAL_S = 0.5  # pause between two rounds of it
LAB_HEALTH_POLL_INTERVAL_S = 1.0  # looking at the containers' health checks after ``compose up``
LAB_FAILURE_LOG_LINES = 30  # lines of each failing service's log shown when the lab does not come up
LAB_LOCK_POLL_INTERVAL_S = 1.0  # pause between attempts to take the lab's lock
# A container health check (lab/probe.py): one request, connection included
# (Docker's own timeout is longer), reading at most this much of the answer,
# in chunks of this size.
HEALTH_CHECK_TIMEOUT_S = 3.0
HEALTH_CHECK_RESPONSE_BYTES_MAX = 1 << 20
HEALTH_CHECK_RECV_BYTES = 64 * 1024
# What docker, compose and the image build may take.
COMPOSE_TIMEOUT_S = 600.0  # ``compose up``/``down`` (``up`` waits for the nodes' first health checks)
COMPOSE_PROBE_TIMEOUT_S = 20.0  # ``docker compose version``: is Compose v2 installed
DOCKER_INFO_TIMEOUT_S = 20.0  # ``docker info``: is Docker usable
DOCKER_INSPECT_TIMEOUT_S = 30.0  # ``docker inspect``/``docker logs`` of the lab's containers and images
DOCKER_COMMAND_TIMEOUT_S = 60.0  # chaos's ``docker`` commands (kill, start, pause, network connect)
DOCKERD_START_TIMEOUT_S = 60.0  # a freshly started dockerd answering ``docker info``
DOCKERD_STOP_TIMEOUT_S = 30.0  # dockerd exiting after SIGTERM before it is killed
DOCKERD_POLL_INTERVAL_S = 0.5  # pause between two looks at dockerd starting or stopping
DOCKER_PULL_TIMEOUT_S = 600.0  # pulling the base image
PIP_WHEEL_TIMEOUT_S = 1200.0  # building the wheelhouse
DOCKER_BUILD_TIMEOUT_S = 1200.0  # building the image
DEBOOTSTRAP_TIMEOUT_S = 1200.0  # debootstrap (it downloads about 30 MB; 40 s on a good link)
DOCKER_IMPORT_TIMEOUT_S = 600.0  # importing the root filesystem as the base image

assert LAB_READY_PROBE_TIMEOUT_S < LAB_READY_TIMEOUT_S <= COMPOSE_TIMEOUT_S
assert READINESS_PROBE_TIMEOUT_S < STARTUP_TIMEOUT_S

# --- the tables the tools write (lab/load/table.py, lab/demo/table.py, lab/chaos/runner.py)
# The table and its replicas becoming ACTIVE in every region (a replica is
# backfilled with the table's existing items first): one bound for load, chaos and demo.
TABLE_ACTIVE_TIMEOUT_S = 120.0
TABLE_POLL_INTERVAL_S = 0.2  # pause between two DescribeTable rounds while waiting

# --- ``meridian load`` (lab/load) ------------------------------------------------------
REQUEST_TIMEOUT_S = 10.0  # default time one request may take before it counts as a ``Timeout``
CONNECTIONS_PER_REGION_MAX = 64  # default keep-alive connections per region (per client)
IN_FLIGHT_PER_REGION_MAX = 256  # requests in flight per region; a request due beyond it is "behind"
SCHEDULE_SLACK_S = 0.1  # a due request reached later than this by the scheduler is "behind" (not sent)
# The scheduler wakes at most once per tick and sends everything due by then
# (waking for every request would cost more CPU than the requests at high rates) ...
SCHEDULER_TICK_S = 0.002
SCHEDULER_SLEEP_MAX_S = 0.05  # ... and sleeps at most this long at once, so a stop is seen quickly
KEY_TRIES_MAX = 8  # a write whose key is busy tries this many keys of its region in all
VISIBILITY_PROBES_MAX = 32  # visibility probes running at once (more are skipped and counted)
VISIBILITY_TIMEOUT_S = 10.0  # a probe gives up (visible_ms null) after this long
# Probe reads are spaced by this share of the time waited so far, within the bounds below.
VISIBILITY_POLL_FRACTION = 0.1
VISIBILITY_POLL_MIN_S = 0.002
VISIBILITY_POLL_MAX_S = 0.1
# How often replication lag is sampled into a run (``meridian load``'s lag.jsonl,
# ``meridian chaos``'s samples for its checks).
LAG_SAMPLE_INTERVAL_S = 1.0
LAG_SAMPLE_TIMEOUT_S = 5.0  # one load lag sample's control calls (a replicator may be down)
DRAIN_TIMEOUT_S = 30.0  # after the schedule ends, in-flight requests and probes finishing
ENDPOINT_PROBE_TIMEOUT_S = 5.0  # a router saying which regions it serves
LOAD_REFRESH_INTERVAL_S = 0.5  # the live summary is redrawn this often on a terminal ...
LOAD_PLAIN_SUMMARY_INTERVAL_S = 5.0  # ... and printed this often when not on one
HISTORY_FLUSH_INTERVAL_S = 1.0  # buffered history lines go to the writer thread at least this often
HISTORY_BUFFER_BYTES_MAX = 64 * 1024  # a file's buffer goes to the writer thread once it holds this much
HISTORY_WRITE_QUEUE_BUFFERS_MAX = 256  # buffers waiting for the writer thread (so ~16 MB in memory)
# The checks after a run (lab/load/checks.py, lab/chaos/checks.py).
CHECK_SETTLE_TIMEOUT_S = 30.0  # default time replication gets to bring every region up to date
CHECK_READS_IN_FLIGHT_MAX = 8  # BatchGetItem requests in flight per region while checking
CHECK_READ_ATTEMPTS_MAX = 10  # reads of one batch (UnprocessedKeys, failures) before its keys are unreadable
CHECK_READ_RETRY_INTERVAL_S = 0.5  # pause between two rounds of reading keys that do not pass yet
CHECK_DETAIL_KEYS_MAX = 10  # keys named in a failing check's detail
AVAILABILITY_ERROR_RATIO_MAX = 0.01  # default largest share of failed requests inside the windows

assert SCHEDULER_TICK_S <= SCHEDULER_SLEEP_MAX_S <= SCHEDULE_SLACK_S
assert VISIBILITY_POLL_MIN_S <= VISIBILITY_POLL_MAX_S < VISIBILITY_TIMEOUT_S
assert 0.0 < VISIBILITY_POLL_FRACTION < 1.0
assert CHECK_READ_RETRY_INTERVAL_S < CHECK_SETTLE_TIMEOUT_S
assert 0.0 <= AVAILABILITY_ERROR_RATIO_MAX <= 1.0

# --- ``meridian chaos`` (lab/chaos) ---------------------------------------------------
SCENARIO_BYTES_MAX = 64 * 1024  # a scenario file larger than this is refused (they are a few hundred bytes)
TIMELINE_STEPS_MAX = 1000  # timeline steps after ``repeat`` is expanded
SCENARIO_DURATION_S_MAX = 24 * 3600.0  # a run's length
DURATION_SCALE_MAX = 100.0  # ``--duration-scale``
LINK_LOSS_ARG_MAX = 0.99  # the ``loss`` fault's largest loss probability (the replicator's own bound may be lower)
CONVERGENCE_TIMEOUT_S = 60.0  # default of the convergence check: replicas agreeing
LAG_BOUND_SETTLE_S = 3.0  # default of the lag-bound check: time after the heal never held to max_ms
ACTIVE_FAULTS_MAX = 1000  # active faults one ``Injector`` keeps track of
CHAOS_SAMPLE_CALL_TIMEOUT_S = 2.0  # one control call of a lag sample (a sample is due every second)
CHAOS_SAMPLES_MAX = 200_000  # samples kept for the checks (one per pair and second: hours of a 3-region run)
# The backlog "at the heal" is the largest one sampled this close to it.
HEAL_BRACKET_S = 1.5
CONTAINER_READY_TIMEOUT_S = 90.0  # a restarted container reporting healthy (or running, without a health check)
TARGET_POLL_INTERVAL_S = 0.2  # pause between two looks at a container's or a state file's state
# ``meridian up`` started for one run writing its up.json (its own start-up bound, plus its start).
CHAOS_OWN_UP_TIMEOUT_S = STARTUP_TIMEOUT_S + 10.0

assert HEAL_BRACKET_S > LAG_SAMPLE_INTERVAL_S  # at least one sample falls in the bracket
assert UP_CONTROL_CLIENT_TIMEOUT_S > UP_CONTROL_ANSWER_TIMEOUT_S

# --- ``meridian demo replication`` (lab/demo) ------------------------------------------
DEMO_SAMPLE_INTERVAL_S = 1.0  # one sample of replication (and one redraw) per this period
DEMO_WINDOW_S = 10.0  # replication latency is shown over the changes applied in the last this-many seconds
DEMO_WINDOW_SNAPSHOTS_MAX = 120  # scrapes remembered; at one per second, two minutes of history
DEMO_OPEN_ENDED_DURATION_S = 24 * 3600.0  # without ``--duration-s`` the workload is scheduled this far ahead
DEMO_PLAIN_STATUS_INTERVAL_S = 5.0  # without a terminal, one plain status line per this period
DEMO_CONTROL_TIMEOUT_S = 5.0  # one link action, or one sample, through the control endpoint
DEMO_METRICS_TIMEOUT_S = 5.0  # one scrape of a router's /metrics
DEMO_OWN_UP_TIMEOUT_S = 90.0  # the demo's own ``meridian up`` coming up
DEMO_MESSAGES_MAX = 4  # messages (actions, errors) kept for the footer
KEY_QUEUE_MAX = 64  # keys waiting for the dashboard
KEY_POLL_INTERVAL_S = 0.1  # the key-reading thread looks this often whether it should stop
KEY_READ_BYTES = 64  # bytes read from the terminal at once (an escape sequence is 3)

assert DEMO_WINDOW_SNAPSHOTS_MAX * DEMO_SAMPLE_INTERVAL_S >= DEMO_WINDOW_S  # the window fits the history
assert DEMO_CONTROL_TIMEOUT_S <= CONTROL_CALL_TIMEOUT_S

# --- ``meridian report`` (lab/report) ----------------------------------------------------
# Per series (a region's gets, a pair's visibility probes): latencies kept for
# percentiles and CDFs; beyond it a uniform sample of this size stands in.
REPORT_SAMPLES_MAX = 200_000
FAULT_LABELS_MAX = 12  # with more faults than this, spans are drawn but not labelled one by one
