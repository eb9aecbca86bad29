"""The test helper that runs real gateways: a port it chose that something else took meanwhile is not a failure
of the test (it happened in the suite: two gateways of 4,500 tests refused with "address already in use")."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.gateway import GatewayProcess


def test_a_chosen_port_taken_before_the_start_moves_the_gateway_to_another(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path)
    taken = gateway.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        gateway.start()
        try:
            assert gateway.port != taken
            assert httpx.get(f"{gateway.url}/v1/health", trust_env=False).status_code == 200
        finally:
            gateway.stop()


def test_a_port_the_test_asked_for_is_kept_and_its_refusal_told(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        gateway = GatewayProcess(tmp_path, port=port)
        with pytest.raises(RuntimeError, match="address already in use"):
            gateway.start()
