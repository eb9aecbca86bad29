"""Forward-header names: one matching rule and one forbidden list for the request header
(server/headers.py), Gateway Configs (config/fields.py) and catalog providers (catalog/entries.py); each
caller words its own message, none keeps a list of its own.

The SDKs make users write header names in their own language's style: the Python SDK takes
``x_api_key``, the Node SDK ``xApiKey`` (and sends the header itself as ``x-api-key``), curl users write
``X-Api-Key``. A listed name therefore matches every form: as written, any case, ``_`` and ``-`` alike, and
camelCase/PascalCase split into kebab-case (``xMyCustomHeader`` ≡ ``x-my-custom-header``). Each listed
name is expanded once, when its list is parsed, into the folded forms it can match; matching is then a
plain lookup. Pure: no I/O.

Also the one split of a credential header's value into its scheme and its token (``auth_scheme_split``), for
the request's credential (server/headers.py) and the log's redaction (telemetry/redact.py), and the one rule
for what a header line may never hold, for both edges that write them (the server's
answers, server/native.py; the upstream client's requests, upstream/h1.py): ``CONTROL_CHARACTERS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PORTKEY_PREFIX = "x-portkey-"
# A humps boundary: "xApi" → "x-Api", "HTTPHeader" → "HTTP-Header", "v2Key" → "v2-Key".
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DASHES = re.compile(r"-{2,}")
# In a header's name or value: never written (a line end would start a header of its own); tab is allowed.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# What a header's name may be made of (RFC 9110's token).
HEADER_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# The gateway's and the SDKs' own x-portkey-* headers. Any other x-portkey-<name> header is a custom header
# the SDK prefixed because the client did not list it in its own forward list (``x_api_key="…"`` →
# ``x-portkey-x-api-key``); only those may stand in for <name> when a list names it.
GATEWAY_HEADER_NAMES = frozenset(
    {
        "api-key", "virtual-key", "provider", "config", "custom-host", "forward-headers", "metadata",
        "trace-id", "request-timeout", "strict-open-ai-compliance", "debug", "span-id", "parent-span-id",
        "span-name", "package-version", "runtime", "runtime-version", "cache-namespace",
        "cache-force-refresh", "retry-count", "mode", "sensitive-headers",
    }
)


# Never forwardable: they would let a client steer the hop itself (framing, routing, the proxy's own
# credential) or talk to a cloud metadata service through the gateway. x-portkey-* are refused by prefix.
UNFORWARDABLE = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
        "trailer", "proxy-authorization", "proxy-connection", "expect",
        # The gateway decodes every request body (server/bodies.py): the upstream gets plain bytes, which a
        # forwarded Content-Encoding: gzip would mislabel.
        "content-encoding",
        "metadata-flavor", "x-aws-ec2-metadata-token", "x-google-metadata-request",
    }
)


def may_forward(folded: str) -> bool:
    """May the header ``folded`` (one of ``forms(name)``) go upstream verbatim?"""
    return not folded.startswith(PORTKEY_PREFIX) and folded not in UNFORWARDABLE


def fold(name: str) -> str:
    """Case-insensitive, with ``_`` and ``-`` alike: ``X_Api_Key`` → ``x-api-key``."""
    return name.strip().lower().replace("_", "-")


def kebab(name: str) -> str:
    """camelCase / PascalCase split at its humps, then folded: ``xOrgID`` → ``x-org-id``."""
    return _DASHES.sub("-", fold(_CAMEL_BOUNDARY.sub("-", name.strip()))).strip("-")


def forms(name: str) -> tuple[str, ...]:
    """The folded names one listed name matches: as written (folded) and split at its humps."""
    return tuple(dict.fromkeys(form for form in (fold(name), kebab(name)) if form))


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Every form of every listed name, in order, without duplicates."""
    return tuple(dict.fromkeys(form for name in names for form in forms(name)))


def prefixed_stand_in(name: str) -> str | None:
    """The SDK's ``x-portkey-<name>`` form of a folded name, unless it is one of the gateway's own headers."""
    return None if name in GATEWAY_HEADER_NAMES else PORTKEY_PREFIX + name


def connection_named(value: str) -> frozenset[str]:
    """The header names a Connection header lists (``keep-alive, x-secret`` → ``{"x-secret"}``): they belong to
    that hop alone. Its usual value, a bare option, names none."""
    if "," not in value and value.strip().lower() in ("keep-alive", "close"):
        return frozenset()
    return frozenset(token.strip().lower() for token in value.split(",")) - {"keep-alive", "close", ""}


def auth_scheme_split(value: str) -> tuple[str, str]:
    """``Bearer k`` → ``("Bearer", "k")``; ``(value, "")`` when nothing follows a scheme. RFC 9110 separates
    the two by spaces, but clients also send a tab (``Bearer<TAB>k``): any run of spaces and tabs separates
    them, else the tab stayed in the "scheme", the key went upstream as ``Bearer Bearer<TAB>k`` and the log
    did not know the token alone as a secret."""
    scheme, _, rest = value.partition(" ")
    if "\t" in scheme:  # a tab came first (rare: one check on the common path)
        scheme, _, rest = value.partition("\t")
    return scheme, rest.strip()
