"""SLUICEGATE_AUTH: when /v1 needs a key. The pure rule in a table, and real processes for the cases an
operator meets: open on loopback without keys (said at start-up), closed beyond loopback, off, required."""

from __future__ import annotations

import time

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sluicegate.access.mode import is_loopback, key_required, startup_notice
from sluicegate.app import build_app
from sluicegate.settings import Settings, settings_from_env
from tests.access.world import World
from tests.fakes.transport import FakeTransport
from tests.gateway import GatewayProcess

RULE = [  # mode, listen address, any key exists → required
    ("auto", "127.0.0.1", False, False), ("auto", "::1", False, False), ("auto", "localhost", False, False),
    ("auto", "127.0.0.1", True, True), ("auto", "0.0.0.0", False, True), ("auto", "::", False, True),
    ("auto", "10.1.2.3", False, True), ("auto", "gateway.internal", False, True),
    ("required", "127.0.0.1", False, True), ("off", "0.0.0.0", True, False),
]


@pytest.mark.parametrize("mode,host,has_keys,required", RULE)
def test_the_rule(mode: str, host: str, has_keys: bool, required: bool) -> None:
    assert key_required(mode, host, has_keys) is required
    notice = startup_notice(mode, host, has_keys)
    assert notice.startswith("/v1 requires a gateway API key") is required
    assert ("WARNING" in notice or "NOTE" in notice) is (not required)


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.5") and is_loopback("[::1]") and not is_loopback("0.0.0.0")


def test_the_setting() -> None:
    assert settings_from_env({}).auth_mode == "auto"
    assert settings_from_env({"SLUICEGATE_AUTH": "Required"}).auth_mode == "required"
    with pytest.raises(ValueError, match="SLUICEGATE_AUTH"):
        settings_from_env({"SLUICEGATE_AUTH": "maybe"})


def _chat(gateway: GatewayProcess, upstream, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.v1}/chat/completions", timeout=30,
                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                      headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1, **headers})


def test_open_on_loopback_without_keys_and_says_so(tmp_path, upstream) -> None:
    gateway = GatewayProcess(tmp_path / "data").start()
    try:
        assert _chat(gateway, upstream).status_code == 200
        assert _chat(gateway, upstream, **{"x-portkey-api-key": ""}).status_code == 200
        assert "no API key exists" in gateway.log()
    finally:
        gateway.stop()


async def test_beyond_loopback_a_key_is_required_even_without_keys(tmp_path) -> None:
    """The app as ``serve --host 0.0.0.0`` builds it, served in-process on 127.0.0.1 (tests bind loopback
    only): without any key existing, /v1 still refuses a request that carries none."""
    transport = FakeTransport()
    app = build_app(Settings(host="0.0.0.0", data_dir=tmp_path / "data"), transport=transport)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user"}]},
                                     headers={"x-portkey-provider": "openai", "x-portkey-api-key": ""})
        assert response.status == 401
        assert "Missing API key" in (await response.json())["message"]
        assert transport.sent == []
    finally:
        await client.close()


def test_the_first_key_closes_a_loopback_gateway(tmp_path, upstream) -> None:
    world = World(settings_from_env({}, data_dir=tmp_path / "data"))
    gateway = GatewayProcess(tmp_path / "data").start()
    try:
        assert _chat(gateway, upstream).status_code == 200
        _, secret = world.key("first")
        deadline = time.monotonic() + 10  # within a poll or two, without a restart
        while _chat(gateway, upstream).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _chat(gateway, upstream).status_code == 401
        assert _chat(gateway, upstream, **{"x-portkey-api-key": secret}).status_code == 200
    finally:
        gateway.stop()


@pytest.mark.parametrize("mode,status", [("off", 200), ("required", 401)])
def test_explicit_modes(tmp_path, upstream, mode: str, status: int) -> None:
    world = World(settings_from_env({}, data_dir=tmp_path / "data"))
    world.key("exists")  # off: ignored; required: needed
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_AUTH": mode}).start()
    try:
        assert _chat(gateway, upstream).status_code == status
        said = "SLUICEGATE_AUTH=off" if mode == "off" else "/v1 requires a gateway API key"
        assert said in gateway.log()
    finally:
        gateway.stop()
