"""What a model server says about its own load, read from its Prometheus text (``GET /metrics``). Pure.

Recognised series (the first found of each kind wins; labels are ignored and values of one name summed,
so a server exposing one series per model reports its total):

- running: llama.cpp ``llamacpp:requests_processing``, vLLM ``vllm:num_requests_running``
- waiting: llama.cpp ``llamacpp:requests_deferred``, vLLM ``vllm:num_requests_waiting``,
  TGI ``tgi_queue_size``
- KV-cache use in [0, 1]: vLLM ``vllm:gpu_cache_usage_perc`` or ``vllm:kv_cache_usage_perc``
  (llama.cpp's ``llamacpp:kv_cache_usage_ratio`` too)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RUNNING = ("llamacpp:requests_processing", "vllm:num_requests_running")
WAITING = ("llamacpp:requests_deferred", "vllm:num_requests_waiting", "tgi_queue_size")
CACHE = ("vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc", "llamacpp:kv_cache_usage_ratio")
MAX_TEXT = 1 << 20  # a metrics page larger than this is not read further


@dataclass(frozen=True, slots=True)
class ServerLoad:
    running: float | None = None
    waiting: float | None = None
    cache_usage: float | None = None

    @property
    def queue(self) -> float | None:
        """Requests at the server (running + waiting), or None when it reported neither."""
        if self.running is None and self.waiting is None:
            return None
        return (self.running or 0.0) + (self.waiting or 0.0)


def parse_server_load(text: str) -> ServerLoad | None:
    """The load in a Prometheus text page, or None when it holds none of the recognised series."""
    sums: dict[str, float] = {}
    for line in text[:MAX_TEXT].splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = _sample(line)
        if name is None or value is None:
            continue
        sums[name] = sums.get(name, 0.0) + value
    running = _first(sums, RUNNING)
    waiting = _first(sums, WAITING)
    cache = _first(sums, CACHE)
    if running is None and waiting is None and cache is None:
        return None
    if cache is not None:
        cache = min(max(cache, 0.0), 1.0)
    return ServerLoad(running=running, waiting=waiting, cache_usage=cache)


def _sample(line: str) -> tuple[str | None, float | None]:
    # name{labels} value [timestamp]; label values may hold spaces, so split after the closing brace.
    brace = line.find("{")
    if brace >= 0:
        close = line.rfind("}")
        if close < brace:
            return None, None
        name, rest = line[:brace], line[close + 1:]
    else:
        name, _, rest = line.partition(" ")
    parts = rest.split()
    if not name or not parts:
        return None, None
    try:
        value = float(parts[0])
    except ValueError:
        return None, None
    return name.strip(), value if math.isfinite(value) and value >= 0 else None


def _first(sums: dict[str, float], names: tuple[str, ...]) -> float | None:
    for name in names:
        if name in sums:
            return sums[name]
    return None
