"""The one pooled upstream HTTP client (aiohttp): keep-alive, TCP_NODELAY, no redirects, guarded DNS."""

from __future__ import annotations

import aiohttp
from aiohttp.abc import AbstractResolver

from ..settings import Settings

USER_AGENT = "sluicegate"


def create_session(settings: Settings, resolver: AbstractResolver | None) -> aiohttp.ClientSession:
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
    )
