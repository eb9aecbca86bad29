"""Does this gateway have Gateway Configs, request logs, the Model Catalog yet? (Other branches.)

Each probe recognises only the exact "not here yet" answer of today's gateway; any other answer means
the feature exists. The tests use them to skip until a feature is merged and to run (and have to pass)
from then on; `make demo` uses them to show what the gateway can already do.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

CONFIG_NOT_YET = "x-portkey-config is not supported yet"


def _request(url: str, *, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json",
                                                               **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def has_configs(gateway_url: str) -> bool:
    """An empty config costs no upstream call: today it meets "not supported yet", later a validation
    message."""
    status, raw = _request(f"{gateway_url}/v1/chat/completions", headers={"x-portkey-config": "{}"},
                           body={"messages": [{"role": "user", "content": "probe"}]})
    try:
        message = json.loads(raw).get("message")
    except (ValueError, AttributeError):
        message = None
    return not (status == 400 and message == CONFIG_NOT_YET)


def has_request_logs(gateway_url: str, admin_token: str) -> bool:
    """With a valid token, so that the admin API's 401 for anyone without one is not taken for a yes."""
    return _request(f"{gateway_url}/admin/api/logs", headers={"authorization": f"Bearer {admin_token}"})[0] != 404


def has_catalog(gateway_url: str, python: str = sys.executable) -> bool:
    """The `sluicegate providers` command exists AND the running gateway serves the catalog. The CLI can
    land before the gateway resolves @slugs; the admin API (/admin/api/providers, 401 without a token)
    is mounted by the same wiring that makes the gateway read the catalog."""
    result = subprocess.run([python, "-m", "sluicegate", "providers", "--help"], capture_output=True,
                            timeout=60)
    return result.returncode == 0 and _request(f"{gateway_url}/admin/api/providers")[0] != 404
