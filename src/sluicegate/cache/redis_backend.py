"""The Redis backend (SLUICEGATE_REDIS_URL): entries shared by every replica, expiry by Redis's own TTL
(``SET key value PX ttl``); Redis's ``maxmemory-policy`` bounds it (``allkeys-lru`` suits a cache)."""

from __future__ import annotations

from redis.asyncio import Redis

PREFIX = "sluicegate:cache:"


class RedisBackend:
    def __init__(self, url: str) -> None:
        self._redis = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    async def get(self, key: str) -> bytes | None:
        data = await self._redis.get(PREFIX + key)  # bytes: the client does not decode responses
        return data.encode() if isinstance(data, str) else data

    async def put(self, key: str, data: bytes, ttl_s: float) -> None:
        await self._redis.set(PREFIX + key, data, px=max(1, int(ttl_s * 1000)))

    async def close(self) -> None:
        await self._redis.aclose()
