"""Usage limits through a real gateway process: Portkey's shapes on API keys (Admin API), 429 with its
headers, 412 for a spent budget, usage settled from the answer, reset by hand, kept across a restart,
and the refusal to count per worker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import Reply, chat_chunks
from tests.gateway import GatewayProcess, loopback_only_env
from tests.logapi import ADMIN_TOKEN, LogApi

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_key(gateway: GatewayProcess, **limits: object) -> tuple[str, str]:
    answer = httpx.post(f"{gateway.v1}/api-keys/organisation/service", headers=ADMIN, timeout=30,
                        json={"name": "limited", "scopes": ["completions.write"], **limits})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"], answer.json()["key"]


def headers(secret: str, upstream) -> dict[str, str]:
    return {"x-portkey-api-key": secret, "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}


def chat(max_tokens: int = 10) -> dict[str, object]:
    return {"model": "m1", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]}


async def burst(url: str, head: dict[str, str], count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=count)) as client:
        return list(await asyncio.gather(*(client.post(url, headers=head, json=chat()) for _ in range(count))))


@pytest.fixture
def gateway(tmp_path: Path) -> GatewayProcess:
    process = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


def test_a_burst_against_n_rpm_admits_exactly_n_and_the_rest_are_429s(gateway: GatewayProcess, upstream) -> None:
    key_id, secret = make_key(gateway, rate_limits=[{"type": "requests", "unit": "rpm", "value": 5}])
    shown = httpx.get(f"{gateway.v1}/api-keys/{key_id}", headers=ADMIN, timeout=30).json()
    assert shown["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 5}]
    answers = asyncio.run(burst(f"{gateway.v1}/chat/completions", headers(secret, upstream), 12))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 7
    refused = [a for a in answers if a.status_code == 429]
    for answer in refused:
        assert answer.json()["status"] == "failure"
        assert "Rate limit exceeded for API key" in answer.json()["message"]
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert answer.headers["x-ratelimit-limit"] == "5" and answer.headers["x-ratelimit-remaining"] == "0"
        assert answer.headers["x-ratelimit-reset"] == answer.headers["Retry-After"]
    admitted = [a for a in answers if a.status_code == 200]
    assert sorted(a.headers["x-ratelimit-remaining"] for a in admitted) == ["0", "1", "2", "3", "4"]
    assert len(upstream.received) == 5
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=30).text
    assert 'sluicegate_limit_refusals_total{reason="rate_limited"} 7.0' in metrics
    assert gateway.log().count(f"limit refused a request: Rate limit exceeded for API key '{key_id}'") == 7
    assert secret not in gateway.log()
    logged = LogApi(gateway.url).wait(count=12, api_key_id=key_id)  # refused requests are in the request log
    assert sorted(r["status"] for r in logged) == [200] * 5 + [429] * 7


def test_a_token_budget_is_settled_from_usage_then_412_then_reset_and_kept_across_restart(
        tmp_path: Path, upstream) -> None:
    gateway = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        # Each request reserves 1 (prompt "hi") + 10 (max_tokens) tokens and settles at 8 (the answer's usage).
        key_id, secret = make_key(gateway, usage_limits={"type": "tokens", "credit_limit": 40})
        url, head = f"{gateway.v1}/chat/completions", headers(secret, upstream)
        statuses = []
        for _ in range(8):
            statuses.append(httpx.post(url, headers=head, json=chat(), timeout=30).status_code)
            if statuses[-1] == 200:
                _wait_settled(gateway, key_id, len([s for s in statuses if s == 200]) * 8)
        assert statuses[:4] == [200] * 4 and set(statuses[4:]) == {412}  # 32 used: 32 + 11 > 40
        spent = httpx.post(url, headers=head, json=chat(), timeout=30)
        assert spent.status_code == 412 and spent.json()["status"] == "failure"
        assert "Usage limit exhausted for API key" in spent.json()["message"]
        small = httpx.post(url, headers=head, json=chat(max_tokens=5), timeout=30)  # 32 + 6 ≤ 40
        assert small.status_code == 200
        _wait_settled(gateway, key_id, 40)
        logged = LogApi(gateway.url).wait(count=10, api_key_id=key_id)  # the 412s too, in both logs
        assert sorted(r["status"] for r in logged) == [200] * 5 + [412] * 5
        assert gateway.log().count(f"limit refused a request: Usage limit exhausted for API key '{key_id}'") == 5
    finally:
        gateway.stop()
    gateway.start()  # budget usage was saved at shutdown
    try:
        assert httpx.post(url, headers=head, json=chat(max_tokens=1), timeout=30).status_code == 412
        reset = httpx.post(f"{gateway.url}/admin/api/limits/key/{key_id}/reset", headers=ADMIN, timeout=30)
        assert reset.status_code == 200
        assert httpx.post(url, headers=head, json=chat(), timeout=30).status_code == 200
    finally:
        gateway.stop()


def _wait_settled(gateway: GatewayProcess, key_id: str, used: float) -> None:
    """Settlement runs in the request log's task, just after the answer: wait for it (bounded)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _used(gateway, key_id) == used:
            return
        time.sleep(0.05)
    raise AssertionError(f"usage of {key_id} never reached {used} (now {_used(gateway, key_id)})")


