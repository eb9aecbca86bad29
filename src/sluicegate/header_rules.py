"""Which client headers may be forwarded upstream verbatim: the one rule, whoever asks.

The same names are refused wherever a forward list is written: the ``x-portkey-forward-headers`` header
(server/headers.py), a Gateway Config's ``forward_headers`` (config/fields.py) and a catalog provider's
(catalog/entries.py). Each caller words its own message; none keeps a list of its own.
"""

from __future__ import annotations

# Never forwardable: they would let a client steer the hop itself (framing, routing, the proxy's own
# credential) or talk to a cloud metadata service through the gateway. x-portkey-* are refused by prefix.
UNFORWARDABLE = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
        "trailer", "proxy-authorization", "proxy-connection", "expect",
        "metadata-flavor", "x-aws-ec2-metadata-token", "x-google-metadata-request",
    }
)
GATEWAY_PREFIX = "x-portkey-"


def fold_header_name(name: str) -> str:
    """Header names compare case-insensitively, with ``_`` and ``-`` alike (the SDK's ``x_api_key`` form)."""
    return name.strip().lower().replace("_", "-")


def may_forward(folded: str) -> bool:
    """May the header ``folded`` (see ``fold_header_name``) go upstream verbatim?"""
    return not folded.startswith(GATEWAY_PREFIX) and folded not in UNFORWARDABLE
