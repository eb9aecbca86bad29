from __future__ import annotations

import pytest

from sluicegate.catalog import ResolvedProvider, mask_secret, provider_input
from sluicegate.catalog.entries import (
    validate_allow_entry,
    validate_custom_host,
    validate_fields,
    validate_forward_headers,
    validate_headers,
    validate_slug,
)
from sluicegate.errors import BadRequest, InvalidCustomHost

HOST = "https://llm.example.com/v1"


@pytest.mark.parametrize("slug", ["a", "my-llm", "vllm-01", "0", "a" * 63])
def test_valid_slugs(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "My-LLM", "-a", "a-", "a_b", "a.b", "@a", "a" * 64, "ä", None, 3])
def test_invalid_slugs(slug) -> None:
    with pytest.raises(BadRequest, match="^slug: must be 1-63 lowercase"):
        validate_slug(slug)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://llm.example.com/v1/", "https://llm.example.com/v1"),
        ("http://10.0.0.5:8000/v1", "http://10.0.0.5:8000/v1"),
        ("  http://vllm:8000/v1  ", "http://vllm:8000/v1"),
    ],
)
def test_custom_host_normalised(url: str, expected: str) -> None:
    assert validate_custom_host(url, None) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "required"),
        (None, "required"),
        ("ftp://x/v1", "must be an http:// or https:// URL with a host"),
        ("http:///v1", "must be an http:// or https:// URL with a host"),
        ("https://user:pw@llm.example.com/v1", "credentials in the URL are not allowed"),
        ("https://llm.example.com/v1?key=1", "query string"),
        ("https://llm.example.com:99999/v1", "invalid port"),
        ("http://[::1/v1", "must be an http:// or https:// URL with a host"),  # urlsplit refuses it: was a 500
        ("https://llm.example.com/v1\r\nX: y", "control characters"),
        ("https://" + "a" * 2050, "at most 2048"),
    ],
)
def test_invalid_custom_host(url, message: str) -> None:
    with pytest.raises(BadRequest, match=f"^custom_host: .*{message}"):
        validate_custom_host(url, None)


def test_check_host_is_injected_and_named() -> None:
    def guard(url: str) -> None:
        raise InvalidCustomHost("private address 10.0.0.5 is not allowed")

    with pytest.raises(BadRequest, match="^custom_host: Invalid custom host: private address"):
        validate_custom_host("http://10.0.0.5/v1", guard)


def test_allow_entry_skips_the_host_check() -> None:
    def guard(url: str) -> None:
        raise InvalidCustomHost("blocked")

    raw = {"spec": "openai", "custom_host": "http://10.0.0.5/v1", "allow_entry": "10.0.0.5"}
    assert validate_fields(raw, guard).allow_entry == "10.0.0.5"
    with pytest.raises(BadRequest, match="custom_host"):
        validate_fields({**raw, "allow_entry": None}, guard)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("bad name", "v")], "headers: invalid header name 'bad name'"),
        ([("X:Y", "v")], "headers: invalid header name"),
        ([("Host", "v")], "headers: 'Host' is set by the gateway itself"),
        ([("Content-Length", "1")], "is set by the gateway itself"),
        ([("x-portkey-api-key", "1")], "x-portkey-\\* headers are never sent upstream"),
        ([("Authorization", "a"), ("authorization", "b")], "given twice"),
        ([("X-Key", "")], "value of 'X-Key' must be a non-empty string"),
        ([("X-Key", "a\r\nInjected: 1")], "value of 'X-Key' has control characters"),
        ([("X-Key", 5)], "must be a non-empty string"),
        ([(f"X-{i}", "v") for i in range(33)], "at most 32 headers"),
    ],
)
def test_invalid_headers(pairs, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        validate_headers(pairs)


def test_header_errors_never_quote_the_value() -> None:
    with pytest.raises(BadRequest) as caught:
        validate_headers([("Authorization", "Bearer sk-secret\n")])
    assert "sk-secret" not in caught.value.message


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Authorization", "x_api_key", "X-Org"], ("authorization", "x-api-key", "x-org")),
        (["a", "A"], ("a",)),
    ],
)
def test_forward_headers_folded(names, expected) -> None:
    assert validate_forward_headers(names) == expected


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("authorization", "expected a list of strings"),
        (["x-portkey-forward-headers"], "may not be forwarded"),
        (["X-Portkey-Api-Key"], "may not be forwarded"),
        (["proxy_authorization"], "may not be forwarded"),
        (["Metadata-Flavor"], "may not be forwarded"),
        (["host"], "may not be forwarded"),
        (["bad name"], "invalid header name"),
        ([""], "non-empty strings"),
    ],
)
def test_invalid_forward_headers(names, message: str) -> None:
    with pytest.raises(BadRequest, match=f"^forward_headers: .*{message}"):
        validate_forward_headers(names)


