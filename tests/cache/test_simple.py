"""The simple cache in-process: the pipeline's cache step over SimpleCache and the in-memory backend, on the
fake transport, with the backend's clock in the test's hands."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from sluicegate.cache import MemoryBackend, SimpleCache
from sluicegate.catalog.entries import ResolvedProvider, provider_not_found
from sluicegate.config import ConfigCache
from sluicegate.errors import BadRequest
from sluicegate.pipeline import ConfigSelector, Pipeline, RequestState, default_steps
from sluicegate.providers import registry
from sluicegate.types import CACHE_DISABLED, CACHE_HIT, CACHE_MISS, CACHE_REFRESH, Outcome
from tests.fakes.transport import (
    FakeTransport,
    broken_body,
    chat_completion,
    content_chunk,
    json_response,
    sse_response,
)
from tests.inprocess import HOST, Clock, call, dispatcher

SECRET = "sk-upstream-secret-1234567890"


def cached_config(max_age: int | None = None, **extra: Any) -> str:
    block: dict[str, Any] = {"mode": "simple"}
    if max_age is not None:
        block["max_age"] = max_age
    return orjson.dumps({"provider": "openai", "api_key": SECRET, "custom_host": HOST, "cache": block,
                         **extra}).decode()


class Catalog:
    """The Model Catalog as the cache and the request builder read it, edited by the test."""

    def __init__(self, *providers: ResolvedProvider) -> None:
        self.providers = {provider.slug: provider for provider in providers}

    def resolve(self, slug: str) -> ResolvedProvider | None:
        return self.providers.get(slug.removeprefix("@"))

    def require(self, slug: str) -> ResolvedProvider:
        found = self.resolve(slug)
        if found is None:
            raise provider_not_found(slug.lstrip("@"))
        return found


class Rig:
    def __init__(self, handler=None, *, max_bytes: int = 1 << 20, max_entries: int = 100,
                 catalog: Catalog | None = None) -> None:
        self.clock = Clock()
        self.transport = FakeTransport(handler or (lambda sent: json_response(chat_completion(f"n{len(self.transport.sent)}"))))
        self.backend = MemoryBackend(max_bytes, max_entries, clock=self.clock)
        self.catalog = catalog or Catalog()
        self.cache = SimpleCache(self.backend, entry_max_bytes=64 * 1024, resolve=self.catalog.resolve)
        selector = ConfigSelector(ConfigCache(known_providers=registry.PROVIDERS.keys()), {}.get)
        self.pipeline = Pipeline(default_steps(selector, dispatcher(self.transport, catalog=self.catalog), self.cache))

    async def run(self, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None, *,
                  scope: str | None = None) -> tuple[RequestState, Outcome]:
        headers = {"x-portkey-config": cached_config(), **(headers or {})}
        state = RequestState(call(headers, body))
        if scope is not None:
            state.cache_scope = scope
        outcome = await self.pipeline.run(state)
        return state, outcome

    async def relay(self, outcome: Outcome) -> bytes:
        """What server/streaming.py writes: the held start, each later chunk through the decoder, then the
        decoder's verdict on the end."""
        assert outcome.stream is not None
        out, stream = [outcome.body or b""], outcome.stream
        while chunk := await stream.body.read_chunk():
            out.append(stream.decoder.relay(chunk))
        assert stream.decoder.end_failure() is None
        await self.cache.drain()
        return b"".join(out)


def body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


async def test_the_second_identical_request_is_a_hit_without_an_upstream_call():
    rig = Rig()
    first, answer = await rig.run()
    await rig.cache.drain()
    second, replayed = await rig.run()
    assert (first.cache_status, second.cache_status) == (CACHE_MISS, CACHE_HIT)
    assert len(rig.transport.sent) == 1 and replayed.body == answer.body and replayed.status == 200
    assert replayed.headers == [("content-type", "application/json")]


@pytest.mark.parametrize("change", [
    {"body": body("hello")}, {"body": body(temperature=0.5)}, {"body": body(stream=True)},
    {"headers": {"authorization": "Bearer other"}}, {"scope": "key-2"},
    {"headers": {"x-portkey-config": cached_config(override_params={"model": "other"})}},
    # It shapes a translated answer (an Anthropic-spec upstream's): the portkey-ai SDKs send it as false.
    {"headers": {"x-portkey-strict-open-ai-compliance": "false"}},
])
async def test_anything_that_changes_the_answer_changes_the_key(change):
    rig = Rig(lambda sent: sse_response(content_chunk("x"), "[DONE]") if b'"stream":true' in (sent.body or b"")
              else json_response(chat_completion()))
    await rig.run(body=body())
    await rig.cache.drain()
    state, outcome = await rig.run(**change)
    outcome.discard()
    assert state.cache_status == CACHE_MISS and len(rig.transport.sent) == 2


