"""The HTTP status an upstream's error event stands for, when it fails a stream before its start: a
rate-limit event counts as a 429 and a bad request as a 400, as the same errors answered before a stream
would (fallbacks, retries and the breaker judge them so); an event that names no status is a broken answer."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.providers import anthropic, contract, openai
from sluicegate.providers.translate.errors import error_status, stream_error_type

ERRORS = [  # (the error object inside the event, the status it stands for)
    ({"message": "m", "type": "rate_limit_error"}, 429),
    ({"message": "m", "code": "rate_limit_exceeded", "type": "requests"}, 429),  # OpenAI's shape
    ({"message": "m", "code": "insufficient_quota"}, 429),
    ({"message": "m", "type": "BadRequestError", "code": 400}, 400),  # vLLM's: the status in "code"
    ({"message": "m", "status": 503}, 503),
    ({"message": "m", "status_code": 404, "type": "rate_limit_error"}, 404),  # a number wins over a type
    ({"type": "overloaded_error", "message": "m"}, 529),
    ({"type": "invalid_request_error"}, 400),
    ({"type": "authentication_error"}, 401),
    ({"type": "permission_error"}, 403),
    ({"type": "not_found_error"}, 404),
    ({"type": "request_too_large"}, 413),
    ({"type": "api_error"}, None),
    ({"type": "server_error"}, None),
    ({"message": "m", "code": 200}, None),  # not an error status
    ({"message": "m", "code": 600}, None),
    ({"message": "m", "code": True}, None),
    ({"message": "m", "code": "400"}, None),  # a string that is not a known code
    ({"type": ["rate_limit_error"]}, None),  # not hashable: no crash
    ({"type": {"nested": 1}, "code": None}, None),
    ("plain text", None),
    (None, None),
]


@pytest.mark.parametrize(("error", "status"), ERRORS)
def test_the_status_an_error_object_stands_for(error, status):
    assert error_status(error) == status


def test_the_anthropic_type_of_a_translated_stream_error_follows_the_same_status():
    assert stream_error_type({"code": "rate_limit_exceeded"}) == "rate_limit_error"
    assert stream_error_type({"type": "overloaded_error"}) == "overloaded_error"
    assert stream_error_type({"type": "server_error"}) == "api_error"
    assert stream_error_type("text") == "api_error"


def _openai_event(error: object) -> bytes:
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


def _anthropic_event(error: object) -> bytes:
    return b"event: error\ndata: " + orjson.dumps({"type": "error", "error": error}) + b"\n\n"


DECODERS = [  # (the client's endpoint, the upstream's spec, how that upstream writes an error event)
    ("chat", openai.SPEC, _openai_event),  # relayed as is
    ("messages", openai.SPEC, _openai_event),  # an OpenAI upstream, an Anthropic client
    ("chat", anthropic.SPEC, _anthropic_event),  # an Anthropic upstream, an OpenAI client
    ("messages", anthropic.SPEC, _anthropic_event),  # relayed as is
]


@pytest.mark.parametrize(("endpoint", "spec", "event"), DECODERS)
@pytest.mark.parametrize(("error", "status"), [
    ({"message": "slow down", "type": "rate_limit_error"}, 429),
    ({"message": "slow down", "code": 400}, 400),
    ({"message": "slow down", "type": "api_error"}, None),
])
def test_every_decoder_fails_the_start_with_the_status_its_error_event_names(endpoint, spec, event, error, status):
    decoder = spec.translation(endpoint).stream_decoder()
    opening = decoder.opening(event(error))
    assert opening[:3] == (contract.FAILED, "slow down", status)
    # The event's data: the upstream's error as its JSON answer would carry it, for the client's envelope.
    assert opening.answer == event(error).partition(b"data: ")[2].strip()
