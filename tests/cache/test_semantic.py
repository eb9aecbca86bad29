"""Semantic caching in-process with the real local encoder (all-MiniLM-L6-v2 through numpy): paraphrases
hit, negations, antonyms and different numbers never do, everything but the last user turn's text must match
exactly, and a text the encoder would not see whole (cut at its window, or read as [UNK]) gets the exact
match alone."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluicegate.cache import MemoryBackend, SemanticCache, SimpleCache
from sluicegate.cache.semantic.guard import contradicts
from sluicegate.cache.semantic.minilm import MAX_TOKENS, MiniLM
from sluicegate.cache.semantic.wordpiece import MAX_PIECE_CHARS, encode, max_chars
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


# Pairs the guard must refuse: each names a different number, or the same numbers in another order.
NUMBER_PAIRS = [
    ("Is 5mg of melatonin safe for adults?", "Is 50mg of melatonin safe for adults?"),
    ("Is it safe to take 2.5 grams of vitamin C a day?", "Is it safe to take 5.2 grams of vitamin C a day?"),
    ("Should I take two tablets of ibuprofen?", "Should I take three tablets of ibuprofen?"),
    ("Take 2 pills then 3", "Take 3 pills then 2"),
    ("Is 1e3 bigger than the limit?", "Is 1e6 bigger than the limit?"),
    ("Add ½ cup of sugar", "Add ¼ cup of sugar"),
    ("Set the freezer to -5 degrees", "Set the freezer to 5 degrees"),
    ("Set the freezer to minus five degrees", "Set the freezer to five degrees"),
    ("Is 5 mg a safe dose?", "Is 5 ml a safe dose?"),
    ("Is 5% interest good?", "Is 5 interest good?"),
    ("What is 2+2?", "What is 2-2?"),
    ("Invite twenty-five people", "Invite twenty people"),
    ("Buy a dozen eggs", "Buy two dozen eggs"),
    ("Take half a tablet", "Take a tablet"),
    ("Who won the first round?", "Who won the third round?"),
    ("Meet at 10:30", "Meet at 10:45"),
    ("Raise the limit to 1,000", "Raise the limit to 1,000,000"),
    ("Is Python 3.11 supported?", "Is Python 3.12 supported?"),
]
# Paraphrases with the same numbers (or none) still pass the guard.
SAME_NUMBERS = [
    ("What is the capital of France?", "Tell me France's capital city"),
    ("Take 2 tablets a day", "Take two tablets a day"),
    ("Are 1,000 users a lot?", "Are 1000 users a lot?"),
    ("Take 2.50 grams", "Take 2.5 grams"),
    ("Who came 1st?", "Who came first?"),
    ("Add ½ cup of sugar", "Add 1/2 cup of sugar"),
    ("Is 1e3 a big number?", "Is 1000 a big number?"),
    ("Should I take 5mg of melatonin?", "Should I take 5 mg of melatonin?"),
]


@pytest.mark.parametrize(("first", "second"), NUMBER_PAIRS)
def test_the_guard_refuses_different_numbers(first, second):
    assert contradicts(first, second) and contradicts(second, first)


@pytest.mark.parametrize(("first", "second"), SAME_NUMBERS + PARAPHRASES)
def test_the_guard_lets_the_same_numbers_through(first, second):
    assert not contradicts(first, second)


@pytest.mark.parametrize(("first", "second"), NUMBER_PAIRS[:6])
async def test_different_numbers_never_hit(encoder, first, second):
    rig = Rig(encoder)
    assert await rig.ask(first) == CACHE_SEMANTIC_MISS
    assert await rig.ask(second) == CACHE_SEMANTIC_MISS
    assert len(rig.transport.sent) == 2


DOC = "The quarterly report covers revenue, costs and the outlook for each region. " * 19  # ~1.4 kB
UNSEEN = [  # pairs the encoder would not see whole: similarity 1.0 between different questions
    (DOC + "Question: summarize this report", DOC + "Question: translate this report into French"),
    ("Translate to English: 😀🎉", "Translate to English: 💀🔥"),
    ("Is this token valid? " + "a" * 120, "Is this token valid? " + "b" * 120),
]


@pytest.mark.parametrize(("first", "second"), UNSEEN)
def test_the_encoder_refuses_what_it_would_cut_or_read_as_unknown(encoder, first, second):
    assert encoder.embed(first) is None and encoder.embed(second) is None


@pytest.mark.parametrize(("first", "second"), UNSEEN)
async def test_text_the_encoder_cannot_see_whole_gets_the_exact_match_alone(encoder, first, second):
    rig = Rig(encoder)
    assert await rig.ask(first) == CACHE_SEMANTIC_MISS
    assert await rig.ask(second) == CACHE_SEMANTIC_MISS
    assert await rig.ask(first) == CACHE_HIT
    assert len(rig.transport.sent) == 2


def test_the_window_holds_exactly_its_pieces(encoder):
    vocab = encoder._vocab
    fits = " ".join(["cat"] * (MAX_TOKENS - 2))
    assert len(encode(fits, vocab)) == MAX_TOKENS
    assert encode(fits + " cat", vocab) is None
    assert max(len(piece.removeprefix("##")) for piece in vocab) <= MAX_PIECE_CHARS  # what max_chars assumes
    assert encode("x" * (max_chars() + 1), vocab) is None


async def test_a_huge_prompt_is_never_tokenized(encoder):
    seen: list[int] = []

    async def embed(text: str):
        seen.append(len(text))
        return encoder.embed(text)

    rig = Rig(encoder)
    rig.cache._embed = embed
    huge = "Summarize this: " + "lorem ipsum " * 90_000  # ~1 MB
    assert await rig.ask(huge) == CACHE_SEMANTIC_MISS
    assert await rig.ask(huge) == CACHE_HIT
    assert seen == []
    assert await rig.ask("How do I reset my password?") == CACHE_SEMANTIC_MISS
    assert seen == [27]  # the lookup's vector is indexed, not computed a second time


async def ask_messages(rig: Rig, messages: list[dict[str, Any]], config: str = CONFIG) -> str:
    state = RequestState(call({"x-portkey-config": config}, {"model": "m", "messages": messages}))
    await rig.pipeline.run(state)
    await rig.cache.drain()
    return state.cache_status


async def test_turn_boundaries_and_names_are_part_of_the_bucket(encoder):
    rig = Rig(encoder)
    assistant = {"role": "assistant", "content": "Noted."}
    first = [{"role": "user", "content": "A\nB"}, assistant, {"role": "user", "content": "C"}]
    moved = [{"role": "user", "content": "A"}, assistant, {"role": "user", "content": "B\nC"}]
    assert await ask_messages(rig, first) == CACHE_SEMANTIC_MISS
    assert await ask_messages(rig, moved) == CACHE_SEMANTIC_MISS
    alice = [{"role": "user", "name": "alice", "content": "What is on my calendar today?"}]
    bob = [{"role": "user", "name": "bob", "content": "What is on my calendar today?"}]
    assert await ask_messages(rig, alice) == CACHE_SEMANTIC_MISS
    assert await ask_messages(rig, bob) == CACHE_SEMANTIC_MISS
    assert await ask_messages(rig, alice) == CACHE_HIT
    assert len(rig.transport.sent) == 4


async def test_tools_added_by_override_params_keep_a_request_out(encoder):
    rig = Rig(encoder)
    config = orjson.dumps({"provider": "openai", "api_key": "sk", "custom_host": HOST, "cache": {"mode": "semantic"},
                           "override_params": {"tools": [{"type": "function", "function": {"name": "f"}}]}}).decode()
    first, second = PARAPHRASES[0]
    assert await ask_messages(rig, [{"role": "user", "content": first}], config) == CACHE_SEMANTIC_MISS
    assert await ask_messages(rig, [{"role": "user", "content": second}], config) == CACHE_SEMANTIC_MISS
    assert len(rig.transport.sent) == 2


async def test_an_answer_with_a_legacy_function_call_is_not_cached(encoder):
    answer = chat_completion()
    answer["choices"][0]["message"]["function_call"] = {"name": "f", "arguments": "{}"}
    rig = Rig(encoder)
    rig.transport = FakeTransport(lambda sent: json_response(answer))
    selector = ConfigSelector(ConfigCache(known_providers=registry.PROVIDERS.keys()), {}.get)
    rig.pipeline = Pipeline(default_steps(selector, dispatcher(rig.transport), rig.cache))
    assert await rig.ask("What's the weather?") == CACHE_SEMANTIC_MISS
    assert await rig.ask("What's the weather?") == CACHE_SEMANTIC_MISS
