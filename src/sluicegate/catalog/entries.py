"""Catalog records and their validation: what a provider is, what a saved config is, what may be shown.

Every validation error is a ``BadRequest`` whose message starts with the offending field, and never quotes a
header value (it may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadRequest, Conflict, GatewayError
from ..header_names import forms, may_forward
from ..providers.registry import SPEC_NAMES
from ..store.tables import DEFAULT_WORKSPACE_ID
from ..upstream.allow import parse_allow_entry

SPECS = SPEC_NAMES  # the API specs a provider may name: providers/registry.py is the one list
MAX_HEADERS = 32
MAX_HEADER_VALUE = 8192
MAX_MODELS = 1000
MAX_NOTES = 4000
MAX_URL = 2048

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # an RFC 9110 token
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters except TAB
_MULTILINE_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # notes may span lines
# Set by the HTTP client itself, or hop-by-hop: a stored value would corrupt framing or routing.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
        "expect",
    }
)

CheckHost = Callable[[str], object]  # the SSRF guard's check_url: raises to refuse


class NotInCatalog(GatewayError):
    """A management request named a provider or saved config that does not exist (HTTP 404)."""

    status = 404


def provider_not_found(slug: str) -> BadRequest:
    """The inference-path error for an unknown ``@slug`` (HTTP 400, Portkey-style envelope)."""
    return BadRequest(f"Provider @{slug} not found in the catalog")


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """What the hot path needs to call a catalog provider; header values are decrypted: never print them."""

    slug: str
    spec: str
    custom_host: str
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    models: tuple[str, ...] = ()
    default_model: str | None = None
    forward_headers: tuple[str, ...] = ()
    allow_entry: str | None = None
    workspace_id: str = DEFAULT_WORKSPACE_ID

    def allows_model(self, model: str) -> bool:
        return not self.models or model in self.models


@dataclass(frozen=True)
class ProviderFields:
    """The non-secret part of a provider, validated."""

    spec: str
    custom_host: str
    models: tuple[str, ...] = ()
    default_model: str | None = None
    forward_headers: tuple[str, ...] = ()
    allow_entry: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class ProviderInput:
    slug: str
    fields: ProviderFields
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    workspace_id: str = DEFAULT_WORKSPACE_ID
    integration_id: str | None = None  # made from a Portkey-style integration (catalog/integrations.py)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class ProviderPatch:
    """A partial update. UNSET leaves a field alone; ``headers`` merge by name, a None value removes one."""

    spec: Any = UNSET
    custom_host: Any = UNSET
    models: Any = UNSET
    default_model: Any = UNSET
    forward_headers: Any = UNSET
    allow_entry: Any = UNSET
    notes: Any = UNSET
    headers: tuple[tuple[str, str | None], ...] = field(default=(), repr=False)

    def apply(self, current: ProviderFields) -> dict[str, Any]:
        """The raw field values after the patch (validate them with ``validate_fields``)."""
        names = ("spec", "custom_host", "models", "default_model", "forward_headers", "allow_entry", "notes")
        return {n: getattr(current, n) if getattr(self, n) is UNSET else getattr(self, n) for n in names}


@dataclass(frozen=True)
class ProviderView:
    """A provider as management surfaces show it: header values masked."""

    slug: str
    fields: ProviderFields
    headers: tuple[tuple[str, str], ...]  # (name, masked value)
    created_at: datetime
    updated_at: datetime
    workspace_id: str = DEFAULT_WORKSPACE_ID
    integration_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        f = self.fields
        return {
            "slug": self.slug,
            "workspace_id": self.workspace_id,
            "integration_id": self.integration_id,
            "spec": f.spec,
            "custom_host": f.custom_host,
            "headers": dict(self.headers),
            "models": list(f.models),
            "default_model": f.default_model,
            "forward_headers": list(f.forward_headers),
            "allow_entry": f.allow_entry,
            "notes": f.notes,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class SavedConfigView:
    id: str
    text: str
    notes: str
    created_at: datetime
    updated_at: datetime
    workspace_id: str = DEFAULT_WORKSPACE_ID

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace_id": self.workspace_id,
            "config": self.text,
            "notes": self.notes,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def duplicate_provider(slug: str) -> Conflict:
    return Conflict(f"Provider @{slug} already exists")


# ---------------------------------------------------------------------------------------------- validation


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def validate_slug(value: Any, field_name: str = "slug") -> str:
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise BadRequest(
            f"{field_name}: must be 1-63 lowercase letters, digits or '-', starting and ending with a letter "
            f"or digit (got {_shown(value)})"
        )
    return value


def validate_spec(value: Any) -> str:
    if value not in SPECS:
        raise BadRequest(f"spec: unknown API spec {_shown(value)} (supported: {', '.join(SPECS)})")
    return value


def validate_custom_host(value: Any, check_host: CheckHost | None) -> str:
    """An http(s) base URL including its version path (``…/v1``); trailing slashes dropped."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("custom_host: required, an http:// or https:// URL")
    url = value.strip().rstrip("/")
    if len(url) > MAX_URL or _CONTROL_RE.search(url) or " " in url:
        raise BadRequest("custom_host: must be a URL without spaces or control characters, at most 2048 long")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket: urlsplit refuses it itself
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"custom_host: must be an http:// or https:// URL with a host (got {_shown(url)})")
    if "@" in parts.netloc:
        # The URL is stored in clear; a password in it would bypass the vault.
        raise BadRequest("custom_host: credentials in the URL are not allowed; put them in an auth header")
    if parts.query or parts.fragment:
        raise BadRequest("custom_host: must not have a query string or fragment")
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:
        raise BadRequest(f"custom_host: invalid port (got {_shown(url)})") from None
    if check_host is not None:
        try:
            check_host(url)
        except BadRequest as exc:  # the SSRF guard's InvalidCustomHost is one
            raise BadRequest(f"custom_host: {exc.message}{_allow_hint(exc.message, parts.hostname)}") from None
    return url


