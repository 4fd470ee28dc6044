"""gRPC options for every server and channel between Meridian's processes.

One home for them, so a router's stream to a node, a node's GSI links to its
peers, a replicator's channels to its nodes and to other regions all agree on
message sizes, reconnect behaviour and keepalive; only the reconnect backoff
differs, and each caller names its own from ``model/limits.py``.
"""

from __future__ import annotations

from meridian.model import limits

Options = tuple[tuple[str, int], ...]

#: Every Meridian gRPC server (storage nodes, replicators).
SERVER_OPTIONS: Options = (
    ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
    # gRPC turns SO_REUSEPORT on by default: two nodes given the same port
    # would then silently share it.  A taken port must fail instead.
    ("grpc.so_reuseport", 0),
    # Routers ping their long-lived, often idle streams to notice a dead
    # node (router/storage_grpc.py); by default a server answers pings on an
    # idle connection more often than every 5 minutes with GOAWAY.
    ("grpc.http2.min_recv_ping_interval_without_data_ms", limits.GRPC_PING_INTERVAL_MS_MIN),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
)


def channel_options(*, backoff_s_min: float, backoff_s_max: float, keepalive: bool = False) -> Options:
    """Options of a client channel that reconnects within ``[backoff_s_min, backoff_s_max]``.

    gRPC's own reconnect backoff defaults to minutes; a restarted peer must be
    found again within the caller's bound.  ``keepalive`` pings an idle
    connection so that a dead peer is noticed by a long-lived stream.
    """
    assert 0 < backoff_s_min <= backoff_s_max
    options: list[tuple[str, int]] = [
        ("grpc.max_send_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
        ("grpc.max_receive_message_length", limits.GRPC_MESSAGE_BYTES_MAX),
        ("grpc.initial_reconnect_backoff_ms", int(backoff_s_min * 1000)),
        ("grpc.min_reconnect_backoff_ms", int(backoff_s_min * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(backoff_s_max * 1000)),
    ]
    if keepalive:
        options += [
            ("grpc.keepalive_time_ms", limits.GRPC_KEEPALIVE_TIME_MS),
            ("grpc.keepalive_timeout_ms", limits.GRPC_KEEPALIVE_TIMEOUT_MS),
            ("grpc.http2.max_pings_without_data", 0),
        ]
    return tuple(options)
