"""A gateway that listens on loopback trusts loopback upstreams by default, and nothing more.

The developer default: ``sluicegate serve`` on 127.0.0.1 with no allow-list reaches a model on the same
machine in every loopback form (127/8 in any notation, ``[::1]``, ``localhost`` and ``*.localhost``
names that resolve to loopback, any name that resolves to loopback), while private and metadata
targets, service ports, and a ``*.localhost`` name that resolves elsewhere stay refused. In a
namespace, so the private and metadata traps are real addresses on ``lo``.
"""

from __future__ import annotations

from types import MappingProxyType

import pytest

from tests.ssrf import entry as E
from tests.ssrf.cases import Case, accepted, check, refused
from tests.ssrf.harness import run_scenario

pytestmark = pytest.mark.netns

NAMES = MappingProxyType({
    "api.localhost": ["127.0.0.3"],
    "bad.localhost": ["10.0.0.5"],  # a *.localhost name is trusted only while it resolves to loopback
    "loop.example.com": ["127.0.0.1"],  # any name: loopback addresses are what is trusted
    "meta.example.com": ["169.254.169.254"],
})

CASES: tuple[Case, ...] = (
    accepted(E.HEADER_CHAT, "http://127.0.0.1:8000/v1", "127.0.0.1"),
    accepted(E.CONFIG_CAMEL_NESTED, "http://127.1:8000/v1", "127.0.0.1"),
    accepted(E.HEADER_RERANK, "http://2130706434:8000/v1", "127.0.0.2"),
    accepted(E.CONFIG_DEEP, "http://127.0.0.2:8080/v1", "127.0.0.2", port=8080),
    accepted(E.HEADER_MODELS, "http://[::1]:8000/v1", "::1"),
    accepted(E.CONFIG_SNAKE, "http://localhost:8000/v1", "127.0.0.1", "::1"),
    accepted(E.CONFIG_MODELS, "http://api.localhost:8000/v1", "127.0.0.3"),
    accepted(E.CONFIG_RERANK, "http://loop.example.com:8000/v1", "127.0.0.1"),
    refused(E.HEADER_CHAT, "http://bad.localhost:8000/v1",
            "bad.localhost resolves to 10.0.0.5, a private address", stage="connect"),
    refused(E.HEADER_CHAT, "http://meta.example.com/",
            "meta.example.com resolves to 169.254.169.254, a cloud metadata endpoint", stage="connect"),
    refused(E.HEADER_CHAT, "http://10.0.0.5:8000/v1", "10.0.0.5 is a private address"),
    refused(E.CONFIG_INHERITED, "http://169.254.169.254/latest/meta-data/", "always blocked"),
    refused(E.HEADER_RERANK, "http://127.0.0.1:6379/", "port 6379 (Redis)"),
    refused(E.CONFIG_SNAKE, "http://[::ffff:10.0.0.5]:8000/v1", "IPv4-mapped form of 10.0.0.5"),
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    plan = {
        "gateway": {"listen": "127.0.0.1", "env": {"TRUSTED_CUSTOM_HOSTS": None,
                                                   "SLUICEGATE_ALLOWED_UPSTREAMS": None}},
        "trap_ports": [80, 8000, 8080, 6379],
        "resolve": sorted(NAMES),
        "requests": [case.request for case in CASES],
    }
    return run_scenario(plan, tmp_path_factory.mktemp("loopback"), addresses=["10.0.0.5", "169.254.169.254"],
                        names=NAMES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_loopback_gateway(report, case: Case):
    check(case, report["cases"][case.id])


def test_no_connection_outside_the_accepted_requests(report):
    assert report["stray_hits"] == []
    hits = [hit for result in report["cases"].values() for hit in result["hits"]]
    assert len(hits) == sum(1 for case in CASES if case.refused is None)
