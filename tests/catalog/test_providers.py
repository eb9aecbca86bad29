from __future__ import annotations

import pytest

from sluicegate.catalog import NotInCatalog, ProviderPatch, ProviderRepository
from sluicegate.errors import BadRequest, Conflict, InvalidCustomHost
from sluicegate.vault import Vault, provider_header_aad

from .helpers import HOST, SECRET, new_provider


@pytest.fixture
def repo(engine, vault: Vault) -> ProviderRepository:
    return ProviderRepository(engine, vault)


async def test_add_get_list_masked(repo: ProviderRepository) -> None:
    view = await repo.add(new_provider(models=["a", "b"], default_model="a", forward_headers=["X_Org"]))
    assert view.slug == "my-llm" and view.fields.custom_host == HOST
    assert view.headers == (("Authorization", "Bearer sk-…2e1b"), ("x-api-key", "xk-…alue"))
    assert view.fields.models == ("a", "b") and view.fields.forward_headers == ("x-org",)
    assert view.created_at.tzinfo is not None and view.created_at == view.updated_at
    assert [v.slug for v in await repo.list()] == ["my-llm"]
    assert (await repo.get("my-llm")).to_json()["headers"] == {
        "Authorization": "Bearer sk-…2e1b",
        "x-api-key": "xk-…alue",
    }
    assert await repo.slugs() == frozenset({"my-llm"})


async def test_values_are_encrypted_and_bound(repo: ProviderRepository, engine, vault: Vault) -> None:
    from sqlalchemy import select

    from sluicegate.store.tables import provider_headers, providers

    await repo.add(new_provider())
    async with engine.connect() as conn:
        pid = await conn.scalar(select(providers.c.id))
        rows = (await conn.execute(select(provider_headers).order_by(provider_headers.c.position))).all()
    assert [r.name for r in rows] == ["Authorization", "x-api-key"]
    assert all(r.key_id == vault.active_key_id and r.ciphertext.startswith("sg1:") for r in rows)
    assert vault.decrypt(rows[0].ciphertext, provider_header_aad(pid, "Authorization")) == SECRET


async def test_duplicate_slug_is_409(repo: ProviderRepository) -> None:
    await repo.add(new_provider())
    with pytest.raises(Conflict, match="^Provider @my-llm already exists$"):
        await repo.add(new_provider())


async def test_unknown_slug_is_404(repo: ProviderRepository) -> None:
    for call in (repo.get("nope"), repo.remove("nope"), repo.update("nope", ProviderPatch(notes="x"))):
        with pytest.raises(NotInCatalog, match="^Provider @nope not found in the catalog$"):
            await call


async def test_update_merges_headers_and_fields(repo: ProviderRepository) -> None:
    await repo.add(new_provider())
    patch = ProviderPatch(
        custom_host="http://vllm:8000/v1/",
        models=("m1",),
        headers=(("X-API-KEY", "xk-rotated-value-000000abcd"), ("Authorization", None), ("X-Org", "org-1")),
    )
    view = await repo.update("my-llm", patch)
    assert view.fields.custom_host == "http://vllm:8000/v1"
    assert view.fields.models == ("m1",)
    assert view.headers == (("X-API-KEY", "xk-…abcd"), ("X-Org", "…"))  # replaced in place, then appended
    assert view.updated_at >= view.created_at
    view = await repo.update(
        "my-llm", ProviderPatch(headers=(("Never-Set", None),))
    )  # removing nothing is fine
    assert len(view.headers) == 2


async def test_update_validates_the_merged_record(repo: ProviderRepository) -> None:
    await repo.add(new_provider(models=["a"], default_model="a"))
    with pytest.raises(BadRequest, match="default_model: 'a' is not in models"):
        await repo.update("my-llm", ProviderPatch(models=("b",)))
    with pytest.raises(BadRequest, match="headers: the same header is given twice"):
        await repo.update("my-llm", ProviderPatch(headers=(("a", "1"), ("A", "2"))))
    with pytest.raises(BadRequest, match="headers: 'Host' is set by the gateway"):
        await repo.update("my-llm", ProviderPatch(headers=(("Host", "x"),)))
    with pytest.raises(BadRequest, match="at most 32 headers"):
        await repo.update("my-llm", ProviderPatch(headers=tuple((f"X-{i}", "v") for i in range(31))))
    view = await repo.get("my-llm")  # every failed update rolled back
    assert view.fields.models == ("a",) and len(view.headers) == 2


async def test_host_check_applies_to_updates(engine, vault: Vault) -> None:
    def guard(url: str) -> None:
        if "10.0.0.5" in url:
            raise InvalidCustomHost("10.0.0.5 is a private address")

    repo = ProviderRepository(engine, vault, check_host=guard)
    await repo.add(new_provider())
    with pytest.raises(BadRequest, match="^custom_host: Invalid custom host: 10.0.0.5 is a private address"):
        await repo.update("my-llm", ProviderPatch(custom_host="http://10.0.0.5/v1"))
    view = await repo.update(
        "my-llm", ProviderPatch(custom_host="http://10.0.0.5/v1", allow_entry="10.0.0.5")
    )
    assert view.fields.allow_entry == "10.0.0.5"


async def test_remove(repo: ProviderRepository, engine) -> None:
    from sqlalchemy import func, select

    from sluicegate.store.tables import provider_headers

    await repo.add(new_provider())
    await repo.add(new_provider("other"))
    await repo.remove("my-llm")
    assert [v.slug for v in await repo.list()] == ["other"]
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(provider_headers)) == 2


async def test_writes_bump_the_catalog_version(repo: ProviderRepository, engine) -> None:
    from sluicegate.store.state import read_catalog_version

    async def version() -> int:
        async with engine.connect() as conn:
            return await read_catalog_version(conn)

    before = await version()
    await repo.add(new_provider())
    await repo.update("my-llm", ProviderPatch(notes="n"))
    await repo.remove("my-llm")
    assert await version() == before + 3
    with pytest.raises(NotInCatalog):
        await repo.remove("my-llm")
    assert await version() == before + 3  # a failed write leaves it alone
