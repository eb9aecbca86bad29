"""Compile a validated spec tree into the frozen runtime objects of ``model.py``, applying inheritance.

Inheritance (docs/gateway-config.md; Portkey OSS ``tryTargetsRecursively``): a child inherits from its parent
``override_params`` (shallow merge, child's keys win), and ``retry``, ``custom_host``, ``forward_headers``,
``request_timeout``, ``strict_open_ai_compliance``, ``cb_config`` (the child's value replaces the parent's
whole). ``provider``, ``api_key`` and ``virtual_key`` are not inherited in Portkey, so the schema refuses
them next to ``targets`` rather than ignoring them. Done once per config text, never per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sluicegate.config.model import EMPTY, CachePolicy, Group, Node, Target

ROOT_PATH = "config"
INHERITED = (
    "override_params",
    "retry",
    "custom_host",
    "forward_headers",
    "request_timeout",
    "strict_open_ai_compliance",
    "cb_config",
)


def compile_node(
    spec: Mapping[str, Any], path: str = ROOT_PATH, inherited: Mapping[str, Any] = EMPTY
) -> Node:
    """Build the node at ``path`` (the jsonpath reported in ``x-portkey-last-used-option-index``)."""
    scope = _inherit(inherited, spec)
    if "targets" not in spec:
        return _leaf(spec, path, scope)
    children = tuple(
        compile_node(child, f"{path}.targets[{i}]", scope) for i, child in enumerate(spec["targets"])
    )
    return Group(
        json_path=path,
        strategy=spec["strategy"],
        children=children,
        name=spec.get("name"),
        weight=float(spec.get("weight", 1.0)),
        cache=_cache(spec),
    )


def _cache(spec: Mapping[str, Any]) -> CachePolicy | None:
    block = spec.get("cache")
    if block is None:
        return None
    max_age = block.get("max_age")  # validated: a whole number of seconds, maybe written 60.0
    return CachePolicy(mode=block["mode"], max_age_s=int(max_age) if max_age is not None else None)


def _inherit(parent: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    scope = dict(parent)
    for key in INHERITED:
        if key not in spec:
            continue
        if key == "override_params":
            scope[key] = MappingProxyType({**parent.get(key, EMPTY), **spec[key]})
        else:
            scope[key] = spec[key]
    return scope


def _leaf(spec: Mapping[str, Any], path: str, scope: Mapping[str, Any]) -> Target:
    # The schema already turned virtual_key into "@slug"; passthrough leaves the provider to the request.
    provider = None if spec.get("passthrough") else spec.get("provider", spec.get("virtual_key"))
    return Target(
        json_path=path,
        provider=provider,
        api_key=spec.get("api_key"),
        custom_host=scope.get("custom_host"),
        forward_headers=scope.get("forward_headers", ()),
        override_params=scope.get("override_params", EMPTY),
        retry=scope.get("retry"),
        request_timeout_ms=scope.get("request_timeout"),
        strict_open_ai_compliance=scope.get("strict_open_ai_compliance"),
        breaker=scope.get("cb_config"),
        name=spec.get("name"),
        weight=float(spec.get("weight", 1.0)),
        cache=_cache(spec),
    )
