"""Decoding JSON text that must be an object: request bodies, headers, configs, admin bodies.

One function, so every caller refuses the same inputs the same way; each keeps its own words.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import BadRequest


def json_object(text: bytes | str, *, invalid: str, not_object: str | None = None) -> dict[str, Any]:
    """``text`` decoded; a ``BadRequest`` when it is not JSON (``invalid``, where ``{error}`` stands for the
    decoder's complaint) or not an object (``not_object``, default ``invalid``)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(invalid.replace("{error}", str(exc))) from None
    if not isinstance(value, dict):
        raise BadRequest(not_object if not_object is not None else invalid.replace("{error}", "not an object"))
    return value
