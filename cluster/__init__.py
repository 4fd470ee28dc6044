"""Running Meridian as a cluster of real processes on one machine.

``procs`` starts and supervises nodes, routers and replicators; ``up`` is
``meridian up``; ``up_control`` its process-control API (kill, restart, pause);
``control_client`` talks to any region's router for replication control;
``replication_cli`` holds the operating commands (link, replication, clock,
lag, verify, events).  The lab tools (``meridian.lab``) build on this package,
never the other way round.
"""
