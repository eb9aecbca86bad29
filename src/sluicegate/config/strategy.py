"""The ``strategy`` object of a Gateway Config: mode, fallback status codes, conditional routing rules.

It is validated after the node's ``targets`` so that names used by ``then``/``default`` can be checked
against the real children, and weights against the mode.
"""

from __future__ import annotations

from typing import Any

from sluicegate.config import fields as f
from sluicegate.config.conditions import compile_query, validate_query
from sluicegate.config.fields import INVALID, Path, Report
from sluicegate.config.model import Condition, Strategy

MODES = ("single", "loadbalance", "fallback", "conditional")
MODE_MESSAGE = "Invalid 'mode' value. Must be one of: single, loadbalance, fallback, conditional"
NO_CONDITIONS = "No conditions passed in the query router"
INVALID_TARGET = "Invalid target name found in the query router: {}"

POLICIES = ("weighted", "least-busy")
POLICY_MESSAGE = "Invalid 'policy' value. Must be one of: weighted, least-busy"

STRATEGY_ALIASES = f.alias_table(("mode", "policy", "on_status_codes", "conditions", "default", "cb_config"))
CONDITION_ALIASES = f.alias_table(("query", "then"))
STRATEGY_UNSUPPORTED = frozenset({"sticky"})  # hosted-only sticky load balancing


def validate_strategy(
    value: Any, path: Path, report: Report, children: list[Any] | None
) -> tuple[Any, tuple[str, Any] | None]:
    """Returns the compiled ``Strategy`` (or INVALID) and the raw ``cb_config`` found inside, if any."""
    if f.expect(value, dict, "object", path, report) is INVALID:
        return INVALID, None
    before = len(report.errors)
    keys = f.canonical_keys(value, STRATEGY_ALIASES, path, report, STRATEGY_UNSUPPORTED)
    mode = _mode(keys, path, report)
    codes = None
    if "on_status_codes" in keys:
        written, raw = keys["on_status_codes"]
        _only_for(mode, "fallback", written, path, report)
        codes = f.status_codes(raw, (*path, written), report)
    policy = _policy(keys, mode, path, report)
    names = _child_names(children)
    conditions: tuple[Condition, ...] = ()
    default = None
    if mode == "conditional":
        conditions = _conditions(keys, path, report, names)
        default = _default(keys, path, report, names)
        _unique_names(names, path[:-1], report)
    else:
        for name in ("conditions", "default"):
            if name in keys:
                _only_for(mode, "conditional", keys[name][0], path, report)
    if mode == "loadbalance" and isinstance(children, list) and INVALID not in children:
        _some_weight(children, path[:-1], report)
    breaker = keys.get("cb_config")
    if len(report.errors) > before:
        return INVALID, breaker
    return Strategy(mode=mode, on_status_codes=codes, conditions=conditions, default=default,
                    policy=policy), breaker


def _mode(keys: dict[str, Any], path: Path, report: Report) -> Any:
    if "mode" not in keys:
        return report.add((*path, "mode"), "Required")
    written, raw = keys["mode"]
    if raw not in MODES:
        return report.add((*path, written), MODE_MESSAGE)
    return raw


def _policy(keys: dict[str, Any], mode: Any, path: Path, report: Report) -> Any:
    """How a ``loadbalance`` group picks: "weighted" (the default: a weighted draw) or "least-busy"."""
    if "policy" not in keys:
        return "weighted"
    written, raw = keys["policy"]
    _only_for(mode, "loadbalance", written, path, report)
    if raw not in POLICIES:
        return report.add((*path, written), POLICY_MESSAGE)
    return raw


def _only_for(mode: Any, wanted: str, written: str, path: Path, report: Report) -> None:
    # A setting the chosen mode ignores is almost always a mistake; say so instead of ignoring it.
    if mode is not INVALID and mode != wanted:
        report.add((*path, written), f"'{written}' is only used with mode '{wanted}'")


def _child_names(children: list[Any] | None) -> list[Any] | None:
    """The children's names, or None when a child is broken (its name is unknown, so don't guess)."""
    if not isinstance(children, list) or INVALID in children:
        return None
    names = [child.get("name") for child in children]
    return None if INVALID in names else names


def _conditions(keys: dict[str, Any], path: Path, report: Report, names: list[Any] | None) -> Any:
    if "conditions" not in keys:
        return report.add((*path, "conditions"), NO_CONDITIONS)
    written, raw = keys["conditions"]
    where = (*path, written)
    if f.expect(raw, list, "array", where, report) is INVALID:
        return INVALID
    if not raw:
        return report.add(where, NO_CONDITIONS)
    parsed = [_condition(item, (*where, i), report, names) for i, item in enumerate(raw)]
    return INVALID if INVALID in parsed else tuple(parsed)


def _condition(item: Any, path: Path, report: Report, names: list[Any] | None) -> Any:
    if f.expect(item, dict, "object", path, report) is INVALID:
        return INVALID
    keys = f.canonical_keys(item, CONDITION_ALIASES, path, report)
    query = then = INVALID
    if "query" not in keys:
        report.add((*path, "query"), "Required")
    else:
        written, raw = keys["query"]
        known = len(report.errors)
        validate_query(raw, (*path, written), report)
        # Compiled only once valid: a refused $regex has nothing to compile.
        query = compile_query(raw) if len(report.errors) == known else INVALID
    if "then" not in keys:
        report.add((*path, "then"), "Required")
    else:
        written, raw = keys["then"]
        then = _target_name(raw, (*path, written), report, names)
    if INVALID in (query, then):
        return INVALID
    return Condition(query=query, then=then)


def _default(keys: dict[str, Any], path: Path, report: Report, names: list[Any] | None) -> Any:
    # Optional (as in OSS): without it a request that matches no condition gets the router's 400.
    if "default" not in keys:
        return None
    written, raw = keys["default"]
    return _target_name(raw, (*path, written), report, names)


def _target_name(raw: Any, path: Path, report: Report, names: list[Any] | None) -> Any:
    name = f.string(raw, path, report)
    if name is not INVALID and names is not None and name not in names:
        return report.add(path, INVALID_TARGET.format(name))
    return name


def _unique_names(names: list[Any] | None, node: Path, report: Report) -> None:
    # The router looks children up by name; a duplicate would make the second one unreachable.
    seen: set[str] = set()
    for i, name in enumerate(names or ()):
        if name is not None and name in seen:
            report.add((*node, "targets", i, "name"), f"Duplicate target name '{name}'")
        seen.add(name)


def _some_weight(children: list[Any], node: Path, report: Report) -> None:
    weights = [child.get("weight", 1) for child in children]
    if INVALID not in weights and not any(weight > 0 for weight in weights):
        report.add((*node, "targets"), "At least one target must have a weight greater than 0")
