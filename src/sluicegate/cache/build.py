"""The cache the settings ask for (SLUICEGATE_CACHE_BACKEND: memory, store, redis, off)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ..settings import Settings
from .memory import MemoryBackend
from .simple import CacheBackend, SimpleCache

BACKENDS = ("memory", "store", "redis", "off")


def build_cache(settings: Settings, engine: AsyncEngine) -> SimpleCache | None:
    backend: CacheBackend
    if settings.cache_backend == "off":
        return None
    if settings.cache_backend == "memory":
        backend = MemoryBackend(settings.cache_max_bytes, settings.cache_max_entries)
    elif settings.cache_backend == "store":
        from .store_backend import StoreBackend

        backend = StoreBackend(engine)
    elif settings.cache_backend == "redis":
        if not settings.redis_url:
            raise ValueError("SLUICEGATE_CACHE_BACKEND=redis needs SLUICEGATE_REDIS_URL")
        from .redis_backend import RedisBackend  # only a Redis deployment imports the client

        backend = RedisBackend(settings.redis_url)
    else:
        raise ValueError(f"SLUICEGATE_CACHE_BACKEND must be one of {', '.join(BACKENDS)}")
    return SimpleCache(backend, entry_max_bytes=settings.cache_entry_max_bytes)