def _used(gateway: GatewayProcess, key_id: str) -> float:
    return httpx.get(f"{gateway.url}/admin/api/limits/key/{key_id}", headers=ADMIN, timeout=30).json()["used"]


@pytest.mark.parametrize(("unit", "value", "message"), [
    ("rps", 1, "'rate_limits[0].unit' must be one of"),
    (["rpm"], 1, "'rate_limits[0].unit' must be one of"),
    ({"rpm": 1}, 1, "'rate_limits[0].unit' must be one of"),
    ("rpm", 1e300, "'rate_limits[0].value' must be a positive integer (at most 9007199254740991)"),
])
def test_bad_limits_are_400s_and_create_nothing(gateway: GatewayProcess, unit: object, value: float,
                                                message: str) -> None:
    limit = {"type": "requests", "unit": unit, "value": value}
    answer = httpx.post(f"{gateway.v1}/api-keys/organisation/service", headers=ADMIN, timeout=30,
                        json={"name": "bad", "rate_limits": [limit]})
    assert answer.status_code == 400 and message in answer.json()["message"]
    put = httpx.put(f"{gateway.url}/admin/api/limits/provider/any", headers=ADMIN, timeout=30,
                    json={"rate_limits": [limit]})
    assert put.status_code == 400 and message in put.json()["message"]  # a bad body first, then the unknown id
    assert httpx.get(f"{gateway.url}/admin/api/limits/provider/any", headers=ADMIN, timeout=30).status_code == 404
    listed = httpx.get(f"{gateway.v1}/api-keys", headers=ADMIN, timeout=30).json()["data"]
    assert [k for k in listed if k["name"] == "bad"] == []


# (body of PUT /admin/api/limits/provider/<slug>, words of the 400): a misspelt field was ignored (200), and
# left the provider without the limit its writer meant.
UNKNOWN_FIELDS = [
    ({"rate_limit": [{"type": "requests", "unit": "rpm", "value": 10}]},
     "'the body' has an unknown field 'rate_limit' (fields: rate_limits, usage_limits, prices)"),
    ({"usage_limits": {"type": "cost", "credit_limit": 5, "alert_treshold": 4}},
     "'usage_limits' has an unknown field 'alert_treshold'"),
    ({"rate_limits": [{"type": "requests", "unit": "rpm", "value": 10, "limit": 5}]},
     "'rate_limits[0]' has an unknown field 'limit' (fields: type, unit, value)"),
    ({"rate_limits": {"type": "requests", "unit": "rpm", "value": 10, "limit": 5}},
     "'rate_limits' has an unknown field 'limit'"),
    ({"prices": {"m": {"input": 1, "output": 1, "prompt": 9}}}, "'prices.m' has an unknown field 'prompt'"),
    ({"usage_limits": {"type": "cost", "credit_limit": 50, "alert_threshold": 500}},
     "'usage_limits.alert_threshold' must be at most its credit_limit"),
]