@pytest.mark.parametrize(
    "entry",
    [
        "vllm.internal",
        "*.corp.example",
        "10.0.0.5",
        "10.0.0.0/8",
        "[fd00::1]:8000",
        "http://GPU-Box:8000/v1",
        "my_service",
        "gpu.lan:8000",
    ],
)
def test_allow_entry_uses_the_guards_syntax(entry: str) -> None:
    assert validate_allow_entry(f"  {entry} ") == entry
    assert validate_allow_entry("") is None and validate_allow_entry(None) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("a b", "characters not allowed"),
        ("a..b", "empty label"),
        ("*.10.0.0.1", "use a CIDR"),
        ("10.0.0.0/33", "not a valid CIDR range"),
        ("host:99999", "port must be a number"),
        ("http://u:p@host/", "credentials"),
        (5, "must be a host name"),
        ("x\n", "must be a host name"),
    ],
)
def test_invalid_allow_entry(entry, message: str) -> None:
    with pytest.raises(BadRequest, match=f"^allow_entry: .*{message}"):
        validate_allow_entry(entry)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"spec": "cohere"}, "spec: unknown API spec 'cohere' \\(supported: openai, anthropic\\)"),
        ({"models": "gpt-4o"}, "models: expected a list of strings"),
        ({"models": ["a", 1]}, "models: entries must be"),
        ({"models": ["a"], "default_model": "b"}, "default_model: 'b' is not in models"),
        ({"default_model": 5}, "default_model: expected a string"),
        ({"notes": "x" * 4001}, "notes: at most 4000"),
        ({"notes": "bell\x07"}, "notes: at most 4000 characters, no control"),
    ],
)
def test_invalid_fields(raw, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        validate_fields({"spec": "openai", "custom_host": HOST, **raw}, None)


def test_fields_defaults_and_multiline_notes() -> None:
    fields = validate_fields({"spec": "openai", "custom_host": HOST, "notes": "line 1\r\nline 2"}, None)
    assert fields.models == () and fields.default_model is None and fields.notes == "line 1\r\nline 2"
    fields = validate_fields({"spec": "openai", "custom_host": HOST, "default_model": "m"}, None)
    assert fields.default_model == "m"  # no allow-list: any default is fine


def test_provider_input_validates_everything() -> None:
    item = provider_input("my-llm", {"spec": "openai", "custom_host": HOST}, [("x-api-key", "k" * 20)], None)
    assert item.slug == "my-llm" and item.headers == (("x-api-key", "k" * 20),)
    assert "k" * 20 not in repr(item)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("Bearer sk-abcdefghijklmnopf3a9", "Bearer sk-…f3a9"),
        ("sk-abcdefghijklmnopf3a9", "sk-…f3a9"),
        ("Basic dXNlcjpwYXNzd29yZDEyMw==", "Basic dXN…Mw=="),
        ("Bearer short", "Bearer …"),
        ("tiny", "…"),
        ("0123456789abcde", "…"),
        ("0123456789abcdef", "012…cdef"),
        ("Bearer  two words here-and-long", "Bearer two…long"),
    ],
)
def test_mask_secret(value: str, masked: str) -> None:
    assert mask_secret(value) == masked


def test_resolved_provider_repr_hides_header_values() -> None:
    p = ResolvedProvider("s", "openai", HOST, (("Authorization", "Bearer sk-topsecret"),))
    assert "topsecret" not in repr(p) and "topsecret" not in str(p)
    assert p.allows_model("anything")
    assert not ResolvedProvider("s", "openai", HOST, (), models=("a",)).allows_model("b")
