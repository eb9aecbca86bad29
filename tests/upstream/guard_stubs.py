"""Test doubles for the SSRF guard: an injectable clock and a table-driven resolver (no real DNS)."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StubResolver(AbstractResolver):
    """Answers from a table; a list of lists answers one list per call (the last one repeats)."""

    def __init__(self, table: dict[str, object]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.calls.append((host, port))
        answer = self.table[host]
        if isinstance(answer, BaseException):
            raise answer
        if answer and isinstance(answer[0], list):
            answer = answer[min(len(self.calls_for(host)), len(answer)) - 1]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for address in answer
        ]

    def calls_for(self, host: str) -> list[tuple[str, int]]:
        return [call for call in self.calls if call[0] == host]

    async def close(self) -> None:
        pass
