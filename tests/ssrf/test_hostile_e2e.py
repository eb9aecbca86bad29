"""Hostile custom hosts through every entry point of a running gateway: all refused, none connected.

The gateway listens on 0.0.0.0 with no allow-list, so nothing private is trusted, loopback included.
It runs in a network namespace whose ``lo`` also carries the private and metadata addresses the table
aims at, with trap listeners on every address (ports 80, 443, 8000 …): a guard that let one of these
through would hit a trap (and be reported), and could not reach anything outside the namespace.

The URLs are a representative subset of the unit table (tests/upstream/test_guard_urls.py): every
IPv4 notation, IPv6 embeddings, metadata, names, parser confusions, schemes and ports. Each goes through
the header and one more entry point in turn; the metadata ones through all of them.
"""

from __future__ import annotations

import itertools

import pytest

from tests.ssrf import entry
from tests.ssrf.cases import Case, check, refused
from tests.ssrf.harness import run_scenario

pytestmark = pytest.mark.netns

LOOP = "a loopback address (this gateway listens on 0.0.0.0, so loopback is not trusted by default)"
PRIV = "a private address; add it to TRUSTED_CUSTOM_HOSTS to allow it"
META = "a cloud metadata endpoint and is always blocked"
CRED = "credentials in the URL are not allowed"

HOSTILE = (
    # loopback in every notation (a trap listens on 127.0.0.1 and ::1)
    ("http://127.0.0.1:8000/v1", f"127.0.0.1 is {LOOP}"),
    ("http://127.1/", LOOP),
    ("http://2130706433:8000/", LOOP),
    ("http://0x7f000001/", LOOP),
    ("http://0177.0.0.1/", LOOP),
    ("http://１２７.０.０.１/", LOOP),
    ("http://127。0。0。1:8000/", LOOP),
    ("http://0.0.0.0:8000/", "the unspecified address"),
    ("http://0/", "the unspecified address"),
    ("http://[::1]:8000/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1"),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1"),
    # private ranges (traps on 10.0.0.1, 172.16.0.1, 192.168.1.1, 100.64.0.1, fd12:3456:789a::1)
    ("http://10.0.0.1:8000/v1", f"10.0.0.1 is {PRIV}"),
    ("http://167772161/", PRIV),
    ("http://0xa000001:8000/", PRIV),
    ("http://172.16.0.1/", PRIV),
    ("http://192.168.1.1:8080/", PRIV),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://[fd12:3456:789a::1]:8000/", "unique local"),
    ("http://[fe80::1%25lo]/", "zone identifiers are not allowed"),
    # names
    ("http://localhost:8000/", "localhost is a loopback name"),
    ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "a loopback name"),
    ("http://127.0.0.1.nip.io/", "DNS rebinding service"),
    ("http://vllm.llm.svc.cluster.local:8000/v1", "a private DNS zone (.local)"),
    ("http://kubernetes.default.svc.cluster.local/", "the Kubernetes API server and is always blocked"),
    # parser confusions and characters
    ("http://user:pass@example.com/", CRED),
    ("http://example.com@127.0.0.1/", CRED),
    ("http://127.0.0.1#@example.com/", CRED),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://127.0.0.1?.example.com", "query or fragment"),
    ("http://local\u200bhost/", "invisible or formatting character (U+200B)"),
    ("http://%31%32%37.0.0.1/", "percent-encoded host names are not allowed"),
    ("http://1.2.3.256/", "is not a valid IPv4 address"),
    # schemes and ports
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not allowed"),
    ("http://example.com:6379/", "port 6379 (Redis)"),
)

# Through every entry point: the metadata service, the classic prize (traps on all of these addresses).
METADATA = (
    ("http://169.254.169.254/latest/meta-data/", f"169.254.169.254 is {META}"),
    ("http://2852039166/", META),
    ("http://0251.0376.0251.0376/", META),
    ("http://169.254.43518/", META),
    ("http://169.254.170.2/v2/credentials", META),
    ("http://100.100.100.200/latest/meta-data", META),
    ("http://[fd00:ec2::254]/", META),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped form of 169.254.169.254"),
    ("http://metadata.google.internal/computeMetadata/v1", META),
)

# Headers cannot carry control characters at all, so these only go through a config (JSON-escaped).
CONFIG_ONLY = (
    ("http://127.0.0.1\r\nHost: example.com/", "control character"),
    ("http://example.com\x00.evil.com/", "control character"),
)

TRAP_ADDRESSES = ("10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
                  "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "fd12:3456:789a::1")
TRAP_PORTS = (80, 443, 8000, 8080, 6379)


def _cases() -> tuple[Case, ...]:
    others = itertools.cycle([e for e in entry.ALL if e is not entry.HEADER_CHAT])
    cases = []
    for url, reason in HOSTILE:
        cases += [refused(entry.HEADER_CHAT, url, reason), refused(next(others), url, reason)]
    cases += [refused(point, url, reason) for url, reason in METADATA for point in entry.ALL]
    cases += [refused(point, url, reason) for url, reason in CONFIG_ONLY for point in entry.CONFIGS[:3]]
    return tuple(cases)


CASES = _cases()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    plan = {
        "gateway": {"listen": "0.0.0.0", "env": {"TRUSTED_CUSTOM_HOSTS": None,
                                                 "SLUICEGATE_ALLOWED_UPSTREAMS": None}},
        "trap_ports": TRAP_PORTS,
        "requests": [case.request for case in CASES],
    }
    return run_scenario(plan, tmp_path_factory.mktemp("hostile"), addresses=TRAP_ADDRESSES, names={})


def test_the_table_covers_every_entry_point():
    assert len(HOSTILE) + len(METADATA) >= 40
    assert {case.entry for case in CASES} == set(entry.ALL)
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_url_refused_without_a_connection(report, case: Case):
    check(case, report["cases"][case.id])


def test_the_traps_saw_nothing_at_all(report):
    assert report["stray_hits"] == []
    assert all(case["hits"] == [] for case in report["cases"].values())
