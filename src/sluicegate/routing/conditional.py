"""Conditional routing: evaluate ``strategy.conditions`` against the request and name the child to use.

The language is Portkey's (docs/gateway-config.md): fields ``metadata.<k>``, ``params.<k>``, ``url.pathname``;
comparisons ``$eq $ne $gt $gte $lt $lte $in $nin $regex $length``; logic ``$and $or``; a bare value means
equality; the keys of one object are ANDed; the first matching condition wins, else ``default``.
Equality is JavaScript's strict equality (``"1"`` is not ``1``, ``true`` is not ``1``), ordering uses
``parseFloat`` on both sides, as in OSS. Where OSS has accidental behaviour we choose the evident meaning
(each deviation is marked "OSS:" below and listed in docs/gateway-config.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sluicegate.config.conditions import MAX_REGEX_SUBJECT, UNSUPPORTED_OPERATOR, Regex, compile_regex
from sluicegate.config.model import Strategy
from sluicegate.config.strategy import INVALID_TARGET, NO_CONDITIONS
from sluicegate.errors import RouterError

NO_MATCH = "Query router did not resolve to any valid target"


class _Missing:
    """A field absent from the request: distinct from JSON ``null``, and equal to nothing."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_JS_FLOAT = re.compile(r"\s*([+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))")


def choose_conditional(
    strategy: Strategy,
    children_names: Sequence[str | None],
    *,
    metadata: Mapping[str, Any],
    params: Mapping[str, Any],
    pathname: str,
) -> int:
    """The index of the child chosen for this request; ``RouterError`` (400) when none can be.

    ``params`` is the original request body (before ``override_params``), ``{}`` for non-JSON bodies.
    """
    if not strategy.conditions:
        raise RouterError(NO_CONDITIONS)
    context = {"metadata": metadata, "params": params, "url": {"pathname": pathname}}
    for condition in strategy.conditions:
        if matches(condition.query, context):
            return _index(condition.then, children_names)
    if strategy.default:
        return _index(strategy.default, children_names)
    raise RouterError(NO_MATCH)


def _index(name: str, children_names: Sequence[str | None]) -> int:
    for index, child in enumerate(children_names):
        if child == name:
            return index
    raise RouterError(INVALID_TARGET.format(name))


def matches(query: Any, context: Mapping[str, Any]) -> bool:
    """Does ``query`` hold for ``context``? Every key must hold (an empty query matches everything)."""
    if not isinstance(query, Mapping):
        return False
    for key, expected in query.items():
        if key == "$and" or key == "$or":
            # OSS: returns the $and/$or result at once, ignoring sibling keys; we AND them like any key.
            if not isinstance(expected, list):
                raise RouterError(UNSUPPORTED_OPERATOR.format(key))
            combine = all if key == "$and" else any
            holds = combine(matches(sub, context) for sub in expected)
        elif key.startswith("$"):
            raise RouterError(UNSUPPORTED_OPERATOR.format(key))
        else:
            actual = lookup(context, key)
            holds = _operators(expected, actual) if isinstance(expected, Mapping) else same(actual, expected)
        if not holds:
            return False
    return True


def lookup(context: Mapping[str, Any], key: str) -> Any:
    """Walk a dotted field; list items by index (``params.messages.0.role``). MISSING when absent.

    OSS reads only two segments (``params.a.b`` means ``params.a``); we walk the whole path.
    """
    value: Any = context
    for part in key.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, MISSING)
        elif isinstance(value, list) and part.isascii() and part.isdigit() and int(part) < len(value):  # not '²'
            value = value[int(part)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _operators(ops: Mapping[str, Any], actual: Any) -> bool:
    # OSS: $regex returns its own result at once, skipping the object's other operators; we AND them all.
    for op, operand in ops.items():
        check = _COMPARISONS.get(op)
        if check is None:
            raise RouterError(UNSUPPORTED_OPERATOR.format(op))
        if not check(actual, operand):
            return False
    return True


def same(a: Any, b: Any) -> bool:
    """JavaScript ``===`` for JSON values, except that arrays and objects compare by content.

    OSS compares arrays/objects by reference, so such a query could never match; content is the intent.
    """
    if a is MISSING or b is MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):  # item by item, by these rules: Python's == has True == 1
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(value, b[key]) for key, value in a.items())
    return type(a) is type(b) and a == b


def js_number(value: Any) -> float | None:
    """JavaScript ``parseFloat``: the leading number of a string, a number itself; None for NaN."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _JS_FLOAT.match(value)
        return float(match.group(1).replace("Infinity", "inf")) if match else None
    return None


def js_string(value: Any) -> str | None:
    """JavaScript ``String(value)`` for scalars (what a RegExp tests); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    return None


def _ordered(compare: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, operand: Any) -> bool:
        left, right = js_number(actual), js_number(operand)
        return left is not None and right is not None and compare(left, right)

    return check


def _regex(actual: Any, operand: Any) -> bool:
    # OSS: a missing field is tested as the string "undefined"; we say a missing field matches nothing.
    subject = None if actual is MISSING else js_string(actual)
    if subject is None or len(subject) > MAX_REGEX_SUBJECT:
        return False  # RE2's time is linear in the subject: the cap bounds it
    regex = operand if isinstance(operand, Regex) else _uncompiled(operand)
    return regex is not None and regex.search(subject)


def _uncompiled(pattern: Any) -> Regex | None:
    """A pattern the config compiler did not see (a query built in code): compiled here, with the same rules."""
    if not isinstance(pattern, str):
        return None
    try:
        return compile_regex(pattern)
    except ValueError:
        return None  # as OSS: an invalid pattern is simply false


def _length(actual: Any, operand: Any) -> bool:
    if not isinstance(actual, list):
        return False
    if isinstance(operand, Mapping):
        return _operators(operand, len(actual))
    return same(len(actual), operand)


_COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "$eq": same,
    # A missing field is "not equal" and "not in", as in OSS (undefined !== x) and MongoDB.
    "$ne": lambda actual, operand: not same(actual, operand),
    "$gt": _ordered(lambda a, b: a > b),
    "$gte": _ordered(lambda a, b: a >= b),
    "$lt": _ordered(lambda a, b: a < b),
    "$lte": _ordered(lambda a, b: a <= b),
    "$in": lambda actual, operand: isinstance(operand, list) and any(same(actual, x) for x in operand),
    "$nin": lambda actual, operand: isinstance(operand, list) and not any(same(actual, x) for x in operand),
    "$regex": _regex,
    "$length": _length,
}
