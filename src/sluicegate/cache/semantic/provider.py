"""Embeddings from a catalog provider the operator names (``SLUICEGATE_CACHE_EMBEDDER=@slug/model``): an
OpenAI-compatible ``/embeddings`` endpoint, e.g. a private embeddings server. The request goes through the
gateway's own dispatcher, as a client's ``model: "@slug/model"`` request would: the catalog's host (checked
by the SSRF guard) and stored credentials, the upstream pool, its timeouts."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from ...config.model import Target
from ...dispatch import Dispatcher
from ...prepare import split_model_slug
from ...types import Call, RequestContext

_DIRECT = Target(json_path="config")
TIMEOUT_MS = 10_000


class EmbeddingFailed(Exception):
    """The provider did not answer with an embedding: the lookup is a miss, the indexing skipped."""


class ProviderEmbedder:
    def __init__(self, dispatcher: Dispatcher, model: str) -> None:
        self._slug, self._model = split_model_slug(model)
        if self._slug is None:
            raise ValueError("SLUICEGATE_CACHE_EMBEDDER: use minilm, off, or @provider-slug/model")
        self._dispatcher = dispatcher

    async def __call__(self, text: str) -> Any:
        import numpy as np

        body = {"model": self._model, "input": text}
        ctx = RequestContext(headers=CIMultiDictProxy(CIMultiDict()), trace_id=secrets.token_hex(16),
                             request_timeout_ms=TIMEOUT_MS)
        call = Call(ctx, "embeddings", "POST", "", orjson.dumps(body), body, stream=False,
                    pathname="/v1/embeddings", model=self._model, model_slug=self._slug)
        outcome, _ = await self._dispatcher.run(call, _DIRECT)
        try:
            vector = np.asarray(orjson.loads(outcome.body or b"")["data"][0]["embedding"], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise EmbeddingFailed(f"embeddings provider answered {outcome.status}") from exc
        if not outcome.ok or vector.ndim != 1 or not vector.size:
            raise EmbeddingFailed(f"embeddings provider answered {outcome.status}")
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector
