"""A client connection's transport as a server protocol sees it, in process: it records what the protocol
writes (each write apart too) and whether it closed, paused reading, or left bytes unsent (``buffered``)."""

from __future__ import annotations

import asyncio


class ClientTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.sends: list[bytes] = []  # each write's bytes
        self.closed = False
        self.reading = True
        self.buffered = 0  # bytes of an answer not yet taken by the client

    def write(self, data) -> None:  # type: ignore[no-untyped-def]
        self.written += data
        self.sends.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name, default=None):  # type: ignore[no-untyped-def]
        return default