ROUTED = orjson.dumps({
    "cache": {"mode": "simple"},
    "strategy": {"mode": "conditional", "default": "free",
                 "conditions": [{"query": {"$or": [{"metadata.tier": {"$eq": "gold"}}]}, "then": "gold"}]},
    "targets": [{"name": "gold", "provider": "openai", "api_key": SECRET, "custom_host": HOST,
                 "override_params": {"model": "big"}},
                {"name": "free", "provider": "openai", "api_key": SECRET, "custom_host": HOST,
                 "forward_headers": ["x-tenant"]}],
}).decode()


@pytest.mark.parametrize(("second", "status"), [
    # The metadata a condition reads picks the target: a gold answer was replayed to a free request.
    ({"x-portkey-metadata": '{"tier": "free"}'}, CACHE_MISS),
    ({"x-portkey-metadata": '{"tier": "gold", "team": "other"}'}, CACHE_HIT),  # read by no condition
    # A header a target forwards reaches the upstream, as does one the request asks to forward.
    ({"x-portkey-metadata": '{"tier": "gold"}', "x-tenant": "b"}, CACHE_MISS),
    ({"x-portkey-metadata": '{"tier": "gold"}', "x-region": "eu", "x-portkey-forward-headers": "x-region"},
     CACHE_MISS),
])
async def test_what_the_config_reads_of_the_request_is_in_the_key(second: dict[str, str], status: str):
    rig = Rig(lambda sent: json_response(chat_completion(orjson.loads(sent.body)["model"])))
    first_state, first = await rig.run({"x-portkey-config": ROUTED, "x-portkey-metadata": '{"tier": "gold"}',
                                        "x-tenant": "a"}, body())
    await rig.cache.drain()
    state, outcome = await rig.run({"x-portkey-config": ROUTED, "x-tenant": "a", **second}, body())
    assert (first_state.cache_status, state.cache_status) == (CACHE_MISS, status)
    assert len(rig.transport.sent) == (1 if status == CACHE_HIT else 2)


FORWARDING = ResolvedProvider("fw", "openai", HOST, (("Authorization", f"Bearer {SECRET}"),),
                              forward_headers=("x-user",))
CATALOG_CACHED = orjson.dumps({"cache": {"mode": "simple"}}).decode()


def edited(**changes: Any) -> ResolvedProvider:
    return dataclasses.replace(FORWARDING, **changes)


@pytest.mark.parametrize("config_names_it", [False, True])
@pytest.mark.parametrize(("change", "status"), [
    # The provider's own forward list: the upstream saw alice's header, and bob was answered with it.
    ({"headers": {"x-user": "bob"}}, CACHE_MISS),
    ({"headers": {"x-other": "bob"}}, CACHE_HIT),  # a header nobody forwards
    # A provider edited after the answer was stored: the stored answer is no longer what it would say,
    # or (narrowed, deleted) no longer something the request may have.
    ({"provider": edited(headers=(("Authorization", "Bearer sk-rotated-credential-99"),))}, CACHE_MISS),
    ({"provider": edited(custom_host="http://127.0.0.1:8/v1")}, CACHE_MISS),
    ({"provider": edited(models=("other",))}, 400),
    ({"provider": None}, 400),
    # The protocol headers a spec takes from the client go upstream too.
    ({"headers": {"anthropic-beta": "tools-2024"}}, CACHE_MISS),
])
async def test_a_catalog_provider_as_it_stands_is_in_the_key(change: dict[str, Any], status: str | int,
                                                              config_names_it: bool):
    rig = Rig(catalog=Catalog(FORWARDING))
    config = orjson.dumps({"cache": {"mode": "simple"}, "provider": "@fw"}).decode() if config_names_it \
        else CATALOG_CACHED
    request = body()
    request["model"] = "m" if config_names_it else "@fw/m"
    first, _ = await rig.run({"x-portkey-config": config, "x-user": "alice"}, request)
    await rig.cache.drain()
    if "provider" in change:
        rig.catalog.providers.pop("fw")
        if change["provider"] is not None:
            rig.catalog.providers["fw"] = change["provider"]
    headers = {"x-portkey-config": config, "x-user": "alice", **change.get("headers", {})}
    if status == 400:
        with pytest.raises(BadRequest):
            await rig.run(headers, request)
        return
    state, _ = await rig.run(headers, request)
    assert (first.cache_status, state.cache_status) == (CACHE_MISS, status)
    assert len(rig.transport.sent) == (1 if status == CACHE_HIT else 2)


