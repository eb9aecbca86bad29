"""HostPolicy: loopback names always, IP literals beyond loopback, DNS names only when listed."""

from __future__ import annotations

import pytest

from sluicegate.server.hosts import HostPolicy, host_name, refused_host, target_authority


@pytest.mark.parametrize(("header", "name"), [
    ("Example.COM", "example.com"), ("example.com.:8787", "example.com"), ("[::1]:8787", "::1"),
    ("[::1]", "::1"), ("::1", "::1"), ("127.0.0.1:80", "127.0.0.1"), ("", ""),
])
def test_host_name(header, name):
    assert host_name(header) == name


LOOPBACK = HostPolicy.build("127.0.0.1", ())
WILDCARD = HostPolicy.build("0.0.0.0", ())
LISTED = HostPolicy.build("0.0.0.0", ("gw.example.com", "*.internal.example", "Other.Example."))


@pytest.mark.parametrize(("policy", "host", "allowed"), [
    (LOOPBACK, "127.0.0.1:8787", True),
    (LOOPBACK, "localhost:1", True),
    (LOOPBACK, "LOCALHOST.", True),
    (LOOPBACK, "[::1]:8787", True),
    (LOOPBACK, "127.0.0.2", True),
    (LOOPBACK, "evil.example:8787", False),  # DNS rebinding
    (LOOPBACK, "10.0.0.5", False),
    (LOOPBACK, "localhost.evil.example", False),
    (LOOPBACK, "127.0.0.1.evil.example", False),
    (LOOPBACK, "", False),
    (WILDCARD, "10.0.0.5:8787", True),
    (WILDCARD, "[fd00::5]:8787", True),
    (WILDCARD, "localhost", True),
    (WILDCARD, "gw.example.com", False),
    (LISTED, "gw.example.com:443", True),
    (LISTED, "GW.EXAMPLE.COM", True),
    (LISTED, "other.example", True),
    (LISTED, "a.internal.example", True),
    (LISTED, "internal.example", False),
    (LISTED, "gw.example.com.evil.example", False),
    (HostPolicy.build("127.0.0.1", ("*",)), "anything.example", True),
])
def test_allows(policy, host, allowed):
    assert policy.allows(host) is allowed


def test_absolute_form_authority_is_checked_too():
    assert target_authority("http://user@evil.example:80/v1?x=/") == "evil.example:80"
    assert target_authority("/v1/models?next=http://x") is None
    assert refused_host(LOOPBACK, "127.0.0.1", "http://evil.example/v1/models") == "evil.example"
    assert refused_host(LOOPBACK, None, "/v1/models") is None
    assert refused_host(LOOPBACK, "evil.example", "/v1/models") == "evil.example"


# Entries no Host header could match: accepted, each refused the very name the operator meant to allow (or,
# "*." and "*..", switched the check off as if "*" had been written).
NOT_HOST_NAMES = ["https://gw.example.com", "*example.com", "user@gw", "gw.example.com/v1", "*.", "*..", ".",
                  "ex*ample.com", "*.*.example.com", "gw.*", "gw .example.com", "gw.example.com,", ".example.com",
                  "a..b", "-bad.example", "bad-.example", "gw.example.com:abc", "a:b:c", "x" * 64 + ".example",
                  ".".join(["a" * 60] * 5), "bad\x00.example", "b\u00fccher..example", "[fd00::5", "[not-an-ip]:80", "[]"]


@pytest.mark.parametrize("entry", NOT_HOST_NAMES)
def test_an_entry_that_is_not_a_host_name_stops_the_start(entry):
    with pytest.raises(ValueError, match="SLUICEGATE_ALLOWED_HOSTS: '.*' is not a host name"):
        HostPolicy.build("0.0.0.0", (entry,))


@pytest.mark.parametrize(("entry", "header"), [
    ("gw.example.com:8080", "gw.example.com:443"),  # a port in an entry: any port is answered, as without one
    ("*.example.com:8080", "a.example.com"),
    ("b\u00fccher.example", "xn--bcher-kva.example"),  # browsers send a Unicode name in IDNA
    ("*.B\u00fccher.Example.", "gw.xn--bcher-kva.example:8787"),
    ("exa_mple.com", "exa_mple.com"),
    ("x" * 63 + ".example", "x" * 63 + ".example"),
    ("[fd00::5]:80", "[fd00::5]"),
])
def test_an_entry_is_compared_as_a_browser_sends_the_name(entry, header):
    policy = HostPolicy.build("127.0.0.1", (entry,))
    assert policy.allows(header) and not policy.any_host
    assert not policy.allows("evil.example")
