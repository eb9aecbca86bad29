"""Gateway Config schema: decoded JSON in, a validated "spec" tree out (plain dicts, canonical keys).

Validation collects every problem with its path (``targets,1,retry,attempts``) before failing, and is
stricter than Portkey's OSS gateway on purpose: unknown keys, settings that would be silently ignored
(``provider`` next to ``targets``, ``on_status_codes`` outside fallback) and bad conditional queries are
errors here rather than surprises at request time. Inheritance is applied later, by ``compile.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sluicegate.config import fields as f
from sluicegate.config.fields import INVALID, Path, Report
from sluicegate.config.model import DEFAULT_RETRY_STATUS_CODES, MAX_RETRY_ATTEMPTS, BreakerPolicy, RetryPolicy
from sluicegate.config.strategy import validate_strategy

MAX_DEPTH = 16  # nesting of targets; a header can be 8 KiB of "[{" and recursion is not free
SLUG = re.compile(r"^[a-z0-9-]+$")
MIN_COOLDOWN_MS = 1000
# A circuit open for longer is a target taken out by hand: 1e12 ms (31 years) was accepted, and a config that
# read one failure with it refused that target for good.
MAX_COOLDOWN_MS = 86_400_000
# The longest request timeout accepted, in a config or the x-portkey-request-timeout header (≈24.8 days):
# JavaScript's timer limit, so any value Portkey's gateway honours is honoured here, and nothing larger
# (``1e309`` is infinity) reaches the event loop's clock arithmetic, where it would overflow into a 500.
MAX_TIMEOUT_MS = 2**31 - 1

NODE_ALIASES = f.alias_table((
    "strategy", "targets", "name", "weight", "provider", "api_key", "virtual_key", "passthrough",
    "custom_host", "forward_headers", "override_params", "retry", "request_timeout",
    "strict_open_ai_compliance", "cache", "cb_config",
))  # fmt: skip
RETRY_ALIASES = f.alias_table(
    ("attempts", "on_status_codes", "use_retry_after_header"),
    {"use_retry_after_headers": "use_retry_after_header"},  # OSS reads the singular, the docs write plural
)
CACHE_ALIASES = f.alias_table(("mode", "max_age"))
BREAKER_ALIASES = f.alias_table((
    "failure_threshold", "failure_threshold_percentage", "minimum_requests", "cooldown_interval",
    "failure_status_codes",
))  # fmt: skip
# Portkey keys we recognise but do not implement: a clear "not supported" beats "Unrecognized key".
UNSUPPORTED_KEYS = frozenset({
    "before_request_hooks", "after_request_hooks", "input_guardrails", "output_guardrails",
    "default_input_guardrails", "default_output_guardrails", "default_params", "drop_params",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region", "aws_role_arn",
    "aws_auth_type", "vertex_project_id", "vertex_region", "vertex_service_account_json",
    "openai_project", "openai_organization", "azure_model_name", "azure_auth_mode", "azure_resource_name",
    "azure_deployment_id", "azure_api_version", "resource_name", "deployment_id", "api_version",
    "deployments",
})  # fmt: skip
LEAF_ONLY = ("provider", "api_key", "virtual_key", "passthrough")
NOT_INHERITED = "'{}' cannot be set next to 'targets': it is not inherited, set it on each target"
BAD_SLUG = "Invalid 'provider' value. A Model Catalog slug is '@' then lowercase letters, digits and '-'"
BAD_VIRTUAL_KEY = (
    "Invalid 'virtual_key' value. It must be a Model Catalog slug: lowercase letters, digits and '-'"
)
BAD_CACHE_MODE = "Invalid 'cache.mode' value. Must be one of: simple, semantic"
NESTED_CACHE = ("'cache' is honoured only on the config's root, not on a target, by this gateway: "
                "move it to the top level")
CATCH_ALL = (
    "Invalid configuration. It must set something besides 'name' and 'weight': for example 'provider', "
    "'virtual_key', 'strategy' and 'targets', 'custom_host', 'override_params', 'retry' or 'request_timeout'"
)


@dataclass(frozen=True)
class Context:
    report: Report
    known_providers: Collection[str]
    check_host: Callable[[str], object] | None


def validate_config(
    raw: dict[str, Any], *, known_providers: Collection[str], check_host: Callable[[str], object] | None
) -> tuple[dict[str, Any], list[str]]:
    """Validate a decoded config object; returns the spec tree and the error entries (empty when valid)."""
    ctx = Context(Report(), known_providers, check_host)
    spec = validate_node(raw, (), ctx, 0)
    return spec, ctx.report.errors


def validate_node(obj: Any, path: Path, ctx: Context, depth: int) -> Any:
    if not isinstance(obj, dict):
        return ctx.report.add(path, f"Expected object, received {f.json_type(obj)}")
    if depth > MAX_DEPTH:
        return ctx.report.add(path, f"Targets are nested more than {MAX_DEPTH} levels deep")
    if all(NODE_ALIASES.get(key) in ("name", "weight") for key in obj):
        ctx.report.add(path, CATCH_ALL)
    keys = f.canonical_keys(obj, NODE_ALIASES, path, ctx.report, UNSUPPORTED_KEYS)
    spec = {
        name: _FIELDS[name](value, (*path, written), ctx)
        for name, (written, value) in keys.items()
        if name not in ("strategy", "targets")
    }
    _check_provider_keys(keys, spec, path, ctx)
    if "targets" in keys or "strategy" in keys:
        _validate_group(keys, spec, path, ctx, depth)
    return spec


def _validate_group(keys: dict[str, Any], spec: dict[str, Any], path: Path, ctx: Context, depth: int) -> None:
    if "targets" not in keys:
        ctx.report.add((*path, "targets"), "'targets' is required when 'strategy' is set")
    if "strategy" not in keys:
        ctx.report.add((*path, "strategy"), "'strategy' is required when 'targets' is set")
    for name in LEAF_ONLY:
        if name in keys:
            written = keys[name][0]
            ctx.report.add((*path, written), NOT_INHERITED.format(written))
    children = None
    if "targets" in keys:
        written, value = keys["targets"]
        children = spec["targets"] = _validate_targets(value, (*path, written), ctx, depth)
    if "strategy" in keys:
        written, value = keys["strategy"]
        strategy, breaker = validate_strategy(value, (*path, written), ctx.report, children)
        spec["strategy"] = strategy
        if breaker is not None:
            spec["cb_config"] = _breaker_from_strategy(breaker, keys, (*path, written), ctx)


def _validate_targets(value: Any, path: Path, ctx: Context, depth: int) -> Any:
    if f.expect(value, list, "array", path, ctx.report) is INVALID:
        return INVALID
    if not value:
        return ctx.report.add(path, "'targets' must not be empty")
    return [validate_node(child, (*path, i), ctx, depth + 1) for i, child in enumerate(value)]


def _breaker_from_strategy(breaker: tuple[str, Any], keys: dict[str, Any], path: Path, ctx: Context) -> Any:
    # Hosted documents cb_config inside 'strategy'; we also accept it on the node. Both at once is ambiguous.
    written, value = breaker
    if "cb_config" in keys:
        return ctx.report.add((*path, written), "cb_config is set both here and on the node; give it once")
    return _breaker(value, (*path, written), ctx)


def _check_provider_keys(keys: dict[str, Any], spec: dict[str, Any], path: Path, ctx: Context) -> None:
    if "virtual_key" in keys and "provider" in keys:
        ctx.report.add((*path, keys["virtual_key"][0]), "'virtual_key' cannot be combined with 'provider'")
    if spec.get("passthrough") is True:
        for name in ("provider", "virtual_key"):
            if name in keys:
                message = f"'{keys[name][0]}' cannot be combined with 'passthrough'"
                ctx.report.add((*path, keys[name][0]), message)


def _provider(value: Any, path: Path, ctx: Context) -> Any:
    name = f.string(value, path, ctx.report)
    if name is INVALID:
        return INVALID
    if name.startswith("@"):
        if SLUG.match(name[1:]):
            return name
        return ctx.report.add(path, BAD_SLUG)
    if name in ctx.known_providers:
        return name
    choices = ", ".join(sorted(ctx.known_providers))
    return ctx.report.add(path, f"Invalid 'provider' value. Must be one of: {choices}, or an @slug")


def _virtual_key(value: Any, path: Path, ctx: Context) -> Any:
    """Hosted's legacy stored credential: the same thing as provider ``@<slug>`` here."""
    name = f.string(value, path, ctx.report)
    if name is INVALID:
        return INVALID
    slug = name[1:] if name.startswith("@") else name
    if not SLUG.match(slug):
        return ctx.report.add(path, BAD_VIRTUAL_KEY)
    return "@" + slug