@pytest.mark.parametrize(("body", "message"), UNKNOWN_FIELDS, ids=[m.split(" (")[0] for _, m in UNKNOWN_FIELDS])
def test_a_limits_field_the_gateway_does_not_know_is_a_400_naming_it(gateway: GatewayProcess, upstream, body: dict,
                                                                      message: str) -> None:
    made = httpx.post(f"{gateway.url}/admin/api/providers", headers=ADMIN, timeout=30,
                      json={"slug": "typo-llm", "spec": "openai", "custom_host": upstream.v1})
    assert made.status_code in (201, 409), made.text
    url = f"{gateway.url}/admin/api/limits/provider/typo-llm"
    answer = httpx.put(url, headers=ADMIN, json=body, timeout=30)
    assert answer.status_code == 400 and answer.json()["message"].startswith(message), answer.text
    assert httpx.get(url, headers=ADMIN, timeout=30).json()["rate_limits"] == []  # nothing written
    if "rate_limits" in body:  # the same on a key's creation
        created = httpx.post(f"{gateway.v1}/api-keys/organisation/service", headers=ADMIN, timeout=30,
                             json={"name": "typo", **body})
        assert created.status_code == 400 and message.split(" (")[0] in created.json()["message"], created.text


def test_limits_with_several_workers_and_no_redis_refuse_to_start(tmp_path: Path, upstream) -> None:
    gateway = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    make_key(gateway, rate_limits=[{"type": "requests", "unit": "rpm", "value": 5}])
    gateway.stop()
    env = {**loopback_only_env(), "SLUICEGATE_DATA_DIR": str(tmp_path), "SLUICEGATE_REDIS_URL": ""}
    import os
    import socket

    with socket.socket() as probe:  # a port nobody listens on (the refusal comes before any bind)
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    done = subprocess.run([sys.executable, "-m", "sluicegate", "serve", "--port", port, "--workers", "2"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SLUICEGATE_REDIS_URL" in done.stderr and "each worker would count on its own" in done.stderr


def test_limits_set_on_several_workers_without_redis_are_400s_that_write_nothing(tmp_path: Path) -> None:
    """The running counterpart of the refusal to start: a limit set through the admin API is refused, and
    refused before its record is written (no key left without its secret, no workspace name taken)."""
    gateway = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_REDIS_URL": None},
                             args=("--workers", "2")).start(timeout=60)
    limited = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 5}]}
    try:
        key = httpx.post(f"{gateway.v1}/api-keys/organisation/service", headers=ADMIN, timeout=30,
                         json={"name": "per-worker", "scopes": ["completions.write"], **limited})
        space = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30,
                           json={"name": "Per Worker", **limited})
        for refused in (key, space):
            assert refused.status_code == 400, refused.text
            assert "each worker would otherwise count on its own" in refused.json()["message"]
        listed = httpx.get(f"{gateway.v1}/api-keys", headers=ADMIN, timeout=30).json()["data"]
        assert [k for k in listed if k["name"] == "per-worker"] == []
        again = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30, json={"name": "Per Worker"})
        assert again.status_code == 200, again.text  # the name was not taken by the refused request
    finally:
        gateway.stop()


