"""A component's one long-lived background task (a poller, a prober, a listener): started once,
cancelled and awaited at stop. The loop itself stays the component's; this only owns its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundTask:
    __slots__ = ("_name", "_task")

    def __init__(self, name: str) -> None:
        self._name = name  # shown by asyncio in warnings and task dumps
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``loop()`` as a task unless one already runs (a second start changes nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(loop(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
