"""Host names for the SSRF guard: IDNA normalisation, syntax, and which names are blocked.

Pure functions; no I/O, no state. A name is judged twice: here, by what it says (``localhost``,
``metadata.google.internal``, ``127.0.0.1.nip.io``), and later by what it resolves to
(``guard.GuardedResolver``). The name rules are the cheap first filter and give the clearer message;
the address rules are the ones that cannot be talked around.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import idna

from .addresses import ALWAYS, DEFAULT, METADATA

MAX_NAME = 253  # DNS limit on a full name (RFC 1035), without the trailing dot
MAX_LABEL = 63
# "_" is not valid in DNS host names, but docker-compose service names use it and resolve fine.
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")

KUBE_API = "the Kubernetes API server"
REBINDING = "a DNS rebinding service that points names at any address"


class NameVerdict(NamedTuple):
    kind: str  # ALWAYS or DEFAULT (see addresses.py)
    label: str  # "a cloud metadata endpoint", used in "<name> is a cloud metadata endpoint"


class BadHostName(ValueError):
    """The host is not a syntactically valid name; the message says why, for the user."""


# Each entry blocks the name itself and every name under it. ALWAYS entries cannot be allow-listed.
ALWAYS_BLOCKED_NAMES: tuple[tuple[str, str], ...] = (
    ("metadata", METADATA),
    ("instance-data", METADATA),
    ("metadata.google.internal", METADATA),
    ("metadata.gce.internal", METADATA),
    ("metadata.goog", METADATA),
    ("metadata.azure.com", METADATA),
    ("metadata.internal", METADATA),
    ("metadata.do.internal", METADATA),
    ("metadata.packet.net", METADATA),
    ("metadata.platformequinix.com", METADATA),
    ("metadata.cloud.ibm.com", METADATA),
    ("metadata.tencentyun.com", METADATA),
    ("instance-data.ec2.internal", METADATA),
    # The API server holds every secret in the cluster; a pod's service account token opens it.
    ("kubernetes", KUBE_API),
    ("kubernetes.default", KUBE_API),
    ("kubernetes.default.svc", KUBE_API),
    ("kubernetes.default.svc.cluster.local", KUBE_API),
)

_PRIVATE_ZONE = "a name in a private DNS zone (.{zone})"

# Blocked unless allow-listed. Private zones are blocked by name so the user gets a clear message
# before any lookup; ``*.svc.cluster.local`` in the allow-list unlocks Kubernetes services (#1587).
DEFAULT_BLOCKED_NAMES: tuple[tuple[str, str], ...] = (
    ("localhost", "a loopback name"),
    *((domain, REBINDING) for domain in (
        "nip.io", "sslip.io", "xip.io", "localtest.me", "lvh.me", "vcap.me", "traefik.me",
        "localhost.run", "rbndr.us", "1u.ms",
    )),
    ("consul", "a Consul service-discovery name"),
    ("internal.cloudapp.net", "an Azure private DNS name"),
    *((zone, _PRIVATE_ZONE.format(zone=zone)) for zone in (
        "local", "localdomain", "internal", "intranet", "lan", "home", "corp", "private",
        "test", "invalid", "onion", "arpa",
    )),
)


def is_within(name: str, domain: str) -> bool:
    """``name`` is ``domain`` or a subdomain of it (label-aligned: ``evilnip.io`` is not in nip.io)."""
    return name == domain or name.endswith("." + domain)


def _check_label(label: str, host: str) -> None:
    if not label:
        raise BadHostName(f"{host!r} has an empty label")
    if len(label) > MAX_LABEL:
        raise BadHostName(f"{host!r} has a label longer than {MAX_LABEL} characters")
    if not set(label) <= _LABEL_CHARS:
        raise BadHostName(f"{host!r} contains characters not allowed in a host name")
    if label.startswith("xn--"):
        try:
            idna.ulabel(label)  # refuses broken punycode and labels that decode to disallowed text
        except (idna.IDNAError, UnicodeError) as exc:
            raise BadHostName(f"{host!r} has an invalid punycode label") from exc


def _to_ascii(host: str) -> str:
    """Apply the UTS #46 mapping browsers use, then encode non-ASCII labels as punycode.

    The mapping turns fullwidth digits and dots, circled letters and the like into their plain
    forms, so ``１２７。０.０.１`` becomes ``127.0.0.1`` and is judged as such, not as a name.
    """
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        return ".".join(lbl if lbl.isascii() else idna.alabel(lbl).decode() for lbl in mapped.split("."))
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise BadHostName(f"{host!r} is not a valid internationalised domain name") from exc


def normalise_name(host: str) -> str:
    """Lower-case ASCII form without the trailing dot; IDNA applied. Syntax is checked separately,
    after the caller has had a chance to read the result as an IPv4 address."""
    if not host:
        raise BadHostName("the URL has no host")
    ascii_host = host if host.isascii() else _to_ascii(host)
    ascii_host = ascii_host.lower()
    if ascii_host.endswith(".") and not ascii_host.endswith(".."):
        ascii_host = ascii_host[:-1]
    return ascii_host


def check_name_syntax(name: str) -> None:
    """Raise BadHostName unless ``name`` (already normalised) is a usable host name."""
    if not name:
        raise BadHostName("the URL has no host")
    if len(name) > MAX_NAME:
        raise BadHostName(f"the host name is longer than {MAX_NAME} characters")
    for label in name.split("."):
        _check_label(label, name)


# Lookup tables keyed by domain: a name is checked by its few suffixes, not against every entry.
_ALWAYS_BY_DOMAIN = MappingProxyType(dict(ALWAYS_BLOCKED_NAMES))
_DEFAULT_BY_DOMAIN = MappingProxyType(dict(DEFAULT_BLOCKED_NAMES))


def _suffixes(name: str) -> list[str]:
    """``a.b.c`` → ``["a.b.c", "b.c", "c"]``: the name and every domain it is within."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def classify_name(name: str) -> NameVerdict | None:
    """Why a (normalised) name is blocked, or None when only its addresses can tell."""
    suffixes = _suffixes(name)
    for kind, table in ((ALWAYS, _ALWAYS_BY_DOMAIN), (DEFAULT, _DEFAULT_BY_DOMAIN)):
        for suffix in suffixes:
            label = table.get(suffix)
            if label is not None:
                return NameVerdict(kind, label)
    return None
