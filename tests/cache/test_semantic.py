"""Semantic caching in-process with the real local encoder (all-MiniLM-L6-v2 through numpy): paraphrases
hit, negations and antonyms never do, everything but the user turns must match exactly."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluicegate.cache import MemoryBackend, SemanticCache, SimpleCache
from sluicegate.cache.semantic.guard import contradicts
from sluicegate.cache.semantic.minilm import MiniLM
from sluicegate.config import ConfigCache
from sluicegate.pipeline import ConfigSelector, Pipeline, RequestState, default_steps
from sluicegate.providers import registry
from sluicegate.types import CACHE_HIT, CACHE_SEMANTIC_HIT, CACHE_SEMANTIC_MISS
from tests.fakes.transport import FakeTransport, chat_completion, json_response
from tests.inprocess import HOST, Clock, call, dispatcher

CONFIG = orjson.dumps({"provider": "openai", "api_key": "sk", "custom_host": HOST,
                       "cache": {"mode": "semantic"}}).decode()

PARAPHRASES = [
    ("How do I reset my password?", "What's the way to reset my password?"),
    ("Explain how photosynthesis works", "Explain how photosynthesis works, please"),
    ("Can you recommend a good book about history?", "Could you recommend a good history book?"),
]
OPPOSITES = [
    ("Is aspirin safe for children?", "Is aspirin unsafe for children?"),
    ("Can I take ibuprofen with alcohol?", "Can't I take ibuprofen with alcohol?"),
    ("How do I increase the font size?", "How do I decrease the font size?"),
    ("Is it legal to record a phone call?", "Is it illegal to record a phone call?"),
    ("Should I enable two-factor authentication?", "Should I disable two-factor authentication?"),
    ("Is the water safe to drink?", "Is the water not safe to drink?"),
    ("Does the medicine work with food?", "Does the medicine work without food?"),
    ("Sort the list in ascending order", "Sort the list in descending order"),
    ("Take 2 tablets a day?", "Take 3 tablets a day?"),
    ("Is it allowed to park here?", "Is it forbidden to park here?"),
    ("Should I buy the stock now?", "Should I sell the stock now?"),
]


@pytest.fixture(scope="module")
def encoder() -> MiniLM:
    return MiniLM()


def embed_with(encoder: MiniLM):
    async def embed(text: str):
        return encoder.embed(text)

    return embed


class Rig:
    def __init__(self, encoder: MiniLM) -> None:
        self.transport = FakeTransport(lambda sent: json_response(chat_completion(f"n{len(self.transport.sent)}")))
        exact = SimpleCache(MemoryBackend(1 << 20, 100, clock=Clock()), entry_max_bytes=64 * 1024)
        self.cache = SemanticCache(exact, embed_with(encoder))
        selector = ConfigSelector(ConfigCache(known_providers=registry.PROVIDERS.keys()), {}.get)
        self.pipeline = Pipeline(default_steps(selector, dispatcher(self.transport), self.cache))

    async def ask(self, text: str, system: str | None = None, **extra: Any) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        state = RequestState(call({"x-portkey-config": CONFIG}, {"model": "m", "messages": messages, **extra}))
        await self.pipeline.run(state)
        await self.cache.drain()
        return state.cache_status


@pytest.mark.parametrize(("first", "second"), PARAPHRASES)
async def test_a_paraphrase_is_a_semantic_hit(encoder, first, second):
    rig = Rig(encoder)
    assert await rig.ask(first) == CACHE_SEMANTIC_MISS
    assert await rig.ask(second) == CACHE_SEMANTIC_HIT
    assert await rig.ask(first) == CACHE_HIT  # the exact match comes first
    assert len(rig.transport.sent) == 1


@pytest.mark.parametrize(("first", "second"), OPPOSITES)
async def test_a_negation_or_antonym_never_hits(encoder, first, second):
    rig = Rig(encoder)
    assert await rig.ask(first) == CACHE_SEMANTIC_MISS
    assert await rig.ask(second) == CACHE_SEMANTIC_MISS
    assert len(rig.transport.sent) == 2


def test_similarity_alone_would_match_the_opposites(encoder):
    """Why the guard exists: these opposites are closer than the threshold."""
    close = [(a, b) for a, b in OPPOSITES if float(encoder.embed(a) @ encoder.embed(b)) >= 0.95]
    assert len(close) >= 5 and all(contradicts(a, b) for a, b in close)


def test_the_guard_lets_paraphrases_through():
    assert not any(contradicts(a, b) for a, b in PARAPHRASES)


@pytest.mark.parametrize("change", [{"system": "Answer in French."}, {"temperature": 0.2},
                                    {"tools": [{"type": "function", "function": {"name": "f"}}]}])
async def test_everything_but_the_user_turns_must_match_exactly(encoder, change):
    rig = Rig(encoder)
    first, second = PARAPHRASES[0]
    assert await rig.ask(first) == CACHE_SEMANTIC_MISS
    assert await rig.ask(second, **change) == CACHE_SEMANTIC_MISS
    assert len(rig.transport.sent) == 2


async def test_an_answer_with_tool_calls_is_not_cached(encoder):
    tool_call = chat_completion()
    tool_call["choices"][0]["message"]["tool_calls"] = [{"id": "c", "type": "function",
                                                         "function": {"name": "f", "arguments": "{}"}}]
    rig = Rig(encoder)
    rig.transport = FakeTransport(lambda sent: json_response(tool_call))
    selector = ConfigSelector(ConfigCache(known_providers=registry.PROVIDERS.keys()), {}.get)
    rig.pipeline = Pipeline(default_steps(selector, dispatcher(rig.transport), rig.cache))
    assert await rig.ask("What's the weather?") == CACHE_SEMANTIC_MISS
    assert await rig.ask("What's the weather?") == CACHE_SEMANTIC_MISS


async def test_odd_messages_are_judged_not_crashed_on(encoder):
    rig = Rig(encoder)
    for messages in ([1, "x", {"role": "user", "content": "hi"}], [{"role": "user", "content": [{"type": "text"}]}],
                     "not a list"):
        state = RequestState(call({"x-portkey-config": CONFIG}, {"model": "m", "messages": messages}))
        await rig.pipeline.run(state)
        assert state.cache_status == CACHE_SEMANTIC_MISS


async def test_an_embedding_outage_is_a_miss_not_a_failed_request(encoder):
    rig = Rig(encoder)

    async def down(text: str):
        raise ConnectionError("embeddings server down")

    rig.cache._embed = down
    assert await rig.ask("How do I reset my password?") == CACHE_SEMANTIC_MISS
    assert await rig.ask("How do I reset my password?") == CACHE_HIT  # the exact match still works
