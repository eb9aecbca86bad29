"""JSON bodies of the admin API ⇄ catalog records. Strict: unknown fields and wrong types are 400s that name
the field, so a typo never silently does nothing."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest
from ..jsontext import check_keys, stored_json_object
from .entries import (
    UNSET,
    CheckHost,
    ProviderInput,
    ProviderPatch,
    provider_input,
    validate_header_name,
    validate_header_value,
)

_PROVIDER_FIELDS = (
    "spec",
    "custom_host",
    "models",
    "default_model",
    "forward_headers",
    "allow_entry",
    "notes",
)
MAX_CONFIG_BYTES = 256 * 1024


def parse_body(raw: bytes) -> dict[str, Any]:
    return stored_json_object(raw, invalid="body: not valid JSON", not_object="body: expected a JSON object")


def _headers_object(value: Any, *, allow_null: bool) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise BadRequest("headers: expected an object of header name to value")
    for name, header_value in value.items():
        validate_header_name(name, "headers")
        if not (allow_null and header_value is None):
            validate_header_value(name, header_value)
    return tuple(value.items())


def provider_from_json(body: dict[str, Any], check_host: CheckHost | None) -> ProviderInput:
    """``POST /admin/api/providers`` body → a validated new provider."""
    check_keys(body, ("slug", "headers") + _PROVIDER_FIELDS)
    raw = {name: body.get(name) for name in _PROVIDER_FIELDS}
    if raw["spec"] is None:
        raw["spec"] = "openai"
    headers = _headers_object(body.get("headers"), allow_null=False)
    return provider_input(body.get("slug"), raw, headers, check_host)


def patch_from_json(body: dict[str, Any]) -> ProviderPatch:
    """``PATCH /admin/api/providers/{slug}`` body: JSON Merge Patch (RFC 7396) semantics.

    Absent fields stay; ``null`` clears an optional field; ``headers`` merge by name and a ``null`` value
    removes that header, so one secret can change without resending the others (which nobody can read back).
    """
    if "slug" in body:
        raise BadRequest("slug: cannot be changed; add a new provider and remove this one")
    check_keys(body, ("headers",) + _PROVIDER_FIELDS)
    values = {name: body[name] for name in _PROVIDER_FIELDS if name in body}
    for required in ("spec", "custom_host"):
        if required in values and values[required] is None:
            raise BadRequest(f"{required}: cannot be null")
    for listed in ("models", "forward_headers"):
        if listed in values and values[listed] is None:
            values[listed] = ()
    if values.get("notes", UNSET) is None:
        values["notes"] = ""
    return ProviderPatch(**values, headers=_headers_object(body.get("headers"), allow_null=True))


def config_from_json(body: dict[str, Any], *, require_id: bool) -> tuple[str | None, str, str | None]:
    """``{"id", "config", "notes"}`` → (id, config text, notes); ``config``: an object or its JSON text."""
    check_keys(body, ("id", "config", "notes") if require_id else ("config", "notes"))
    config = body.get("config")
    if isinstance(config, dict):
        text = orjson.dumps(config).decode()
    elif isinstance(config, str):
        text = config
    else:
        raise BadRequest("config: required, a JSON object (or its text)")
    notes = body.get("notes")
    if notes is not None and not isinstance(notes, str):
        raise BadRequest("notes: expected a string")
    config_id = body.get("id")
    if require_id and not isinstance(config_id, str):
        raise BadRequest("id: required, a string")
    return config_id, text, notes
