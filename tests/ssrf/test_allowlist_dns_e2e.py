"""Allow-listed private upstreams work, and DNS cannot smuggle a private target past the guard.

A gateway on 0.0.0.0 (loopback not trusted) in a network namespace, with
``TRUSTED_CUSTOM_HOSTS`` and ``SLUICEGATE_ALLOWED_UPSTREAMS`` set as an operator would. The namespace's
own ``/etc/hosts`` maps public-looking names to private and metadata addresses on its ``lo``; the
gateway resolves them with aiohttp's ThreadedResolver (getaddrinfo), under the guard's resolver.

* allow-listed addresses, CIDRs, names and wildcard names reach the trap at that address;
* a name that resolves to a private, loopback or metadata address is refused at connection time, from
  every entry point, and the trap at that address sees nothing; so is a name with one allowed and one
  refused address, and a wildcard-allowed name that resolves to the metadata address;
* metadata stays blocked even when listed in TRUSTED_CUSTOM_HOSTS, and service ports stay blocked on
  allow-listed hosts.
"""

from __future__ import annotations

from types import MappingProxyType

import pytest

from tests.ssrf import entry
from tests.ssrf.cases import Case, accepted, check, refused
from tests.ssrf.harness import run_scenario

pytestmark = pytest.mark.netns

TRUSTED = "10.0.0.5:8000,llm.models.example,169.254.169.254"
ALLOWED = "192.168.50.0/24,*.corp.example,[fd12:3456:789a::1]"

NAMES = MappingProxyType({
    "llm.models.example": ["192.168.77.7"],  # allowed by name: the entry vouches for its address
    "gpu.corp.example": ["192.168.77.8"],  # allowed by the wildcard name
    "box.example.net": ["192.168.50.20"],  # a plain name whose address is in an allowed CIDR
    "v6.example.net": ["fd12:3456:789a::1"],  # an allowed IPv6 address behind a name
    "innocent.example.com": ["10.0.0.1"],  # public-looking, private behind it
    "loop.example.com": ["127.0.0.1"],
    "meta.example.com": ["169.254.169.254"],
    "meta6.example.com": ["fd00:ec2::254"],
    "mixed.example.net": ["192.168.50.21", "10.0.0.1"],  # one allowed address, one not
    "evil.corp.example": ["169.254.169.254"],  # the wildcard vouches, metadata still wins
    "mapped.example.com": ["::ffff:169.254.169.254"],  # metadata in IPv6 clothing
    "zero.example.com": ["0.0.0.0"],  # Linux connects 0.0.0.0 to this host
})
ADDRESSES = ("10.0.0.1", "10.0.0.5", "192.168.77.7", "192.168.77.8", "192.168.50.10", "192.168.50.20",
             "192.168.50.21", "169.254.169.254", "fd00:ec2::254", "fd12:3456:789a::1")

PRIV = "a private address; add it to TRUSTED_CUSTOM_HOSTS to allow it"
META_RESOLVED = "a cloud metadata endpoint, which is always blocked"
E = entry

