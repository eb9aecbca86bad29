"""A hostile upstream on 127.0.0.1: answers every request with a body that does not stop.

A raw asyncio server in its own thread (aiohttp's server would not let a test lie about lengths). Each
answer is a status line and headers chosen by the test, then ``block`` repeated until the peer (the
gateway) closes the connection or ``budget`` bytes are out, so a test can never pour more than that
into the machine. ``sent`` counts the body bytes written, ``dropped`` the connections the peer closed
before the budget was spent.
"""

from __future__ import annotations

import asyncio
import threading


class EndlessUpstream:
    def __init__(self, head: bytes, block: bytes = b"x" * 65536, budget: int = 256 * 1024 * 1024) -> None:
        self.head, self.block, self.budget = head, block, budget
        self.sent = 0
        self.dropped = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def v1(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> EndlessUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")  # the request head; the small body is left unread
            writer.write(self.head)
            spent = 0
            while spent < self.budget:
                writer.write(self.block)
                await writer.drain()  # blocks while the gateway does not read: backpressure
                spent += len(self.block)
                self.sent += len(self.block)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.dropped += 1
        finally:
            writer.close()
