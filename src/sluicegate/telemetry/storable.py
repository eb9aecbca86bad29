"""Text every store can hold: what cannot be stored is replaced, so that one row never fails its batch.

Header values reach Python with their invalid UTF-8 bytes as lone surrogates (aiohttp decodes them with
``surrogateescape``); neither sqlite3 nor the spool's JSON can encode those, and PostgreSQL refuses NUL in
text and in JSON. One such character used to fail a whole batch of rows. Each one becomes U+FFFD here,
when the rows are built: the rest of the value, and the rest of the batch, are stored as they were.

``storable_draft`` checks a request's row draft with one serialisation, whose JSON line the journal can
write: the common case (nothing to replace) costs that one C-level pass and no Python per column.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\\ud800-\\udfff]")  # the escape, for re: mypyc compiles no lone surrogate literal


def storable_text(text: str) -> str:
    if text.isascii():  # the common case, checked in C: only a NUL can be wrong
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: each one (an escaped byte, or half a pair) becomes U+FFFD
        text = _SURROGATE.sub(REPLACEMENT, text)
    return text.replace("\x00", REPLACEMENT) if "\x00" in text else text


def storable(value: Any) -> Any:
    """``value`` with every string in it (dict keys, list items) storable; other values untouched."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


_JSON_NUL = b"\\u0000"  # how orjson writes NUL in a string
# Up to this length the line is searched for an escaped NUL; a longer one (a logged stream: its JSON is
# dense with escapes, which make that search crawl, ~0.6 µs per KB) has its values checked instead, ~4 µs.
_SCAN_MAX = 4096


def _has_nul(row: dict[str, Any]) -> bool:
    """Is there a NUL in any text of this row (its nested values and keys included)? Column names are ours."""
    for value in row.values():
        kind = value.__class__
        if kind is str:
            if "\x00" in value:
                return True
        elif (kind is dict or kind is list or kind is tuple) and value and _nested_nul(value):
            return True
    return False


def _nested_nul(value: Any) -> bool:
    kind = value.__class__
    if kind is str:
        return "\x00" in value
    if kind is list or kind is tuple:
        return any(map(_nested_nul, value))
    if kind is dict:
        return any(map(_nested_nul, value.values())) or any(map(_nested_nul, value.keys()))
    return False


def storable_draft(draft: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """(a log row's draft, rows.RowBuilder.draft, made storable in place; its JSON line ending in a newline,
    or None when it cannot be JSON). orjson refuses lone surrogates and escapes NUL: a line it writes without
    an escaped NUL holds neither, and then nothing needs replacing (an escaped backslash before ``u0000``
    only sends the draft the slow way, which leaves such text as it is)."""
    try:
        line = orjson.dumps(draft, option=orjson.OPT_APPEND_NEWLINE)
        if not (_draft_has_nul(draft) if len(line) > _SCAN_MAX else _JSON_NUL in line):
            return draft, line
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate (or, never in a row, a value it cannot encode)
        pass
    for name, value in draft.items():
        if name == "row":
            storable_row(value)
        elif name == "attempts":
            for attempt in value:
                storable_row(attempt)
        else:
            draft[name] = storable(value)
    try:
        return draft, orjson.dumps(draft, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return draft, None


def _draft_has_nul(draft: dict[str, Any]) -> bool:
    return (_has_nul(draft["row"]) or any(map(_has_nul, draft["attempts"])) or _nested_nul(draft["answer"])
            or _nested_nul(draft["price"]))


def storable_row(row: dict[str, Any]) -> dict[str, Any]:
    """In place: every column value storable. The common row, all its text ASCII without NUL, is recognised
    with one scan of its joined text (in C) instead of a check per column."""
    texts = [value for value in row.values() if isinstance(value, str)]
    joined = "".join(texts)
    plain = joined.isascii() and "\x00" not in joined
    for name, value in row.items():
        if isinstance(value, (dict, list)) and value:
            row[name] = storable(value)
        elif not plain and isinstance(value, str):
            row[name] = storable_text(value)
    return row
