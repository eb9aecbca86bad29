"""Raw HTTP/1.1 over a socket, for what HTTP clients refuse to send: un-normalised and absolute-form request
targets, malformed request lines and headers. Loopback only; every read is bounded in time and size."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import orjson


@dataclass
class RawResponse:
    status: int
    head: str
    body: bytes

    def json(self):
        return orjson.loads(self.body)


def exchange(port: int, request: bytes, timeout: float = 10.0, limit: int = 1 << 20) -> RawResponse:
    """Send ``request`` as is to 127.0.0.1:``port`` and read one response (the request should ask for
    ``Connection: close``; the gateway closes the connection itself after a malformed request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while len(data) < limit:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 else 0
    return RawResponse(status, head.decode("latin-1"), body)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def request(method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b"",
            host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