def _object(value: Any, path: Path, ctx: Context) -> Any:
    if f.expect(value, dict, "object", path, ctx.report) is INVALID:
        return INVALID
    return MappingProxyType(value)


def _required(keys: dict[str, Any], name: str, path: Path, ctx: Context) -> bool:
    if name in keys:
        return True
    ctx.report.add((*path, name), "Required")
    return False


def _retry(value: Any, path: Path, ctx: Context) -> Any:
    if f.expect(value, dict, "object", path, ctx.report) is INVALID:
        return INVALID
    keys = f.canonical_keys(value, RETRY_ALIASES, path, ctx.report)
    at = {name: (*path, written) for name, (written, _) in keys.items()}
    raw = {name: item for name, (_, item) in keys.items()}
    attempts = INVALID
    if _required(keys, "attempts", path, ctx):
        attempts = f.integer(raw["attempts"], at["attempts"], ctx.report, low=0, high=MAX_RETRY_ATTEMPTS)
    codes = DEFAULT_RETRY_STATUS_CODES  # an explicit [] means "no status", as in OSS
    if "on_status_codes" in raw:
        codes = f.status_codes(raw["on_status_codes"], at["on_status_codes"], ctx.report)
    use_after = False
    if "use_retry_after_header" in raw:
        use_after = f.boolean(raw["use_retry_after_header"], at["use_retry_after_header"], ctx.report)
    if INVALID in (attempts, codes, use_after):
        return INVALID
    return RetryPolicy(attempts=attempts, on_status_codes=codes, use_retry_after=use_after)


