"""Health checks of the lab's containers: one real request, standard library only.

Docker runs a health check every few seconds in each of the lab's
containers, so it must be cheap: importing grpc costs ~0.1 s of CPU per
check, which adds up on a laptop.  This module speaks just enough HTTP/2 to
make one unary gRPC call (no Huffman, no dynamic table on the way out; on the
way back only frame headers and the DATA payload are read), so a check costs
about one Python start-up (its bounds come from ``meridian.cluster.limits``,
which imports nothing) and proves the process really serves:

    python -m meridian.lab.probe node 127.0.0.1:7000        Storage.Info
    python -m meridian.lab.probe replicator 127.0.0.1:7100  Replicator.Control {"command": "peers"}
    python -m meridian.lab.probe router 127.0.0.1:8000      GET /health
    python -m meridian.lab.probe dax 127.0.0.1:8111         DAX handshake, then ``endpoints``

Exit status 0 when the answer came and made sense, 1 otherwise (Docker's
convention), with one line saying what was seen.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
import urllib.request

from meridian.cluster import limits


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4
_STREAM_ID = 1


class ProbeFailed(Exception):
    """The process did not answer as a healthy one would."""


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _hpack_literal(name: str, value: str) -> bytes:
    """A header as 'literal without indexing, new name', no Huffman coding."""
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _protobuf_bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ProbeFailed("truncated protobuf")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def protobuf_bytes_fields(message: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a protobuf message (others skipped)."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(message):
        key, pos = _read_varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(message, pos)
        elif wire == 2:
            length, pos = _read_varint(message, pos)
            fields[number] = message[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProbeFailed(f"unexpected protobuf wire type {wire}")
    return fields


def grpc_unary(address: str, path: str, request: bytes, timeout_s: float = limits.HEALTH_CHECK_TIMEOUT_S) -> bytes:
    """Call one unary gRPC method over plain-text HTTP/2; return the reply message's bytes."""
    host, _, port = address.rpartition(":")
    headers = b"".join(
        _hpack_literal(name, value)
        for name, value in (
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", address),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        )
    )
    body = b"\x00" + struct.pack(">I", len(request)) + request
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(
            _PREFACE
            + _frame(_SETTINGS, 0, 0)
            + _frame(_HEADERS, _END_HEADERS, _STREAM_ID, headers)
            + _frame(_DATA, _END_STREAM, _STREAM_ID, body)
        )
        buffer = b""
        data = b""
        received = 0
        while True:
            while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                length = int.from_bytes(buffer[:3], "big")
                kind, flags = buffer[3], buffer[4]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
                if kind == _SETTINGS and not flags & _ACK:
                    sock.sendall(_frame(_SETTINGS, _ACK, 0))
                elif kind in (_RST_STREAM, _GOAWAY) and stream in (0, _STREAM_ID) and not data:
                    raise ProbeFailed(f"the server reset the call (frame type {kind})")
                elif stream == _STREAM_ID and kind == _DATA:
                    data += payload
                if stream == _STREAM_ID and kind in (_DATA, _HEADERS) and flags & _END_STREAM:
                    if len(data) < 5:
                        raise ProbeFailed(f"{path} answered no message (an error status)")
                    size = int.from_bytes(data[1:5], "big")
                    if data[0] != 0 or len(data) != 5 + size:
                        raise ProbeFailed(f"{path} answered a malformed message")
                    return data[5:]
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise ProbeFailed(f"no complete answer from {address} within {timeout_s:g} s")
            sock.settimeout(remaining_s)
            chunk = sock.recv(limits.HEALTH_CHECK_RECV_BYTES)
            if not chunk:
                raise ProbeFailed(f"{address} closed the connection")
            received += len(chunk)
            if received > limits.HEALTH_CHECK_RESPONSE_BYTES_MAX:
                raise ProbeFailed(f"more than {limits.HEALTH_CHECK_RESPONSE_BYTES_MAX} bytes from {address} without an answer")
            buffer += chunk


def probe_node(address: str) -> str:
    reply = grpc_unary(address, "/meridian.v1.Storage/Info", b"")
    node_id = protobuf_bytes_fields(reply).get(1, b"").decode()
    if not node_id:
        raise ProbeFailed("Storage.Info answered without a node id")
    return f"node {node_id} answers"


def probe_replicator(address: str) -> str:
    command = json.dumps({"command": "peers"}).encode()
    reply = grpc_unary(address, "/meridian.v1.Replicator/Control", _protobuf_bytes_field(1, command))
    answer = json.loads(protobuf_bytes_fields(reply).get(1, b"null"))
    if not isinstance(answer, dict):
        raise ProbeFailed(f"Replicator.Control answered {answer!r}")
    return f"replicator answers, peers {sorted(answer.get('replicators', {}))}"


def probe_router(address: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{address}/health", timeout=limits.HEALTH_CHECK_TIMEOUT_S) as response:
        answer = json.loads(response.read())
    if answer.get("status") != "ok":
        raise ProbeFailed(f"/health answered {answer!r}")
    return f"router of {answer.get('region')} ok, {answer.get('nodes')} node(s)"


# --- DAX: its binary protocol (router/dax/server.py), just enough CBOR for one ``endpoints`` call ---
_DAX_MAGIC = "J7yne5G"
_DAX_ENDPOINTS_METHOD = 455855874
_CBOR_NULL = b"\xf6"


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes([major << 5 | info]) + value.to_bytes(width, "big")
    raise ValueError(value)


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    return _cbor_head(3, len(data)) + data


def _read_cbor_head(data: bytes, pos: int) -> tuple[int, int, int]:
    """(major type, value, next position) of the item head at ``pos``."""
    if pos >= len(data):
        raise ProbeFailed("truncated DAX answer")
    major, info = data[pos] >> 5, data[pos] & 0x1F
    if info < 24:
        return major, info, pos + 1
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if width is None or pos + 1 + width > len(data):
        raise ProbeFailed("truncated DAX answer")
    return major, int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width


def probe_dax(address: str) -> str:
    """The handshake (no answer), then ``endpoints``: a success (an empty array) and a non-empty node array."""
    host, _, port = address.rpartition(":")
    handshake = (_cbor_text(_DAX_MAGIC) + _cbor_head(0, 0) + _CBOR_NULL
                 + _cbor_head(5, 1) + _cbor_text("UserAgent") + _cbor_text("meridian-probe") + _cbor_head(0, 0))
    request = _cbor_head(0, 1) + _cbor_head(0, _DAX_ENDPOINTS_METHOD)
    deadline = time.monotonic() + limits.HEALTH_CHECK_TIMEOUT_S
    with socket.create_connection((host, int(port)), timeout=limits.HEALTH_CHECK_TIMEOUT_S) as sock:
        sock.sendall(handshake + request)
        data = b""
        while True:
            try:
                _status, _, pos = _read_cbor_head(data, 0)
                major, nodes, _ = _read_cbor_head(data, pos)
                break
            except ProbeFailed:
                pass  # not all of it yet
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise ProbeFailed(f"no complete answer from {address} within {limits.HEALTH_CHECK_TIMEOUT_S:g} s")
            sock.settimeout(remaining_s)
            chunk = sock.recv(limits.HEALTH_CHECK_RECV_BYTES)
            if not chunk:
                raise ProbeFailed(f"{address} closed the connection")
            data += chunk
            if len(data) > limits.HEALTH_CHECK_RESPONSE_BYTES_MAX:
                raise ProbeFailed(f"more than {limits.HEALTH_CHECK_RESPONSE_BYTES_MAX} bytes from {address}")
    if data[0] != 0x80:
        raise ProbeFailed("endpoints answered an error")
    if major != 4 or nodes < 1:
        raise ProbeFailed("endpoints answered no node")
    return f"DAX node answers, {nodes} node(s) in its cluster"


PROBES = {"node": probe_node, "replicator": probe_replicator, "router": probe_router, "dax": probe_dax}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in PROBES:
        print(f"usage: python -m meridian.lab.probe {{{'|'.join(PROBES)}}} HOST:PORT", file=sys.stderr)
        return 2
    try:
        print(PROBES[args[0]](args[1]))
    except (ProbeFailed, OSError, ValueError) as exc:
        print(f"unhealthy: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
