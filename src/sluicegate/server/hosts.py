"""Which ``Host`` names the gateway answers for: the defence against DNS rebinding.

A web page on ``evil.example`` can make its name resolve to 127.0.0.1 and then call the gateway from the
victim's browser as if it were same-origin; the only trace is the ``Host: evil.example`` header. A
rebinding attack always needs a DNS name, so the rules are:

- loopback names (``localhost``, ``127.0.0.0/8``, ``::1``) are always accepted, with any port;
- bound beyond loopback, any IP literal is accepted too (a browser sends one only after navigating to that
  very address, and load balancers' health checks often use one);
- DNS names only when the operator lists them (``SLUICEGATE_ALLOWED_HOSTS``: exact names, ``*.example.com``
  for subdomains, or ``*`` to switch the check off).

An absolute-form request target (``GET http://name/v1/models``) names its host too: that name is
checked as well. A request without a ``Host`` (HTTP/1.0 tools) is accepted: browsers always send one.
Pure: the middleware that applies it lives in ``middleware.py`` (with the verdicts remembered per Host).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from ..upstream.policy import listens_on_loopback

# Matched before any IP parsing: the names nearly every local request carries (ipaddress costs ~2 µs).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "127.0.0.1", "::1"})


def host_name(value: str) -> str:
    """``Example.COM.:8787`` → ``example.com``; ``[::1]:8787`` → ``::1`` (port, brackets, final dot gone)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    name = value.rpartition(":")[0] if value.count(":") == 1 else value
    return name.rstrip(".")


# A DNS label as it arrives in a Host header (browsers send IDNA, "xn--" labels); "_" as some names use it.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NAME_MAX = 253


def allowed_entry(entry: str) -> str:
    """One SLUICEGATE_ALLOWED_HOSTS entry in the form ``allows`` compares: lower case, no port (any port is
    answered), no final dot, a Unicode name in IDNA (what a browser sends). An entry no Host header could
    ever match (a URL, a "*" inside a name, a space, an empty label, a label over 63 characters) is refused
    with a ValueError: accepted, it would refuse the very name the operator meant to allow, with nothing to
    say why."""
    text = entry.strip().lower()
    if text == "*":
        return text
    wildcard, name = ("*.", text[2:]) if text.startswith("*.") else ("", text)
    address = host_name(name)
    if not wildcard and _ip(address) is not None:
        return address  # an IP literal (answered anyway beyond loopback), without its brackets and port
    host, colon, port = name.rpartition(":")
    if not colon or not port.isdigit():
        host = name  # no port (a ":" left in the name refuses it below)
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        host = ""
    if not host or len(host) > _NAME_MAX or not all(map(_LABEL.fullmatch, host.split("."))):
        # ValueError: serve.py reports it as "cannot start", naming the entry (a host name, no secret).
        raise ValueError(f"SLUICEGATE_ALLOWED_HOSTS: '{entry.strip()}' is not a host name, '*.domain' or '*'")
    return wildcard + host


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class HostPolicy:
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".example.com" from "*.example.com"
    any_ip: bool = False
    any_host: bool = False

    @classmethod
    def build(cls, listen_host: str, allowed: tuple[str, ...]) -> HostPolicy:
        entries = [allowed_entry(entry) for entry in allowed if entry.strip()]
        return cls(
            names=frozenset(e for e in entries if not e.startswith("*")),
            suffixes=tuple(e[1:] for e in entries if e.startswith("*.")),
            any_ip=not listens_on_loopback(listen_host),
            any_host="*" in entries,
        )

    def allows(self, host_header: str) -> bool:
        if self.any_host:
            return True
        name = host_name(host_header)
        if name in self.names or name in LOOPBACK_NAMES or name.endswith(self.suffixes):
            return True
        ip = _ip(name)
        return ip is not None and (self.any_ip or ip.is_loopback)


class HostCheck(Protocol):
    def allows(self, host_header: str) -> bool: ...


class RememberedHosts:
    """A policy's verdicts remembered per ``Host`` value, a bounded number of them: a client sends the same
    Host on every request. Judging it again cost 0.4–0.5 µs for a name and ~4 µs for an IP literal
    (``ipaddress``); a remembered verdict 0.12 µs."""

    def __init__(self, policy: HostPolicy, size: int = 256) -> None:
        self.allows = lru_cache(maxsize=size)(policy.allows)


def target_authority(raw_target: str) -> str | None:
    """The host of an absolute-form request target (``http://user@name:80/x`` → ``name:80``), else None."""
    if raw_target.startswith("/"):  # origin-form: nearly every request
        return None
    _scheme, sep, rest = raw_target.partition("://")
    if not sep:
        return None
    return rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]


def refused_host(policy: HostCheck, host_header: str | None, raw_target: str) -> str | None:
    """The first name the request gives (Host header, absolute-form authority) that ``policy`` refuses."""
    for given in (host_header, target_authority(raw_target)):
        if given is not None and not policy.allows(given):
            return given
    return None
