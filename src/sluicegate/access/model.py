"""Access control's vocabulary: scopes, permissions, a key as the hot path knows it, and the caller.

Pure: no I/O. The names follow Portkey's (``type`` organisation | workspace, ``sub_type`` service | user,
scopes like ``completions.write`` or ``workspace_service_api_keys.create``) so that habits and scripts
carry over.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from ..errors import BadRequest
from ..jsontext import check_keys
from ..types import metadata_fault

KEY_TYPES = ("organisation", "workspace")
SUB_TYPES = ("service", "user")
ACTIVE, REVOKED = "active", "revoked"  # store.access_tables KEY_ACTIVE, KEY_REVOKED (not imported: no SQLAlchemy here)
ADMIN_TOKEN_ACTOR = "admin-token"  # the actor of an admin write made with the admin token

_CRUD = ("create", "read", "update", "delete", "list")
SCOPE_ACTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "completions": ("write",),
    "workspaces": _CRUD,
    "organisation_service_api_keys": _CRUD,
    "organisation_user_api_keys": _CRUD,
    "workspace_service_api_keys": _CRUD,
    "workspace_user_api_keys": _CRUD,
    "integrations": _CRUD,
    "providers": _CRUD,
    "configs": _CRUD,
    "logs": ("view", "list", "export"),
    "analytics": ("view",),
    "audit_logs": ("list",),
})
SCOPES = frozenset(f"{resource}.{action}" for resource, actions in SCOPE_ACTIONS.items() for action in actions)
ALL_SCOPES = SCOPES
# A key created without scopes may make inference requests and nothing else.
DEFAULT_SCOPES = ("completions.write",)
INFERENCE_SCOPE = "completions.write"

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# Default metadata is added to every request of the key (or workspace) and lands in every log row: it may
# hold no more than one x-portkey-metadata header carries on the common path (the native edge's 8,190-byte
# head, server/native.py's HEAD_MAX).
METADATA_DEFAULTS_MAX = 8190


def validate_scopes(value: Any) -> tuple[str, ...]:
    """A list of Portkey scope names; ``resource.*`` stands for every action on the resource."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest("scopes: expected a list of scope names, e.g. [\"completions.write\"]")
    scopes: list[str] = []
    for item in value:
        resource, _, action = item.partition(".")
        if action == "*" and resource in SCOPE_ACTIONS:
            scopes.extend(f"{resource}.{a}" for a in SCOPE_ACTIONS[resource])
        elif item in SCOPES:
            scopes.append(item)
        else:
            raise BadRequest(f"scopes: unknown scope {item[:80]!r} (known: {', '.join(sorted(SCOPES))})")
    return tuple(dict.fromkeys(scopes))


def _names(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v and len(v) <= 256 for v in value):
        raise BadRequest(f"{where}: expected a list of names (or null: no restriction)")
    return frozenset(v.lstrip("@") if where.endswith("providers") else v for v in value)


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a key (or every key of a workspace) may use. None: no restriction beyond the workspace's."""

    providers: frozenset[str] | None = None  # catalog slugs, without "@"
    models: frozenset[str] | None = None
    configs: frozenset[str] | None = None  # saved config ids
    direct_integration: bool = True  # a provider and host named in the request rather than the catalog

    @classmethod
    def from_json(cls, value: Any, where: str = "permissions") -> Permissions:
        if value in (None, {}):
            return cls()
        if not isinstance(value, dict):
            raise BadRequest(f"{where}: expected an object")
        unknown = set(value) - {"providers", "models", "configs", "direct_integration"}
        if unknown:
            raise BadRequest(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (known: providers, "
                             "models, configs, direct_integration)")
        direct = value.get("direct_integration", True)
        if not isinstance(direct, bool):
            raise BadRequest(f"{where}.direct_integration: expected true or false")
        return cls(providers=_names(value.get("providers"), f"{where}.providers"),
                   models=_names(value.get("models"), f"{where}.models"),
                   configs=_names(value.get("configs"), f"{where}.configs"), direct_integration=direct)

    def within(self, bound: Permissions) -> bool:
        """Does this allow nothing that ``bound`` does not (a key made or changed by a key bound by it)?"""
        if self.direct_integration and not bound.direct_integration:
            return False
        for name in ("providers", "models", "configs"):
            mine, theirs = getattr(self, name), getattr(bound, name)
            if theirs is not None and (mine is None or not mine <= theirs):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"direct_integration": self.direct_integration}
        for name in ("providers", "models", "configs"):
            values = getattr(self, name)
            out[name] = sorted(values) if values is not None else None
        return out