@pytest.mark.parametrize("headers", [
    # A header's bytes that are not UTF-8 (Latin-1 text, legal in HTTP) arrive as lone surrogates, which the
    # key's JSON could not hold: a 500 for any cached config.
    {"authorization": "Bearer sk-\udce9t\udce9"},
    {"x-portkey-forward-headers": "x-a", "x-a": "caf\udce9"},
    {"x-portkey-cache-namespace": "\udcff\udcfe"},
])
async def test_a_header_value_that_is_not_utf8_is_still_a_key(headers: dict[str, str]):
    rig = Rig()
    first, answer = await rig.run(headers, body())
    await rig.cache.drain()
    second, replayed = await rig.run(headers, body())
    other, _ = await rig.run({key: value.replace("\udce9", "\udce8") for key, value in headers.items()}, body())
    assert (first.cache_status, second.cache_status) == (CACHE_MISS, CACHE_HIT) and replayed.body == answer.body
    assert other.cache_status == (CACHE_MISS if "\udce9" in "".join(headers.values()) else CACHE_HIT)


async def test_a_request_no_cache_can_hold_is_disabled_not_a_miss():
    # A Messages request was reported a MISS each time (also in the log's analytics), and never cached.
    rig = Rig()
    first, _ = await rig.run(body=body())
    state = RequestState(call({"x-portkey-config": cached_config()}, body(), endpoint="messages"))
    await rig.pipeline.run(state)
    assert (first.cache_status, state.cache_status) == (CACHE_MISS, CACHE_DISABLED)


async def test_two_scopes_never_share_an_entry_unless_they_name_the_same_namespace():
    rig = Rig()
    await rig.run(scope="workspace-a")
    await rig.cache.drain()
    other, _ = await rig.run(scope="workspace-b")
    assert other.cache_status == CACHE_MISS
    await rig.run({"x-portkey-cache-namespace": "shared"}, scope="workspace-a")
    await rig.cache.drain()
    shared, _ = await rig.run({"x-portkey-cache-namespace": "shared"}, scope="workspace-b")
    assert shared.cache_status == CACHE_HIT and len(rig.transport.sent) == 3


async def test_max_age_is_honoured():
    rig = Rig()
    headers = {"x-portkey-config": cached_config(max_age=60)}
    await rig.run(headers)
    await rig.cache.drain()
    rig.clock.now += 59.5
    assert (await rig.run(headers))[0].cache_status == CACHE_HIT
    rig.clock.now += 1
    assert (await rig.run(headers))[0].cache_status == CACHE_MISS
    assert len(rig.transport.sent) == 2


async def test_force_refresh_dispatches_and_replaces_the_entry():
    rig = Rig()
    await rig.run()
    await rig.cache.drain()
    refreshed, fresh = await rig.run({"x-portkey-cache-force-refresh": "true"})
    await rig.cache.drain()
    after, answer = await rig.run()
    assert refreshed.cache_status == CACHE_REFRESH and after.cache_status == CACHE_HIT
    assert answer.body == fresh.body and orjson.loads(fresh.body)["choices"][0]["message"]["content"] == "n2"


async def test_only_successful_answers_are_stored():
    rig = Rig(lambda sent: json_response({"error": {"message": "busy"}}, status=503))
    await rig.run()
    await rig.cache.drain()
    assert rig.backend.size == (0, 0)
    assert (await rig.run())[0].cache_status == CACHE_MISS


async def test_without_a_cache_block_nothing_is_stored():
    rig = Rig()
    config = orjson.dumps({"provider": "openai", "api_key": SECRET, "custom_host": HOST}).decode()
    state, _ = await rig.run({"x-portkey-config": config})
    await rig.cache.drain()
    assert state.cache_status == CACHE_DISABLED and rig.backend.size == (0, 0)


