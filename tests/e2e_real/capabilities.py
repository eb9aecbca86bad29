"""Skip a test until the feature it needs is merged (see demo/probes.py for how it is told)."""

from __future__ import annotations

import pytest

from demo import probes


def require_configs(gateway) -> None:
    if not probes.has_configs(gateway.url):
        pytest.skip("Gateway Configs are not in this gateway yet (they arrive with the config branch)")


def require_request_logs(gateway, admin_token: str) -> None:
    if not probes.has_request_logs(gateway.url, admin_token):
        pytest.skip("request logs (GET /admin/api/logs) are not in this gateway yet (telemetry branch)")


def require_catalog(gateway) -> None:
    if not probes.has_catalog(gateway.url):
        pytest.skip("the gateway does not serve the Model Catalog yet (`sluicegate providers` and @slug "
                    "resolution: catalog branch)")