def default_metadata(value: Any) -> dict[str, Any]:
    """A key's or workspace's ``defaults.metadata``: held to the x-portkey-metadata header's rules
    (server/headers.py), since it is merged under that header's and logged with it."""
    if not isinstance(value, dict):
        raise BadRequest("defaults.metadata: expected an object of metadata keys and values")
    fault = metadata_fault(value)
    if fault is not None:
        raise BadRequest(f"defaults.metadata: {fault}")
    if len(orjson.dumps(value)) > METADATA_DEFAULTS_MAX:
        raise BadRequest(f"defaults.metadata: longer than one x-portkey-metadata header can be "
                         f"({METADATA_DEFAULTS_MAX} bytes as JSON)")
    return value


def stored_metadata(value: Any) -> Mapping[str, Any]:
    """Stored default metadata as the hot path applies it: its scalar values, whatever rules it was
    written under (a reload must never fail on an old row)."""
    if not isinstance(value, dict):
        return _EMPTY
    return MappingProxyType({k: v for k, v in value.items() if not isinstance(v, (dict, list))})


@dataclass(frozen=True, slots=True)
class KeyDefaults:
    config_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # scalar values, as given

    @classmethod
    def from_json(cls, value: Any) -> KeyDefaults:
        if value in (None, {}):
            return cls()
        if not isinstance(value, dict):
            raise BadRequest("defaults: expected an object {\"config_id\": …, \"metadata\": {…}}")
        # Ignored, a misspelt "config" left the key without the default config it meant.
        check_keys(value, ("config_id", "metadata"), where="defaults.")
        config_id = value.get("config_id")
        if config_id is not None and (not isinstance(config_id, str) or not config_id):
            raise BadRequest("defaults.config_id: expected a saved config id")
        metadata = default_metadata(value["metadata"]) if value.get("metadata") is not None else {}
        return cls(config_id=config_id, metadata=MappingProxyType(metadata))

    @classmethod
    def stored(cls, value: Any) -> KeyDefaults:
        """A stored row's defaults, never refused: rows written under older rules must still load."""
        config_id = value.get("config_id") if isinstance(value, dict) else None
        metadata = value.get("metadata") if isinstance(value, dict) else None
        return cls(config_id=config_id if isinstance(config_id, str) and config_id else None,
                   metadata=stored_metadata(metadata))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.config_id:
            out["config_id"] = self.config_id
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as the in-memory snapshot holds it (by the digest of its secret)."""

    id: str
    type: str
    sub_type: str
    name: str
    workspace_id: str | None  # None: an organisation key
    scopes: frozenset[str]
    defaults: KeyDefaults
    permissions: Permissions
    expires_at: float | None  # epoch seconds
    status: str

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, once authenticated: an API key, or the admin token (an organisation admin)."""

    actor: str  # the key id, or ADMIN_TOKEN_ACTOR
    workspace_id: str | None  # None: organisation-wide
    scopes: frozenset[str]
    permissions: Permissions = Permissions()
    workspace_permissions: Permissions = Permissions()
    defaults: KeyDefaults = KeyDefaults()
    key_id: str | None = None  # None for the admin token

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def sees_workspace(self, workspace_id: str | None) -> bool:
        return self.workspace_id is None or workspace_id == self.workspace_id


ADMIN = Principal(actor=ADMIN_TOKEN_ACTOR, workspace_id=None, scopes=ALL_SCOPES)