def _allow_hint(reason: str, host: str) -> str:
    """A host the operator may allow (the guard names TRUSTED_CUSTOM_HOSTS): say how with this provider. Not
    "for this provider only": the entry joins the guard's one allow-list, so every request may reach the host."""
    if "TRUSTED_CUSTOM_HOSTS" not in reason:
        return ""  # always blocked (metadata, rebinding names …): nothing unlocks it
    return (f"; or allow it with this provider with --allow-entry {host} (CLI) or "
            f'"allow_entry": "{host}" (admin API), which allows it for every request while the provider exists')


def validate_headers(pairs: Any) -> tuple[tuple[str, str], ...]:
    """Auth headers: valid, non-reserved names, unique ignoring case, values without line breaks."""
    pairs = tuple(pairs)
    seen: set[str] = set()
    for name, value in pairs:
        lower = validate_header_name(name, "headers")
        if lower in seen:
            raise BadRequest(f"headers: {name!r} given twice")
        seen.add(lower)
        validate_header_value(name, value)
    if len(seen) > MAX_HEADERS:
        raise BadRequest(f"headers: at most {MAX_HEADERS} headers")
    return pairs


def validate_header_name(name: Any, field_name: str) -> str:
    if not isinstance(name, str) or not HEADER_NAME_RE.match(name):
        raise BadRequest(f"{field_name}: invalid header name {_shown(name)}")
    if name.lower() in RESERVED_HEADERS:
        raise BadRequest(f"{field_name}: {name!r} is set by the gateway itself and cannot be configured")
    if name.lower().startswith("x-portkey-"):
        raise BadRequest(f"{field_name}: x-portkey-* headers are never sent upstream ({name})")
    return name.lower()


def validate_header_value(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"headers: value of {name!r} must be a non-empty string")
    if _CONTROL_RE.search(value) or len(value) > MAX_HEADER_VALUE:
        raise BadRequest(
            f"headers: value of {name!r} has control characters or is longer than {MAX_HEADER_VALUE}"
        )
    return value


def provider_input(
    slug: Any, raw: dict[str, Any], headers: Any, check_host: CheckHost | None
) -> ProviderInput:
    """Validate a whole new provider: its slug, its fields and its auth headers."""
    return ProviderInput(validate_slug(slug), validate_fields(raw, check_host), validate_headers(headers))


