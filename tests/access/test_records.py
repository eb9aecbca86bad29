"""Keys and workspaces in the store: validation, the secret's form and hash, the default workspace's
protection, audit rows — on both dialects."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select

from sluicegate.access.audit import AuditFilter, list_events
from sluicegate.access.keys import KeyRepository
from sluicegate.access.model import Permissions, validate_scopes
from sluicegate.access.registry import AccessRegistry
from sluicegate.access.secrets import KeyHasher
from sluicegate.access.workspaces import WorkspaceRepository
from sluicegate.errors import BadRequest, Conflict, GatewayError, Unauthorized
from sluicegate.settings import Settings
from sluicegate.store.access_tables import api_keys


@pytest.fixture
def hasher(settings: Settings) -> KeyHasher:
    return KeyHasher.load(settings)


async def test_a_secret_is_random_prefixed_and_stored_as_a_keyed_hash(engine, hasher: KeyHasher) -> None:
    repo = KeyRepository(engine, hasher)
    view, secret = await repo.create({"name": "k", "workspace_id": "default"}, actor="t")
    _, other = await repo.create({"name": "k2", "workspace_id": "default"}, actor="t")
    assert secret.startswith("sg-") and len(secret) == 3 + 43 and secret != other  # 32 random bytes
    async with engine.connect() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == view["id"]))).one()
    assert row.key_hash == hmac.new(hasher.material, secret.encode(), hashlib.sha256).hexdigest()
    assert row.key_hash != hashlib.sha256(secret.encode()).hexdigest()  # keyed: a database copy alone is useless
    assert row.key_prefix == secret[:10] and view["key"] == secret[:10] + "********"
    assert view["scopes"] == ["completions.write"] and view["workspace_id"] == "ws-default"


@pytest.mark.parametrize("body,status,words", [
    ({"name": "k", "type": "team", "workspace_id": "default"}, 400, "type"),
    ({"name": "k", "sub_type": "robot", "workspace_id": "default"}, 400, "sub_type"),
    ({"workspace_id": "default"}, 400, "name"),
    ({"name": "k"}, 400, "workspace_id: required"),
    ({"name": "k", "type": "organisation", "workspace_id": "default"}, 400, "organisation key"),
    ({"name": "k", "workspace_id": "nowhere"}, 404, "nowhere"),
    ({"name": "k", "workspace_id": "default", "scopes": ["completions.read"]}, 400, "unknown scope"),
    ({"name": "k", "workspace_id": "default", "expires_at": "tomorrow"}, 400, "expires_at"),
    ({"name": "k", "workspace_id": "default", "permissions": {"providers": "all"}}, 400, "permissions.providers"),
    ({"name": "k", "workspace_id": "default", "permissions": {"budget": 3}}, 400, "budget"),
    ({"name": "k", "workspace_id": "default", "defaults": {"metadata": {"a": {"b": 1}}}}, 400,
     "defaults.metadata: value of 'a' must be a string, number, boolean or null"),
    ({"name": "k", "workspace_id": "default", "defaults": {"metadata": {'a"b': "1"}}}, 400,
     "defaults.metadata: the key 'a\"b' must be non-empty"),
    ({"name": "k", "workspace_id": "default", "defaults": {"metadata": {"": "1"}}}, 400,
     "defaults.metadata: the key '' must be non-empty"),
    ({"name": "k", "workspace_id": "default", "expires_at": "2001-01-01T00:00:00Z"}, 400,
     "expires_at: 2001-01-01T00:00:00+00:00 is not in the future"),
])
async def test_bad_key_input(engine, hasher: KeyHasher, body, status, words) -> None:
    with pytest.raises(GatewayError) as refused:
        await KeyRepository(engine, hasher).create(body, actor="t")
    assert refused.value.status == status and words in refused.value.message


@pytest.mark.parametrize("body,words", [
    ({"defaults": {"metadata": {"a\\b": "1"}}}, "defaults.metadata: the key 'a\\\\b' must be non-empty"),
    ({"defaults": {"metadata": {"a": ["b"]}}}, "defaults.metadata: value of 'a' must be"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "to stop a key now, revoke it"),
])
async def test_bad_key_update_changes_nothing(engine, hasher: KeyHasher, body, words) -> None:
    repo = KeyRepository(engine, hasher)
    view, _ = await repo.create({"name": "k", "workspace_id": "default"}, actor="t")
    with pytest.raises(BadRequest) as refused:
        await repo.update(view["id"], body, actor="t")
    assert words in refused.value.message
    assert await repo.get(view["id"]) == view


@pytest.mark.parametrize("metadata,words", [
    ({"te\nam": "a"}, "defaults.metadata: the key 'te\\nam' must be non-empty"),
    ({"": "a"}, "defaults.metadata: the key '' must be non-empty"),
    ({"a": {"b": "c"}}, "value of 'a' must be a string, number, boolean or null"),
    ({"a": "x" * 129}, "value of 'a' is longer than 128 characters"),
    ("a=b", "defaults.metadata: expected an object"),
])
async def test_bad_workspace_defaults(engine, metadata, words) -> None:
    repo = WorkspaceRepository(engine)
    with pytest.raises(BadRequest) as refused:
        await repo.create({"name": "Team", "defaults": {"metadata": metadata}}, actor="t")
    assert words in refused.value.message
    made = await repo.create({"name": "Team"}, actor="t")
    with pytest.raises(BadRequest) as refused:
        await repo.update("team", {"defaults": {"metadata": metadata}}, actor="t")
    assert words in refused.value.message
    assert await repo.get("team") == made


async def test_stored_defaults_under_older_rules_still_load(engine, hasher: KeyHasher) -> None:
    """Rows written before a rule existed load as before: a reload that raised would keep every server on its
    last snapshot (or none, at start)."""
    view, secret = await KeyRepository(engine, hasher).create({"name": "k", "workspace_id": "default"}, actor="t")
    async with engine.begin() as conn:
        await conn.execute(api_keys.update().where(api_keys.c.id == view["id"])
                           .values(defaults={"metadata": {'a"b': "old", "": "x", "n": 5, "deep": {"x": 1}}}))
    registry = AccessRegistry(engine, hasher)
    await registry.refresh()
    assert dict(registry.authenticate(secret).defaults.metadata) == {'a"b': "old", "": "x", "n": 5}


def test_scopes_and_permissions() -> None:
    assert validate_scopes(["configs.*"]) == ("configs.create", "configs.read", "configs.update", "configs.delete",
                                              "configs.list")
    assert Permissions.from_json({"providers": ["@a", "b"]}).providers == frozenset({"a", "b"})
    with pytest.raises(BadRequest):
        Permissions.from_json({"direct_integration": "no"})


async def test_workspaces(engine) -> None:
    repo = WorkspaceRepository(engine)
    made = await repo.create({"name": "Team A"}, actor="t")
    assert made["slug"] == "team-a" and (await repo.get("team-a"))["id"] == made["id"]
    with pytest.raises(Conflict):
        await repo.create({"name": "Team A"}, actor="t")
    with pytest.raises(Conflict, match="default workspace"):
        await repo.remove("default", actor="t")
    await KeyRepository(engine, KeyHasher(b"k" * 32)).create({"name": "k", "workspace_id": "team-a"}, actor="t")
    with pytest.raises(Conflict, match="active API keys"):
        await repo.remove("team-a", actor="t")
    assert [w["slug"] for w in await repo.list()] == ["default", "team-a"]


async def test_workspaces_by_name_take_like_wildcards_as_typed(engine) -> None:
    repo = WorkspaceRepository(engine)
    for name in ("Fifty % off", "snake_case", "plain"):
        await repo.create({"name": name}, actor="t")
    assert [w["name"] for w in await repo.list(name="%")] == ["Fifty % off"]
    assert [w["name"] for w in await repo.list(name="_")] == ["snake_case"]
    assert [w["name"] for w in await repo.list(name="\\")] == []  # the escape character itself, as typed


async def test_registry_verifies_from_its_snapshot(engine, hasher: KeyHasher) -> None:
    repo = KeyRepository(engine, hasher)
    view, secret = await repo.create({"name": "k", "workspace_id": "default"}, actor="t")
    registry = AccessRegistry(engine, hasher, env_admin_token="an-admin-token-long-enough")
    await registry.refresh()
    assert registry.authenticate(secret).key_id == view["id"]
    assert registry.authenticate("an-admin-token-long-enough").workspace_id is None
    for wrong in ("sg-" + "x" * 43, secret[:-1], ""):
        with pytest.raises(Unauthorized, match="Invalid API key"):
            registry.authenticate(wrong)
    await repo.revoke(view["id"], actor="t")
    assert registry.authenticate(secret).key_id == view["id"]  # no refresh yet: the snapshot is what counts
    await registry.refresh()
    with pytest.raises(Unauthorized, match="revoked"):
        registry.authenticate(secret)


async def test_every_write_is_audited_without_the_secret(engine, hasher: KeyHasher) -> None:
    repo = KeyRepository(engine, hasher)
    view, secret = await repo.create({"name": "k", "workspace_id": "default"}, actor="alice")
    await repo.update(view["id"], {"scopes": ["completions.write", "logs.list"]}, actor="bob")
    events = await list_events(engine, AuditFilter(workspace_id="ws-default"))
    assert [(e["action"], e["actor"]) for e in events] == [("api_key.update", "bob"), ("api_key.create", "alice")]
    assert events[0]["before"]["scopes"] == ["completions.write"]
    assert events[0]["after"]["scopes"] == ["completions.write", "logs.list"]
    assert secret not in str(events)
