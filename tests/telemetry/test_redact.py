"""Redaction: which values count as secrets, scrubbing, and URLs without credentials."""

from __future__ import annotations

import json

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sluicegate.server.headers import parse_request_headers
from sluicegate.telemetry.redact import REDACTED, request_secrets, safe_url, scrub, sent_secrets


def ctx_of(headers: dict[str, str]):
    return parse_request_headers(CIMultiDictProxy(CIMultiDict(headers)))


def test_secret_values_of_a_request():
    ctx = ctx_of({
        "authorization": "Bearer sk-live-0123456789",
        "x-api-key": "api-key-value-123",
        "x-org-id": "org-forwarded-42",
        "x-portkey-forward-headers": "authorization, x-api-key, x-org-id",
        "x-portkey-api-key": "portkey-key-0001",
        "x-portkey-custom-host": "http://127.0.0.1:8000/v1",
        "x-portkey-trace-id": "trace-abcdefgh",
        "x-portkey-metadata": '{"team": "search-team"}',
        "x-short": "k",
    })
    secrets = request_secrets(ctx)
    for value in ("Bearer sk-live-0123456789", "sk-live-0123456789", "api-key-value-123", "org-forwarded-42",
                  "portkey-key-0001"):
        assert value in secrets
    # Routing headers are not secrets: scrubbing them would mangle the log (trace id, host, metadata)
    for value in ("http://127.0.0.1:8000/v1", "trace-abcdefgh", '{"team": "search-team"}'):
        assert value not in secrets
    assert secrets == tuple(sorted(secrets, key=len, reverse=True))


def test_a_tab_after_the_scheme_separates_the_token_as_a_space_does():
    """``Bearer<TAB>token``: the token alone is a secret (an upstream may echo it alone), in a header the
    client sent (a non-Bearer scheme, which stays whole as the credential), in one the gateway sent and in
    one it added, as with a space."""
    ctx = ctx_of({"authorization": "Token\t \tsk-tabbed-0123456789", "x-custom-auth": "Basic\tYWxhZGRpbjpvcGVu"})
    assert {"sk-tabbed-0123456789", "YWxhZGRpbjpvcGVu"} <= set(request_secrets(ctx))
    assert "tok-extra-0123456789" in request_secrets(None, extra=["Bearer\ttok-extra-0123456789"])
    assert "tok-sent-0123456789" in sent_secrets({"authorization": "Bearer\ttok-sent-0123456789"}, None)


def test_a_credential_that_is_not_utf8_is_scrubbed_in_every_form():
    # Its bytes reach Python as lone surrogates; making its URL-encoded form raised, and the record was dropped.
    raw = b"sk-poison\x9a-0123456789"
    ctx = ctx_of({"authorization": "Bearer " + raw.decode("utf-8", "surrogateescape")})
    secrets = request_secrets(ctx, extra=["cfg-\ud800-key-0123"])  # a lone surrogate of another origin
    echoed = [raw.decode("utf-8", "surrogateescape"),  # in a header value copied into metadata
              raw.decode("utf-8", "replace"),  # in a body, decoded for storage
              "sk-poison%9A-0123456789"]  # in a URL
    for text in echoed:
        assert scrub(f"echo {text} end", secrets) == f"echo {REDACTED} end"


def test_a_credential_is_scrubbed_as_json_writers_escape_it():
    # A catalog credential with a quote, a backslash or a non-ASCII letter in it, echoed in an upstream's JSON
    # error, reached the log and the client escaped (cat\\sec\"ret-\u00dc…): only "/" was looked for escaped.
    secret = 'cat\\sec"ret/\u00dc\t-0123'
    secrets = request_secrets(None, extra=[secret])
    escaped = [orjson.dumps(secret).decode()[1:-1],  # most writers: quote, backslash, control characters
               json.dumps(secret)[1:-1],  # Python's json: non-ASCII as \uXXXX too
               json.dumps(secret)[1:-1].replace("/", "\\/")]  # PHP's: "/" as well
    for text in escaped:
        assert scrub(f'{{"error": "bad {text} end"}}', secrets) == f'{{"error": "bad {REDACTED} end"}}', text


def test_a_credential_is_scrubbed_when_the_json_that_carries_it_is_itself_a_json_string():
    # An upstream's error that quotes the answer of the service behind it: a JSON document inside a JSON string,
    # so the credential's quote and backslash are escaped twice (\\\" and \\\\) and were stored in clear.
    secret = 'cat\\sec"ret/\u00dc\t-0123'
    secrets = request_secrets(None, extra=[secret])
    inner = json.dumps({"error": f"bad key {secret}"})
    outer = json.dumps({"error": {"message": inner}})
    assert secret not in outer and json.dumps(secret)[1:-1] not in outer  # neither form is there as it is
    assert json.loads(json.loads(outer)["error"]["message"])["error"] == f"bad key {secret}"
    stored = scrub(outer, secrets)
    assert REDACTED in stored and "sec" not in stored, stored
    for php in (True, False):
        text = orjson.dumps(orjson.dumps(secret).decode()[1:-1]).decode()[1:-1]
        text = text.replace("/", "\\/") if php else text
        assert scrub(f"x {text} y", secrets) == f"x {REDACTED} y", text


def test_scrub_replaces_every_occurrence():
    secrets = ("Bearer sk-live-0123456789", "sk-live-0123456789")
    text = 'bad key "sk-live-0123456789"; header Bearer sk-live-0123456789'
    assert scrub(text, secrets) == f'bad key "{REDACTED}"; header {REDACTED}'
    assert scrub(None, secrets) is None
    assert scrub("nothing here", ()) == "nothing here"


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://user:pw@llm.example.com:8443/v1?key=abc#frag", "https://llm.example.com:8443/v1"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("http://host:notaport/v1", None),
        ("http://127.0.0.1:8000/v1 Authorization: Bearer sk-pasted-123", None),  # was stored whole
        ("http://127.0.0.1:8000/v1\tsk-pasted-123", None),
        (None, None),
    ],
)
def test_safe_url(url, safe):
    assert safe_url(url) == safe
