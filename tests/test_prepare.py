"""prepare.RequestBuilder in-process: URL, credentials, forwarded headers and body for one target."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.catalog import ResolvedProvider
from sluicegate.config.model import Target
from sluicegate.errors import BadRequest, InvalidCustomHost
from sluicegate.prepare import RequestBuilder
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from tests.inprocess import DIRECT, HOST, call

OPENAI = {"x-portkey-provider": "openai", "x-portkey-custom-host": HOST, "authorization": "Bearer sk-client-1"}


class Catalog:
    def __init__(self, *entries: ResolvedProvider) -> None:
        self._entries = {entry.slug: entry for entry in entries}

    def require(self, slug: str) -> ResolvedProvider:
        if slug[1:] not in self._entries:
            raise BadRequest(f"Provider {slug} not found in the catalog")
        return self._entries[slug[1:]]


LLM = ResolvedProvider(slug="my-llm", spec="openai", custom_host="http://127.0.0.1:8001/v1",
                       headers=(("authorization", "Bearer stored-secret"),), models=("llama",),
                       forward_headers=("x-team",))


def builder(**kwargs) -> RequestBuilder:
    return RequestBuilder(Guard(GuardPolicy.from_settings(Settings())), **kwargs)


def test_a_direct_request_keeps_its_bytes_and_its_credential():
    request = call(OPENAI)
    prepared = builder().build(DIRECT, request)
    assert prepared.url == HOST + "/chat/completions" and prepared.host == HOST
    assert prepared.headers == {"content-type": "application/json", "authorization": "Bearer sk-client-1"}
    assert prepared.body is request.body and prepared.rewrite_errors


def test_override_params_rewrite_the_body_and_forwarded_headers_come_last():
    target = Target(json_path="config", provider="openai", api_key="sk-config", custom_host=HOST,
                    override_params={"temperature": 0}, forward_headers=("authorization",))
    prepared = builder().build(target, call({"authorization": "Bearer client"}))
    assert orjson.loads(prepared.body)["temperature"] == 0
    assert prepared.headers["authorization"] == "Bearer client"


def test_a_catalog_slug_in_the_model_uses_the_stored_host_and_headers():
    request = call({"x-team": "search"}, {"model": "@my-llm/llama", "messages": [{"role": "user", "content": "x"}]})
    prepared = builder(catalog=Catalog(LLM)).build(DIRECT, request)
    assert prepared.url == "http://127.0.0.1:8001/v1/chat/completions" and prepared.provider == "@my-llm"
    assert prepared.headers["authorization"] == "Bearer stored-secret" and prepared.headers["x-team"] == "search"
    assert orjson.loads(prepared.body)["model"] == "llama"


def test_refusals():
    with pytest.raises(BadRequest, match="Model 'gpt-4' is not available on @my-llm"):
        builder(catalog=Catalog(LLM)).build(DIRECT, call({}, {"model": "@my-llm/gpt-4", "messages": [{}]}))
    with pytest.raises(BadRequest, match="cannot be used with the catalog provider"):
        builder(catalog=Catalog(LLM)).build(DIRECT, call({"x-portkey-custom-host": HOST},
                                                         {"model": "@my-llm/llama", "messages": [{}]}))
    with pytest.raises(BadRequest, match="Invalid provider passed"):
        builder().build(DIRECT, call({"x-portkey-provider": "nope"}))
    with pytest.raises(InvalidCustomHost):
        builder().build(DIRECT, call({"x-portkey-provider": "openai", "x-portkey-custom-host": "http://169.254.169.254/v1"}))
