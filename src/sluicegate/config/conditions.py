"""The conditional-routing query language: its vocabulary, its validation and its compilation at config time.

Portkey's OSS gateway only discovers a bad query when a request evaluates it (a 400 on that request);
we reject it when the config is parsed, naming the path, and the router (``routing/conditional.py``)
still raises Portkey's ``RouterError`` messages if it ever meets one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import re2

from sluicegate.config.fields import Path, Report, json_type

COMPARISON_OPS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex", "$length"})
LOGICAL_OPS = frozenset({"$and", "$or"})
QUERY_ROOTS = ("metadata", "params")  # plus the single field "url.pathname"
URL_PATHNAME = "url.pathname"
MAX_QUERY_DEPTH = 16

# $regex runs on the event loop, so it runs on RE2, which never backtracks: a match takes time linear in the
# subject whatever the pattern ("^(a|a)*$" included), where a backtracking engine can take hours. The caps
# bound that line: the pattern's size and its compiled program's, the subject's length, and their product
# (the work of one match, which can reach 0.1 s for a 500-instruction program over 16 KiB; ~10 ms at most
# within the budget, measured).
MAX_REGEX_PATTERN = 256
MAX_REGEX_PROGRAM = 1100  # RE2 instructions: "a{1000}" (its largest repeat count) is 1,004, ordinary patterns tens
MAX_REGEX_SUBJECT = 16 * 1024
MAX_REGEX_WORK = 1_000_000  # program instructions × subject bytes: past it a subject never matches

UNSUPPORTED_OPERATOR = "Unsupported operator used in the query router: {}"
INVALID_FIELD = "Invalid query field '{}'. Use metadata.<key>, params.<key> or url.pathname"

_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Regex:
    """A ``$regex`` operand, compiled once with its config (``compile_query``), never per request.

    Only the pattern is in the repr and the equality: cache keys digest the config tree's repr.
    """

    pattern: str
    compiled: Any = field(repr=False, compare=False)

    def search(self, subject: str) -> bool:
        # Bytes, because RE2 reads UTF-8 either way and a str costs offset bookkeeping we never use;
        # surrogatepass, because JSON may carry a lone surrogate, which strict UTF-8 refuses.
        text = subject.encode("utf-8", "surrogatepass")
        if len(text) * self.compiled.programsize > MAX_REGEX_WORK:
            return False  # as a subject past MAX_REGEX_SUBJECT: bounded work on the event loop
        return self.compiled.search(text) is not None


def compile_regex(pattern: str) -> Regex:
    """``pattern`` ready for ``$regex``; ``ValueError`` saying why it is refused."""
    if len(pattern) > MAX_REGEX_PATTERN:
        raise ValueError(f"$regex pattern is longer than {MAX_REGEX_PATTERN} characters")
    try:
        compiled = re2.compile(_re2_syntax(pattern), _re2_options())
    except re2.error as exc:
        raise ValueError(f"Invalid $regex pattern: {_reason(exc)}") from None
    except UnicodeEncodeError:  # RE2 takes UTF-8, which has no lone surrogates
        raise ValueError("Invalid $regex pattern: it contains a lone surrogate") from None
    if compiled.programsize > MAX_REGEX_PROGRAM:
        raise ValueError(f"$regex pattern is too complex: {compiled.programsize} instructions once compiled, "
                         f"more than {MAX_REGEX_PROGRAM} (large repeat counts multiply a pattern)")
    return Regex(pattern, compiled)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` may not be used with ``$regex``, or None when it is acceptable."""
    try:
        compile_regex(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a client's refused pattern is its 400, not a line on our stderr
    return options


def _reason(exc: Exception) -> str:
    # RE2 gives its reason as bytes (b"invalid perl operator: (?="); str() would print the b'...'.
    reason = exc.args[0] if exc.args else exc
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def _re2_syntax(pattern: str) -> str:
    """JavaScript's (and Python's) ``\\uXXXX`` spelled as RE2's ``\\x{XXXX}``; other escapes as written.

    Escapes are read in pairs from the left, so an escaped backslash before a "u" (``\\\\u0041``) stays literal.
    """
    return _ESCAPE.sub(_spell_escape, pattern)


def _spell_escape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    return f"\\x{{{escaped[1:]}}}" if len(escaped) == 5 else match.group(0)  # 5: "u" and four hex digits


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


def compile_query(query: Any) -> Any:
    """A validated query with each ``$regex`` operand compiled (a ``Regex``), so requests never compile one.

    Only operator positions are rewritten: ``{"$eq": {"$regex": "a"}}`` compares with that object, as written.
    """
    if not isinstance(query, dict):
        return query
    compiled: dict[str, Any] = {}
    for key, value in query.items():
        if key in LOGICAL_OPS and isinstance(value, list):
            compiled[key] = [compile_query(sub) for sub in value]
        elif not key.startswith("$") and isinstance(value, dict):
            compiled[key] = _compile_operators(value)
        else:
            compiled[key] = value
    return compiled


def _compile_operators(ops: dict[str, Any]) -> dict[str, Any]:
    compiled = dict(ops)
    if isinstance(ops.get("$regex"), str):
        compiled["$regex"] = compile_regex(ops["$regex"])
    if isinstance(ops.get("$length"), dict):
        compiled["$length"] = _compile_operators(ops["$length"])
    return compiled
