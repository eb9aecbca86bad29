"""What may never reach the store: credentials and forwarded header values.

The log stores no request headers at all, so a secret could only reach it inside text that is stored:
a body (an upstream that echoes its credential in an error, a client that pastes one), an error message,
metadata. Every such text is scrubbed of the request's secret values before it is written or spooled:
the values of its credential-like headers, and every value the gateway sent upstream (each attempt's
headers by value whatever their name, except a few that carry no secret, and its query's credential-like
parameters), each also in its URL-encoded and JSON-escaped forms, which is how an echo in a URL or in
another JSON encoder's output carries it. Custom hosts lose their user-info, query and fragment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from mypy_extensions import mypyc_attr

from ..header_names import GATEWAY_HEADER_NAMES, PORTKEY_PREFIX, auth_scheme_split
from ..types import RequestContext
from ..upstream.urls import url_end

REDACTED = "[REDACTED]"
# Shorter values are not credentials, and replacing them would mangle ordinary text ("k" in every word).
MIN_SECRET_LENGTH = 8
# Header names whose values are credentials wherever they appear, plus any name containing these words.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
_SECRET_WORDS = ("key", "token", "secret", "auth", "password", "credential", "signature", "session")


# Headers sent upstream whose values are protocol, not credentials: scrubbing them would mangle bodies
# ("application/json" in every answer). Any other header the gateway sent is scrubbed by value.
_PLAIN_HEADERS = frozenset({
    "content-type", "content-length", "content-encoding", "accept", "accept-encoding", "accept-language",
    "user-agent", "host", "connection", "cache-control", "pragma", "te", "transfer-encoding", "expect",
    "traceparent", "tracestate", "openai-beta", "anthropic-version", "anthropic-beta", "x-request-id",
})


def is_secret_header(name: str) -> bool:
    lowered = name.lower().replace("_", "-")
    # "portkey" itself contains "key": judge x-portkey-* headers by the rest of their name (api-key, virtual-key).
    rest = lowered.removeprefix(PORTKEY_PREFIX)
    if rest is not lowered and rest not in GATEWAY_HEADER_NAMES:
        return True  # a custom header the SDK prefixed (x-portkey-x-org-id): a config target may forward it
    return lowered in _SECRET_HEADERS or any(word in rest for word in _SECRET_WORDS)


def request_secrets(ctx: RequestContext | None, extra: Iterable[str] = (),
                    is_secret: Callable[[str], bool] = is_secret_header,
                    forwarded_by_config: tuple[str, ...] = (),
                    usable: Callable[[list[str]], tuple[str, ...]] | None = None) -> tuple[str, ...]:
    """Every credential-like value of the request: secret headers, forwarded headers (by the request's list
    or by a config target's), the API key. ``usable``: how the values become the scrub list (default
    ``_usable``; the Redactor remembers its answers, since one client sends the same credentials every time)."""
    usable = usable or _usable
    values: list[str] = []
    for value in extra:  # credentials the gateway added (catalog headers, config api keys)
        values.append(value)
        values.append(auth_scheme_split(value)[1])
    if ctx is None:
        return usable(values)
    for name, value in ctx.headers.items():
        if is_secret(name):
            values.append(value)
            rest = auth_scheme_split(value)[1]
            if rest:  # "Bearer sk-…": the token alone may appear elsewhere
                values.append(rest)
    for names in (ctx.forward_headers, forwarded_by_config):
        if names:
            values.extend(value for _, value in ctx.forwarded_values(names))
    if ctx.api_key:
        values.append(ctx.api_key)
    if ctx.gateway_key:  # the gateway's own API key: never logged either
        values.append(ctx.gateway_key)
    return usable(values)


def is_plain_sent_header(name: str) -> bool:
    """A header sent upstream whose value is protocol, not a credential: not scrubbed by value."""
    lowered = name.lower()
    return lowered in _PLAIN_HEADERS or lowered.startswith("x-stainless-")


def sent_secrets(headers: Any, url: str | None, is_secret: Callable[[str], bool] = is_secret_header,
                 is_plain: Callable[[str], bool] = is_plain_sent_header) -> list[str]:
    """What one attempt sent that may be a credential: every header value but the plain ones, by value
    (an innocuous name can carry a key), and the values of the query's credential-like parameters."""
    values = [value for name, value in (headers or {}).items() if not is_plain(name)]
    query = urlsplit(url).query if url and "?" in url else ""
    if query:
        values.extend(value for name, value in parse_qsl(query, keep_blank_values=True) if is_secret(name))
        values.extend(value for name, _, value in (p.partition("=") for p in query.split("&")) if is_secret(name))
    values.extend(auth_scheme_split(value)[1] for value in list(values) if " " in value or "\t" in value)
    return values


def scrub_list(values: Iterable[str]) -> Secrets:
    """What ``scrub`` takes for these credential values: each in every form an echo may carry it."""
    return Secrets.of(_usable(values))


