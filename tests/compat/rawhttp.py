"""A tiny raw HTTP/1.1 client for tests that must send what boto3 never would."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

SIGNED_HEADERS = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef",
    "X-Amz-Date": "20260101T000000Z",
}


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def address(endpoint: str) -> tuple[str, int]:
    url = urlparse(endpoint)
    return url.hostname or "127.0.0.1", url.port or 80


def build_request(target: str | None, body: bytes, *, content_type: str = "application/x-amz-json-1.0",
                  signed: bool = True, method: str = "POST", extra: dict[str, str] | None = None) -> bytes:
    headers = {"Host": "localhost", "Content-Type": content_type, "Content-Length": str(len(body))}
    if target is not None:
        headers["X-Amz-Target"] = target
    if signed:
        headers.update(SIGNED_HEADERS)
    if extra:
        headers.update(extra)
    head = f"{method} / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


class Connection:
    """One keep-alive connection; reads responses with Content-Length framing."""

    def __init__(self, endpoint: str, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(address(endpoint), timeout=timeout_s)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_response(self) -> RawResponse | None:
        """The next response, or None if the server closed the connection first."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError("connection closed inside a response body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return RawResponse(status, headers, body)

    def request(self, target: str | None, body: bytes, **kw) -> RawResponse:
        self.send(build_request(target, body, **kw))
        resp = self.read_response()
        assert resp is not None, "server closed the connection without answering"
        return resp


def call(endpoint: str, action: str, payload, **kw) -> RawResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with Connection(endpoint) as conn:
        return conn.request(f"DynamoDB_20120810.{action}", body, **kw)
