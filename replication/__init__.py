"""Global Tables replication: regions that ship changes to each other, last writer wins.

    interfaces.py   the seams: Clock, ChangeSource, ChangeSink, CursorStore,
                    Transport, Link (changes, batches and acks: model/changes.py)
    replicator.py   one region's replicator: tail logs, ship, ack, apply, measure
    link.py         simulated inter-region links (latency, jitter, loss, cut)
    clock.py        the system clock, and virtual time for the simulation
    cursors.py      durable per-peer, per-node cursors (file; memory for the simulation)
    latency.py      replication latency histograms per table and region pair
    digest.py       Merkle-style convergence digests (``meridian verify``)
    gc.py           when change-log entries and tombstones may be deleted
    sim_store.py    the simulation's in-memory storage nodes (tests/sim)

    nodes.py        the region's storage nodes over gRPC: ChangeSource, ChangeSink
    peers.py        peer replicators over gRPC: Transport, the Replicator service, control
    replicas.py     which tables replicate where; creating (backfill) and deleting replicas
    process.py      the ``meridian replicator`` process wiring all of it
    topology.py     starting link conditions: real-world latencies, ``--link``

Across gRPC, records are encoded by proto/replication_codec.py and errors by
proto/errors.py; the bounds are in model/limits.py.
"""
