"""The response cache behind the pipeline's cache step (docs/caching.md).

  key.py        the simple cache's key: a SHA-256 over everything that changes the answer
  entry.py      what an entry holds (status, content type, body; never a credential) and its replay
  recording.py  a stream recorded while relayed, stored only after its clean end
  simple.py     SimpleCache: the ResponseCache over a backend
  memory.py     the in-memory backend (LRU, bounded in bytes and entries)
  semantic/     semantic mode: nearest earlier prompt over local embeddings, guarded against negations
  build.py      the backend (and the semantic layer) the settings name
"""

from .build import build_cache
from .memory import MemoryBackend
from .semantic.cache import SemanticCache
from .simple import CacheBackend, SimpleCache

__all__ = ["CacheBackend", "MemoryBackend", "SemanticCache", "SimpleCache", "build_cache"]
