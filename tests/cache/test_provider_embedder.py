"""Embeddings from a catalog provider: the request the gateway sends (through its own dispatcher, to the
slug's host with its stored credential) and what it makes of the answers."""

from __future__ import annotations

import numpy as np
import pytest

from sluicegate.cache.semantic.provider import EmbeddingFailed, ProviderEmbedder
from sluicegate.catalog.entries import ResolvedProvider
from tests.fakes.transport import FakeTransport, json_response, refused
from tests.inprocess import dispatcher
from tests.test_prepare import Catalog

EMBEDDER = ResolvedProvider(slug="embed", spec="openai", custom_host="http://127.0.0.1:8002/v1",
                            headers=(("authorization", "Bearer stored-embed-secret"),), models=(),
                            forward_headers=())


def embedder(transport: FakeTransport) -> ProviderEmbedder:
    return ProviderEmbedder(dispatcher(transport, catalog=Catalog(EMBEDDER)), "@embed/minilm")


async def test_the_provider_is_asked_for_the_embedding_of_the_text():
    transport = FakeTransport(lambda sent: json_response({"data": [{"embedding": [3.0, 4.0]}]}))
    vector = await embedder(transport)("is it safe?")
    assert np.allclose(vector, [0.6, 0.8])  # normalised
    (sent,) = transport.sent
    assert sent.url == "http://127.0.0.1:8002/v1/embeddings"
    assert sent.json() == {"model": "minilm", "input": "is it safe?"}
    assert sent.headers["authorization"] == "Bearer stored-embed-secret"


@pytest.mark.parametrize("answer", [
    lambda sent: json_response({"error": {"message": "down"}}, status=503),
    lambda sent: json_response({"data": []}),
    lambda sent: json_response({"data": [{"embedding": "nope"}]}),
    lambda sent: refused(),
])
async def test_a_provider_without_an_embedding_is_an_embedding_failure(answer):
    with pytest.raises(EmbeddingFailed):
        await embedder(FakeTransport(answer))("text")


def test_the_setting_must_name_a_slug_and_model():
    with pytest.raises(ValueError):
        ProviderEmbedder(dispatcher(FakeTransport()), "text-embedding-3-small")
