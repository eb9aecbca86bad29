"""The cache the settings ask for (SLUICEGATE_CACHE_BACKEND)."""

from __future__ import annotations

from ..settings import Settings
from .memory import MemoryBackend
from .simple import SimpleCache


def build_cache(settings: Settings) -> SimpleCache | None:
    if settings.cache_backend == "off":
        return None
    if settings.cache_backend == "memory":
        backend = MemoryBackend(settings.cache_max_bytes, settings.cache_max_entries)
    else:
        raise ValueError(f"SLUICEGATE_CACHE_BACKEND: unknown backend {settings.cache_backend[:32]!r}")
    return SimpleCache(backend, entry_max_bytes=settings.cache_entry_max_bytes)
