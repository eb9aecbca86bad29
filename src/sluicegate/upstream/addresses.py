"""IP address facts for the SSRF guard: parsing every IPv4 notation, and which ranges are blocked.

Pure functions over ``ipaddress`` objects; no I/O, no state. ``guard.py`` and ``policy.py`` decide
what to do with a verdict (allow-list, messages, logging); this module only says what an address *is*.

Two kinds of verdict:
  - ``ALWAYS``: cloud metadata endpoints. No allow-list entry can unlock them, because a leaked
    instance credential is worth more than any private model the operator might host there.
  - ``DEFAULT``: private, loopback, link-local, reserved … ranges. Blocked unless the operator
    allow-lists the address (or a name that resolves to it).
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import NamedTuple

IPAddress = IPv4Address | IPv6Address

ALWAYS = "always"
DEFAULT = "default"

METADATA = "a cloud metadata endpoint"


class AddressVerdict(NamedTuple):
    kind: str  # ALWAYS or DEFAULT
    label: str  # "a private address", used in "resolves to 10.0.0.5, a private address"


class _Range(NamedTuple):
    version: int
    first: int  # as integers: ``address in network`` costs ~2 µs, an int compare ~50 ns
    last: int
    label: str


def _nets(*pairs: tuple[str, str]) -> tuple[_Range, ...]:
    nets = [(ipaddress.ip_network(cidr), label) for cidr, label in pairs]
    return tuple(_Range(n.version, int(n.network_address), int(n.broadcast_address), lbl) for n, lbl in nets)


# Metadata services of AWS, GCP, Azure, Alibaba, Oracle, ECS/EKS task roles … Reachable from inside
# almost every cloud VM and container; the classic SSRF prize.
ALWAYS_BLOCKED_NETS = _nets(
    ("169.254.169.0/24", METADATA),  # AWS/GCP/Azure/OCI/DO 169.254.169.254, AWS DNS .253
    ("169.254.170.2/32", METADATA),  # AWS ECS task credentials
    ("169.254.170.23/32", METADATA),  # AWS EKS pod identity agent
    ("100.100.100.200/32", METADATA),  # Alibaba Cloud
    ("168.63.129.16/32", METADATA),  # Azure wireserver
    ("192.0.0.192/32", METADATA),  # Oracle Cloud
    ("fd00:ec2::/96", METADATA),  # AWS IPv6 IMDS fd00:ec2::254, ECS fd00:ec2::23
    ("fd20:ce::254/128", METADATA),  # GCP IPv6 metadata server
)

# Order matters only for the label: the first matching range names the reason.
DEFAULT_BLOCKED_V4 = _nets(
    ("0.0.0.0/32", "the unspecified address"),
    ("0.0.0.0/8", "a 'this network' address (0.0.0.0/8)"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
    ("192.0.0.0/24", "an IETF protocol assignment address (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
)

DEFAULT_BLOCKED_V6 = _nets(
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
    ("2001::/32", "a Teredo tunnel address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("100::/64", "a discard-only address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("::/96", "a deprecated IPv4-compatible address"),
)

# IPv6 prefixes that carry an IPv4 address in their low 32 bits; the IPv4 rules apply to it.
_LOW32_EMBEDDING = _nets(
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("::ffff:0:0:0/96", "IPv4-translated"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64"),
)

_LOOPBACK_NETS = _nets(("127.0.0.0/8", "loopback"), ("::1/128", "loopback"))


_DIGITS = MappingProxyType(
    {8: frozenset("01234567"), 10: frozenset("0123456789"), 16: frozenset("0123456789abcdefABCDEF")}
)


class NotAnIPv4(ValueError):
    """The host ends in a number, so it must be an IPv4 address, but it is not a valid one."""


def _ipv4_part(part: str) -> int | None:
    """One dotted part in the WHATWG URL notation: decimal, 0x-hex or 0-prefixed octal."""
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
        if digits == "":
            return 0  # browsers read a bare "0x" as zero
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits or any(ch not in _DIGITS[base] for ch in digits):
        return None
    return int(digits, base)


def _ends_in_number(parts: list[str]) -> bool:
    last = parts[-1]
    return last.isascii() and (last.isdigit() or (last[:2] in ("0x", "0X") and _ipv4_part(last) is not None))


def parse_ipv4_host(host: str) -> IPv4Address | None:
    """Read ``host`` as browsers do: ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are
    all 127.0.0.1. Returns None for a host that is a name, raises NotAnIPv4 for a broken number.

    We must parse exactly like the most permissive client would, or an attacker writes the loopback
    address in a notation we read as a name while the socket layer reads it as 127.0.0.1.
    """
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # one trailing dot is an absolute name, "127.0.0.1." is still 127.0.0.1
    if not parts or not _ends_in_number(parts):
        return None
    values = [_ipv4_part(p) if p else None for p in parts]
    if len(parts) > 4 or any(v is None for v in values):
        raise NotAnIPv4(f"{host} is not a valid IPv4 address")
    nums = [v for v in values if v is not None]
    if any(v > 255 for v in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise NotAnIPv4(f"{host} is not a valid IPv4 address")
    value = nums[-1]
    for index, part_value in enumerate(nums[:-1]):
        value += part_value << (8 * (3 - index))
    return IPv4Address(value)


def parse_ip(text: str) -> IPAddress | None:
    """A literal as a resolver returns it (IPv6 maybe with a %zone); None when it is not one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.scope_id:
        # The zone only picks an interface; the range rules apply to the address itself.
        address = IPv6Address(text.split("%", 1)[0])
    return address


