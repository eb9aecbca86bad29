"""jsontext.json_object: the one "decode JSON, it must be an object" rule, each caller's own words."""

from __future__ import annotations

import pytest

from sluicegate.errors import BadRequest
from sluicegate.jsontext import json_object, model_named


def test_an_object_is_returned_as_decoded():
    assert json_object(b'{"a": [1, {"b": null}]}', invalid="x") == {"a": [1, {"b": None}]}


@pytest.mark.parametrize(("text", "message"), [
    (b"{not json", "Invalid JSON body: unexpected character, expected a string key: line 1 column 2 (char 1)"),
    (b"[1, 2]", "Request body must be a JSON object"),
    (b"", "Invalid JSON body: Input is a zero-length, empty document: line 1 column 1 (char 0)"),
])
def test_the_callers_words_with_the_decoders_complaint(text: bytes, message: str):
    with pytest.raises(BadRequest) as info:
        json_object(text, invalid="Invalid JSON body: {error}", not_object="Request body must be a JSON object")
    assert info.value.message == message and info.value.status == 400


def test_one_message_for_both_when_no_second_is_given():
    for text in ("nope", '"a string"'):
        with pytest.raises(BadRequest, match=r"^Invalid x-portkey-metadata header: it must be a JSON object$"):
            json_object(text, invalid="Invalid x-portkey-metadata header: it must be a JSON object")


def test_a_passthrough_body_s_model_is_read_once_and_sent_as_read():

    assert model_named(b'{"model":"a","model":"b","x":1}') == (b'{"model":"b","x":1}', "b")  # one "model" goes on
    assert model_named(b'{"input":"hi"}') == (b'{"input":"hi"}', None)
    for unreadable in (b"model=a", b"[1]", b'{"a":' + b"[" * 300 + b"]" * 300 + b"}"):
        assert model_named(unreadable) is None
    with pytest.raises(BadRequest, match="'model' must be a string"):
        model_named(b'{"model":["a"]}')
