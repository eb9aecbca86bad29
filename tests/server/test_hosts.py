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


@pytest.mark.parametrize("entry", ["https://gw.example.com", "*example.com", "user@gw", "gw.example.com/v1"])
def test_an_entry_that_is_not_a_host_name_stops_the_start(entry):
    with pytest.raises(ValueError, match="SLUICEGATE_ALLOWED_HOSTS: '.*' is not a host name"):
        HostPolicy.build("0.0.0.0", (entry,))
