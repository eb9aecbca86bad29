"""The conditional-routing query language: its vocabulary and its validation at config time.

Portkey's OSS gateway only discovers a bad query when a request evaluates it (a 400 on that request);
we reject it when the config is parsed, naming the path, and the router (``routing/conditional.py``)
still raises Portkey's ``RouterError`` messages if it ever meets one.
"""

from __future__ import annotations

import re
from typing import Any

from sluicegate.config.fields import Path, Report, json_type

COMPARISON_OPS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$length"})
LOGICAL_OPS = frozenset({"$and", "$or"})
QUERY_ROOTS = ("metadata", "params")  # plus the single field "url.pathname"
URL_PATHNAME = "url.pathname"
MAX_QUERY_DEPTH = 16

# Python's ``re`` has no timeout, so we bound the work instead: short patterns, bounded subjects, and no
# quantified group that itself contains a quantifier ("(a+)+"), the classic catastrophic-backtracking shape.
MAX_REGEX_PATTERN = 256
MAX_REGEX_SUBJECT = 16 * 1024

UNSUPPORTED_OPERATOR = "Unsupported operator used in the query router: {}"
INVALID_FIELD = "Invalid query field '{}'. Use metadata.<key>, params.<key> or url.pathname"

_ESCAPED = re.compile(r"\\.")
_CHAR_CLASS = re.compile(r"\[\^?\]?(?:\\.|[^\]])*\]")
_INNER_GROUP = re.compile(r"\(([^()]*)\)([*+{]?)")
_HAS_QUANTIFIER = re.compile(r"[*+]|\{\d*,")


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` may not be used with ``$regex``, or None when it is acceptable."""
    if len(pattern) > MAX_REGEX_PATTERN:
        return f"$regex pattern is longer than {MAX_REGEX_PATTERN} characters"
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:  # OverflowError: 'a{99999999999}'
        return f"Invalid $regex pattern: {exc}"
    if _nested_quantifier(pattern):
        return "$regex pattern nests quantifiers (like '(a+)+'), which can take exponential time"
    return None


def _nested_quantifier(pattern: str) -> bool:
    # Escapes and character classes cannot quantify anything; blank them so '\(' or '[+]' do not confuse us.
    text = _CHAR_CLASS.sub("c", _ESCAPED.sub("c", pattern))
    # Collapse groups from the innermost out, remembering whether each one contained a quantifier.
    while True:
        match = _INNER_GROUP.search(text)
        if match is None:
            return False
        body, after = match.group(1), match.group(2)
        quantified_inside = bool(_HAS_QUANTIFIER.search(body))
        if quantified_inside and after:
            return True
        collapsed = ("c+" if quantified_inside else "c") + after  # keep the group's own quantifier visible
        text = text[: match.start()] + collapsed + text[match.end() :]


def validate_query(query: Any, path: Path, report: Report, depth: int = 0) -> None:
    """Check a ``conditions[i].query`` object: fields, operators and operand types."""
    if not isinstance(query, dict):
        report.add(path, f"Expected object, received {json_type(query)}")
        return
    if depth > MAX_QUERY_DEPTH:
        report.add(path, f"Query is nested more than {MAX_QUERY_DEPTH} levels deep")
        return
    for key, value in query.items():
        where = (*path, key)
        if key in LOGICAL_OPS:
            _validate_logical(value, where, report, depth)
        elif key.startswith("$"):
            report.add(where, UNSUPPORTED_OPERATOR.format(key))
        elif not _valid_field(key):
            report.add(where, INVALID_FIELD.format(key))
        elif isinstance(value, dict):
            _validate_operators(value, where, report)


def _valid_field(key: str) -> bool:
    root, _, rest = key.partition(".")
    return key == URL_PATHNAME or (root in QUERY_ROOTS and bool(rest) and "" not in rest.split("."))


def _validate_logical(value: Any, path: Path, report: Report, depth: int) -> None:
    if not isinstance(value, list):
        report.add(path, f"Expected array, received {json_type(value)}")
    elif not value:
        report.add(path, "Array must contain at least 1 element(s)")
    else:
        for i, sub in enumerate(value):
            validate_query(sub, (*path, i), report, depth + 1)


def _validate_operators(ops: dict[str, Any], path: Path, report: Report) -> None:
    for op, operand in ops.items():
        where = (*path, op)
        if op not in COMPARISON_OPS:
            report.add(where, UNSUPPORTED_OPERATOR.format(op))
        elif op in ("$in", "$nin") and not isinstance(operand, list):
            report.add(where, f"Expected array, received {json_type(operand)}")
        elif op == "$regex":
            _validate_regex(operand, where, report)
        elif op == "$length":
            _validate_length(operand, where, report)
        elif op in ("$gt", "$gte", "$lt", "$lte") and json_type(operand) not in ("number", "string"):
            report.add(where, f"Expected number, received {json_type(operand)}")


def _validate_regex(operand: Any, path: Path, report: Report) -> None:
    if not isinstance(operand, str):
        report.add(path, f"Expected string, received {json_type(operand)}")
        return
    problem = regex_problem(operand)
    if problem:
        report.add(path, problem)


def _validate_length(operand: Any, path: Path, report: Report) -> None:
    if isinstance(operand, dict):
        _validate_operators(operand, path, report)
    elif json_type(operand) != "number":
        report.add(path, f"Expected number, received {json_type(operand)}")
