from __future__ import annotations

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.gateway import GatewayProcess


@pytest.fixture(scope="session")
def upstream_server():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server):
    """The session's fake upstream, with an empty script and no recorded requests."""
    upstream_server.reset()
    yield upstream_server
    upstream_server.reset()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    """One real gateway process for the session, on a free loopback port, with default settings."""
    process = GatewayProcess(tmp_path_factory.mktemp("gateway")).start()
    yield process
    process.stop()