def validate_fields(raw: dict[str, Any], check_host: CheckHost | None) -> ProviderFields:
    models = _string_list(raw.get("models") or (), "models", MAX_MODELS)
    default_model = _optional_text(raw.get("default_model"), "default_model", 256)
    if default_model is not None and models and default_model not in models:
        raise BadRequest(f"default_model: {default_model!r} is not in models")
    allow_entry = validate_allow_entry(raw.get("allow_entry"))
    # A provider carrying an allow entry is the operator's explicit exception for its own host, so the
    # default-deny host check would only contradict it; the guard still applies its hard blocks per request.
    host = validate_custom_host(raw.get("custom_host"), None if allow_entry else check_host)
    return ProviderFields(
        spec=validate_spec(raw.get("spec")),
        custom_host=host,
        models=models,
        default_model=default_model,
        forward_headers=validate_forward_headers(raw.get("forward_headers") or ()),
        allow_entry=allow_entry,
        notes=_optional_text(raw.get("notes"), "notes", MAX_NOTES, multiline=True) or "",
    )


def validate_forward_headers(names: Any) -> tuple[str, ...]:
    # Expanded into every form the SDKs' spellings must match (x_api_key, xApiKey, X-Api-Key): header_names.py.
    result = []
    for name in _string_list(names, "forward_headers", MAX_HEADERS):
        if not HEADER_NAME_RE.match(name.strip()):
            raise BadRequest(f"forward_headers: invalid header name {_shown(name)}")
        for folded in forms(name):
            if not may_forward(folded):  # the one rule (header_names.py)
                raise BadRequest(f"forward_headers: {folded!r} may not be forwarded")
            if folded not in result:
                result.append(folded)
    return tuple(result)


def validate_allow_entry(value: Any) -> str | None:
    """An SSRF allow-list entry in the guard's own syntax (host, ``*.domain``, IP, CIDR, optional port, or a
    URL standing for its host): parsed by the guard's parser, so a stored entry can never fail the guard."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 256 or _CONTROL_RE.search(value):
        raise BadRequest("allow_entry: must be a host name, *.domain, IP address or CIDR block")
    try:
        parse_allow_entry(value)
    except ValueError as exc:
        raise BadRequest(f"allow_entry: {exc}") from None
    return value.strip()


def _string_list(value: Any, field_name: str, limit: int) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise BadRequest(f"{field_name}: expected a list of strings")
    if len(value) > limit:
        raise BadRequest(f"{field_name}: at most {limit} entries")
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 256 or _CONTROL_RE.search(item):
            raise BadRequest(f"{field_name}: entries must be non-empty strings up to 256 characters")
    return tuple(dict.fromkeys(value))  # order kept, duplicates dropped


def _optional_text(value: Any, field_name: str, limit: int, *, multiline: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field_name}: expected a string")
    bad = (_MULTILINE_CONTROL_RE if multiline else _CONTROL_RE).search(value)
    if len(value) > limit or bad:
        raise BadRequest(f"{field_name}: at most {limit} characters, no control characters")
    return value or None


def has_control_characters(text: str) -> bool:
    """Free text (notes, descriptions) may span lines and hold tabs, but no other control character: a NUL
    is refused by PostgreSQL (a 500 instead of a 400), an ESC rewrites the terminal of whoever lists it."""
    return _MULTILINE_CONTROL_RE.search(text) is not None


def mask_secret(value: str) -> str:
    """The only form in which a stored header value is ever shown: ``Bearer sk-…f3a9``.

    An auth scheme word is kept; of the secret itself at most the first 3 and last 4 characters, and only
    when at least 9 more stay hidden; anything shorter is shown as ``…`` alone.
    """
    scheme, sep, rest = value.strip().partition(" ")
    if sep and rest.strip() and scheme.isalpha() and len(scheme) <= 16:
        return f"{scheme} {_mask_token(rest.strip())}"
    return _mask_token(value.strip())


def _mask_token(token: str) -> str:
    return f"{token[:3]}…{token[-4:]}" if len(token) >= 16 else "…"
