"""Several streams at once through the gateway to one real model server.

llama.cpp's server generates for one request at a time and queues the others (with
`--interrupt_requests false`; its default would abort the streams in flight instead), so the later
streams wait seconds for their first byte. All of them must still arrive whole.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson

from tests.e2e_real.clients import MODEL, direct_headers, user

STREAMS = 4
TOKENS = 32


async def _one_stream(client: httpx.AsyncClient, url: str, headers: dict, n: int) -> dict:
    body = {"model": MODEL, "messages": user(f"Tell me fact number {n} about the sea."),
            "max_tokens": TOKENS, "stream": True}
    async with client.stream("POST", url, headers=headers, json=body) as response:
        assert response.status_code == 200, await response.aread()
        raw = b"".join([part async for part in response.aiter_bytes()])
    events = [event for event in raw.decode().split("\n\n") if event.strip()]
    chunks = [orjson.loads(event.removeprefix("data: ")) for event in events[:-1]]
    return {"done": events[-1] == "data: [DONE]", "chunks": chunks}


async def test_four_concurrent_streams_all_complete_intact(gateway, smol):
    url = f"{gateway.v1}/chat/completions"
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5)) as client:
        results = await asyncio.wait_for(
            asyncio.gather(*(_one_stream(client, url, direct_headers(smol.v1), n) for n in range(STREAMS))),
            timeout=110)
    ids = set()
    for result in results:
        chunks = result["chunks"]
        assert result["done"], "a stream ended without [DONE]"
        assert not [c for c in chunks if "error" in c], "a stream carried an error event"
        assert len({c["id"] for c in chunks}) == 1  # one completion per stream, never two interleaved
        ids |= {c["id"] for c in chunks}
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text.strip()
        assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert len(ids) == STREAMS  # four distinct completions, none duplicated to two clients