def _usable(values: Iterable[str]) -> tuple[str, ...]:
    # Longest first: a token inside a longer header value must not leave the rest of that value behind.
    unique = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
    for value in list(unique):  # as an echo in a URL or in another JSON encoder's output would carry it
        # A header's bytes that are not UTF-8 reach us as lone surrogates (surrogateescape): quoted as the
        # bytes they were, and also as a stored text carries them once decoded (U+FFFD for each).
        raw = _bytes_of(value)
        unique.add(quote(raw, safe=""))
        escaped = _json_escaped(value)
        unique.update(escaped)
        for once in escaped:  # a JSON document carried as a string inside another (an error that quotes its
            unique.update(_json_escaped(once))  # upstream's JSON answer): escaped twice
        unique.add(raw.decode("utf-8", "replace"))
    return tuple(sorted(unique, key=len, reverse=True))


def _json_escaped(value: str) -> tuple[str, ...]:
    """The forms JSON writers give ``value`` inside a string (an upstream's error that echoes its request):
    quotes, backslashes and control characters escaped (every writer), non-ASCII as ``\\uXXXX`` as well
    (Python's json), and either with "/" as ``\\/`` (PHP's). The same as ``value`` for most credentials."""
    plain = json.dumps(value, ensure_ascii=False)[1:-1]
    ascii_only = json.dumps(value)[1:-1]
    return plain, ascii_only, plain.replace("/", "\\/"), ascii_only.replace("/", "\\/")


def _bytes_of(value: str) -> bytes:
    try:
        return value.encode("utf-8", "surrogateescape")  # the bytes a header's undecodable part was
    except UnicodeEncodeError:  # another lone surrogate (from a JSON escape): never a reason to raise
        return value.encode("utf-8", "surrogatepass")


@mypyc_attr(native_class=False)  # compiled (setup.py), a tuple's subclass stays a Python class
class Secrets(tuple[str, ...]):
    """A request's scrub list (longest first) with its roots: the fewest of its values that every value
    contains (a bare token is in its "Bearer" and URL-encoded forms). A text holding no root holds none of
    them, which a scan per root tells: the common text, with no secret in it, is scanned once per root
    instead of once per form."""

    roots: tuple[str, ...]

    @classmethod
    def of(cls, values: tuple[str, ...]) -> Secrets:
        made = cls(values)
        made.roots = tuple(v for v in values if not any(o in v for o in values if len(o) < len(v)))
        return made


def scrub(text: str | None, secrets: tuple[str, ...]) -> str | None:
    if not text or not secrets:
        return text
    roots = getattr(secrets, "roots", secrets)
    if roots is not secrets:
        for root in roots:  # a loop, not any() over a generator: this runs several times for every request
            if root in text:
                break
        else:
            return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_bytes(data: bytes, secrets: tuple[str, ...]) -> bytes:
    """``scrub`` for bytes as they go to a client (an upstream's error body or error event): any bytes, UTF-8
    or not, come back as they were but for the secrets."""
    text = data.decode("utf-8", "surrogateescape")
    clean = scrub(text, secrets)
    return data if clean is text or clean is None else clean.encode("utf-8", "surrogateescape")


def safe_url(url: str | None) -> str | None:
    """``https://user:pw@host:8000/v1?key=k#x`` → ``https://host:8000/v1``."""
    if not url:
        return None
    if url_end(url) < len(url):
        return None  # not a URL (the guard refused it): its tail may be anything a client pasted, a key too
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None  # unparseable: storing it raw could store whatever it hides
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Redactor:
    """The functions above, with their answers for header names and hosts remembered: the same few names
    and hosts come with every request. Bounded, because clients choose both."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        # Called once per header of every request: a remembered answer is a dict look-up in C, no Python call.
        self._is_secret: Callable[[str], bool] = _Memo(is_secret_header, limit).__getitem__
        self._is_plain: Callable[[str], bool] = _Memo(is_plain_sent_header, limit).__getitem__
        self._urls: dict[str, str | None] = {}
        self._usable: dict[tuple[str, ...], tuple[str, ...]] = {}  # a client's credentials → their forms

    def secrets(self, ctx: RequestContext | None, extra: Iterable[str] = (),
                forwarded_by_config: tuple[str, ...] = ()) -> tuple[str, ...]:
        return request_secrets(ctx, extra, is_secret=self._is_secret, forwarded_by_config=forwarded_by_config,
                               usable=self._usable_forms)

    def _usable_forms(self, values: list[str]) -> tuple[str, ...]:
        key = tuple(values)
        found = self._usable.get(key)
        if found is None:
            found = Secrets.of(_usable(values))
            _remember(self._usable, key, found, self._limit)
        return found

    def sent(self, headers: Any, url: str | None) -> list[str]:
        return sent_secrets(headers, url, is_secret=self._is_secret, is_plain=self._is_plain)

    def url(self, url: str | None) -> str | None:
        if not url:
            return None
        if url in self._urls:
            return self._urls[url]
        safe = safe_url(url)
        _remember(self._urls, url, safe, self._limit)
        return safe


class _Memo(dict):
    """``compute``'s answers by argument: a miss computes and remembers one (all are forgotten when ``limit``
    are held, since clients choose the arguments)."""

    __slots__ = ("_compute", "_limit")

    def __init__(self, compute: Callable[[str], bool], limit: int) -> None:
        super().__init__()
        self._compute, self._limit = compute, limit

    def __missing__(self, key: str) -> bool:
        found = self._compute(key)
        _remember(self, key, found, self._limit)
        return found


def _remember(memo: dict, key: Hashable, value: object, limit: int) -> None:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
