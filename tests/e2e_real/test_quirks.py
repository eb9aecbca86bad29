"""llama.cpp's server has quirks a gateway user meets; these pin how the gateway behaves in front of them.

Observed with llama-cpp-python 0.3.36 (docs/private-llms.md lists them): a body that is not JSON gets a
bare 500 "Internal Server Error"; a body of the wrong shape gets a 500 whose message holds a piece of a
Python traceback; a body without `messages` is accepted and generates from an empty prompt; any model
name is accepted and echoed back.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e_real.clients import MODEL, SHORT, direct_headers, openai_client, user

MALFORMED = [
    pytest.param(b'{"model": "smollm2", "messages": [', "Invalid JSON body", id="truncated-json"),
    pytest.param(b"", "Request body is required", id="empty-body"),
    pytest.param(b'{"model": "smollm2", "messages": "hi"}', "'messages' is required", id="messages-not-a-list"),
    pytest.param(b'{"model": "smollm2"}', "'messages' is required", id="no-messages"),
    pytest.param(b'{"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
                 "'stream' must be a boolean", id="stream-not-a-boolean"),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_malformed_body_gets_the_gateways_400_not_llamas_500(gateway, smol, body, message):
    answered_before = smol.log().count("POST /v1/chat/completions")
    response = httpx.post(f"{gateway.v1}/chat/completions", content=body, timeout=30,
                          headers={**direct_headers(smol.v1), "content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["status"] == "failure"
    assert response.json()["message"].startswith(message)
    assert "Traceback" not in response.text and "File \"" not in response.text
    assert smol.log().count("POST /v1/chat/completions") == answered_before  # never reached the model


def test_llama_itself_answers_malformed_json_with_a_500(smol):
    """The reason for the test above: straight to llama.cpp, the same body is a server error."""
    response = httpx.post(f"{smol.v1}/chat/completions", content=b'{"messages": [',
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 500


def test_an_upstream_validation_error_is_relayed_in_the_unified_envelope(gateway, smol):
    """A role llama.cpp does not know passes the gateway's light checks; llama.cpp refuses it (as a 500,
    its way) and the client gets that status in the gateway's error envelope."""
    response = httpx.post(f"{gateway.v1}/chat/completions", headers=direct_headers(smol.v1), timeout=30,
                          json={"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]})
    assert response.status_code >= 400
    body = response.json()
    assert body["provider"] == "openai" and body["error"]["message"].startswith("openai error: ")


def test_context_length_error_keeps_its_code(gateway, smol):
    """Over n_ctx (2048 tokens) llama.cpp answers a proper OpenAI-style 400; its code reaches the client."""
    response = httpx.post(f"{gateway.v1}/chat/completions", headers=direct_headers(smol.v1), timeout=30,
                          json={"model": MODEL, "max_tokens": 3, "messages": user("word " * 5000)})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_unknown_model_names_are_accepted_by_llama(gateway, smol):
    """llama.cpp serves its one model whatever the name: the gateway does not second-guess the upstream."""
    response = openai_client(gateway, smol.v1).chat.completions.create(
        model="no-such-model", messages=user("Hi"), max_tokens=SHORT)
    assert response.model == "no-such-model"
    assert response.choices[0].message.content is not None
