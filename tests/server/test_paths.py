"""passthrough_tail: dot segments resolved below the root, escapes and hidden separators refused."""

from __future__ import annotations

import pytest

from sluicegate.errors import BadRequest
from sluicegate.server.paths import ESCAPES, SEPARATORS, passthrough_tail


@pytest.mark.parametrize(("tail", "expected"), [
    ("/models", "/models"),
    ("/", "/"),
    ("", ""),
    ("/models?after=../../x&b=%2e%2e", "/models?after=../../x&b=%2e%2e"),
    ("/a/../models", "/models"),
    ("/a/./b", "/a/b"),
    ("/a/%2E/b/%2e%2e/c", "/a/c"),
    ("/a/b/..", "/a/"),
    ("/a/..", "/"),
    ("/a/.", "/a/"),
    ("/...", "/..."),
    ("/v1.2/models", "/v1.2/models"),
    ("//x", "//x"),
    ("/models/meta-llama%2FLlama-3.1-8B", "/models/meta-llama%2FLlama-3.1-8B"),
    ("/files/a%5Cb", "/files/a%5Cb"),
])
def test_kept_below_the_root(tail, expected):
    assert passthrough_tail(tail) == expected


@pytest.mark.parametrize("tail", ["/..", "/../x", "/a/../..", "/%2e%2e", "/.%2E/x", "/%2e./x", "/a/./../../x"])
def test_climbing_above_the_root_is_refused(tail):
    with pytest.raises(BadRequest) as caught:
        passthrough_tail(tail)
    assert caught.value.message == ESCAPES


@pytest.mark.parametrize("tail", ["/a%2f..", "/a%2F..%2F..", "/..%5cb", "/a\\..\\b", "/x/.%2fy"])
def test_encoded_separators_are_refused(tail):
    with pytest.raises(BadRequest) as caught:
        passthrough_tail(tail)
    assert caught.value.message == SEPARATORS
