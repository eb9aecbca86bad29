"""Minimal hop: aiohttp's web server + aiohttp's client + uvloop + orjson (sluicegate's stack today).

    python -m bench.floor.aiohttp_aiohttp --port N
"""

from __future__ import annotations

from aiohttp import web

from bench.floor.common import FORWARDED, UPSTREAM_HEADER, is_local, rewrite
from bench.floor.granian_aiohttp import build_session
from bench.floor.serve import CLIENT, serve_aiohttp


async def hop(request: web.Request) -> web.StreamResponse:
    origin = request.headers.get(UPSTREAM_HEADER, "")
    if not is_local(origin):
        return web.json_response({"error": "x-bench-upstream must be a loopback origin"}, status=400)
    body, stream = rewrite(await request.read())
    forwarded = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    async with request.app[CLIENT].post(origin + request.path, data=body, headers=forwarded,
                                        allow_redirects=False) as answer:
        content_type = answer.headers.get("content-type", "application/octet-stream")
        if not stream:
            return web.Response(status=answer.status, body=await answer.read(),
                                headers={"content-type": content_type})
        response = web.StreamResponse(status=answer.status, headers={"content-type": content_type})
        await response.prepare(request)
        async for chunk in answer.content.iter_any():
            await response.write(chunk)  # drains when the client's buffer is full: backpressure
        await response.write_eof()
        return response


async def _session(app: web.Application):
    app[CLIENT] = build_session()
    yield
    await app[CLIENT].close()


if __name__ == "__main__":
    serve_aiohttp(hop, _session)
