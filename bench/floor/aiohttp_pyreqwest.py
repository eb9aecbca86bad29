"""Minimal hop: aiohttp's web server (uvloop) + pyreqwest's client + orjson.

    python -m bench.floor.aiohttp_pyreqwest --port N
"""

from __future__ import annotations

from aiohttp import web

from bench.floor.common import FORWARDED, UPSTREAM_HEADER, is_local, rewrite
from bench.floor.granian_pyreqwest import build_client
from bench.floor.serve import CLIENT, serve_aiohttp


async def hop(request: web.Request) -> web.StreamResponse:
    origin = request.headers.get(UPSTREAM_HEADER, "")
    if not is_local(origin):
        return web.json_response({"error": "x-bench-upstream must be a loopback origin"}, status=400)
    body, stream = rewrite(await request.read())
    upstream = request.app[CLIENT].post(origin + request.path).body_bytes(body)
    upstream = upstream.headers({name: request.headers[name] for name in FORWARDED if name in request.headers})
    if not stream:
        answer = await upstream.build().send()
        return web.Response(status=answer.status, body=bytes(await answer.bytes()),
                            headers={"content-type": _content_type(answer)})
    # pyreqwest hands the body over in batches of `streamed_read_buffer_limit` bytes (64 KiB by default),
    # and returns the head only once the first batch is full: 1 byte means "every chunk as it arrives".
    async with upstream.streamed_read_buffer_limit(1).build_streamed() as answer:
        response = web.StreamResponse(status=answer.status, headers={"content-type": _content_type(answer)})
        await response.prepare(request)
        reader = answer.body_reader
        while (chunk := await reader.read_chunk()) is not None:
            await response.write(bytes(chunk))  # drains when the client's buffer is full: backpressure
        await response.write_eof()
        return response


def _content_type(answer) -> str:
    return answer.get_header("content-type") or "application/octet-stream"


async def _client(app: web.Application):
    app[CLIENT] = build_client()
    yield
    await app[CLIENT].close()


if __name__ == "__main__":
    serve_aiohttp(hop, _client)
