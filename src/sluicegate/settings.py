"""Process settings: environment and command-line flags folded into one frozen dataclass.

Everything configurable lives here and is read once at start; nothing else reads the environment.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from . import numerals

ENV_PREFIX = "SLUICEGATE_"
PROVIDER_URL_PREFIX = "SLUICEGATE_PROVIDER_URL_"  # SLUICEGATE_PROVIDER_URL_OPENAI=http://egress-proxy/v1


class SettingsError(ValueError):
    """A setting the operator must fix. The message names the variable, says what it takes and shows the
    value given, unless the variable may hold a secret (then the value is never echoed)."""


Convert = Callable[[str], Any]

# Variables whose values may hold a credential: an error about them never shows the value.
SECRET_VARIABLES = frozenset(ENV_PREFIX + name for name in (
    "DATABASE_URL", "REDIS_URL", "CACHE_REDIS_URL", "ADMIN_TOKEN", "MASTER_KEY", "API_KEY_HASH_KEY",
    "OTLP_HEADERS", "OTLP_ENDPOINT"))
# The longest time a timeout, delay or interval may be (~11.6 days): beyond it a value is a typo, and the
# event loop's timers overflow long before float's own limit.
MAX_SECONDS = 1_000_000.0
MAX_COUNT = 2**53 - 1  # the largest whole number JSON and floats carry exactly
_SWITCH_ON, _SWITCH_OFF = ("on", "true", "1", "yes"), ("off", "false", "0", "no")


def _on_off(text: str) -> bool:
    """A switch that refuses anything but a clear on or off (a typo must not turn a guarantee off)."""
    word = text.strip().lower()
    if word in _SWITCH_ON:
        return True
    if word in _SWITCH_OFF:
        return False
    raise ValueError("must be on or off")


def _one_of(*choices: str) -> Convert:
    def choose(text: str) -> str:
        word = text.strip().lower()
        if word not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return word

    return choose


AUTH_MODES = ("auto", "required", "off")
UPSTREAM_CLIENTS = ("h1", "reqwest", "aiohttp")
CACHE_BACKENDS = ("memory", "store", "redis", "off")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _whole(low: int, high: int = MAX_COUNT) -> Convert:
    """A whole number from ``low`` to ``high``, refused with that rule ("a positive number" said of 5.0 or of
    a 26-digit value misled: those are positive numbers)."""
    kind = "a positive whole number" if low == 1 and high == MAX_COUNT else f"a whole number from {low} to {high}"
    too_big = f"must be {kind}" + (f" (at most {high})" if high == MAX_COUNT else "")

    def convert(text: str) -> int:
        stripped = text.strip()
        if not (stripped.isascii() and stripped.removeprefix("-").isdigit()):  # "--5" reached int()
            raise ValueError(f"must be {kind}")
        if len(stripped) > 20:
            raise ValueError(too_big)
        value = int(stripped)
        if value > high:
            raise ValueError(too_big)
        if value < low:
            raise ValueError(f"must be {kind}")
        return value

    return convert


def _real(text: str) -> float:
    """A finite float written in plain ASCII numerals (NaN and the infinities are never a setting's meaning,
    nor are "1_0" or "٣", which float() reads); NaN for anything else."""
    value = numerals.decimal(text)
    return math.nan if value is None else value


def _seconds(*, zero: bool = False) -> Convert:
    kind = "a number of seconds, 0 or more" if zero else "a positive number"

    def convert(text: str) -> float:
        value = _real(text)
        if not ((0 <= value) if zero else (0 < value)) or value > MAX_SECONDS:
            raise ValueError(f"must be {kind}" + (f" (at most {MAX_SECONDS:.0f} s)" if value > MAX_SECONDS else ""))
        return value

    return convert


def _between(low: float, high: float, *, low_included: bool) -> Convert:
    def convert(text: str) -> float:
        value = _real(text)
        if not ((low <= value) if low_included else (low < value)) or not value <= high:
            raise ValueError(f"must be a number {'from' if low_included else 'above'} {low:g} to {high:g}")
        return value

    return convert


def _host(text: str) -> str:
    """The listen address: an IP address or a name, without scheme or port (brackets of IPv6 dropped)."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or "/" in host or any(c.isspace() for c in host) or (host.count(":") == 1):
        raise ValueError("must be an IP address or a host name, without a scheme or a port")
    return host


def _directory(text: str) -> Path:
    if not text.strip():
        raise ValueError("must name a directory")
    path = Path(text)
    if path.exists() and not path.is_dir():  # said "[Errno 17] File exists" when the store was made in it
        raise ValueError("names a file, not a directory")
    return path


