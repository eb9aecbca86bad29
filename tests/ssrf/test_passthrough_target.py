"""The passthrough routes send exactly to the checked custom host, whatever form the request target has.

HTTP/1.1 lets a client send the request target in absolute form (``POST http://gw/v1/rerank``).
aiohttp routes that by its path, but ``request.raw_path`` is then the whole absolute URL; appending
its tail to the checked base URL changed the upstream URL after the guard had judged it: a path-less
custom host ``http://up:8000`` became ``http://up:8000p://gw/v1/rerank``, and ``http://up`` would
become the host ``upp``. Loopback only: the session gateway listens on 127.0.0.1, where loopback
upstreams are trusted, and the fake upstream is on 127.0.0.1.
"""

from __future__ import annotations

import socket

import orjson
import pytest


def raw_post(port: int, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One request with ``target`` written as is on the request line (httpx always sends origin form)."""
    head = f"POST {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"connection: close\r\n\r\n" + body)
        data = b""
        for _ in range(1000):  # bounded: the gateway closes after one answer
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("form", ["origin", "absolute", "absolute-https", "absolute-upper"])
@pytest.mark.parametrize(("base", "expected"), [("", "/rerank"), ("/v1", "/v1/rerank")])
def test_request_target_form_does_not_change_the_upstream_url(gateway, upstream, form, base, expected):
    targets = {
        "origin": "/v1/rerank?top_n=2",
        "absolute": f"http://127.0.0.1:{gateway.port}/v1/rerank?top_n=2",
        "absolute-https": f"https://127.0.0.1:{gateway.port}/v1/rerank?top_n=2",
        "absolute-upper": f"HTTP://127.0.0.1:{gateway.port}/v1/rerank?top_n=2",
    }
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.base_url + base,
               "content-type": "application/json"}
    status, body = raw_post(gateway.port, targets[form], headers, orjson.dumps({"query": "q"}))
    assert status == 200, body
    assert [(r.path, r.query) for r in upstream.received] == [(expected, "top_n=2")]
