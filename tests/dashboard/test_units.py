"""Pure parts of the dashboard, in-process: sessions, config validation paths, the verifier, the probe."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.access import model
from sluicegate.access.admin_token import hash_token
from sluicegate.access.principal import DASHBOARD_SCOPES, SignIn, admin_token_verifier, first_match
from sluicegate.catalog.entries import ResolvedProvider
from sluicegate.dashboard.probe import test_connection as probe
from sluicegate.dashboard.sessions import SessionStore
from sluicegate.dashboard.targets import MAX_ROWS, display_url, target_rows
from sluicegate.dashboard.validation import config_problems, pointer
from sluicegate.routing.load import TargetView
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy

ADMIN = SignIn("admin", model.ADMIN)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_expires_after_its_ttl(engine):
    clock = Clock()
    store = SessionStore(engine, 60, clock=clock)
    session_id, session = await store.open(SignIn("admin", model.ADMIN, admin_token_hash="ab" * 32))
    assert await store.get(session_id) == session and session.admin_token_hash == "ab" * 32
    clock.now += 59.9
    assert await store.get(session_id) == session
    clock.now += 0.2
    assert await store.get(session_id) is None


async def test_closing_a_session_and_unknown_ids(engine):
    store = SessionStore(engine, 60)
    session_id, _ = await store.open(ADMIN)
    await store.close(session_id)
    assert await store.get(session_id) is None and await store.get("") is None and await store.get(None) is None
    assert await store.get("made-up") is None


async def test_the_oldest_session_goes_when_the_store_is_full(engine):
    clock = Clock()
    store = SessionStore(engine, 60, max_sessions=2, clock=clock)
    first, _ = await store.open(ADMIN)
    clock.now += 1
    second, _ = await store.open(ADMIN)
    clock.now += 1
    third, _ = await store.open(ADMIN)
    assert await store.get(first) is None
    assert await store.get(second) is not None and await store.get(third) is not None


async def test_csrf_tokens_differ_per_session_and_compare_exactly(engine):
    store = SessionStore(engine, 60)
    one_id, one = await store.open(ADMIN)
    _, two = await store.open(ADMIN)
    assert one.csrf_token != two.csrf_token
    assert (await store.get(one_id)).csrf_token == one.csrf_token  # the same token, read back from the store
    assert one.csrf_matches(one.csrf_token)
    assert not one.csrf_matches(two.csrf_token) and not one.csrf_matches("") and not one.csrf_matches(None)


async def test_two_stores_on_one_database_share_sessions_and_keep_no_cookie_value(engine):
    """Two replicas: a sign-in on one is known to the other, a sign-out on either ends it everywhere; the
    table holds neither the cookie's value nor the CSRF token."""
    from sqlalchemy import select

    from sluicegate.store.access_tables import dashboard_sessions

    one, other = SessionStore(engine, 60), SessionStore(engine, 60)
    key_sign_in = SignIn("ops (sg-abc…)", model.Principal("key_1", "ws_1", frozenset({"logs.list"}), key_id="key_1"),
                         "team")
    session_id, session = await one.open(key_sign_in)
    seen = await other.get(session_id)
    assert seen == session and (seen.key_id, seen.name, seen.workspace_slug) == ("key_1", "ops (sg-abc…)", "team")
    async with engine.connect() as conn:
        rows = [tuple(row) for row in (await conn.execute(select(dashboard_sessions))).all()]
    assert rows and not any(session_id in str(value) or session.csrf_token in str(value)
                            for row in rows for value in row)
    await other.close(session_id)
    assert await one.get(session_id) is None


@pytest.mark.parametrize(("text", "expected"), [
    ('{"provider": "openai", "retry": {"attempts": "x"}}', ["$.retry.attempts"]),
    ('{"targets": [{"provider": "openai"}, {"provider": "@nope"}], "strategy": {"mode": "fallback"}}',
     ["$.targets[1].provider"]),
    ('{"provider": "openai", "override_params": {"model": "@nope/m"}}', ["$.override_params.model"]),
    ('{"targets": [{"provider": "openai", "api_key": "sk-1"}], "strategy": {"mode": "loadbalance"}}',
     ["$.targets[0].api_key"]),
    ("[1, 2]", ["$"]),
    ('{"options": []}', ["$.options"]),
    ('{"provider": "openai"}', []),
    ('{"provider": "@known"}', []),
])
def test_config_problems_name_their_path(text, expected):
    problems = config_problems(text, None, {"known"})
    assert [p["pointer"] for p in problems] == expected


def test_pointer_form():
    assert pointer([]) == "$"
    assert pointer(["targets", 0, "retry"]) == "$.targets[0].retry"


def test_the_admin_verifier_and_a_chain():
    class Auth:
        async def check(self, token):
            return token == "right"

    async def never(credential):
        return None

    verify = first_match([never, admin_token_verifier(Auth())])
    # The session remembers which admin token it signed in with (it ends when that one is reset).
    assert asyncio.run(verify("right")) == SignIn("admin", model.ADMIN, admin_token_hash=hash_token("right"))
    assert asyncio.run(verify("wrong")) is None
    assert asyncio.run(verify("sg-right")) is None  # an API key's shape goes to the key verifier


