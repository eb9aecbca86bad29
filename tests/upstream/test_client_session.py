"""The app's one upstream session carries the guard's client middleware, and it refuses nothing that
the request-time check accepted.

IP-literal hosts never reach the resolver, so without the middleware a URL that the dispatcher did not
check (or whose composition changed its origin) would go straight to the socket. Loopback only: the
app "listens" on 0.0.0.0, so loopback is not trusted, and the listener counts what arrives.
"""

from __future__ import annotations

import pytest
from aiohttp import web
from yarl import URL

from sluicegate.app import build_app
from sluicegate.errors import InvalidCustomHost
from sluicegate.server.appkeys import GATEWAY
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from tests.upstream.test_guard_aiohttp import Listener, listener  # noqa: F401  (fixture)
from tests.upstream.test_guard_urls import ALLOWED, LEGIT, LOOPBACK_OK


async def test_the_apps_session_refuses_an_unchecked_ip_literal(
    listener: Listener, tripwire, tmp_path  # noqa: F811
):
    # The aiohttp transport's own session (the default transport's equivalent: test_reqwest_transport.py's
    # test_a_refused_name_opens_no_connection)
    app = build_app(Settings(host="0.0.0.0", data_dir=tmp_path, upstream_client="aiohttp"))
    runner = web.AppRunner(app)
    await runner.setup()  # runs the cleanup contexts (store, catalog, upstream session), as serve does
    try:
        session = app[GATEWAY].transport.session  # type: ignore[union-attr]
        with pytest.raises(InvalidCustomHost, match="127.0.0.1 is a loopback address"):
            await session.get(f"http://127.0.0.1:{listener.port}/never-checked", allow_redirects=False)
    finally:
        await runner.cleanup()
    assert listener.connections == 0 and tripwire.connects == []


ACCEPTED = (
    [(Settings(host="0.0.0.0", allowed_upstreams=ALLOWED), url) for url, _ in LEGIT]
    + [(Settings(host="127.0.0.1"), url) for url, _ in LOOPBACK_OK]
    + [(Settings(host="0.0.0.0", allowed_upstreams=ALLOWED), url) for url in
       ("http://10.1:8000/v1", "http://[::ffff:10.0.0.5]:8000/v1",
        "http://vllm.llm.svc.cluster.local:8000/v1", "http://[fd00::5]:8000/v1",
        "http://gpu-box.lan:9000/v1")]
)


@pytest.mark.parametrize(("settings", "url"), ACCEPTED, ids=[url for _, url in ACCEPTED])
def test_the_middleware_accepts_whatever_the_request_time_check_accepted(settings: Settings, url: str):
    # The dispatcher sends checked.base + endpoint path; aiohttp parses that with yarl and the
    # middleware checks its origin. Normal forms must survive that round trip (IDNA, IPv6, "_", ports).
    guard = Guard(GuardPolicy.from_settings(settings))
    sent = URL(guard.check_url(url).base + "/chat/completions")
    assert guard.check_url(str(sent.origin())).port == sent.port