def _split_url(text: str, example: str) -> SplitResult:
    """``text`` split as a URL whose port is a port (urlsplit checks the port only when asked)."""
    try:
        parts = urlsplit(text.strip())
        _ = parts.port
    except ValueError:
        raise ValueError(f"is not a URL (expected {example})") from None
    return parts


def _redis_url(text: str) -> str:
    """redis://[user:password@]host[:port][/db], rediss://…, or unix:///path[?db=N]: checked now, so that a
    typo is refused at start rather than read as database 0 or as an unreachable server."""
    parts = _split_url(text, "redis://host:port/db")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("needs a socket path (unix:///path/to/redis.sock)")
        return text.strip()
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("must be a redis://, rediss:// or unix:// URL with a host")
    database = parts.path.lstrip("/")
    if database and not (database.isascii() and database.isdigit() and int(database) < 2**31):
        raise ValueError("names no database: the path must be a database number (redis://host:port/0)")
    return text.strip()


def _http_url(text: str) -> str:
    parts = _split_url(text, "http://host:port/path")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return text.strip()


def _embedder(text: str) -> str:
    """minilm, off, or @provider-slug/model (a catalog provider's embeddings model)."""
    word = text.strip()
    if word.lower() in ("minilm", "off"):
        return word.lower()
    slug, _, model = word[1:].partition("/")
    if not word.startswith("@") or not slug or not model.strip():
        raise ValueError("must be minilm, off, or @provider-slug/model")
    return word


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _pairs(text: str) -> Mapping[str, str]:
    """``k=v,k2=v2`` (OTEL_EXPORTER_OTLP_HEADERS' format: values may be percent-encoded, and may hold ``=``)."""
    pairs = {}
    for part in _csv(text):
        name, sep, value = part.partition("=")
        name, value = name.strip(), unquote(value.strip())
        # Never echo the entry: it is most likely a credential.
        if not sep or not _TOKEN.fullmatch(name) or _CONTROL.search(value):
            raise ValueError("expected name=value pairs separated by commas (names are header names, values "
                             "hold no control characters)")
        pairs[name] = value
    return MappingProxyType(pairs)


def _converted(variable: str, raw: str, convert: Convert) -> Any:
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8 reach os.environ as lone surrogates: never shown
        raise SettingsError(f"{variable} is not valid UTF-8") from None
    try:
        return convert(raw)
    except ValueError as exc:
        shown = "" if variable in SECRET_VARIABLES else f", not {raw[:32]!r}"
        raise SettingsError(f"{variable} {exc}{shown}") from None


_POSITIVE_INT, _SECONDS, _SECONDS_OR_NONE = _whole(1), _seconds(), _seconds(zero=True)
_PORT, _WORKERS, _RETENTION_DAYS = _whole(1, 65535), _whole(1, 1024), _whole(1, 36500)


def flag_type(convert_name: str) -> Callable[[str], Any]:
    """An argparse ``type`` for the command-line flag of a setting, with the variable's own check:
    ``--port 70000`` is refused as SLUICEGATE_PORT=70000 is (argparse prints the reason, exit 2)."""
    import argparse  # only the command line needs it

    convert = FLAG_CHECKS[convert_name]

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}, not {text[:32]!r}") from None

    return parse