def test_a_key_cannot_lift_its_own_limits_nor_a_workspace_key_its_workspaces(gateway: GatewayProcess,
                                                                              upstream) -> None:
    """Whatever scopes it holds, on every route that sets limits: its own key's limits and usage and its
    workspace's are the admin's to change (reading them is fine); another key of its workspace is not."""
    space = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30,
                       json={"name": "Self Service"}).json()["id"]
    scopes = ["completions.write", "workspaces.*", "organisation_service_api_keys.*", "workspace_service_api_keys.*"]
    made = []
    for name in ("self", "other"):
        answer = httpx.post(f"{gateway.v1}/api-keys/workspace/service", headers=ADMIN, timeout=30,
                            json={"name": name, "workspace_id": space, "scopes": scopes,
                                  "rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}],
                                  "usage_limits": {"type": "tokens", "credit_limit": 1000}})
        assert answer.status_code == 200, answer.text
        made.append((answer.json()["id"], answer.json()["key"]))
    (key_id, secret), (other_id, _) = made
    own = {"Authorization": f"Bearer {secret}"}
    lifted = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1000}]}
    limits = f"{gateway.url}/admin/api/limits"
    refused = [
        httpx.put(f"{gateway.v1}/api-keys/{key_id}", headers=own, json=lifted, timeout=30),
        httpx.put(f"{gateway.v1}/admin/workspaces/{space}", headers=own, json=lifted, timeout=30),
        httpx.put(f"{limits}/key/{key_id}", headers=own, json=lifted, timeout=30),
        httpx.delete(f"{limits}/key/{key_id}", headers=own, timeout=30),
        httpx.post(f"{limits}/key/{key_id}/reset", headers=own, timeout=30),
        httpx.put(f"{limits}/workspace/{space}", headers=own, json=lifted, timeout=30),
        httpx.delete(f"{limits}/workspace/{space}", headers=own, timeout=30),
        httpx.post(f"{limits}/workspace/{space}/reset", headers=own, timeout=30),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused), [(r.request.url.path, r.text) for r in refused]
    assert all("usage limits" in r.json()["message"] for r in refused), [r.text for r in refused]
    assert httpx.get(f"{limits}/key/{key_id}", headers=own, timeout=30).status_code == 200
    tighter = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}],
               "usage_limits": {"type": "tokens", "credit_limit": 500}}
    assert httpx.put(f"{limits}/key/{other_id}", headers=own, json=tighter, timeout=30).status_code == 200
    shown = httpx.get(f"{limits}/key/{key_id}", headers=ADMIN, timeout=30).json()
    assert shown["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 1}]  # unchanged
    head = headers(secret, upstream)
    statuses = [httpx.post(f"{gateway.v1}/chat/completions", headers=head, json=chat(), timeout=30).status_code
                for _ in range(2)]
    assert statuses == [200, 429]


# A key bound by limits gives no key looser ones, on every route that sets them: else it sheds its limits by
# making (or loosening) a key without them and using that one. (case, method, path, body, words of the 403)
SHEDDING = [
    ("a new key without limits", "POST", "/v1/api-keys/workspace/service", {}, "a requests rate limit of at most 2"),
    ("a new key with a higher rate", "POST", "/v1/api-keys/workspace/service",
     {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 3}], "usage_limits": {"type": "tokens",
                                                                                      "credit_limit": 100}},
     "a requests rate limit of at most 2 rpm"),
    ("a new key whose rate is per hour", "POST", "/v1/api-keys/workspace/service",
     {"rate_limits": [{"type": "requests", "unit": "rph", "value": 1}]}, "of at most 2 rpm"),
    ("a new key without the budget", "POST", "/v1/api-keys/workspace/service",
     {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}]}, "a tokens budget of at most 100"),
    ("a new key whose budget refills", "POST", "/v1/api-keys/workspace/service",
     {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}],
      "usage_limits": {"type": "tokens", "credit_limit": 100, "periodic_reset": "daily"}}, "(no reset)"),
    ("a new key with a cost budget instead", "POST", "/v1/api-keys/workspace/service",
     {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}],
      "usage_limits": {"type": "cost", "credit_limit": 1}}, "a tokens budget"),
    ("another key's rate raised", "PUT", "/v1/api-keys/{other}",
     {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 50}]}, "of at most 2 rpm"),
    ("another key's budget cleared", "PUT", "/admin/api/limits/key/{other}", {"usage_limits": None},
     "a tokens budget"),
    ("another key's limits deleted", "DELETE", "/admin/api/limits/key/{other}", None, "rate limit of at most 2"),
    ("another key's usage reset", "POST", "/admin/api/limits/key/{other}/reset", None, "cannot reset"),
]


