""""Test connection" for a catalog provider: one tiny request (``GET <custom host>/models``) with the
provider's stored credentials, through the SSRF guard like every upstream request, and what came back.

The answer is a value, never an exception: ``{"ok", "status", "body"}`` from the upstream, or ``{"ok":
false, "refused": <the guard's exact reason>}``, or ``{"ok": false, "error": <what failed>}``. The upstream's
body is cut to ``BODY_MAX`` characters, and every value the request sent in a header is scrubbed from it: a
server that echoes its request (many test servers, some proxies' error pages) would otherwise show the
vault's credential in clear.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..catalog.entries import ResolvedProvider
from ..errors import InvalidCustomHost
from ..telemetry.redact import scrub, scrub_list, sent_secrets
from ..upstream.guard import Guard
from ..upstream.transport import Transport, TransportError, TransportResponse

BODY_MAX = 2000
# Read past what is shown by more than the longest header value, then scrub, then cut: a credential that
# straddles the cut is still whole when it is scrubbed.
READ_MAX = BODY_MAX + 16 * 1024
TIMEOUT_S = 10.0


async def _start_of(response: TransportResponse) -> bytes:
    """The body's first READ_MAX bytes; the rest is not read (a big model list need not travel)."""
    body = b""
    try:
        while len(body) < READ_MAX and (chunk := await response.read_chunk()):
            body += chunk
    finally:
        response.close()
    return body[:READ_MAX]


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
    text = scrub(body.decode("utf-8", "replace"), scrub_list(sent_secrets(dict(provider.headers), url))) or ""
    return {"ok": response.status < 400, "url": url, "status": response.status, "body": text[:BODY_MAX]}
