"""``sluicegate limits …`` against a store, as a user runs it; and a cost budget on a catalog provider's
prices through a real gateway (an unpriced model under a cost budget is refused, never unlimited)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from tests.gateway import GatewayProcess
from tests.limits.test_gateway_limits import ADMIN, make_key
from tests.logapi import ADMIN_TOKEN


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICEGATE_DATA_DIR": str(data)}
    env.pop("SLUICEGATE_REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "sluicegate", "limits", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def sluicegate(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "sluicegate", *args, "--data-dir", str(data)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def test_set_show_clear_and_bad_input(tmp_path: Path) -> None:
    key_id = orjson.loads(sluicegate(tmp_path, "keys", "create", "--name", "svc", "--json").stdout)["id"]
    sluicegate(tmp_path, "providers", "add", "gpu", "--custom-host", "http://127.0.0.1:9/v1")
    done = cli(tmp_path, "set", "key", key_id, "--rate", "requests:rpm:100", "--rate", "tokens:rpd:5000",
               "--budget", "cost:50", "--reset", "monthly", "--alert", "40")
    assert done.returncode == 0, done.stderr
    shown = orjson.loads(cli(tmp_path, "show", "key", key_id).stdout)
    assert shown == {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 100},
                                     {"type": "tokens", "unit": "rpd", "value": 5000}],
                     "usage_limits": {"type": "cost", "credit_limit": 50.0, "periodic_reset": "monthly",
                                      "alert_threshold": 40.0}}
    priced = cli(tmp_path, "set", "provider", "gpu", "--price", "llama-3:0.5:1.5:1000000")
    assert orjson.loads(priced.stdout)["prices"] == {"llama-3": {"input": 0.5, "output": 1.5, "per": 1000000}}
    bad = cli(tmp_path, "set", "key", key_id, "--rate", "requests:rps:1")
    assert bad.returncode != 0 and "'rate_limits[0].unit' must be one of" in bad.stderr
    for both in (("--no-rate", "--rate", "requests:rpm:5"), ("--no-budget", "--budget", "cost:5")):
        contradicted = cli(tmp_path, "set", "key", key_id, *both)  # one of the two was taken, by flag order
        assert contradicted.returncode != 0 and f"{both[0]} and {both[1]} contradict each other" in contradicted.stderr
    # Ollama's model names hold a colon; a PER with a fraction was cut to a whole number; --reset and
    # --alert without --budget were dropped without a word.
    colon = cli(tmp_path, "set", "provider", "gpu", "--price", "llama3.1:8b:0.1:0.2")
    assert orjson.loads(colon.stdout)["prices"] == {"llama3.1:8b": {"input": 0.1, "output": 0.2, "per": 1000}}
    fraction = cli(tmp_path, "set", "provider", "gpu", "--price", "m:0.1:0.2:1000.7")
    assert fraction.returncode != 0 and "PER is 1000 or 1000000" in fraction.stderr
    for loose in (("--reset", "daily"), ("--alert", "3")):
        dropped = cli(tmp_path, "set", "provider", "gpu", "--rate", "requests:rpm:5", *loose)
        assert dropped.returncode != 0 and "give --budget with them" in dropped.stderr
    no_price_on_key = cli(tmp_path, "set", "key", key_id, "--price", "m:1:1")
    assert no_price_on_key.returncode != 0 and "'prices' belong to catalog providers" in no_price_on_key.stderr
    cleared = cli(tmp_path, "clear", "key", key_id, "--json")  # --json was ignored here and by reset-usage
    assert orjson.loads(cleared.stdout) == {"removed": {"kind": "key", "id": key_id}}
    assert orjson.loads(cli(tmp_path, "show", "key", key_id).stdout)["rate_limits"] == []
    reset = cli(tmp_path, "reset-usage", "key", key_id, "--json")
    assert orjson.loads(reset.stdout) == {"reset": {"kind": "key", "id": key_id}}


def test_a_workspace_is_named_by_id_or_slug_and_an_unknown_subject_is_refused(tmp_path: Path) -> None:
    """As on the admin API: a limit stored under a slug, or for nobody, would bind nobody."""
    made = orjson.loads(sluicegate(tmp_path, "workspaces", "create", "Team A", "--slug", "team-a", "--json").stdout)
    assert cli(tmp_path, "set", "workspace", "team-a", "--rate", "requests:rpm:7").returncode == 0
    by_id = orjson.loads(cli(tmp_path, "show", "workspace", made["id"]).stdout)
    assert by_id["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 7}]
    for kind, name, said in (("key", "no-such-key", "API key no-such-key not found"),
                             ("workspace", "nope", "Workspace nope not found"),
                             ("provider", "nope", "Provider @nope not found")):
        refused = cli(tmp_path, "set", kind, name, "--rate", "requests:rpm:1")
        assert refused.returncode != 0 and said in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_a_cost_budget_counts_money_at_the_providers_prices(tmp_path: Path, upstream) -> None:
    gateway = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        made = httpx.post(f"{gateway.url}/admin/api/providers", headers=ADMIN, timeout=30,
                          json={"slug": "gpu", "spec": "openai", "custom_host": upstream.v1})
        assert made.status_code in (200, 201), made.text
        # 1 per 1000 tokens both ways: a request reserves (1 + 10) / 1000 and settles at 8 / 1000.
        put = httpx.put(f"{gateway.url}/admin/api/limits/provider/gpu", headers=ADMIN, timeout=30,
                        json={"prices": {"priced": {"input": 1, "output": 1, "per": 1000}},
                              "usage_limits": {"type": "cost", "credit_limit": 0.02}})
        assert put.status_code == 200, put.text
        for bad, message in ((b"{not json", "body: not valid JSON"),
                             (b"[1]", "body: expected a JSON object {rate_limits, usage_limits, prices}")):
            refused = httpx.put(f"{gateway.url}/admin/api/limits/provider/gpu", headers=ADMIN, timeout=30, content=bad)
            assert (refused.status_code, refused.json()["message"]) == (400, message)
        _, secret = make_key(gateway)
        head = {"x-portkey-api-key": secret}

        def ask(model: str) -> httpx.Response:
            return httpx.post(f"{gateway.v1}/chat/completions", headers=head, timeout=30,
                              json={"model": f"@gpu/{model}", "max_tokens": 10,
                                    "messages": [{"role": "user", "content": "hi"}]})

        unpriced = ask("other")
        assert unpriced.status_code == 412 and "has no price" in unpriced.json()["message"]
        assert ask("priced").status_code == 200
        used = 0.0
        for _ in range(100):
            used = httpx.get(f"{gateway.url}/admin/api/limits/provider/gpu", headers=ADMIN, timeout=30).json()["used"]
            if used:
                break
        assert abs(used - 0.008) < 1e-9
        assert ask("priced").status_code == 200  # 0.008 + 0.011 ≤ 0.02
        refused = ask("priced")
        assert refused.status_code == 412 and "provider 'gpu'" in refused.json()["message"]
    finally:
        gateway.stop()
