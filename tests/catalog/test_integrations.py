"""Portkey-style integrations in the store (catalog/integrations.py), on both dialects; the admin API over
them is tests/access/test_admin_api.py."""

from __future__ import annotations

import pytest

from sluicegate.catalog import NotInCatalog
from sluicegate.catalog.integrations import IntegrationRepository
from sluicegate.errors import BadRequest


@pytest.mark.parametrize("text", ["a\x00b", "\x1b[2Jcleared"])
async def test_a_description_with_a_control_character_is_a_400(engine, vault, text: str) -> None:
    """A NUL was a 500 on PostgreSQL (it refuses one in text); lines and tabs stay fine."""
    repo = IntegrationRepository(engine, vault)
    with pytest.raises(BadRequest, match="^description: no control characters"):
        await repo.create({"ai_provider_id": "openai", "slug": "i1", "description": text}, workspace_id=None)
    await repo.create({"ai_provider_id": "openai", "slug": "i1", "description": "two\nlines\tand a tab"},
                      workspace_id=None)
    with pytest.raises(BadRequest, match="^description: no control characters"):
        await repo.update("i1", {"description": text})
    assert (await repo.get("i1"))["description"] == "two\nlines\tand a tab"


async def test_a_reference_holding_a_nul_is_not_found(engine, vault) -> None:
    """GET/PUT/DELETE /v1/integrations/a%00b and providers.create(integration_id="a\\x00b") were 500s on
    PostgreSQL, which refuses a NUL in a query parameter."""
    repo = IntegrationRepository(engine, vault)
    calls = [
        lambda: repo.get("a\x00b"),
        lambda: repo.update("a\x00b", {"name": "n"}),
        lambda: repo.remove("a\x00b"),
        lambda: repo.provider_from("a\x00b", "p1", workspace_id="ws-default", notes=""),
    ]
    for call in calls:
        with pytest.raises(NotInCatalog, match="^Integration not found"):
            await call()