CASES: tuple[Case, ...] = (
    # allow-listed targets go through, from the header, configs and passthrough routes
    accepted(E.HEADER_CHAT, "http://10.0.0.5:8000/v1", "10.0.0.5"),
    accepted(E.CONFIG_CAMEL_NESTED, "http://10.0.0.5:8000/v1", "10.0.0.5"),
    accepted(E.HEADER_CHAT, "http://192.168.50.10:8000/v1", "192.168.50.10"),
    accepted(E.HEADER_RERANK, "http://192.168.50.10:8000/v1", "192.168.50.10"),
    accepted(E.CONFIG_DEEP, "http://[fd12:3456:789a::1]:8000/v1", "fd12:3456:789a::1"),
    accepted(E.HEADER_CHAT, "http://llm.models.example:8000/v1", "192.168.77.7"),
    accepted(E.HEADER_MODELS, "http://llm.models.example:8000/v1", "192.168.77.7"),
    accepted(E.CONFIG_SNAKE, "http://gpu.corp.example:8000/v1", "192.168.77.8"),
    accepted(E.CONFIG_RERANK, "http://box.example.net:8000/v1", "192.168.50.20"),
    accepted(E.CONFIG_MODELS, "http://v6.example.net:8000/v1", "fd12:3456:789a::1"),
    # ... but only as far as the allow-list goes
    refused(E.HEADER_CHAT, "http://10.0.0.5:8080/v1", f"10.0.0.5 is {PRIV}"),  # the entry is :8000 only
    refused(E.CONFIG_SNAKE, "http://10.0.0.1:8000/v1", f"10.0.0.1 is {PRIV}"),
    refused(E.HEADER_CHAT, "http://169.254.169.254/latest/meta-data/", "always blocked"),
    refused(E.CONFIG_INHERITED, "http://169.254.169.254/latest/meta-data/", "always blocked"),
    refused(E.HEADER_RERANK, "http://192.168.50.10:6379/", "port 6379 (Redis)"),
    refused(E.HEADER_CHAT, "http://127.0.0.1:8000/v1", "so loopback is not trusted by default"),
    # names that resolve to what the request could not name directly: refused when connecting
    *(refused(point, "http://innocent.example.com:8000/v1",
              f"innocent.example.com resolves to 10.0.0.1, {PRIV}", stage="connect")
      for point in E.ALL),
    refused(E.HEADER_CHAT, "http://meta.example.com/latest/meta-data/",
            f"meta.example.com resolves to 169.254.169.254, {META_RESOLVED}", stage="connect"),
    refused(E.CONFIG_CAMEL_NESTED, "http://meta6.example.com/",
            f"meta6.example.com resolves to fd00:ec2::254, {META_RESOLVED}", stage="connect"),
    refused(E.HEADER_CHAT, "http://mixed.example.net:8000/v1", "mixed.example.net resolves to 10.0.0.1",
            stage="connect"),
    refused(E.HEADER_MODELS, "http://loop.example.com:8000/v1",
            "loop.example.com resolves to 127.0.0.1, a loopback address (this gateway listens on 0.0.0.0",
            stage="connect"),
    refused(E.CONFIG_DEEP, "http://evil.corp.example/", f"evil.corp.example resolves to 169.254.169.254, "
            f"{META_RESOLVED}", stage="connect"),
    # (how the address itself is printed depends on the Python version: ::ffff:a9fe:a9fe before 3.13)
    refused(E.HEADER_RERANK, "http://mapped.example.com/", "a cloud metadata endpoint (IPv4-mapped form "
            "of 169.254.169.254), which is always blocked", stage="connect"),
    refused(E.CONFIG_SNAKE, "http://zero.example.com:8000/v1",
            "zero.example.com resolves to 0.0.0.0, the unspecified address", stage="connect"),
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    plan = {
        "gateway": {"listen": "0.0.0.0",
                    "env": {"TRUSTED_CUSTOM_HOSTS": TRUSTED, "SLUICEGATE_ALLOWED_UPSTREAMS": ALLOWED}},
        "trap_ports": [80, 443, 8000, 8080, 6379],
        "resolve": sorted(NAMES),
        "requests": [case.request for case in CASES],
    }
    return run_scenario(plan, tmp_path_factory.mktemp("allow-dns"), addresses=ADDRESSES, names=NAMES)


def test_the_gateways_resolver_reads_the_namespace_hosts_file(report):
    # aiohttp's ThreadedResolver → getaddrinfo honours /etc/netns/<ns>/hosts, which ip netns exec mounts
    # over /etc/hosts; without that the DNS cases below would prove nothing.
    assert report["resolved"] == {name: sorted(addresses) for name, addresses in NAMES.items()}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_allow_list_and_dns(report, case: Case):
    check(case, report["cases"][case.id])


def test_no_connection_outside_the_accepted_requests(report):
    assert report["stray_hits"] == []
    hits = [hit for result in report["cases"].values() for hit in result["hits"]]
    assert len(hits) == sum(1 for case in CASES if case.refused is None)
