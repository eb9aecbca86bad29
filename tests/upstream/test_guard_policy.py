"""Policy: listen address defaults, TRUSTED_CUSTOM_HOSTS semantics, always-blocked, ports, runtime allows, logging."""

from __future__ import annotations

import logging

import pytest

from sluicegate.errors import InvalidCustomHost
from sluicegate.settings import Settings, settings_from_env
from sluicegate.upstream import guard as guard_module
from sluicegate.upstream.allow import parse_allow_entry
from sluicegate.upstream.guard import Guard, GuardPolicy, blocked_reason, redact_url
from sluicegate.upstream.policy import BLOCKED_PORTS, EPHEMERAL_PORTS_START, check_port, listens_on_loopback

EVERYTHING = ("0.0.0.0/0", "::/0", "169.254.169.254", "169.254.169.0/24", "metadata.google.internal",
              "*.internal", "*.cluster.local", "kubernetes.default.svc", "*.goog", "metadata", "fd00:ec2::/96")


def guard_for(**settings) -> Guard:
    return Guard(GuardPolicy.from_settings(Settings(**settings)))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/",
        "http://168.63.129.16/",
        "http://192.0.0.192/",
        "http://169.254.170.2/",
        "http://169.254.170.23/",
        "http://metadata.google.internal/",
        "http://metadata/",
        "http://metadata.goog/",
        "http://kubernetes.default.svc/",
        "http://kubernetes.default.svc.cluster.local/",
    ],
)
def test_always_blocked_even_when_everything_is_allow_listed(url: str):
    guard = guard_for(host="0.0.0.0", trusted_custom_hosts=EVERYTHING)
    with pytest.raises(InvalidCustomHost, match="always blocked"):
        guard.check_url(url)


def test_allow_everything_still_lets_ordinary_private_targets_through():
    guard = guard_for(host="0.0.0.0", trusted_custom_hosts=EVERYTHING)
    assert guard.check_url("http://10.0.0.1:8000").host == "10.0.0.1"
    assert guard.check_url("http://llm.svc.cluster.local").host == "llm.svc.cluster.local"


def test_always_blocked_allow_entries_are_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="sluicegate.security"):
        guard_for(host="0.0.0.0", trusted_custom_hosts=("169.254.169.254", "metadata.google.internal", "10.0.0.1"))
    messages = [r.getMessage() for r in caplog.records]
    assert any("'169.254.169.254'" in m and "no effect" in m for m in messages)
    assert any("'metadata.google.internal'" in m for m in messages)
    assert not any("10.0.0.1" in m for m in messages)


def test_service_ports_refused_even_for_trusted_hosts():
    guard = guard_for(host="0.0.0.0", trusted_custom_hosts=("10.0.0.5", "db.corp.example"))
    for port, service in ((6379, "Redis"), (5432, "PostgreSQL"), (22, "SSH")):
        with pytest.raises(InvalidCustomHost, match=f"port {port} \\({service}\\)"):
            guard.check_url(f"http://10.0.0.5:{port}/")
        with pytest.raises(InvalidCustomHost, match=f"port {port}"):
            guard.check_url(f"http://db.corp.example:{port}/")
    for port in (80, 443, 8000, 8080, 8443, 11434, 50051):
        guard.check_url(f"http://10.0.0.5:{port}/")


def test_port_rule_never_touches_the_ephemeral_range():
    # Test upstreams and developer tools bind "any free port" on 127.0.0.1; Linux hands those out
    # from 32768 up, so the port rule must never refuse one of them.
    assert max(BLOCKED_PORTS) < EPHEMERAL_PORTS_START
    for port in range(EPHEMERAL_PORTS_START, 65536):
        check_port(port)
    guard = guard_for(host="127.0.0.1")
    for port in (32768, 40001, 49152, 54321, 60999, 65535):
        guard.check_url(f"http://127.0.0.1:{port}/v1")


@pytest.mark.parametrize(("listen", "expected"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.5.5.5", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("10.0.0.5", False), ("gateway.example.com", False),
])
def test_listens_on_loopback(listen: str, expected: bool):
    assert listens_on_loopback(listen) is expected


