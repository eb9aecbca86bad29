"""Reading decoded JSON of unknown shape: a value that should be an object, or nothing."""

from __future__ import annotations

from typing import Any


def as_object(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a missing or malformed field reads as empty)."""
    return value if isinstance(value, dict) else {}


def as_text(value: object) -> str:
    """``value`` when it is a string, else "" (a field of another type is passed over, never relayed as is)."""
    return value if isinstance(value, str) else ""
