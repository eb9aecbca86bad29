"""Wait for a hop's first 200 to a real chat request, and check what it answered.

Startup is measured as "process spawned → first 200 carrying the upstream's answer", polling with the
same request the load uses, so a server that listens before it can serve is not counted as ready.
"""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from bench.procs import Child
from bench.targets import Endpoint

POLL_S = 0.005


class NotReady(RuntimeError):
    pass


def send_once(endpoint: Endpoint, timeout_s: float = 5.0, method: str = "POST") -> tuple[int, bytes]:
    """One blocking request; (status, body). Connection errors propagate as OSError."""
    parts = urlsplit(endpoint.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request(method, parts.path, body=endpoint.body, headers=dict(endpoint.headers))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_first_200(endpoint: Endpoint, child: Child | None, timeout_s: float, expect: bytes) -> float:
    """Seconds from the child's spawn to its first 200 whose body contains ``expect``."""
    started = child.started_at if child else time.perf_counter()
    deadline = started + timeout_s
    last = "no answer yet"
    while time.perf_counter() < deadline:
        if child is not None and not child.alive():
            raise NotReady(f"exited with {child.popen.returncode}: {child.log_tail()}")
        try:
            status, body = send_once(endpoint, timeout_s=2.0)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200 and expect in body:
                return time.perf_counter() - started
            last = f"HTTP {status}: {body[:300]!r}"
        time.sleep(POLL_S)
    raise NotReady(f"no 200 within {timeout_s:.0f}s (last: {last})")


def probe(endpoint: Endpoint, expect: bytes) -> str:
    """'' when the endpoint answers 200 with ``expect``; otherwise why not (for optional variants)."""
    try:
        status, body = send_once(endpoint)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if status == 200 and expect in body:
        return ""
    return f"HTTP {status}: {body[:200].decode(errors='replace')}"
