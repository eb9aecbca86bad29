"""Decoding JSON text: objects (request bodies, headers, configs, admin bodies) and what the gateway will
write again (no deeper than its encoder writes).

One function per rule, so every caller refuses the same inputs the same way; each keeps its own words.
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


def check_keys(body: dict[str, Any], allowed: tuple[str, ...], *, where: str = "", hint: str = "") -> None:
    """A 400 naming the first field of ``body`` (an object at ``where``, e.g. "configurations.") not in
    ``allowed``; ``hint`` says what to do instead."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"{where}{unknown[0][:64]}: unknown field (allowed: {', '.join(allowed)}){hint}")


# orjson reads JSON nested up to 1,024 levels deep but writes at most 254. A document the gateway keeps and
# writes back (an admin body, a saved config) nested deeper would be accepted, and then fail as a 500.
WRITABLE_DEPTH = 254


def stored_json_object(text: bytes | str, *, invalid: str, not_object: str | None = None,
                       what: str = "body") -> dict[str, Any]:
    """``json_object`` for JSON the gateway stores and answers back: also a ``BadRequest`` when it is nested
    deeper than it can be written (``what`` names it in the message)."""
    value = json_object(text, invalid=invalid, not_object=not_object)
    if _too_deep(text, value):
        raise BadRequest(f"{what}: nested too deeply (at most {WRITABLE_DEPTH} levels)")
    return value


def writable_json(raw: bytes) -> Any:
    """``orjson.loads`` for JSON the gateway writes again (an upstream's answer it translates): nested deeper
    than orjson writes, it is refused as text that is not JSON would be (``orjson.JSONDecodeError``)."""
    value = orjson.loads(raw)
    if _too_deep(raw, value):
        raise orjson.JSONDecodeError(f"nested deeper than {WRITABLE_DEPTH} levels", "", 0)
    return value


def model_named(raw: bytes) -> tuple[bytes, str | None] | None:
    """A passthrough body that must say its model (a catalog allow-list, a key's models): the bytes to send on,
    serialised again so that a second "model" key cannot hide another from the upstream, and the model it
    names; None when it is not a JSON object the gateway can write back. A model that is not a string is a
    ``BadRequest``."""
    try:
        value = writable_json(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    model = value.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("'model' must be a string")
    return orjson.dumps(value), model


def _too_deep(text: bytes | str, value: Any) -> bool:
    """Is ``value`` (parsed from ``text``) nested deeper than orjson writes? Text shorter than the brackets
    that depth takes cannot be: the common document is not written a second time to tell."""
    if len(text) <= 2 * WRITABLE_DEPTH:
        return False
    try:
        orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: the depth (a parsed document holds nothing else it refuses)
        return True
    return False
