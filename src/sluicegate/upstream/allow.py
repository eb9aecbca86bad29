"""Allow-list entries: what an operator writes in TRUSTED_CUSTOM_HOSTS / ``allowed_upstreams``.

Accepted forms (case-insensitive, optional ``:port`` on all but bare IPv6 and CIDR):
  ``llm.corp.example``        exactly this host
  ``*.svc.cluster.local``     the domain and every name under it
  ``10.0.0.0/8``, ``fd00::/8``  a range of addresses (CIDR)
  ``10.0.0.5``, ``[fd00::5]:8000``, ``::1``  one address
  ``http://llm.corp:8000/v1`` a URL: only its host (and explicit port) count
Pure; parse errors are ValueError naming the entry, so a typo fails the start, not a request.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from .addresses import IPAddress, NotAnIPv4, parse_ipv4_host, unmapped
from .names import BadHostName, check_name_syntax, is_within, normalise_name


@dataclass(frozen=True)
class AllowEntry:
    text: str  # as written, for messages and logs
    name: str | None = None
    wildcard: bool = False  # name covers its subdomains too
    network: IPv4Network | IPv6Network | None = None
    port: int | None = None  # None: any port
    # A name entry normally vouches for whatever the name resolves to (the operator said "trust this
    # host"). The built-in localhost entries do not: "localhost" must still resolve to loopback.
    trusts_addresses: bool = True

    def matches_name(self, name: str, port: int) -> bool:
        if self.name is None or (self.port is not None and self.port != port):
            return False
        return is_within(name, self.name) if self.wildcard else name == self.name

    def matches_ip(self, address: IPAddress, port: int) -> bool:
        if self.network is None or (self.port is not None and self.port != port):
            return False
        address = unmapped(address)
        return address.version == self.network.version and address in self.network


def _split_port(text: str, entry: str) -> tuple[str, int | None]:
    """``host:port`` / ``[v6]:port`` / bare IPv6 → (host, port)."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"allow entry {entry!r}: malformed [IPv6] literal")
        return host, _port(rest[1:], entry) if rest else None
    if text.count(":") > 1:
        return text, None  # bare IPv6 address or range: no port possible
    host, sep, port_text = text.partition(":")
    return host, _port(port_text, entry) if sep else None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"allow entry {entry!r}: port must be a number from 1 to 65535")
    return int(text)


def _strip_url(text: str, entry: str) -> str:
    if "://" not in text:
        return text
    authority = text.split("://", 1)[1]
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    if "@" in authority:
        raise ValueError(f"allow entry {entry!r}: credentials do not belong in an allow entry")
    return authority


def _address_entry(host: str, port: int | None, entry: str) -> AllowEntry | None:
    try:
        address = ipaddress.ip_address(host) if ":" in host else parse_ipv4_host(host)
    except NotAnIPv4 as exc:
        raise ValueError(f"allow entry {entry!r}: {exc}") from None
    except ValueError:
        return None
    if address is None:
        return None
    return AllowEntry(entry, network=ipaddress.ip_network(unmapped(address)), port=port)


def parse_allow_entry(text: str) -> AllowEntry:
    """One entry as written by the operator → AllowEntry; ValueError says what is wrong with it."""
    entry = text.strip()
    body = _strip_url(entry.lower(), entry)
    if "/" in body:
        try:
            return AllowEntry(entry, network=ipaddress.ip_network(body, strict=False))
        except ValueError:
            raise ValueError(f"allow entry {entry!r}: not a valid CIDR range") from None
    host, port = _split_port(body, entry)
    wildcard = host.startswith("*.")
    if not wildcard:
        found = _address_entry(host, port, entry)
        if found is not None:
            return found
    try:
        name = normalise_name(host[2:] if wildcard else host)
        check_name_syntax(name)
    except BadHostName as exc:
        raise ValueError(f"allow entry {entry!r}: {exc}") from None
    if parse_ipv4_host(name) is not None:
        raise ValueError(f"allow entry {entry!r}: '*.' applies to domains, not addresses; use a CIDR")
    return AllowEntry(entry, name=name, wildcard=wildcard, port=port)


def parse_allow_entries(texts, source: str) -> tuple[AllowEntry, ...]:
    """Parse every non-blank entry; ValueError names ``source`` (e.g. TRUSTED_CUSTOM_HOSTS)."""
    parsed = []
    for text in texts:
        if text.strip():
            try:
                parsed.append(parse_allow_entry(text))
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
    return tuple(parsed)