@pytest.mark.parametrize(("case", "method", "path", "body", "words"), SHEDDING, ids=[c[0] for c in SHEDDING])
def test_a_key_with_limits_gives_no_key_looser_ones(gateway: GatewayProcess, case: str, method: str, path: str,
                                                   body: dict | None, words: str) -> None:
    space = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30,
                       json={"name": "Team"}).json()["id"]
    scopes = ["completions.write", "workspace_service_api_keys.*", "organisation_service_api_keys.*"]
    bound = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}],
             "usage_limits": {"type": "tokens", "credit_limit": 100}}
    made = {}
    for name in ("creator", "other"):
        answer = httpx.post(f"{gateway.v1}/api-keys/workspace/service", headers=ADMIN, timeout=30,
                            json={"name": name, "workspace_id": space, "scopes": scopes, **bound})
        assert answer.status_code == 200, answer.text
        made[name] = answer.json()
    own = {"Authorization": f"Bearer {made['creator']['key']}"}
    keys_before = httpx.get(f"{gateway.v1}/api-keys", headers=ADMIN, timeout=30).json()["data"]
    sent = {"name": "shed", "scopes": ["completions.write"], **(body or {})} if method == "POST" and body is not None \
        else body
    answer = httpx.request(method, gateway.url + path.format(other=made["other"]["id"]), headers=own,
                           json=sent, timeout=30)
    assert answer.status_code == 403, (case, answer.text)
    assert words in answer.json()["message"], (case, answer.json()["message"])
    assert httpx.get(f"{gateway.v1}/api-keys", headers=ADMIN, timeout=30).json()["data"] == keys_before
    other = httpx.get(f"{gateway.url}/admin/api/limits/key/{made['other']['id']}", headers=ADMIN, timeout=30).json()
    assert (other["rate_limits"], other["usage_limits"]["credit_limit"]) == (bound["rate_limits"], 100)


def test_a_key_with_limits_may_give_limits_as_tight_and_the_admin_any(gateway: GatewayProcess) -> None:
    space = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30, json={"name": "Team"}).json()["id"]
    answer = httpx.post(f"{gateway.v1}/api-keys/workspace/service", headers=ADMIN, timeout=30, json={
        "name": "creator", "workspace_id": space, "scopes": ["completions.write", "workspace_service_api_keys.*"],
        "rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}],
        "usage_limits": {"type": "tokens", "credit_limit": 100, "periodic_reset": "daily"}})
    own = {"Authorization": f"Bearer {answer.json()['key']}"}
    tighter = {"name": "tighter", "scopes": ["completions.write"],
               "rate_limits": [{"type": "requests", "unit": "rpm", "value": 1},
                               {"type": "tokens", "unit": "rpd", "value": 10}],
               "usage_limits": {"type": "tokens", "credit_limit": 50, "periodic_reset": "monthly"}}
    made = httpx.post(f"{gateway.v1}/api-keys/workspace/service", headers=own, json=tighter, timeout=30)
    assert made.status_code == 200, made.text
    loosened = httpx.put(f"{gateway.v1}/api-keys/{made.json()['id']}", headers=ADMIN, timeout=30,
                         json={"rate_limits": [], "usage_limits": None})
    assert loosened.status_code == 200, loosened.text


def test_a_workspace_is_named_by_id_or_slug_and_an_unknown_subject_is_a_404(gateway: GatewayProcess,
                                                                            upstream) -> None:
    """A limit stored under a slug, or for a key, workspace or provider that does not exist, bound nobody
    while the API answered 200."""
    space = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30, json={"name": "Team A"}).json()
    one_rpm = {"rate_limits": [{"type": "requests", "unit": "rpm", "value": 1}]}
    limits = f"{gateway.url}/admin/api/limits"
    put = httpx.put(f"{limits}/workspace/team-a", headers=ADMIN, json=one_rpm, timeout=30)
    assert put.status_code == 200, put.text
    assert httpx.get(f"{limits}/workspace/{space['id']}", headers=ADMIN, timeout=30).json()["rate_limits"] == \
        one_rpm["rate_limits"]
    made = httpx.post(f"{gateway.v1}/api-keys/workspace/service", headers=ADMIN, timeout=30,
                      json={"name": "member", "workspace_id": space["id"],
                            "scopes": ["completions.write", "workspaces.read"]}).json()
    head = headers(made["key"], upstream)
    statuses = [httpx.post(f"{gateway.v1}/chat/completions", headers=head, json=chat(), timeout=30).status_code
                for _ in range(2)]
    assert statuses == [200, 429]
    # Its own workspace's limits, by slug too, for a workspace key that may read them.
    own = httpx.get(f"{limits}/workspace/team-a", headers={"x-portkey-api-key": made["key"]}, timeout=30)
    assert own.status_code == 200 and own.json()["rate_limits"] == one_rpm["rate_limits"], own.text
    for kind, ref, message in (("key", "no-such-key", "API key no-such-key not found"),
                               ("workspace", "nope", "Workspace nope not found"),
                               ("provider", "nope", "Provider @nope not found in the catalog")):
        answers = [httpx.get(f"{limits}/{kind}/{ref}", headers=ADMIN, timeout=30),
                   httpx.put(f"{limits}/{kind}/{ref}", headers=ADMIN, json=one_rpm, timeout=30),
                   httpx.delete(f"{limits}/{kind}/{ref}", headers=ADMIN, timeout=30),
                   httpx.post(f"{limits}/{kind}/{ref}/reset", headers=ADMIN, timeout=30)]
        assert [(a.status_code, a.json()["message"]) for a in answers] == [(404, message)] * 4
    secret = httpx.get(f"{limits}/key/{made['key']}", headers=ADMIN, timeout=30)  # a secret where the id goes
    assert secret.status_code == 404 and made["key"] not in secret.text