def embedded_ipv4(address: IPv6Address) -> list[tuple[IPv4Address, str]]:
    """Every IPv4 address an IPv6 address carries, with the name of the form that carries it."""
    found: list[tuple[IPv4Address, str]] = []
    value = int(address)
    for net in _LOW32_EMBEDDING:
        if net.first <= value <= net.last and value > 1:  # "::" and "::1" are IPv6's own forms
            found.append((IPv4Address(value & 0xFFFFFFFF), net.label))
    if address.sixtofour is not None:
        found.append((address.sixtofour, "6to4"))
    if address.teredo is not None:
        server, client = address.teredo
        found += [(server, "Teredo server"), (client, "Teredo client")]
    return found


def _first_match(address: IPAddress, table: tuple[_Range, ...]) -> str | None:
    value, version = int(address), address.version
    for net in table:
        if net.version == version and net.first <= value <= net.last:
            return net.label
    return None


def classify_ipv4(address: IPv4Address) -> AddressVerdict | None:
    label = _first_match(address, ALWAYS_BLOCKED_NETS)
    if label:
        return AddressVerdict(ALWAYS, label)
    label = _first_match(address, DEFAULT_BLOCKED_V4)
    if label:
        return AddressVerdict(DEFAULT, label)
    if not address.is_global:  # whatever IANA adds later that our table does not name yet
        return AddressVerdict(DEFAULT, "a reserved address")
    return None


def classify_ipv6(address: IPv6Address) -> AddressVerdict | None:
    label = _first_match(address, ALWAYS_BLOCKED_NETS)
    if label:
        return AddressVerdict(ALWAYS, label)
    embedded = embedded_ipv4(address)
    # Metadata reached through any tunnel or translation form is still metadata: check those first.
    verdicts = [(v4, form, classify_ipv4(v4)) for v4, form in embedded]
    for kind in (ALWAYS, DEFAULT):
        for v4, form, verdict in verdicts:
            if verdict is not None and verdict.kind == kind:
                return AddressVerdict(kind, f"{verdict.label} ({form} form of {v4})")
    if address.ipv4_mapped is not None:
        return None  # a dual-stack socket connects straight to the (public) IPv4 address
    label = _first_match(address, DEFAULT_BLOCKED_V6)
    if label:
        return AddressVerdict(DEFAULT, label)
    if not address.is_global:
        return AddressVerdict(DEFAULT, "a reserved address")
    return None


def classify_ip(address: IPAddress) -> AddressVerdict | None:
    """None for a public address; otherwise why it is blocked and whether an allow entry can help."""
    if isinstance(address, IPv4Address):
        return classify_ipv4(address)
    return classify_ipv6(address)


def unmapped(address: IPAddress) -> IPAddress:
    """``::ffff:10.0.0.5`` is 10.0.0.5 on the wire, so allow entries for one match the other."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(address: IPAddress) -> bool:
    return _first_match(unmapped(address), _LOOPBACK_NETS) is not None
