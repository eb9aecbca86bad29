"""The dashboard's API by raw HTTP: what a request without the session cookie, with a wrong CSRF token or
from another origin gets, the security headers, and a malformed-input table for every new endpoint."""

from __future__ import annotations

import httpx
import pytest

from sluicegate.dashboard.probe import BODY_MAX
from tests.dashboard.conftest import ADMIN
from tests.fakes.upstream import Reply
from tests.gateway import free_port

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@pytest.fixture
def signed_in(gw):
    """(client holding the session cookie, its CSRF token)."""
    with httpx.Client(base_url=f"{gw.url}/dashboard/api", timeout=10, trust_env=False) as client:
        response = client.post("/session", json={"token": ADMIN})
        assert response.status_code == 200, response.text
        yield client, response.json()["csrf_token"]


def envelope(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "failure" and "Traceback" not in response.text
    return body["message"]


def test_the_session_cookie_is_httponly_strict_and_scoped(gw):
    response = httpx.post(f"{gw.url}/dashboard/api/session", json={"token": ADMIN}, trust_env=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sg_dashboard=")
    assert {"HttpOnly", "SameSite=Strict", "Path=/dashboard"} <= {p.strip() for p in cookie.split(";")}
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert ADMIN not in response.text


def test_behind_tls_the_cookie_is_secure(gw):
    response = httpx.post(f"{gw.url}/dashboard/api/session", json={"token": ADMIN},
                          headers={"X-Forwarded-Proto": "https"}, trust_env=False)
    assert "Secure" in {p.strip() for p in response.headers["set-cookie"].split(";")}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/logs"), ("GET", "/analytics"), ("GET", "/providers"), ("GET", "/configs"), ("GET", "/session"),
    ("POST", "/configs/validate"), ("DELETE", "/providers/x"),
])
def test_without_the_session_cookie_every_api_call_is_refused(gw, method, path):
    response = httpx.request(method, f"{gw.url}/dashboard/api{path}", json={}, trust_env=False)
    assert envelope(response, 401).startswith("Not signed in")


