"""Process settings: environment and command-line flags folded into one frozen dataclass.

Everything configurable lives here and is read once at start; nothing else reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

ENV_PREFIX = "SLUICEGATE_"
PROVIDER_URL_PREFIX = "SLUICEGATE_PROVIDER_URL_"  # SLUICEGATE_PROVIDER_URL_OPENAI=http://egress-proxy/v1


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _on_off(variable: str) -> Callable[[str], bool]:
    """A switch that refuses anything but a clear on or off (a typo must not turn a guarantee off)."""

    def switch(text: str) -> bool:
        word = text.strip().lower()
        if word in ("on", "true", "1", "yes"):
            return True
        if word in ("off", "false", "0", "no"):
            return False
        raise ValueError(f"{variable}: expected on or off (got {text[:20]!r})")

    return switch


AUTH_MODES = ("auto", "required", "off")


def _auth_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in AUTH_MODES:
        raise ValueError(f"SLUICEGATE_AUTH: expected one of {', '.join(AUTH_MODES)} (got {text[:20]!r})")
    return mode


UPSTREAM_CLIENTS = ("h1", "reqwest", "aiohttp")


def _upstream_client(text: str) -> str:
    name = text.strip().lower()
    if name not in UPSTREAM_CLIENTS:
        raise ValueError(f"SLUICEGATE_UPSTREAM_CLIENT: expected one of {', '.join(UPSTREAM_CLIENTS)} "
                         f"(got {text[:20]!r})")
    return name


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _positive(convert):
    def checked(text: str):
        value = convert(text)
        if not value > 0 or value == float("inf"):
            raise ValueError(text)
        return value

    return checked


def _non_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(text)
    return value


_POSITIVE_INT, _POSITIVE_FLOAT, _NON_NEGATIVE_FLOAT = _positive(int), _positive(float), _non_negative
# Their errors name the variable (none of them is a secret).
_LIMITS = (_POSITIVE_INT, _POSITIVE_FLOAT, _NON_NEGATIVE_FLOAT)


def _converted(variable: str, raw: str, convert):
    if convert not in _LIMITS:
        return convert(raw)
    try:
        return convert(raw)
    except ValueError:
        # Every zero-or-more setting is a number of seconds (a delay, an interval).
        kind = "a number of seconds, 0 or more" if convert is _NON_NEGATIVE_FLOAT else "a positive number"
        raise ValueError(f"{variable} must be {kind}, not {raw[:32]!r}") from None


def _pairs(text: str) -> Mapping[str, str]:
    """``k=v,k2=v2`` (OTEL_EXPORTER_OTLP_HEADERS' format: values may be percent-encoded, and may hold ``=``)."""
    pairs = {}
    for part in _csv(text):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            # Never echo the entry: it is most likely a credential.
            raise ValueError("SLUICEGATE_OTLP_HEADERS: expected name=value pairs separated by commas")
        pairs[name.strip()] = unquote(value.strip())
    return MappingProxyType(pairs)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    # Host names answered for besides loopback names (and, bound beyond loopback, IP literals): exact
    # names, "*.example.com", or "*" for any. The defence against DNS rebinding (server/hosts.py).
    allowed_hosts: tuple[str, ...] = ()
    workers: int = 1
    data_dir: Path = Path(".sluicegate")
    database_url: str | None = None  # None: SQLite file under data_dir
    max_body_bytes: int = 32 * 1024 * 1024  # a request body, after any Content-Encoding is decoded
    # A non-streamed upstream answer is buffered whole: beyond this the attempt fails (502) and the
    # connection is dropped. Large enough for big embedding batches.
    max_upstream_body_bytes: int = 128 * 1024 * 1024
    # Client connections (per process): a new connection must send its request head within
    # header_timeout_s, a kept-alive one may sit idle for idle_timeout_s, a body must arrive within
    # body_timeout_s. Beyond max_connections the longest-waiting idle connection is closed, or the new
    # one refused with 503 when every connection is busy.
    max_connections: int = 1000
    idle_timeout_s: float = 75.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    drain_timeout_s: float = 25.0  # on SIGTERM: in-flight requests get this long, then they are cancelled
    # On SIGTERM /readyz answers 503 at once; the process keeps accepting for drain_delay_s more (the time a
    # load balancer needs to notice), then stops accepting and drains (drain_timeout_s).
    drain_delay_s: float = 0.0
    # The safety-net reload of the catalog, API keys and limits snapshots; None: 0.5 s on SQLite, 5 s on
    # PostgreSQL, where change notifications (LISTEN/NOTIFY) bring every write within milliseconds.
    reload_interval_s: float | None = None
    # Where commercial providers live; operators behind an egress proxy (and tests) point them elsewhere.
    provider_base_urls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # SSRF allow-list: None means "the default for the listen address" (loopback trusted on loopback only).
    trusted_custom_hosts: tuple[str, ...] | None = None
    allowed_upstreams: tuple[str, ...] = ()
    upstream_connect_timeout_s: float = 10.0
    upstream_read_timeout_s: float = 600.0  # longest silence tolerated from an upstream
    upstream_pool_size: int = 0  # 0: unbounded keep-alive pool
    # The HTTP client upstream requests go out through (docs/transport.md): HTTP/1.1 on the event loop
    # (upstream/h1.py), pyreqwest's, or aiohttp's.
    upstream_client: str = "h1"
    retry_backoff_scale: float = 1.0  # multiplies the 1, 2, 4, 8, 16 s retry backoff (not Retry-After)
    config_cache_size: int = 512  # distinct x-portkey-config texts kept compiled
    # The response cache (docs/caching.md): used by requests whose config has a cache block.
    cache_backend: str = "memory"  # memory | store | redis | off
    # SLUICEGATE_REDIS_URL: the cache's redis backend and the usage limits' shared counters; may hold a password
    redis_url: str | None = field(default=None, repr=False)
    # SLUICEGATE_CACHE_REDIS_URL: the cache's own Redis when set. A cache wants an evicting policy
    # (allkeys-lru), while the limits' counters need noeviction: one server cannot have both.
    cache_redis_url: str | None = field(default=None, repr=False)
    cache_max_bytes: int = 64 * 1024 * 1024  # the in-memory backend's bound (least recently used out)
    cache_max_entries: int = 10_000
    cache_entry_max_bytes: int = 1024 * 1024  # a larger answer is relayed but not stored
    cache_embedder: str = "minilm"  # semantic mode's embeddings: local all-MiniLM-L6-v2, "@slug/model", "off"
    cache_semantic_threshold: float = 0.95  # cosine similarity a neighbour must reach
    admin_token: str | None = None
    master_key: str | None = None
    # Gateway API keys (docs/access-control.md): "auto" requires a key on /v1 when listening beyond
    # loopback or once any key exists; "required" always; "off" never (keys are then ignored).
    auth_mode: str = "auto"
    api_key_hash_key: str | None = field(default=None, repr=False)  # None: <data-dir>/api-key-hash.key
    log_bodies: bool = True
    log_body_max_bytes: int = 64 * 1024
    log_retention_days: int | None = None
    # The request-log sink: records wait in a bounded queue (beyond it they are dropped and counted), are
    # written in batches of at most log_batch_max, and while the store is down they go to a spool file
    # under data_dir that may grow to log_spool_max_bytes.
    log_queue_max: int = 20_000
    log_batch_max: int = 1_000
    log_spool_max_bytes: int = 256 * 1024 * 1024
    # The write-ahead journal (docs/observability.md): each record on local disk before its answer is
    # complete, so that kill -9 loses no answered request's record. Off: the last ~20-150 ms may be lost.
    log_journal: bool = True
    pricing_file: Path | None = None  # JSON price table (docs/observability.md); None: built-in prices only
    access_log: bool = False
    # OpenTelemetry trace export (OTLP/HTTP JSON), off unless an endpoint is set. The headers usually carry
    # the collector's credential: kept out of repr so that printing the settings cannot leak it.
    otlp_endpoint: str | None = None
    otlp_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    # Usage limits (docs/limits.md) count in Redis when redis_url is set (required with limits and several
    # workers or replicas), else exact in-process counters.
    limits_fail_open: bool = False  # Redis unreachable: refuse (503) unless this is set
    limits_reservation_ttl_s: float = 600.0  # a reservation left by a dead process expires after this
    limits_default_max_tokens: int = 1024  # completion tokens reserved when a request sends no max_tokens

    # Least-busy load balancing (docs/routing.md): every probe_interval_s each of its targets is probed
    # (GET <base>/models) and its /metrics scraped, within probe_timeout_s; probe_unhealthy_threshold failed
    # probes in a row take a target out of rotation, probe_healthy_threshold passing ones bring it back.
    # 0 turns probes (and server load reports) off. eject_after failed requests in a row also take it out,
    # for one probe interval.
    probe_interval_s: float = 2.0
    probe_timeout_s: float = 1.0
    probe_unhealthy_threshold: int = 1
    probe_healthy_threshold: int = 1
    least_busy_eject_after: int = 3

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "sluicegate.db"

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from ``env`` (default: the process environment), then apply explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    scalar: dict[str, tuple[str, Callable[[str], Any]]] = {
        "HOST": ("host", str),
        "PORT": ("port", int),
        "WORKERS": ("workers", int),
        "DATA_DIR": ("data_dir", Path),
        "DATABASE_URL": ("database_url", str),
        "MAX_BODY_BYTES": ("max_body_bytes", int),
        "MAX_UPSTREAM_BODY_BYTES": ("max_upstream_body_bytes", _POSITIVE_INT),
        "MAX_CONNECTIONS": ("max_connections", _POSITIVE_INT),
        "IDLE_TIMEOUT": ("idle_timeout_s", _POSITIVE_FLOAT),
        "HEADER_TIMEOUT": ("header_timeout_s", _POSITIVE_FLOAT),
        "BODY_TIMEOUT": ("body_timeout_s", _POSITIVE_FLOAT),
        "DRAIN_TIMEOUT": ("drain_timeout_s", _POSITIVE_FLOAT),
        "DRAIN_DELAY": ("drain_delay_s", _NON_NEGATIVE_FLOAT),
        "RELOAD_INTERVAL": ("reload_interval_s", _POSITIVE_FLOAT),
        "UPSTREAM_CONNECT_TIMEOUT": ("upstream_connect_timeout_s", float),
        "UPSTREAM_READ_TIMEOUT": ("upstream_read_timeout_s", float),
        "UPSTREAM_POOL_SIZE": ("upstream_pool_size", int),
        "UPSTREAM_CLIENT": ("upstream_client", _upstream_client),
        "RETRY_BACKOFF_SCALE": ("retry_backoff_scale", float),
        "CONFIG_CACHE_SIZE": ("config_cache_size", int),
        "CACHE_BACKEND": ("cache_backend", lambda text: text.strip().lower()),
        "REDIS_URL": ("redis_url", str),
        "CACHE_REDIS_URL": ("cache_redis_url", str),
        "CACHE_MAX_BYTES": ("cache_max_bytes", _POSITIVE_INT),
        "CACHE_MAX_ENTRIES": ("cache_max_entries", _POSITIVE_INT),
        "CACHE_ENTRY_MAX_BYTES": ("cache_entry_max_bytes", _POSITIVE_INT),
        "CACHE_EMBEDDER": ("cache_embedder", str.strip),
        "CACHE_SEMANTIC_THRESHOLD": ("cache_semantic_threshold", _POSITIVE_FLOAT),
        "ADMIN_TOKEN": ("admin_token", str),
        "MASTER_KEY": ("master_key", str),
        "AUTH": ("auth_mode", _auth_mode),
        "API_KEY_HASH_KEY": ("api_key_hash_key", str),
        "LOG_BODIES": ("log_bodies", _bool),
        "LOG_BODY_MAX_BYTES": ("log_body_max_bytes", int),
        "LOG_RETENTION_DAYS": ("log_retention_days", _POSITIVE_INT),
        "LOG_QUEUE_MAX": ("log_queue_max", _POSITIVE_INT),
        "LOG_BATCH_MAX": ("log_batch_max", _POSITIVE_INT),
        "LOG_SPOOL_MAX_BYTES": ("log_spool_max_bytes", _POSITIVE_INT),
        "LOG_JOURNAL": ("log_journal", _on_off("SLUICEGATE_LOG_JOURNAL")),
        "PRICING_FILE": ("pricing_file", Path),
        "ACCESS_LOG": ("access_log", _bool),
        "ALLOWED_UPSTREAMS": ("allowed_upstreams", _csv),
        "ALLOWED_HOSTS": ("allowed_hosts", _csv),
        "OTLP_ENDPOINT": ("otlp_endpoint", str),
        "OTLP_HEADERS": ("otlp_headers", _pairs),
        "LIMITS_FAIL_OPEN": ("limits_fail_open", _bool),
        "LIMITS_RESERVATION_TTL": ("limits_reservation_ttl_s", _POSITIVE_FLOAT),
        "LIMITS_DEFAULT_MAX_TOKENS": ("limits_default_max_tokens", _POSITIVE_INT),
        "PROBE_INTERVAL": ("probe_interval_s", _NON_NEGATIVE_FLOAT),
        "PROBE_TIMEOUT": ("probe_timeout_s", _POSITIVE_FLOAT),
        "PROBE_UNHEALTHY_THRESHOLD": ("probe_unhealthy_threshold", _POSITIVE_INT),
        "PROBE_HEALTHY_THRESHOLD": ("probe_healthy_threshold", _POSITIVE_INT),
        "LEAST_BUSY_EJECT_AFTER": ("least_busy_eject_after", _POSITIVE_INT),
    }
    for suffix, (name, convert) in scalar.items():
        raw = env.get(ENV_PREFIX + suffix)
        if raw not in (None, ""):
            values[name] = _converted(ENV_PREFIX + suffix, raw, convert)
    if "TRUSTED_CUSTOM_HOSTS" in env:  # Portkey's variable; set (even empty) replaces the defaults
        values["trusted_custom_hosts"] = _csv(env["TRUSTED_CUSTOM_HOSTS"])
    urls = {
        key[len(PROVIDER_URL_PREFIX):].lower().replace("_", "-"): value.rstrip("/")
        for key, value in env.items()
        if key.startswith(PROVIDER_URL_PREFIX) and value
    }
    if urls:
        values["provider_base_urls"] = MappingProxyType(urls)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
