"""The admin listings' query strings on both stores: what PostgreSQL cannot take as a parameter is a 400
naming the parameter, as on SQLite, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sluicegate.app import build_app
from sluicegate.settings import Settings
from tests.fakes.transport import FakeTransport

TOKEN = "admin-token-for-query-tests-0123"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    app = build_app(replace(settings, admin_token=TOKEN), transport=FakeTransport())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize("path", [
    "/admin/api/workspaces?name=a%00b",
    "/admin/api/workspaces?exact_name=%00",
    "/v1/admin/workspaces?name=%00",
    "/admin/api/audit-logs?actor=a%00",
    "/admin/api/audit-logs?action=%00",
    "/admin/api/audit-logs?resource_type=api_key%00",
    "/v1/audit-logs?actor=%00",
    "/admin/api/api-keys?workspace_id=%00",
    "/admin/api/providers?workspace_id=%00",
])
async def test_a_nul_in_a_listing_filter_is_a_400_naming_it(client: TestClient, path: str) -> None:
    response = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 400, await response.text()
    name = path.partition("?")[2].partition("=")[0]
    assert (await response.json())["message"] == f"'{name}' must not hold a NUL character"