async def test_entries_hold_no_credential():
    rig = Rig()
    await rig.run({"authorization": "Bearer client-secret-abcdef"})
    await rig.cache.drain()
    stored = b"".join(data for _, data in rig.backend._items.values())
    assert stored and SECRET.encode() not in stored and b"client-secret-abcdef" not in stored


async def test_the_memory_backend_is_bounded_and_drops_the_least_recently_used():
    backend = MemoryBackend(max_bytes=1000, max_entries=3, clock=Clock())
    for key in "abcd":
        await backend.put(key, b"x" * 10, 60)
    assert backend.size[0] == 3 and await backend.get("a") is None
    await backend.get("b")  # b is now the most recent: c goes next
    await backend.put("e", b"x" * 10, 60)
    assert await backend.get("c") is None and await backend.get("b") is not None
    await backend.put("big", b"x" * 2000, 60)
    assert await backend.get("big") is None and backend.size[1] <= 1000


async def test_a_stream_is_stored_after_its_clean_end_and_replayed_event_by_event():
    events = [content_chunk("Hel"), content_chunk("lo"), "[DONE]"]
    rig = Rig(lambda sent: sse_response(*events))
    state, first = await rig.run(body=body(stream=True))
    original = await rig.relay(first)
    hit, replay = await rig.run(body=body(stream=True))
    assert (state.cache_status, hit.cache_status) == (CACHE_MISS, CACHE_HIT)
    assert await rig.relay(replay) == original and original.count(b"data: ") == 3
    assert len(rig.transport.sent) == 1


@pytest.mark.parametrize("done", [b"data:[DONE]\n\n", b"data: [DONE]\n\n: keep-alive\n\n"],
                         ids=["no-space", "comment-after"])
async def test_a_stream_that_ends_cleanly_in_another_valid_spelling_is_stored(done: bytes):
    """The relay takes these as clean ends; the recorder looked for exactly "data: [DONE]" and never stored them."""
    rig = Rig(lambda sent: sse_response(content_chunk("Hel"), content_chunk("lo"), done))
    state, first = await rig.run(body=body(stream=True))
    await rig.relay(first)
    hit, _ = await rig.run(body=body(stream=True))
    assert (state.cache_status, hit.cache_status) == (CACHE_MISS, CACHE_HIT)
    assert len(rig.transport.sent) == 1


ERROR_AFTER_START = [
    # An error event after the first content, then [DONE]: it was logged as a success, stored, and replayed
    # for the cache's whole max_age.
    [{"error": {"message": "mid err", "code": 500}}, "[DONE]"],
    [b"event: error\ndata: {\"message\": \"overloaded\"}\n\n", "[DONE]"],
    [b'data: {"err', b'or": {"message": "split across reads"}}\n\n', "[DONE]"],
]


@pytest.mark.parametrize("ending", ERROR_AFTER_START, ids=["error-chunk", "error-event", "error-split"])
async def test_a_stream_with_an_error_event_after_its_start_is_not_stored(ending):
    rig = Rig(lambda sent: sse_response(content_chunk("Hel"), content_chunk("lo"), *ending))
    state, first = await rig.run(body=body(stream=True))
    stream = first.stream
    assert stream is not None
    relayed = [first.body or b""]
    while chunk := await stream.body.read_chunk():
        relayed.append(stream.decoder.relay(chunk))
    assert stream.decoder.end_failure() == "upstream sent an error event"  # logged as the stream's failure
    assert stream.decoder.error_event("x", "upstream_stream_error") == b""  # the upstream's event told the client
    assert b"".join(relayed).endswith(b"[DONE]\n\n")
    await rig.cache.drain()
    again, _ = await rig.run(body=body(stream=True))
    assert (state.cache_status, again.cache_status) == (CACHE_MISS, CACHE_MISS) and rig.backend.size == (0, 0)


@pytest.mark.parametrize("ending", [[broken_body()], []], ids=["broken", "no-done"])
async def test_a_stream_without_its_clean_end_is_not_stored(ending):
    rig = Rig(lambda sent: sse_response(content_chunk("Hel"), content_chunk("lo"), *ending))
    _, first = await rig.run(body=body(stream=True))
    stream = first.stream
    assert stream is not None
    try:
        while await stream.body.read_chunk():
            pass
    except Exception:
        pass
    else:
        stream.decoder.end_failure()
    await rig.cache.drain()
    assert rig.backend.size == (0, 0)