def test_a_state_change_needs_the_sessions_csrf_token(signed_in, admin):
    client, csrf = signed_in
    body = {"id": "csrf-check", "config": {"provider": "openai"}}
    assert "CSRF" in envelope(client.post("/configs", json=body), 403)
    assert "CSRF" in envelope(client.post("/configs", json=body, headers={"X-CSRF-Token": csrf + "x"}), 403)
    assert admin.get("/configs/csrf-check").status_code == 404  # nothing was written
    assert client.post("/configs", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.delete("/configs/csrf-check", headers={"X-CSRF-Token": csrf}).status_code == 200


def test_another_sessions_csrf_token_does_not_count(gw, signed_in):
    client, _ = signed_in
    other = httpx.post(f"{gw.url}/dashboard/api/session", json={"token": ADMIN}, trust_env=False).json()["csrf_token"]
    assert "CSRF" in envelope(client.delete("/session", headers={"X-CSRF-Token": other}), 403)


def test_a_request_from_another_origin_is_refused(signed_in):
    client, csrf = signed_in
    response = client.post("/configs/validate", json={"config": "{}"},
                           headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert envelope(response, 403) == "Refused: this request comes from another origin"


def test_sign_out_ends_the_session_on_the_server(signed_in):
    client, csrf = signed_in
    assert client.get("/logs").status_code == 200
    assert client.delete("/session", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert envelope(client.get("/logs"), 401).startswith("Not signed in")


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/static/app.js", "/dashboard/static/style.css"])
def test_every_page_and_asset_carries_the_strict_csp(gw, path):
    response = httpx.get(f"{gw.url}{path}", trust_env=False)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_page_has_no_inline_script_or_style(gw):
    html = httpx.get(f"{gw.url}/dashboard/", trust_env=False).text
    assert "<script>" not in html and "<style" not in html and "style=" not in html and " on" not in html.lower()


def test_the_bare_prefix_redirects_and_unknown_assets_are_404(gw):
    response = httpx.get(f"{gw.url}/dashboard", trust_env=False)
    assert (response.status_code, response.headers["location"]) == (302, "/dashboard/")
    assert envelope(httpx.get(f"{gw.url}/dashboard/static/..%2f..%2fsettings.py", trust_env=False), 404)
    assert envelope(httpx.get(f"{gw.url}/dashboard/static/nope.js", trust_env=False), 404)


def test_validate_names_the_path_of_each_problem(signed_in):
    client, csrf = signed_in
    text = '{"targets": [{"provider": "@missing-slug"}, {"provider": "openai", "api_key": "sk-x"}], "retyr": 1}'
    errors = client.post("/configs/validate", json={"config": text}, headers={"X-CSRF-Token": csrf}).json()["errors"]
    pointers = {e["pointer"] for e in errors}
    assert {"$.retyr", "$.targets[0].provider", "$.targets[1].api_key"} <= pointers
    assert "sk-x" not in str(errors)
    syntax = client.post("/configs/validate", json={"config": '{"a": 1,\n "b": }'}, headers={"X-CSRF-Token": csrf}).json()
    assert (syntax["errors"][0]["line"], syntax["errors"][0]["pointer"]) == (2, "$")
    valid = client.post("/configs/validate", json={"config": '{"provider": "openai"}'}, headers={"X-CSRF-Token": csrf})
    assert valid.json() == {"errors": []}
    # Nested past what saving takes: the live check recursed past Python's limit (a 500), saving said why.
    deep = client.post("/configs/validate", json={"config": '{"a":' + "[" * 600 + "]" * 600 + "}"},
                       headers={"X-CSRF-Token": csrf})
    assert deep.status_code == 200 and deep.json()["errors"][0]["message"] == "nested too deeply (at most 254 levels)"


def test_add_provider_answers_the_ssrf_guards_refusal(signed_in):
    client, csrf = signed_in
    response = client.post("/providers", json={"slug": "meta", "custom_host": "http://169.254.169.254/v1"},
                           headers={"X-CSRF-Token": csrf})
    message = envelope(response, 400)
    assert message.startswith("custom_host:") and "169.254.169.254" in message


def test_test_connection_to_a_host_that_does_not_answer(signed_in, admin):
    client, csrf = signed_in
    port = free_port()  # nothing listens there
    assert admin.post("/providers", json={"slug": "silent", "custom_host": f"http://127.0.0.1:{port}/v1",
                                          "headers": {"Authorization": "Bearer silent-secret-1"}}).status_code == 201
    result = client.post("/providers/silent/test", headers={"X-CSRF-Token": csrf}).json()
    assert result["ok"] is False and result["url"] == f"http://127.0.0.1:{port}/v1/models"
    assert "refused" not in result and result["error"]
    assert "silent-secret-1" not in str(result)



def test_test_connection_scrubs_an_echoed_credential(signed_in, admin, llm):
    # An upstream that echoes its request showed the vault's credential in clear on the page.
    client, csrf = signed_in
    secret = "sk-echoed-vault-secret-0123456789"
    made = admin.post("/providers", json={"slug": "echoer", "custom_host": llm.v1,
                                          "headers": {"Authorization": f"Bearer {secret}", "X-Team": "team-echo-7"}})
    assert made.status_code == 201, made.text
    head = f'{{"team":"team-echo-7","auth":"Bearer {secret}","data":"'
    # The second echo straddles the cut of what is shown: scrubbed whole, no piece of it left.
    filler = "m" * (BODY_MAX - len(head) - len('","tail":"') - 10)
    llm.push(Reply(body=f'{head}{filler}","tail":"{secret}"}}'.encode(), content_type="application/json"))
    result = client.post("/providers/echoer/test", headers={"X-CSRF-Token": csrf}).json()
    assert result["ok"] is True and result["status"] == 200, result
    assert len(result["body"]) <= BODY_MAX and result["body"].startswith('{"team":"[REDACTED]","auth":"')
    assert secret[:8] not in result["body"] and "team-echo-7" not in result["body"], result["body"]
    assert llm.last.headers["Authorization"] == f"Bearer {secret}"  # it was sent


MALFORMED = [
    # (method, path, body or raw bytes, content type, status, message start)
    ("POST", "/session", b"not json", "application/json", 400, "body: not valid JSON"),
    ("POST", "/session", b"[1]", "application/json", 400, "body: expected a JSON object"),
    ("POST", "/session", b'{"token": 5}', "application/json", 400, "token: required"),
    ("POST", "/session", b"{}", "application/json", 400, "token: required"),
    ("POST", "/session", b'{"token": "  "}', "application/json", 400, "token: required"),
    ("POST", "/session", b"token=x", "application/x-www-form-urlencoded", 400, "body: send Content-Type"),
    ("POST", "/session", b'{"token": "' + b"x" * 9000 + b'"}', "application/json", 413, "body: larger than"),
    ("POST", "/session", b'{"token": "wrong-token-0123456789"}', "application/json", 401, "Sign-in refused"),
    ("POST", "/configs/validate", b"{}", "application/json", 400, "config: required"),
    ("POST", "/configs/validate", b'{"config": {"a": 1}}', "application/json", 400, "config: required"),
    ("POST", "/configs/validate", b"nope", "application/json", 400, "body: not valid JSON"),
    ("POST", "/configs/validate", b'{"config": "{}"}', "text/plain", 400, "body: send Content-Type"),
    ("POST", "/providers/NOT_A_SLUG/test", None, None, 400, "slug: must be"),
    ("POST", "/providers/no-such-provider/test", None, None, 404, "Provider @no-such-provider not found"),
    ("GET", "/logs?limit=0", None, None, 400, "'limit' must be"),
    ("GET", "/logs?bogus=1", None, None, 400, "Unknown query parameter 'bogus'"),
    ("GET", "/logs/no-such-id", None, None, 404, "No such log record"),
    ("GET", "/analytics?interval=1w", None, None, 400, "'interval' must look like"),
    ("GET", "/analytics?group_by=secret", None, None, 400, "'group_by' must be one of"),
    ("POST", "/providers", b'{"slug": "x y"}', "application/json", 400, "slug: must be"),
    ("PATCH", "/providers/no-such-provider", b"{}", "application/json", 404, "Provider @no-such-provider"),
    ("PUT", "/configs/no-such-config", b'{"config": {"provider": "openai"}}', "application/json", 404,
     "Config no-such-config"),
    ("GET", "/nowhere", None, None, 404, "Not Found"),
    ("PUT", "/session", None, None, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status", "message"), MALFORMED)
def test_malformed_input_is_a_4xx_in_the_envelope(signed_in, method, path, body, content_type, status, message):
    client, csrf = signed_in
    headers = {"X-CSRF-Token": csrf, **({"Content-Type": content_type} if content_type else {})}
    response = client.request(method, path, content=body, headers=headers)
    assert envelope(response, status).startswith(message)