def test_public_gateway_trusts_nothing_by_default():
    guard = guard_for(host="0.0.0.0")
    for url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        with pytest.raises(InvalidCustomHost):
            guard.check_url(url)


def test_trusted_custom_hosts_set_but_empty_replaces_the_loopback_default():
    guard = Guard(GuardPolicy.from_settings(settings_from_env({"TRUSTED_CUSTOM_HOSTS": ""})))
    with pytest.raises(InvalidCustomHost, match="a loopback address"):
        guard.check_url("http://127.0.0.1:8000")


def test_trusted_custom_hosts_replaces_defaults_and_allowed_upstreams_adds():
    env = {"TRUSTED_CUSTOM_HOSTS": "gpu.internal", "SLUICEGATE_ALLOWED_UPSTREAMS": "10.0.0.0/8"}
    guard = Guard(GuardPolicy.from_settings(settings_from_env(env)))
    guard.check_url("http://gpu.internal:8000")
    guard.check_url("http://10.2.3.4:8000")
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://127.0.0.1:8000")  # the loopback default is gone


def test_portkeys_default_list_works_on_a_public_gateway():
    hosts = ("localhost", "127.0.0.1", "::1", "host.docker.internal")
    guard = guard_for(host="0.0.0.0", trusted_custom_hosts=hosts)
    for url in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000",
                "http://host.docker.internal:11434"):
        guard.check_url(url)
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://127.0.0.2:8000")  # an IP literal entry is exact


@pytest.mark.parametrize(("entry", "problem"), [
    ("10.0.0.0/33", "not a valid CIDR"),
    ("*.10.0.0.1", "not addresses"),
    ("exa mple.com", "not allowed in a host name"),
    ("host:99999", "port must be"),
    ("http://user:pw@host", "credentials"),
    ("[fd00::1", "malformed"),
    ("*", "not allowed in a host name"),
    ("1.2.3.256", "not a valid IPv4"),
])
def test_malformed_allow_entries_fail_at_start(entry: str, problem: str):
    with pytest.raises(ValueError, match="TRUSTED_CUSTOM_HOSTS") as caught:
        guard_for(trusted_custom_hosts=(entry,))
    assert problem in str(caught.value)


@pytest.mark.parametrize(("text", "name", "wildcard", "network", "port"), [
    ("LLM.Example.COM", "llm.example.com", False, None, None),
    ("*.svc.cluster.local", "svc.cluster.local", True, None, None),
    ("llm.example.com:8000", "llm.example.com", False, None, 8000),
    ("10.0.0.0/8", None, False, "10.0.0.0/8", None),
    ("10.0.0.5/8", None, False, "10.0.0.0/8", None),
    ("10.0.0.5", None, False, "10.0.0.5/32", None),
    ("10.0.0.5:8000", None, False, "10.0.0.5/32", 8000),
    ("::1", None, False, "::1/128", None),
    ("[fd00::5]:8000", None, False, "fd00::5/128", 8000),
    ("fd00::/8", None, False, "fd00::/8", None),
    ("::ffff:10.0.0.5", None, False, "10.0.0.5/32", None),
    ("https://LLM.example.com:8443/v1", "llm.example.com", False, None, 8443),
    ("http://llm.example.com/v1", "llm.example.com", False, None, None),
    ("bücher.example", "xn--bcher-kva.example", False, None, None),
])
def test_allow_entry_forms(text, name, wildcard, network, port):
    entry = parse_allow_entry(text)
    assert (entry.name, entry.wildcard, entry.port) == (name, wildcard, port)
    assert (str(entry.network) if entry.network else None) == network


def test_wildcard_is_label_aligned():
    guard = guard_for(host="0.0.0.0", trusted_custom_hosts=("*.corp.example",))
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://10.0.0.1.evilcorp.example.nip.io/")
    policy = guard.policy
    assert policy.name_allowed("a.b.corp.example", 80) == (True, True)
    assert policy.name_allowed("corp.example", 80) == (True, True)
    assert policy.name_allowed("evilcorp.example", 80) == (False, False)


