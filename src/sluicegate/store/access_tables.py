"""Access control's tables: workspaces, gateway API keys, the admin audit trail (access/ reads and writes),
and the dashboard's sessions (dashboard/sessions.py), shared by every replica on the store.

The secret of an API key is never stored: ``key_hash`` is an HMAC of it under the server's hash key
(access/secrets.py), and ``key_prefix`` its first characters, for recognition in listings. The schema comes
from migration ``0003_access``; like ``request_logs`` these tables join the store's one MetaData.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Integer, String, Table, Text

from .tables import (
    DEFAULT_WORKSPACE_ID,  # noqa: F401 - re-exported: access/ names it from here
    SLUG_MAX,
    UTCDateTime,
    metadata,
)

DEFAULT_WORKSPACE_SLUG = "default"
KEY_ACTIVE, KEY_REVOKED = "active", "revoked"  # api_keys.status
ACCESS_STATE_ID = 2  # the catalog_state row whose version every access write bumps (keys, workspaces)
ID_MAX = 64

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(ID_MAX), primary_key=True),
    Column("slug", String(SLUG_MAX), nullable=False, unique=True),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("defaults", JSON, nullable=False),  # {"metadata": {...}}: Portkey's workspace defaults
    Column("permissions", JSON, nullable=False),  # access/model.py Permissions, as JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID_MAX), primary_key=True),
    Column("type", String(16), nullable=False),  # organisation | workspace
    Column("sub_type", String(16), nullable=False),  # service | user
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("workspace_id", String(ID_MAX), nullable=True, index=True),  # None: an organisation key
    Column("scopes", JSON, nullable=False),  # list[str], Portkey's scope names
    Column("defaults", JSON, nullable=False),  # {"config_id": str, "metadata": {...}}
    Column("permissions", JSON, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # active | revoked
    Column("key_hash", String(64), nullable=False, unique=True),  # hex HMAC-SHA256 of the secret
    Column("key_prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per admin write: who (an API key id, or "admin-token"), what, when, and the record before and
# after, as shown by the admin API (so never a secret).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_ms", BigInteger, nullable=False, index=True),
    Column("actor", String(ID_MAX), nullable=False),
    Column("action", String(64), nullable=False),  # "api_key.create", "workspace.delete", …
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", String(256), nullable=False),
    Column("workspace_id", String(ID_MAX), nullable=True, index=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

# A dashboard sign-in. The cookie's value is never stored: ``id_hash`` is its SHA-256, and the session's CSRF
# token is derived from the value, so a copy of this table opens no session.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_id", String(ID_MAX), nullable=True),  # None: signed in with the admin token
    Column("admin_token_hash", String(64), nullable=True),  # that token's SHA-256: the session ends with it
    Column("name", String(512), nullable=False),  # shown in the dashboard's header
    Column("workspace_slug", String(SLUG_MAX), nullable=True),
    Column("expires_at", Float, nullable=False, index=True),  # wall clock, seconds
)
