"""parser_reason: what an answer refusing an unparsable request says, never a byte the request carried."""

from __future__ import annotations

import pytest

from sluicegate.server.malformed import GENERIC_REASON, parser_reason

SECRET = "sk-live-SECRET-77aa"


@pytest.mark.parametrize(("message", "reason"), [
    (f"Invalid header value char:\n\n  b'Authorization: Bearer {SECRET}\\x01'\n  ^", "Invalid header value char"),
    ("Transfer-Encoding can't be present with Content-Length:\n\n  b'x'",
     "Transfer-Encoding can't be present with Content-Length"),
    (f"Bad status line 'GET /v1/models?key={SECRET} HTTP/7.3'", "Bad status line"),
    (f'Bad HTTP method in status line "G{SECRET}"', "Bad HTTP method in status line"),
    (f"Bad status line 'GET /?key={SECRET}", "Bad status line"),  # a quote that never closes
    ("Got more than 8190 bytes (9046) when reading Header value is too long.",
     "Got more than 8190 bytes (9046) when reading Header value is too long."),
    (f"Invalid HTTP Header: {SECRET}", "Invalid HTTP Header"),  # what follows a colon, even unquoted
    (f"Invalid header {SECRET}\x01", GENERIC_REASON),  # not plain words
    (f"Invalid header name (b'x-api-{SECRET}')", "Invalid header name"),
    # The pure-Python parser quotes the line after a colon: the reason stopped at "when reading".
    (f"Got more than 8190 bytes when reading: b'Authorization: Bearer {SECRET}...'.",
     "Got more than 8190 bytes when reading a line of the request head"),
    # The header names the parser names are its own words: "Missing  header in request." said nothing.
    ("Missing 'Host' header in request.", "Missing Host header in request."),
    ("Duplicate 'Content-Length' header found.", "Duplicate Content-Length header found."),
    (f"Duplicate '{SECRET}' header found.", "Duplicate  header found."),  # never a name it does not know
    ("x" * 500, GENERIC_REASON),
    ("", GENERIC_REASON),
    (None, GENERIC_REASON),
    ("'only a quoted value'", GENERIC_REASON),
])
def test_the_reason_keeps_the_parsers_words_only(message, reason):
    assert parser_reason(message) == reason
    assert SECRET not in parser_reason(message)
