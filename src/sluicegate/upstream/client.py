"""The one pooled upstream HTTP client (aiohttp): keep-alive, TCP_NODELAY, no redirects, guarded DNS."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.client_middlewares import ClientMiddlewareType

from ..settings import Settings

USER_AGENT = "sluicegate"


def create_session(
    settings: Settings,
    resolver: AbstractResolver | None,
    middlewares: Sequence[ClientMiddlewareType] = (),
) -> aiohttp.ClientSession:
    """``resolver`` and ``middlewares``: the SSRF guard's (``Guard.resolver()``,
    ``Guard.client_middleware()``): names are judged when resolved, every request's origin when sent."""
    # The guard's resolver judges every address it returns and the connector connects only to those
    # (pinning); aiohttp's own DNS cache is off so the guard's TTL is the only one in play.
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_pool_size,
        limit_per_host=0,
        use_dns_cache=False,
        resolver=resolver,
        keepalive_timeout=30,
    )
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.upstream_connect_timeout_s,
        sock_read=settings.upstream_read_timeout_s,
    )
    # No Accept-Encoding: bodies come back as sent and are relayed without re-compression.
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        skip_auto_headers=("Accept-Encoding",),
        headers={"user-agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),  # a proxy must not carry one client's cookies to another
        auto_decompress=True,
        # IP-literal hosts never reach the resolver, so the request-time check is all that judges them;
        # the middleware repeats it on the URL actually sent (~3 µs), in case that is not the URL
        # that was checked (path joining, a redirect if one is ever followed).
        middlewares=tuple(middlewares),
    )