def test_set_extra_allows_replaces_the_catalog_entries():
    guard = guard_for(host="0.0.0.0")
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://10.0.0.5:8000/v1")  # also caches the refusal
    guard.set_extra_allows(["10.0.0.5:8000"])
    assert guard.check_url("http://10.0.0.5:8000/v1").host == "10.0.0.5"
    guard.set_extra_allows(["*.svc.cluster.local"])  # replaces, does not add
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://10.0.0.5:8000/v1")
    guard.check_url("http://vllm.llm.svc.cluster.local:8000")


def test_set_extra_allows_is_all_or_nothing():
    guard = guard_for(host="0.0.0.0")
    guard.set_extra_allows(["10.0.0.5"])
    with pytest.raises(ValueError, match="catalog allow entry"):
        guard.set_extra_allows(["10.0.0.6", "not a host"])
    guard.check_url("http://10.0.0.5/")  # the previous entries are still in force
    with pytest.raises(InvalidCustomHost):
        guard.check_url("http://10.0.0.6/")


def test_extra_allows_cannot_unlock_metadata():
    guard = guard_for(host="0.0.0.0")
    guard.set_extra_allows(["169.254.169.254", "metadata.google.internal", "0.0.0.0/0"])
    with pytest.raises(InvalidCustomHost, match="always blocked"):
        guard.check_url("http://169.254.169.254/")


def test_check_url_caches_results():
    guard = guard_for()
    first = guard.check_url("http://127.0.0.1:8000/v1")
    assert guard.check_url("http://127.0.0.1:8000/v1") is first


def test_check_url_cache_is_bounded():
    guard = guard_for(host="0.0.0.0")
    for n in range(guard_module.URL_CACHE_SIZE + 200):
        guard.check_url(f"https://api.example.com/v{n}")
        with pytest.raises(InvalidCustomHost):
            guard.check_url(f"http://10.0.0.1/v{n}")
    assert len(guard._urls) <= guard_module.URL_CACHE_SIZE  # white-box: the bound is the point


def test_every_refusal_is_a_security_event_without_credentials(caplog):
    guard = guard_for(host="0.0.0.0")
    url = "http://admin:s3cr3t-pass@10.0.0.1/v1"
    with caplog.at_level(logging.WARNING, logger="sluicegate.security"):
        for _ in range(2):  # the second refusal comes from the cache and is logged too
            with pytest.raises(InvalidCustomHost):
                guard.check_url(url)
        with pytest.raises(InvalidCustomHost):
            guard.check_url("http://10.0.0.1/v1?api_key=sk-live-123#zqxfrag")
        with pytest.raises(InvalidCustomHost):
            guard.check_url("http://x/\r\nFAKE LOG LINE")
    records = [r for r in caplog.records if r.name == "sluicegate.security"]
    assert len(records) == 4 and all(r.levelno == logging.WARNING for r in records)
    text = "\n".join(r.getMessage() for r in records) + repr([r.__dict__ for r in records])
    for secret in ("admin", "s3cr3t", "sk-live-123", "zqxfrag", "\r\n"):
        assert secret not in text
    assert records[0].stage == "request" and records[0].event == "ssrf_blocked"


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:pass@host/v1", "http://***@host/v1"),
    ("http://user:p@ss/w#rd@host:8000/", "http://***@host:8000/"),
    ("http://host/v1?key=1", "http://host/v1?***"),
    ("user@host", "***@host"),
    (None, "<NoneType>"),
    # A header pasted after the URL: nothing past the whitespace is shown (it was, key and all).
    ("http://127.0.0.1:8000/v1 Authorization: Bearer sk-pasted-123", "http://127.0.0.1:8000/v1 ***"),
    ("http://host/v1\tkey=sk-pasted-123", "http://host/v1 ***"),
    ("http://host/v1\r\nFAKE LOG LINE", "http://host/v1 ***"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_blocked_reason_finds_the_block_in_chains():
    block = InvalidCustomHost("x")
    assert blocked_reason(block) is block
    try:
        try:
            raise block
        except InvalidCustomHost as exc:
            raise OSError("wrapped") from exc
    except OSError as outer:
        assert blocked_reason(outer) is block
    assert blocked_reason(ExceptionGroup("g", [ValueError(), block])) is block
    assert blocked_reason(OSError("dns failed")) is None
