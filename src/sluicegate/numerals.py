"""Numbers written as text by a client (a header, a query parameter): plain ASCII numerals only.

Python's ``int`` and ``float`` also read ``1_000``, Arabic-Indic (``١٢``) and full-width digits, and
``float`` reads ``nan``, ``inf`` and ``1e309``. A gateway that took those where its peers and its docs
say "a number" would accept what every other reader of the same request refuses. Pure functions.
"""

from __future__ import annotations

import math
import re

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_DIGITS = 40  # longer than any number these texts carry: no huge int to build from a hostile header


def integer(text: str) -> int | None:
    """``text`` (spaces around it allowed) as an int, or None when it is not a plain decimal integer."""
    text = text.strip(" \t")
    if len(text) > _MAX_DIGITS or not _INTEGER.fullmatch(text):
        return None
    return int(text)


def decimal(text: str) -> float | None:
    """``text`` (spaces around it allowed) as a finite float, or None when it is not a plain decimal number."""
    text = text.strip(" \t")
    if len(text) > _MAX_DIGITS or not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None