FLAG_CHECKS: Mapping[str, Convert] = MappingProxyType({
    "host": _host, "port": _PORT, "workers": _WORKERS, "data_dir": _directory, "log_retention_days": _RETENTION_DAYS,
    "settle": _between(0, 60, low_included=True),  # vault rotate --settle: servers adopt a new key within 1 s
})


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
    # one refused with 503 when every connection is busy. An answer (a stream or a whole one) the client
    # takes none of for send_timeout_s (checked at that interval: abandoned 1-2 periods after its last
    # byte taken) is abandoned: the connection is aborted and a stream's upstream closed.
    max_connections: int = 1000
    idle_timeout_s: float = 75.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    send_timeout_s: float = 30.0
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
        "HOST": ("host", _host),
        "PORT": ("port", _PORT),
        "WORKERS": ("workers", _WORKERS),
        "DATA_DIR": ("data_dir", _directory),
        "DATABASE_URL": ("database_url", str),
        "MAX_BODY_BYTES": ("max_body_bytes", _POSITIVE_INT),
        "MAX_UPSTREAM_BODY_BYTES": ("max_upstream_body_bytes", _POSITIVE_INT),
        "MAX_CONNECTIONS": ("max_connections", _POSITIVE_INT),
        "IDLE_TIMEOUT": ("idle_timeout_s", _SECONDS),
        "HEADER_TIMEOUT": ("header_timeout_s", _SECONDS),
        "BODY_TIMEOUT": ("body_timeout_s", _SECONDS),
        "SEND_TIMEOUT": ("send_timeout_s", _SECONDS),
        "DRAIN_TIMEOUT": ("drain_timeout_s", _SECONDS),
        "DRAIN_DELAY": ("drain_delay_s", _SECONDS_OR_NONE),
        "RELOAD_INTERVAL": ("reload_interval_s", _SECONDS),
        "UPSTREAM_CONNECT_TIMEOUT": ("upstream_connect_timeout_s", _SECONDS),
        "UPSTREAM_READ_TIMEOUT": ("upstream_read_timeout_s", _SECONDS),
        "UPSTREAM_POOL_SIZE": ("upstream_pool_size", _whole(0, 1_000_000)),
        "UPSTREAM_CLIENT": ("upstream_client", _one_of(*UPSTREAM_CLIENTS)),
        "RETRY_BACKOFF_SCALE": ("retry_backoff_scale", _between(0, 1000, low_included=True)),
        "CONFIG_CACHE_SIZE": ("config_cache_size", _POSITIVE_INT),
        "CACHE_BACKEND": ("cache_backend", _one_of(*CACHE_BACKENDS)),
        "REDIS_URL": ("redis_url", _redis_url),
        "CACHE_REDIS_URL": ("cache_redis_url", _redis_url),
        "CACHE_MAX_BYTES": ("cache_max_bytes", _POSITIVE_INT),
        "CACHE_MAX_ENTRIES": ("cache_max_entries", _POSITIVE_INT),
        "CACHE_ENTRY_MAX_BYTES": ("cache_entry_max_bytes", _POSITIVE_INT),
        "CACHE_EMBEDDER": ("cache_embedder", _embedder),
        "CACHE_SEMANTIC_THRESHOLD": ("cache_semantic_threshold", _between(0, 1, low_included=False)),
        "ADMIN_TOKEN": ("admin_token", str),
        "MASTER_KEY": ("master_key", str),
        "AUTH": ("auth_mode", _one_of(*AUTH_MODES)),
        "API_KEY_HASH_KEY": ("api_key_hash_key", str),
        "LOG_BODIES": ("log_bodies", _on_off),
        "LOG_BODY_MAX_BYTES": ("log_body_max_bytes", _whole(0)),
        "LOG_RETENTION_DAYS": ("log_retention_days", _RETENTION_DAYS),
        "LOG_QUEUE_MAX": ("log_queue_max", _POSITIVE_INT),
        "LOG_BATCH_MAX": ("log_batch_max", _POSITIVE_INT),
        "LOG_SPOOL_MAX_BYTES": ("log_spool_max_bytes", _POSITIVE_INT),
        "LOG_JOURNAL": ("log_journal", _on_off),
        "PRICING_FILE": ("pricing_file", Path),
        "ACCESS_LOG": ("access_log", _on_off),
        "ALLOWED_UPSTREAMS": ("allowed_upstreams", _csv),
        "ALLOWED_HOSTS": ("allowed_hosts", _csv),
        "OTLP_ENDPOINT": ("otlp_endpoint", _http_url),
        "OTLP_HEADERS": ("otlp_headers", _pairs),
        "LIMITS_FAIL_OPEN": ("limits_fail_open", _on_off),
        "LIMITS_RESERVATION_TTL": ("limits_reservation_ttl_s", _SECONDS),
        "LIMITS_DEFAULT_MAX_TOKENS": ("limits_default_max_tokens", _POSITIVE_INT),
        "PROBE_INTERVAL": ("probe_interval_s", _SECONDS_OR_NONE),
        "PROBE_TIMEOUT": ("probe_timeout_s", _SECONDS),
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
        _provider_id(key): _converted(key, value, _http_url).rstrip("/")
        for key, value in env.items()
        if key.startswith(PROVIDER_URL_PREFIX) and value
    }
    if urls:
        values["provider_base_urls"] = MappingProxyType(urls)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def _provider_id(variable: str) -> str:
    provider = variable[len(PROVIDER_URL_PREFIX):].lower().replace("_", "-")
    if not provider:
        raise SettingsError(f"{variable} names no provider (SLUICEGATE_PROVIDER_URL_OPENAI=…)")
    return provider
