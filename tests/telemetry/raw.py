"""HTTP/1.1 requests written byte by byte on 127.0.0.1: what no HTTP client library will send (0xFF or
invalid UTF-8 in a header value). Bounded: a fixed count, a timeout per request."""

from __future__ import annotations

import asyncio

import orjson

BODY = orjson.dumps({"model": "load", "messages": [{"role": "user", "content": "hi"}]})


def request_bytes(port: int, path: str, headers: list[tuple[bytes, bytes]], body: bytes = BODY) -> bytes:
    head = [f"POST {path} HTTP/1.1".encode(), f"host: 127.0.0.1:{port}".encode(),
            b"content-type: application/json", f"content-length: {len(body)}".encode(), b"connection: close"]
    head += [name + b": " + value for name, value in headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def _send(port: int, raw: bytes, timeout: float) -> int:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(raw)
            await writer.drain()
            status_line = await reader.readline()
            await reader.read()  # connection: close - the whole answer, then EOF
        finally:
            writer.close()
    return int(status_line.split()[1])


async def _send_all(port: int, requests: list[bytes], concurrency: int, timeout: float) -> list[int]:
    gate = asyncio.Semaphore(concurrency)

    async def one(raw: bytes) -> int:
        async with gate:
            return await _send(port, raw, timeout)

    return list(await asyncio.gather(*(one(raw) for raw in requests)))


def send_all(port: int, requests: list[bytes], concurrency: int = 20, timeout: float = 30.0) -> list[int]:
    """The status of each request, in order."""
    return asyncio.run(_send_all(port, requests, concurrency, timeout))