def test_a_providers_limit_holds_when_a_config_reaches_it(gateway: GatewayProcess, upstream) -> None:
    """Naming the provider in a saved config (a key's default config, the usual setup for clients that
    cannot set headers) or an inline one counts against its limit like naming it in the header."""
    made = httpx.post(f"{gateway.url}/admin/api/providers", headers=ADMIN, timeout=30,
                      json={"slug": "gpu", "spec": "openai", "custom_host": upstream.v1})
    assert made.status_code in (200, 201), made.text
    put = httpx.put(f"{gateway.url}/admin/api/limits/provider/gpu", headers=ADMIN, timeout=30,
                    json={"rate_limits": [{"type": "requests", "unit": "rpm", "value": 2}]})
    assert put.status_code == 200, put.text
    saved = httpx.post(f"{gateway.url}/admin/api/configs", headers=ADMIN, timeout=30,
                       json={"id": "gpu-config", "config": {"provider": "@gpu", "retry": {"attempts": 1}}})
    assert saved.status_code == 201, saved.text
    answer = httpx.post(f"{gateway.v1}/api-keys/organisation/service", headers=ADMIN, timeout=30,
                        json={"name": "defaults", "scopes": ["completions.write"],
                              "defaults": {"config_id": "gpu-config"}})
    secret = answer.json()["key"]
    url = f"{gateway.v1}/chat/completions"
    by_default = httpx.post(url, headers={"x-portkey-api-key": secret}, json=chat(), timeout=30)
    inline = httpx.post(url, json=chat(), timeout=30, headers={
        "x-portkey-api-key": secret, "x-portkey-config": json.dumps({"provider": "@gpu"})})
    over = httpx.post(url, headers={"x-portkey-api-key": secret}, json=chat(), timeout=30)
    assert [by_default.status_code, inline.status_code, over.status_code] == [200, 200, 429], over.text
    assert "provider 'gpu'" in over.json()["message"] and over.headers["x-ratelimit-limit"] == "2"
    assert len(upstream.received) == 2


