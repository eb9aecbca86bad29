"""Fixtures for the tests against a real model server: llama.cpp's server with SmolLM2-135M-Instruct.

They run when the server has been built (`python3 -m demo.build`, which `.ci/run` and
`make demo` call) and are skipped otherwise, with the command that builds it. With
SLUICEGATE_REALLLM_REQUIRED=1 (CI sets it) a missing build is an error instead of a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from demo.build import default_cache, find_built
from demo.server import LlamaServer, free_port
from tests.gateway import GatewayProcess

ADMIN_TOKEN = "realllm-tests-admin-token"  # the admin API (request logs) wants a bearer token


def pytest_collection_modifyitems(config, items):
    """Mark every test of this directory `real_llm` (this hook sees the whole session's items)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.real_llm)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """This directory's own gateway process: the suite-wide one, plus a known admin token."""
    process = GatewayProcess(tmp_path_factory.mktemp("gateway-realllm"),
                             env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def llama_build() -> dict:
    record = find_built()
    if record is None:
        reason = (f"llama.cpp server not built (no ready venv under {default_cache()}): run "
                  "`python3 -m demo.build` (5-10 min once, then cached) or `make demo`")
        if os.environ.get("SLUICEGATE_REALLLM_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return record


def _start(llama_build, tmp_path_factory, name: str) -> LlamaServer:
    log = tmp_path_factory.mktemp(f"llama-{name}") / "server.log"
    return LlamaServer(llama_build["python"], llama_build["gguf"], log).start()


@pytest.fixture(scope="session")
def smol(llama_build, tmp_path_factory):
    """The main live model server for the session."""
    server = _start(llama_build, tmp_path_factory, "a")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smol_b(llama_build, tmp_path_factory):
    """A second live instance, for load balancing."""
    server = _start(llama_build, tmp_path_factory, "b")
    yield server
    server.stop()


@pytest.fixture
def dead_v1() -> str:
    """The base URL of a private LLM that is down: a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/v1"