def _cache(value: Any, path: Path, ctx: Context) -> Any:
    """Validated so a typo is caught; compiled into a CachePolicy that the pipeline's cache step reads. Only
    the root's: the cache step runs before routing picks a target, so a target's own block would do nothing."""
    if len(path) > 1:
        return ctx.report.add(path, NESTED_CACHE)
    if f.expect(value, dict, "object", path, ctx.report) is INVALID:
        return INVALID
    keys = f.canonical_keys(value, CACHE_ALIASES, path, ctx.report)
    if _required(keys, "mode", path, ctx) and keys["mode"][1] not in ("simple", "semantic"):
        ctx.report.add((*path, keys["mode"][0]), BAD_CACHE_MODE)
    if "max_age" in keys:
        f.integer(keys["max_age"][1], (*path, keys["max_age"][0]), ctx.report, low=1)
    return {name: raw for name, (_, raw) in keys.items()}


def _breaker(value: Any, path: Path, ctx: Context) -> Any:
    if f.expect(value, dict, "object", path, ctx.report) is INVALID:
        return INVALID
    keys = f.canonical_keys(value, BREAKER_ALIASES, path, ctx.report)
    check = {
        "failure_threshold": lambda v, p: f.integer(v, p, ctx.report, low=1),
        "failure_threshold_percentage": lambda v, p: f.number(v, p, ctx.report, low=0, high=100),
        "minimum_requests": lambda v, p: f.integer(v, p, ctx.report, low=1),
        "cooldown_interval": lambda v, p: f.integer(v, p, ctx.report, low=MIN_COOLDOWN_MS, high=MAX_COOLDOWN_MS),
        "failure_status_codes": lambda v, p: f.status_codes(v, p, ctx.report),
    }
    got = {name: check[name](raw, (*path, written)) for name, (written, raw) in keys.items()}
    ok = _required(keys, "cooldown_interval", path, ctx)
    if "failure_threshold" not in keys and "failure_threshold_percentage" not in keys:
        ctx.report.add(path, "cb_config needs 'failure_threshold' or 'failure_threshold_percentage'")
        ok = False
    if not ok or INVALID in got.values():
        return INVALID
    return BreakerPolicy(
        failure_threshold=got.get("failure_threshold"),
        cooldown_ms=got["cooldown_interval"],
        failure_status_codes=got.get("failure_status_codes"),
        failure_threshold_percentage=got.get("failure_threshold_percentage"),
        minimum_requests=got.get("minimum_requests", 1),
    )


MAX_WEIGHT = 1_000_000

_FIELDS: dict[str, Callable[[Any, Path, Context], Any]] = {
    "name": lambda v, p, c: f.string(v, p, c.report),
    # Bounded: weights summed past a float's range (1e308 twice) made every draw land on the last target.
    "weight": lambda v, p, c: f.number(v, p, c.report, low=0, high=MAX_WEIGHT),
    "provider": _provider,
    "api_key": lambda v, p, c: f.header_value(v, p, c.report),
    "virtual_key": _virtual_key,
    "passthrough": lambda v, p, c: f.boolean(v, p, c.report),
    "custom_host": lambda v, p, c: f.custom_host(v, p, c.report, c.check_host),
    "forward_headers": lambda v, p, c: f.forward_headers(v, p, c.report),
    "override_params": _object,
    "retry": _retry,
    "request_timeout": lambda v, p, c: f.integer(v, p, c.report, low=1, high=MAX_TIMEOUT_MS),
    "strict_open_ai_compliance": lambda v, p, c: f.boolean(v, p, c.report),
    "cache": _cache,
    "cb_config": _breaker,
}
