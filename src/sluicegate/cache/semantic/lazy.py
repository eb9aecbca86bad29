"""The local encoder as the semantic cache holds it: numpy and the model (90 MB) load on the first sentence, in
the worker thread that asks, never at start (a gateway that caches nothing semantically never imports them)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class LazyMiniLM:
    """Awaiting it embeds one sentence in a worker thread (minilm.py's forward pass)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None

    async def __call__(self, text: str) -> Any:
        return await asyncio.to_thread(self.embed, text)

    def embed(self, text: str) -> Any:
        with self._lock:
            if self._model is None:
                from .minilm import MiniLM

                self._model = MiniLM()
        return self._model.embed(text)