def test_a_workspace_limit_holds_across_its_keys_all_or_nothing(gateway: GatewayProcess, upstream) -> None:
    made = httpx.post(f"{gateway.v1}/admin/workspaces", headers=ADMIN, timeout=30,
                      json={"name": "Team L", "rate_limits": [{"type": "requests", "unit": "rpm", "value": 4}]})
    assert made.status_code == 200, made.text
    space = made.json()["id"]
    assert made.json()["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 4}]
    secrets = []
    for name in ("k1", "k2"):
        answer = httpx.post(f"{gateway.v1}/api-keys/workspace/service", headers=ADMIN, timeout=30,
                            json={"name": name, "workspace_id": space, "scopes": ["completions.write"],
                                  "rate_limits": [{"type": "requests", "unit": "rpm", "value": 3}]})
        assert answer.status_code == 200, answer.text
        secrets.append(answer.json()["key"])
    url = f"{gateway.v1}/chat/completions"
    first = asyncio.run(burst(url, headers(secrets[0], upstream), 5))
    assert sorted(a.status_code for a in first) == [200] * 3 + [429] * 2  # the key's 3
    second = asyncio.run(burst(url, headers(secrets[1], upstream), 5))
    assert sorted(a.status_code for a in second) == [200] * 1 + [429] * 4  # the workspace's 4 in all
    assert all("workspace" in a.json()["message"] for a in second if a.status_code == 429)


def test_a_stream_settles_its_budget_from_the_streams_usage(gateway: GatewayProcess, upstream) -> None:
    key_id, secret = make_key(gateway, usage_limits={"type": "tokens", "credit_limit": 1000, "alert_threshold": 5})
    answer = httpx.post(f"{gateway.v1}/chat/completions", headers=headers(secret, upstream), timeout=30,
                        json={**chat(), "stream": True, "stream_options": {"include_usage": True}})
    assert answer.status_code == 200 and "[DONE]" in answer.text
    _wait_settled(gateway, key_id, 8)  # the usage chunk's total_tokens, not the reservation of 11
    # 8 ≥ the alert threshold 5: one log event and one count, and only once in the period.
    assert httpx.post(f"{gateway.v1}/chat/completions", headers=headers(secret, upstream), json=chat(),
                      timeout=30).status_code == 200
    _wait_settled(gateway, key_id, 16)
    assert "sluicegate_limit_alerts_total 1.0" in httpx.get(f"{gateway.url}/metrics", timeout=30).text
    assert gateway.log().count(f"usage alert: API key '{key_id}' used 8, alert threshold 5") == 1
    assert secret not in gateway.log()


def test_a_stream_the_client_leaves_before_its_usage_chunk_is_charged_its_estimate(gateway: GatewayProcess,
                                                                                     upstream) -> None:
    """A client that read the content and hung up before the usage chunk was charged 0 tokens: ten such
    streams went past a budget of 100 without a trace."""
    key_id, secret = make_key(gateway, usage_limits={"type": "tokens", "credit_limit": 1000})
    upstream.push(Reply(stream=chat_chunks("one two three four five six"), chunk_interval=0.2))
    read = ""
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", headers=headers(secret, upstream), timeout=30,
                      json={**chat(), "stream": True, "stream_options": {"include_usage": True}}) as answer:
        for line in answer.iter_lines():
            read += line
            if "three" in read:
                break  # leaves with the content read, before the finish and the usage chunk
    deadline = time.monotonic() + 15
    while (used := _used(gateway, key_id)) == 11 and time.monotonic() < deadline:  # 11: the reservation
        time.sleep(0.05)
    assert used > 0, "a stream the client read was charged nothing"


def test_workers_share_their_counters_through_redis(tmp_path: Path, private_redis, upstream) -> None:
    gateway = GatewayProcess(tmp_path, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN,
                                            "SLUICEGATE_REDIS_URL": private_redis.url},
                             args=("--workers", "2")).start(timeout=60)
    try:
        _, secret = make_key(gateway, rate_limits=[{"type": "requests", "unit": "rpm", "value": 7}])
        import time

        time.sleep(1.2)  # the other worker sees the key within a second
        answers = asyncio.run(burst(f"{gateway.v1}/chat/completions", headers(secret, upstream), 30))
        assert sorted(a.status_code for a in answers) == [200] * 7 + [429] * 23
    finally:
        gateway.stop()


def test_cache_hits_are_not_charged_to_a_token_budget(gateway: GatewayProcess, upstream) -> None:
    """A hit spent nothing upstream: only the first (missed) answer's 8 tokens are charged."""
    key_id, secret = make_key(gateway, usage_limits={"type": "tokens", "credit_limit": 1000})
    config = {"provider": "openai", "custom_host": upstream.v1, "cache": {"mode": "simple", "max_age": 60}}
    head = {"x-portkey-api-key": secret, "x-portkey-config": json.dumps(config)}
    statuses = [httpx.post(f"{gateway.v1}/chat/completions", headers=head, json=chat(), timeout=30)
                .headers["x-portkey-cache-status"] for _ in range(4)]
    assert statuses == ["MISS", "HIT", "HIT", "HIT"]
    _wait_settled(gateway, key_id, 8)
    time.sleep(0.5)  # the hits' settlements run in the same task, just after: give them time to land
    assert _used(gateway, key_id) == 8
