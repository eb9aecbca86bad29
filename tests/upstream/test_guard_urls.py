"""Request-time check: a table of hostile URLs, each refused with the right reason, and legitimate forms."""

from __future__ import annotations

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings
from sluicegate.upstream.guard import CheckedURL, Guard, GuardPolicy

LOOP = "a loopback address"
PRIV = "a private address"
META = "is a cloud metadata endpoint"
ALWAYS = "always blocked"
CRED = "credentials in the URL are not allowed"
QF = "query or fragment"
BADPORT = "is not valid; use a number from 1 to 65535"
BAD4 = "is not a valid IPv4 address"
BRACKETS = "must be written in brackets"
REBIND = "DNS rebinding service"
ZONE = "a private DNS zone"
HINT = "add it to TRUSTED_CUSTOM_HOSTS to allow it"

# (url, substring of the reason). Judged by a gateway listening on 0.0.0.0 with no allow-list.
HOSTILE = [
    # schemes and shapes
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not allowed"),
    ("ftp://example.com/", "scheme 'ftp' is not allowed"),
    ("dict://127.0.0.1:11211/stat", "scheme 'dict' is not allowed"),
    ("data:text/plain,hi", "scheme 'data' is not allowed"),
    ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
    ("ws://example.com/", "scheme 'ws' is not allowed"),
    ("ldap://127.0.0.1/", "scheme 'ldap' is not allowed"),
    ("//example.com/v1", "has no scheme"),
    ("example.com/v1", "has no scheme"),
    ("http:/example.com/", "must start with http://"),
    ("http:example.com", "must start with http://"),
    ("HTTPS:example.com", "must start with https://"),
    ("", "the URL is empty"),
    ("http://", "has no host"),
    ("http:///v1", "has no host"),
    ("http://:8080/", "has no host"),
    # userinfo, '@', '#', '?' and backslash confusions
    ("http://user:pass@example.com/", CRED),
    ("http://example.com@127.0.0.1/", CRED),
    ("http://127.0.0.1#@example.com/", CRED),
    ("http://:@127.0.0.1/", CRED),
    ("http://example.com/v1@127.0.0.1", CRED),
    ("http://example.com#127.0.0.1", QF),
    ("http://127.0.0.1?.example.com", QF),
    ("http://example.com/v1?api_key=1", QF),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://127.0.0.1\\.example.com/", "backslash"),
    ("http:\\\\127.0.0.1/", "backslash"),
    # control characters, whitespace, invisible characters
    ("http://127.0.0.1\r\nHost: example.com/", "control character"),
    ("http://example.com\t/", "control character"),
    ("http://example.com\x00.evil.com/", "control character"),
    ("http://example.com\x7f/", "control character"),
    ("http://exa mple.com/", "whitespace"),
    (" http://example.com/", "whitespace"),
    ("http://example\u3000.com/", "whitespace"),
    ("http://local\u200bhost/", "invisible or formatting character (U+200B)"),
    ("http://example.com\u202e/", "invisible or formatting character (U+202E)"),
    # length
    ("http://example.com/" + "a" * 2100, "longer than 2048 characters"),
    ("http://" + "a." * 130 + "com/", "longer than 253 characters"),
    ("http://" + "a" * 64 + ".com/", "label longer than 63 characters"),
    # ports
    ("http://example.com:0/", BADPORT),
    ("http://example.com:65536/", BADPORT),
    ("http://example.com:99999999/", BADPORT),
    ("http://example.com:-1/", BADPORT),
    ("http://example.com:80a/", BADPORT),
    ("http://example.com:+80/", BADPORT),
    ("http://example.com:/", BADPORT),
    ("http://example.com:22/", "port 22 (SSH)"),
    ("http://example.com:25/", "port 25 (SMTP)"),
    ("http://example.com:445/", "port 445 (SMB)"),
    ("http://example.com:3306/", "port 3306 (MySQL)"),
    ("http://example.com:5432/", "port 5432 (PostgreSQL)"),
    ("http://example.com:6379/", "port 6379 (Redis)"),
    ("http://example.com:6443/", "port 6443 (Kubernetes API)"),
    ("http://example.com:9200/", "port 9200 (Elasticsearch)"),
    ("http://example.com:11211/", "port 11211 (memcached)"),
    ("http://example.com:27017/", "port 27017 (MongoDB)"),
    ("http://example.com:2375/", "port 2375 (Docker API)"),
    ("http://example.com:10250/", "port 10250 (kubelet)"),
    ("http://[::1]:22/", "port 22 (SSH)"),
    # IPv4 loopback in every notation
    ("http://127.0.0.1/", LOOP),
    ("http://127.1/", LOOP),
    ("http://127.0.1/", LOOP),
    ("http://2130706433/", LOOP),
    ("http://0x7f000001/", LOOP),
    ("http://0X7F000001/", LOOP),
    ("http://0177.0.0.1/", LOOP),
    ("http://0x7f.0.0.1/", LOOP),
    ("http://017700000001/", LOOP),
    ("http://127.000.000.001/", LOOP),
    ("http://127.0.0.1./", LOOP),
    ("http://127.255.255.254:8000/", LOOP),
    ("http://１２７.０.０.１/", LOOP),
    ("http://127。0。0。1/", LOOP),
    ("http://0/", "the unspecified address"),
    ("http://0.0.0.0:8000/", "the unspecified address"),
    ("http://1.2.3.256/", BAD4),
    ("http://1.2.3.4.5/", BAD4),
    ("http://256.1/", BAD4),
    ("http://example.0x1/", BAD4),
    ("http://1..2.3/", BAD4),
    ("http://%31%32%37.0.0.1/", "percent-encoded host names are not allowed"),
    ("http://127.0.0.1%2f.example.com/", "percent-encoded host names are not allowed"),
    # IPv4 ranges blocked by default
    ("http://10.0.0.1/", PRIV),
    ("http://10.1/", PRIV),
    ("http://167772161/", PRIV),
    ("http://0xa000001/", PRIV),
    ("http://172.16.0.1/", PRIV),
    ("http://172.31.255.254/", PRIV),
    ("http://192.168.1.1/", PRIV),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://100.127.255.254/", "carrier-grade NAT"),
    ("http://169.254.1.1/", "a link-local address"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://198.19.255.254/", "benchmarking"),
    ("http://192.0.0.8/", "IETF protocol assignment"),
    ("http://192.0.2.1/", "a documentation address"),
    ("http://198.51.100.7/", "a documentation address"),
    ("http://203.0.113.9/", "a documentation address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://239.255.255.250/", "a multicast address"),
    ("http://240.0.0.1/", "reserved address (240.0.0.0/4)"),
    ("http://255.255.255.255/", "the broadcast address"),
    ("http://0.1.2.3/", "'this network'"),
    ("http://192.88.99.1/", "6to4 relay"),
    # metadata endpoints, in every spelling: always blocked
    ("http://169.254.169.254/latest/meta-data/", f"169.254.169.254 {META} and is {ALWAYS}"),
    ("http://169.254.169.254.:80/", META),
    ("http://2852039166/", META),
    ("http://0xa9fea9fe/", META),
    ("http://0251.0376.0251.0376/", META),
    ("http://169.254.43518/", META),
    ("http://169.254.169.1/", META),
    ("http://169.254.170.2/v2/credentials", META),
    ("http://169.254.170.23/", META),
    ("http://100.100.100.200/latest/meta-data", META),
    ("http://168.63.129.16/", META),
    ("http://192.0.0.192/", META),
    ("http://[fd00:ec2::254]/", META),
    ("http://[fd00:ec2::23]/", META),
    ("http://[fd20:ce::254]/", META),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped form of 169.254.169.254"),
    ("http://[::ffff:a9fe:a9fe]/", META),
    ("http://[64:ff9b::169.254.169.254]/", "NAT64 form of 169.254.169.254"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4 form of 169.254.169.254"),
    # IPv6 literals
    ("http://[::1]/", LOOP),
    ("http://[0:0:0:0:0:0:0:1]:8000/", LOOP),
    ("http://[::]/", "the unspecified address"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1"),
    ("http://[::ffff:7f00:1]/", LOOP),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1"),
    ("http://[::ffff:0:127.0.0.1]/", "IPv4-translated form of 127.0.0.1"),
    ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1"),
    ("http://[64:ff9b::10.0.0.1]/", "NAT64 form of 10.0.0.1"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://[FC00::1]/", "unique local"),
    ("http://[fd12:3456:789a::1]/", "unique local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://[2001:db8::1]/", "a documentation address"),
    ("http://[100::1]/", "discard-only"),
    ("http://[fe80::1%25eth0]/", "zone identifiers are not allowed"),
    ("http://::1/", BRACKETS),
    ("http://example.com:80:80/", BRACKETS),
    ("http://[::1/", "not closed properly"),
    ("http://[::1]x/", "not closed properly"),
    ("http://[127.0.0.1]/", "not a valid IPv6 address"),
    ("http://[::ffff:127.1]/", "not a valid IPv6 address"),
    # names: loopback, rebinding services, private zones, metadata, Kubernetes
    ("http://localhost/", "a loopback name"),
    ("http://LOCALHOST./", "a loopback name"),
    ("http://LocalHost:11434/", "a loopback name"),
    ("http://api.localhost/", "a loopback name"),
    ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "a loopback name"),
    ("http://127.0.0.1.nip.io/", REBIND),
    ("http://a-b-c.sslip.io/", REBIND),
    ("http://10.0.0.1.xip.io/", REBIND),
    ("http://localtest.me/", REBIND),
    ("http://app.lvh.me/", REBIND),
    ("http://vcap.me/", REBIND),
    ("http://x.traefik.me/", REBIND),
    ("http://localhost.run/", REBIND),
    ("http://metadata/", f"metadata {META} and is {ALWAYS}"),
    ("http://metadata.google.internal/computeMetadata/v1", META),
    ("http://METADATA.GOOGLE.INTERNAL./", META),
    ("http://ⓜⓔⓣⓐⓓⓐⓣⓐ.google.internal/", META),
    ("http://metadata.goog/", META),
    ("http://metadata.azure.com/", META),
    ("http://instance-data/", META),
    ("http://instance-data.ec2.internal/", META),
    ("http://kubernetes/", "Kubernetes API server"),
    ("http://kubernetes.default.svc.cluster.local/", "Kubernetes API server and is always blocked"),
    ("http://db.internal/", f"{ZONE} (.internal)"),
    ("http://host.docker.internal:8000/", f"{ZONE} (.internal)"),
    ("http://printer.local/", f"{ZONE} (.local)"),
    ("http://vllm.llm.svc.cluster.local:8000/v1", f"{ZONE} (.local)"),
    ("http://router.lan/", f"{ZONE} (.lan)"),
    ("http://example.onion/", f"{ZONE} (.onion)"),
    ("http://1.0.0.127.in-addr.arpa/", f"{ZONE} (.arpa)"),
    ("http://vault.service.consul/", "Consul"),
    ("http://xn--zz.com/", "invalid punycode label"),
    ("http://exa_mple..com/", "empty label"),
    ("http://exa<mple.com/", "characters not allowed in a host name"),
    ("http://*.example.com/", "characters not allowed in a host name"),
]


@pytest.fixture
def public_guard() -> Guard:
    return Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0")))


def test_the_hostile_table_is_large_and_distinct():
    urls = [url for url, _ in HOSTILE]
    assert len(urls) >= 80 and len(set(urls)) == len(urls)


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[repr(u)[:60] for u, _ in HOSTILE])
def test_hostile_url_refused_with_reason(public_guard: Guard, url: str, reason: str):
    with pytest.raises(InvalidCustomHost) as caught:
        public_guard.check_url(url)
    assert reason in caught.value.reason
    assert caught.value.message == f"Invalid custom host: {caught.value.reason}"
    assert caught.value.status == 400


def test_default_blocks_say_how_to_allow(public_guard: Guard):
    with pytest.raises(InvalidCustomHost) as caught:
        public_guard.check_url("http://10.0.0.5:8000/v1")
    assert caught.value.reason == f"10.0.0.5 is a private address; {HINT}"


def test_loopback_refusal_names_the_listen_address(public_guard: Guard):
    with pytest.raises(InvalidCustomHost, match="listens on 0.0.0.0, so loopback is not trusted by default"):
        public_guard.check_url("http://127.0.0.1:8000/v1")


def test_non_string_is_refused(public_guard: Guard):
    with pytest.raises(InvalidCustomHost, match="must be a string"):
        public_guard.check_url(None)  # type: ignore[arg-type]


LEGIT = [
    ("https://api.openai.com/v1", CheckedURL("https", "api.openai.com", 443, "https://api.openai.com/v1")),
    ("HTTPS://API.OpenAI.COM:443/v1/", CheckedURL("https", "api.openai.com", 443, "https://api.openai.com/v1")),
    ("http://api.example.com./v1", CheckedURL("http", "api.example.com", 80, "http://api.example.com/v1")),
    ("http://api.example.com:80", CheckedURL("http", "api.example.com", 80, "http://api.example.com")),
    ("http://8.8.8.8:8000/v1", CheckedURL("http", "8.8.8.8", 8000, "http://8.8.8.8:8000/v1")),
    ("http://0x08080808/v1", CheckedURL("http", "8.8.8.8", 80, "http://8.8.8.8/v1")),
    ("http://134744072:8080", CheckedURL("http", "8.8.8.8", 8080, "http://8.8.8.8:8080")),
    (
        "http://[2606:4700:4700::1111]/v1",
        CheckedURL("http", "2606:4700:4700::1111", 80, "http://[2606:4700:4700::1111]/v1"),
    ),
    (
        "https://[2606:4700:4700:0:0:0:0:1111]:8443/v1/",
        CheckedURL("https", "2606:4700:4700::1111", 8443, "https://[2606:4700:4700::1111]:8443/v1"),
    ),
    ("http://[::ffff:8.8.8.8]/", CheckedURL("http", "::ffff:808:808", 80, "http://[::ffff:808:808]")),
    ("http://my_service:8000/v1", CheckedURL("http", "my_service", 8000, "http://my_service:8000/v1")),
    ("http://vllm:8000/v1", CheckedURL("http", "vllm", 8000, "http://vllm:8000/v1")),
    ("http://bücher.example/v1", CheckedURL("http", "xn--bcher-kva.example", 80, "http://xn--bcher-kva.example/v1")),
    ("https://xn--bcher-kva.example/v1", CheckedURL("https", "xn--bcher-kva.example", 443, "https://xn--bcher-kva.example/v1")),
    ("http://example.com:8080/", CheckedURL("http", "example.com", 8080, "http://example.com:8080")),
    ("https://example.com:8443", CheckedURL("https", "example.com", 8443, "https://example.com:8443")),
    ("http://example.com:443", CheckedURL("http", "example.com", 443, "http://example.com:443")),
    ("http://example.com:40000/x", CheckedURL("http", "example.com", 40000, "http://example.com:40000/x")),
    ("http://example.com/v1/%7Euser//", CheckedURL("http", "example.com", 80, "http://example.com/v1/%7Euser")),
    ("http://example.com/ünï", CheckedURL("http", "example.com", 80, "http://example.com/%C3%BCn%C3%AF")),
]


@pytest.mark.parametrize(("url", "expected"), LEGIT, ids=[u for u, _ in LEGIT])
def test_public_targets_accepted_and_normalised(public_guard: Guard, url: str, expected: CheckedURL):
    assert public_guard.check_url(url) == expected


LOOPBACK_OK = [
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://127.1:8000", "http://127.0.0.1:8000"),
    ("http://localhost:11434", "http://localhost:11434"),
    ("http://LOCALHOST.:11434/", "http://localhost:11434"),
    ("http://api.localhost:8000", "http://api.localhost:8000"),
    ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
    ("http://127.0.0.1:45678", "http://127.0.0.1:45678"),
]


@pytest.mark.parametrize("listen", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
@pytest.mark.parametrize(("url", "base"), LOOPBACK_OK)
def test_loopback_trusted_when_gateway_listens_on_loopback(listen: str, url: str, base: str):
    guard = Guard(GuardPolicy.from_settings(Settings(host=listen)))
    assert guard.check_url(url).base == base


ALLOWED = (
    "10.0.0.0/8",
    "*.svc.cluster.local",
    "llm.corp.internal:8000",
    "[fd00::5]",
    "192.168.1.20",
    "http://gpu-box.lan:9000/v1",
)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8000/v1",
        "http://10.1:8000/v1",
        "http://[::ffff:10.0.0.5]:8000/v1",
        "http://vllm.llm.svc.cluster.local:8000/v1",
        "http://svc.cluster.local/",
        "http://llm.corp.internal:8000/v1",
        "http://[fd00::5]:8000/v1",
        "http://192.168.1.20:8080",
        "http://gpu-box.lan:9000/v1",
    ],
)
def test_allow_listed_private_targets_accepted(url: str):
    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0", allowed_upstreams=ALLOWED)))
    guard.check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://llm.corp.internal:8001/v1", ZONE),  # the entry is for port 8000 only
        ("http://gpu-box.lan:9001/v1", ZONE),
        ("http://192.168.1.21/", PRIV),
        ("http://[fd00::6]/", "unique local"),
        ("http://cluster.local/", ZONE),  # *.svc.cluster.local does not cover its parent
        ("http://kubernetes.default.svc.cluster.local/", ALWAYS),
        ("http://10.0.0.5:5432/", "port 5432"),
    ],
)
def test_allow_list_is_exact(url: str, reason: str):
    guard = Guard(GuardPolicy.from_settings(Settings(host="0.0.0.0", allowed_upstreams=ALLOWED)))
    with pytest.raises(InvalidCustomHost, match=reason.replace("(", r"\(").replace(".", r"\.")):
        guard.check_url(url)
