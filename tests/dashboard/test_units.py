"""Pure parts of the dashboard, in-process: sessions, config validation paths, the verifier, the probe."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.access.principal import SCOPES, Principal, admin_token_verifier, first_match
from sluicegate.catalog.entries import ResolvedProvider
from sluicegate.dashboard.probe import test_connection as probe
from sluicegate.dashboard.sessions import SessionStore
from sluicegate.dashboard.validation import config_problems, pointer
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy

ADMIN = Principal("admin", SCOPES)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_expires_after_its_ttl():
    clock = Clock()
    store = SessionStore(60, clock=clock)
    session_id, session = store.open(ADMIN)
    assert store.get(session_id) is session
    clock.now += 59.9
    assert store.get(session_id) is session
    clock.now += 0.2
    assert store.get(session_id) is None


def test_closing_a_session_and_unknown_ids():
    store = SessionStore(60)
    session_id, _ = store.open(ADMIN)
    store.close(session_id)
    assert store.get(session_id) is None and store.get("") is None and store.get(None) is None
    assert store.get("made-up") is None


def test_the_oldest_session_goes_when_the_store_is_full():
    store = SessionStore(60, max_sessions=2)
    first, _ = store.open(ADMIN)
    second, _ = store.open(ADMIN)
    third, _ = store.open(ADMIN)
    assert store.get(first) is None and store.get(second) is not None and store.get(third) is not None


def test_csrf_tokens_differ_per_session_and_compare_exactly():
    store = SessionStore(60)
    _, one = store.open(ADMIN)
    _, two = store.open(ADMIN)
    assert one.csrf_token != two.csrf_token
    assert one.csrf_matches(one.csrf_token)
    assert not one.csrf_matches(two.csrf_token) and not one.csrf_matches("") and not one.csrf_matches(None)


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
    assert asyncio.run(verify("right")) == Principal("admin", SCOPES)
    assert asyncio.run(verify("wrong")) is None


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


async def test_a_workspace_scoped_sign_in_reads_nothing_yet(tmp_path):
    """API keys scoped to a workspace will sign in through the same verifier; until logs, providers and
    configs carry a workspace, such a sign-in must not see everyone's."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from sluicegate.dashboard import dashboard_app

    async def workspace_key(credential):
        return Principal("key", SCOPES, workspace="team-a") if credential == "ws-key" else None

    app = dashboard_app(services=None, verifier=workspace_key)  # type: ignore[arg-type]
    parent = web.Application()
    parent.add_subapp("/dashboard", app)
    async with TestClient(TestServer(parent)) as client:
        signed = await client.post("/dashboard/api/session", json={"token": "ws-key"})
        assert signed.status == 200 and (await signed.json())["principal"]["workspace"] == "team-a"
        for path in ("/logs", "/analytics", "/providers", "/configs"):
            response = await client.get(f"/dashboard/api{path}")
            assert response.status == 403, path
            assert (await response.json())["message"].startswith("Refused: a workspace-scoped sign-in")
