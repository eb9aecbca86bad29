"""A client for the request-log API of a running gateway, for tests: waits for records to land."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


def new_trace() -> str:
    return f"trace-{uuid.uuid4().hex}"


class LogApi:
    def __init__(self, base_url: str, token: str = ADMIN_TOKEN) -> None:
        self.base_url = base_url
        self.token = token

    def get(self, path: str, *, token: str | None = "default", **params: Any) -> httpx.Response:
        headers = {}
        if token is not None:
            headers["authorization"] = f"Bearer {self.token if token == 'default' else token}"
        return httpx.get(f"{self.base_url}/admin/api{path}", params=params, headers=headers, timeout=30)

    def logs(self, **params: Any) -> list[dict[str, Any]]:
        """Every record matching ``params``, all pages."""
        records, cursor = [], None
        while True:
            page = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
            response = self.get("/logs", **page)
            assert response.status_code == 200, response.text
            body = response.json()
            records += body["data"]
            cursor = body["next_cursor"]
            if cursor is None:
                return records

    def wait(self, count: int = 1, timeout: float = 15.0, **params: Any) -> list[dict[str, Any]]:
        """Poll until ``count`` records match (the sink writes a moment after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.logs(**params)
            if len(records) >= count or time.monotonic() > deadline:
                assert len(records) == count, f"expected {count} records for {params}, got {len(records)}"
                return records
            time.sleep(0.05)

    def one(self, trace_id: str) -> dict[str, Any]:
        (summary,) = self.wait(trace_id=trace_id)
        response = self.get(f"/logs/{summary['id']}")
        assert response.status_code == 200, response.text
        return response.json()