def test_the_dashboard_scopes_are_access_control_scopes():
    assert DASHBOARD_SCOPES < model.SCOPES
    assert "completions.write" not in DASHBOARD_SCOPES and "logs.list" in DASHBOARD_SCOPES


def test_test_connection_shows_the_guards_refusal_without_sending(tmp_path):
    class Transport:
        sent = 0

        async def send(self, *args):
            Transport.sent += 1
            raise AssertionError("the guard should have refused first")

    guard = Guard(GuardPolicy.from_settings(Settings(data_dir=tmp_path)))
    provider = ResolvedProvider(slug="meta", spec="openai", custom_host="http://169.254.169.254/v1",
                                headers=(("Authorization", "Bearer s"),))
    result = asyncio.run(probe(provider, guard, Transport()))
    assert result["ok"] is False and result["url"] == "http://169.254.169.254/v1/models"
    with pytest.raises(Exception) as refused:
        guard.check_url("http://169.254.169.254/v1/models")
    assert result["refused"] == refused.value.reason and Transport.sent == 0


def _dashboard(engine, principal, renew):
    """renew: the principal as of now (from the key id), or None once the key may not act."""
    from aiohttp import web

    from sluicegate.dashboard import dashboard_app

    async def verify(credential):
        return SignIn("a key", principal) if credential == "sg-key" else None

    async def renewed(key_id, admin_token_hash):
        return renew(principal)

    app = dashboard_app(services=None, verifier=verify, renew=renewed,  # type: ignore[arg-type]
                        sessions=SessionStore(engine))
    parent = web.Application()
    parent.add_subapp("/dashboard", app)
    return parent


async def test_a_session_ends_when_its_key_is_revoked(engine):
    """The guard renews the principal before every call: a revoked or expired key (renewal says None) ends
    the session at once, and it stays ended."""
    from aiohttp.test_utils import TestClient, TestServer

    key = model.Principal(actor="k1", workspace_id="ws-a", scopes=frozenset({"logs.list"}), key_id="k1")
    alive = {"yes": True}
    app = _dashboard(engine, key, lambda p: p if alive["yes"] else None)
    async with TestClient(TestServer(app)) as client:
        signed = await client.post("/dashboard/api/session", json={"token": "sg-key"})
        body = await signed.json()
        assert signed.status == 200 and body["principal"]["workspace"] == "ws-a"
        assert body["principal"]["scopes"] == ["logs.list"] and "sg-key" not in str(body)
        assert (await client.get("/dashboard/api/session")).status == 200
        alive["yes"] = False
        refused = await client.get("/dashboard/api/session")
        assert refused.status == 401 and "revoked" in (await refused.json())["message"]
        alive["yes"] = True  # the session is gone: it does not come back
        assert (await client.get("/dashboard/api/session")).status == 401


async def test_each_route_needs_its_access_control_scope(engine):
    from aiohttp.test_utils import TestClient, TestServer

    key = model.Principal(actor="k1", workspace_id="ws-a", scopes=frozenset({"logs.list"}), key_id="k1")
    async with TestClient(TestServer(_dashboard(engine, key, lambda p: p))) as client:
        await client.post("/dashboard/api/session", json={"token": "sg-key"})
        for path, wanted in (("/analytics", "'analytics.view'"), ("/providers", "'providers.list'"),
                             ("/configs", "'configs.list'"), ("/workspaces", "'workspaces.list'"),
                             ("/api-keys", "one of organisation_service_api_keys.list")):
            response = await client.get(f"/dashboard/api{path}")
            assert response.status == 403, path
            assert (await response.json())["message"].startswith(f"Refused: this sign-in lacks the scope {wanted}")


@pytest.mark.parametrize(("url", "shown"), [
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("https://user:pa55@llm.internal:8443/v1?key=sk-secret#frag", "https://llm.internal:8443/v1"),
    ("http://[::1]:9000", "http://[::1]:9000"),
    ("not a url", ""),
])
def test_a_targets_base_url_loses_user_info_query_and_fragment(url, shown):
    assert display_url(url) == shown


def test_target_rows_drop_the_key_digest_and_sort():
    def view(key: str, url: str, **load) -> TargetView:
        values = {"in_flight": 0, "server_queue": None, "cache_usage": None, "healthy": True, "requests": 1} | load
        return TargetView(key=key, base_url=url, **values)

    rows = target_rows([view("openai|http://b:1/v1|m2|abcdef0123456789", "http://b:1/v1", healthy=False),
                        view("openai|http://a:1/v1|m1|abcdef0123456789", "http://a:1/v1", in_flight=3,
                             server_queue=4.0, cache_usage=0.5),
                        view("|http://c:1||", "http://c:1")])
    assert [(r["provider"], r["base_url"], r["model"]) for r in rows] == [
        (None, "http://c:1", None), ("openai", "http://a:1/v1", "m1"), ("openai", "http://b:1/v1", "m2")]
    assert rows[1] == {"provider": "openai", "base_url": "http://a:1/v1", "model": "m1", "in_flight": 3,
                       "server_queue": 4.0, "cache_usage": 0.5, "healthy": True, "requests": 1}
    assert rows[2]["healthy"] is False
    assert "abcdef0123456789" not in repr(rows)
    assert len(target_rows(view(f"p|h{n}|m|d", f"http://h{n}") for n in range(MAX_ROWS + 5))) == MAX_ROWS
