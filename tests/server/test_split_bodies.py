"""Admin and dashboard bodies that arrive in more than one TCP segment, through a real gateway process.

aiohttp's ``content.read(n)`` returns what has arrived so far, not ``n`` bytes: a body whose second half came
a moment later (a real network, a TLS proxy) was cut at the first and refused as "not valid JSON", on
dashboard sign-in and every dashboard, admin and Portkey Admin API write. Each surface here gets its body in
two segments 0.2 s apart; a body over its bound, sent the same way, is a 413 naming the bound.
"""

from __future__ import annotations

import socket
import time

import orjson
import pytest

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN
from tests.rawhttp import RawResponse, _complete

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}

# (surface, method, path, body, the 2xx it answers)
SURFACES = [
    ("dashboard sign-in", "POST", "/dashboard/api/session", {"token": ADMIN_TOKEN}, 200),
    ("admin workspaces", "POST", "/admin/api/workspaces", {"name": "Split admin"}, 200),
    ("Portkey workspaces", "POST", "/v1/admin/workspaces", {"name": "Split portkey"}, 200),
    ("Portkey API keys", "POST", "/v1/api-keys/organisation/service", {"name": "split", "scopes": ["logs.list"]},
     200),
    ("admin catalog", "POST", "/admin/api/providers",
     {"slug": "split-llm", "spec": "openai", "custom_host": "http://127.0.0.1:9/v1"}, 201),
    ("admin configs", "POST", "/admin/api/configs", {"id": "split-config", "config": {"provider": "openai"}}, 201),
    ("admin limits", "PUT", "/admin/api/limits/provider/split-llm",
     {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 10}]}, 200),
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> GatewayProcess:
    process = GatewayProcess(tmp_path_factory.mktemp("split"), env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


def _in_two(port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> RawResponse:
    """The head and half the body, then the rest 0.2 s later; one answer read back (loopback, bounded)."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
            f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in headers.items())]
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:half])
        time.sleep(0.2)
        try:
            sock.sendall(body[half:])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused after the announced length alone
        data = b""
        while not _complete(data) and len(data) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head_bytes, _, answer = data.partition(b"\r\n\r\n")
    return RawResponse(int(head_bytes.split()[1]), head_bytes.decode("latin-1"), answer)


@pytest.mark.parametrize(("surface", "method", "path", "body", "status"), SURFACES, ids=[s[0] for s in SURFACES])
def test_a_body_in_two_segments_is_read_whole(gateway: GatewayProcess, surface: str, method: str, path: str,
                                              body: dict, status: int) -> None:
    headers = {**AUTH, "Origin": gateway.url} if path.startswith("/dashboard") else AUTH
    answer = _in_two(gateway.port, method, path, orjson.dumps(body), headers)
    assert answer.status == status, (surface, answer.status, answer.body[:300])


@pytest.mark.parametrize(("surface", "method", "path", "body", "status"), SURFACES, ids=[s[0] for s in SURFACES])
def test_a_body_over_the_bound_is_a_413_naming_it(gateway: GatewayProcess, surface: str, method: str, path: str,
                                                  body: dict, status: int) -> None:
    headers = {**AUTH, "Origin": gateway.url} if path.startswith("/dashboard") else AUTH
    huge = orjson.dumps({**body, "padding": "x" * (2 << 20)})
    answer = _in_two(gateway.port, method, path, huge, headers)
    assert answer.status == 413, (surface, answer.status, answer.body[:300])
    assert orjson.loads(answer.body)["message"].startswith("body: larger than"), answer.body[:300]
