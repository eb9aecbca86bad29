"""Small validators shared by the config schema: types, numbers, status codes, header names, keys.

Every validator reports into a ``Report`` and returns ``INVALID`` on failure, so the schema can keep going
and list every problem at once (as Portkey's ``errors`` array does) instead of stopping at the first.
Messages follow zod's wording where Portkey's gateway answers with zod's output, so clients see familiar text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluicegate import header_names
from sluicegate.errors import InvalidCustomHost

Path = tuple[str | int, ...]


class _Invalid:
    """Marker for "this value failed validation" (distinct from a valid ``None``)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass
class Report:
    """Collects error entries in Portkey's ``path: a,0,b, message: ...`` form."""

    errors: list[str] = field(default_factory=list)

    def add(self, path: Path, message: str) -> Any:
        self.errors.append(f"path: {','.join(str(part) for part in path)}, message: {message}")
        return INVALID


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for "Expected X, received Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


def alias_table(canonical: Iterable[str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map every accepted spelling (snake_case and its camelCase twin) to the canonical snake_case key."""
    table = {}
    for name in canonical:
        table[name] = name
        table[camel(name)] = name
    for alias, name in (extra or {}).items():
        table[alias] = name
        table[camel(alias)] = name
    return table


def canonical_keys(
    obj: Mapping[str, Any],
    aliases: Mapping[str, str],
    path: Path,
    report: Report,
    unsupported: Collection[str] = (),
) -> dict[str, tuple[str, Any]]:
    """Rename keys to canonical names, keeping the spelling the user wrote for error paths.

    Unknown keys are errors (stricter than OSS, which ignores them): a typo like ``retrys`` would otherwise
    silently switch a feature off. Two spellings of one key in one object are ambiguous, so also an error.
    """
    out: dict[str, tuple[str, Any]] = {}
    for key, value in obj.items():
        name = aliases.get(key)
        if name is None:
            if snake(key) in unsupported:
                report.add((*path, key), f"'{key}' is not supported by this gateway")
            else:
                report.add((*path, key), f"Unrecognized key: '{key}'")
        elif name in out:
            report.add((*path, key), f"'{key}' and '{out[name][0]}' are the same setting; give it once")
        else:
            out[name] = (key, value)
    return out


def expect(value: Any, kind: type | tuple[type, ...], expected: str, path: Path, report: Report) -> Any:
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        return report.add(path, f"Expected {expected}, received boolean")
    if not isinstance(value, kind):
        return report.add(path, f"Expected {expected}, received {json_type(value)}")
    return value


def integer(
    value: Any, path: Path, report: Report, *, low: int | None = None, high: int | None = None
) -> Any:
    """A JSON integer; ``3.0`` counts because JavaScript clients cannot tell it apart from ``3``."""
    if expect(value, (int, float), "number", path, report) is INVALID:
        return INVALID
    if isinstance(value, float):
        if not value.is_integer():
            return report.add(path, "Expected integer, received float")
        value = int(value)
    return bounded(value, path, report, low=low, high=high)


def number(
    value: Any, path: Path, report: Report, *, low: float | None = None, high: float | None = None
) -> Any:
    if expect(value, (int, float), "number", path, report) is INVALID:
        return INVALID
    return bounded(value, path, report, low=low, high=high)


def bounded(value: Any, path: Path, report: Report, *, low: float | None, high: float | None) -> Any:
    if low is not None and value < low:
        return report.add(path, f"Number must be greater than or equal to {low}")
    if high is not None and value > high:
        return report.add(path, f"Number must be less than or equal to {high}")
    return value


def boolean(value: Any, path: Path, report: Report) -> Any:
    return expect(value, bool, "boolean", path, report)


def string(value: Any, path: Path, report: Report, *, non_empty: bool = True) -> Any:
    if expect(value, str, "string", path, report) is INVALID:
        return INVALID
    if non_empty and not value:
        return report.add(path, "String must contain at least 1 character(s)")
    return value


def header_value(value: Any, path: Path, report: Report) -> Any:
    """A string the gateway sends as a header value (an ``api_key``): a line break or another control
    character there is a bad config, not an upstream that cannot be reached (which retries and fallbacks
    would have tried again, and the breaker counted)."""
    if string(value, path, report) is INVALID:
        return INVALID
    if header_names.CONTROL_CHARACTERS.search(value):
        return report.add(path, "must not contain line breaks or control characters (it is sent as a header)")
    return value


def status_codes(value: Any, path: Path, report: Report) -> Any:
    """A list of HTTP status codes (100..599), as a frozenset."""
    if expect(value, list, "array", path, report) is INVALID:
        return INVALID
    codes = [integer(item, (*path, i), report, low=100, high=599) for i, item in enumerate(value)]
    return INVALID if INVALID in codes else frozenset(codes)


def forward_headers(value: Any, path: Path, report: Report) -> Any:
    """Header names, expanded into every form the SDKs' spellings must match (header_names.py)."""
    if expect(value, list, "array", path, report) is INVALID:
        return INVALID
    names: list[str] = []
    before = len(report.errors)
    for i, item in enumerate(value):
        name = string(item, (*path, i), report)
        if name is INVALID:
            continue
        if not header_names.HEADER_TOKEN.fullmatch(name.strip()):
            report.add((*path, i), f"Invalid header name: '{item}'")
            continue
        for form in header_names.forms(name):
            if not header_names.may_forward(form):  # the same rule as the header form and the catalog
                report.add(path, f"forward_headers must not contain the '{form}' header")
                break
            if form not in names:
                names.append(form)
    return tuple(names) if len(report.errors) == before else INVALID


def custom_host(value: Any, path: Path, report: Report, check_host: Callable[[str], object] | None) -> Any:
    """A base URL, checked by the SSRF guard's request-time rules when one is given."""
    url = string(value, path, report)
    if url is INVALID:
        return INVALID
    if check_host is not None:
        try:
            check_host(url)
        except InvalidCustomHost as exc:
            return report.add(path, f"Invalid custom host: {exc.reason}")
    # A trailing slash would double up when the endpoint path is appended ("/v1/" + "/chat/completions").
    return url.rstrip("/") or url
