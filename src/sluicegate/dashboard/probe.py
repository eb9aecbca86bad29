""""Test connection" for a catalog provider: one tiny request (``GET <custom host>/models``) with the
provider's stored credentials, through the SSRF guard like every upstream request, and what came back.

The answer is a value, never an exception: ``{"ok", "status", "body"}`` from the upstream, or ``{"ok":
false, "refused": <the guard's exact reason>}``, or ``{"ok": false, "error": <what failed>}``. The upstream's
body is cut to ``BODY_MAX`` characters; the credentials never appear in it (they were sent, not echoed here).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..catalog.entries import ResolvedProvider
from ..errors import InvalidCustomHost
from ..upstream.guard import Guard
from ..upstream.transport import Transport, TransportError, TransportResponse

BODY_MAX = 2000
TIMEOUT_S = 10.0


async def _start_of(response: TransportResponse) -> bytes:
    """The body's first BODY_MAX bytes; the rest is not read (a big model list need not travel)."""
    body = b""
    try:
        while len(body) < BODY_MAX and (chunk := await response.read_chunk()):
            body += chunk
    finally:
        response.close()
    return body[:BODY_MAX]


def probe_url(provider: ResolvedProvider) -> str:
    return provider.custom_host.rstrip("/") + "/models"


async def test_connection(provider: ResolvedProvider, guard: Guard, transport: Transport | None) -> dict[str, Any]:
    url = probe_url(provider)
    if transport is None:  # before the app started: cannot happen while it serves requests
        return {"ok": False, "url": url, "error": "the gateway is not started"}
    try:
        guard.check_url(url)
        async with asyncio.timeout(TIMEOUT_S):
            response = await transport.send("GET", url, dict(provider.headers), None)
            body = await _start_of(response)
    except InvalidCustomHost as exc:
        return {"ok": False, "url": url, "refused": exc.reason}
    except TimeoutError:
        return {"ok": False, "url": url, "error": f"no answer within {TIMEOUT_S:.0f} s"}
    except TransportError as exc:
        return {"ok": False, "url": url, "error": exc.connect_reason or exc.kind}
    text = body.decode("utf-8", "replace")
    return {"ok": response.status < 400, "url": url, "status": response.status, "body": text}
