"""Splitting and normalising a custom-host URL, strictly, before any rule looks at its host.

We do not use ``urllib.parse`` or yarl here: SSRF bypasses live in the differences between parsers
(``\\`` read as ``/`` by browsers and not by Python, ``@`` and ``#`` moving the host, numeric IPv4
forms). So the URL must be unambiguous to every parser or it is refused, and the host is read the
way the most permissive client (the WHATWG URL standard) would read it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote

from ..errors import InvalidCustomHost
from .addresses import IPAddress, NotAnIPv4, parse_ipv4_host
from .names import BadHostName, check_name_syntax, normalise_name

MAX_URL = 2048
DEFAULT_PORTS = MappingProxyType({"http": 80, "https": 443})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_PATH_SAFE = "/%:!$&'()*+,;=-._~"


@dataclass(frozen=True)
class CheckedURL:
    """A custom host that passed the request-time check, in normal form.

    ``host``: IPv4 dotted, IPv6 without brackets, IDNA ASCII, lower case, no trailing dot.
    ``base``: the whole URL normalised, without trailing slash, e.g. ``http://127.0.0.1:8000/v1``.
    """

    scheme: str
    host: str
    port: int
    base: str


@dataclass(frozen=True)
class ParsedURL:
    scheme: str
    host: str  # normalised, as in CheckedURL
    address: IPAddress | None  # set when the host is an IP literal
    port: int
    path: str  # without trailing slash

    def checked(self) -> CheckedURL:
        shown = f"[{self.host}]" if self.address is not None and self.address.version == 6 else self.host
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return CheckedURL(self.scheme, self.host, self.port, f"{self.scheme}://{shown}{port}{self.path}")


def url_end(text: str) -> int:
    """Where ``text``, given as a URL, stops being one: at its first whitespace or character that is not
    printable (its length when there is none). What follows may be anything a client pasted after the URL (a
    header, its key): it is never shown or stored."""
    return next((i for i, ch in enumerate(text) if ch.isspace() or not ch.isprintable()), len(text))


def _check_characters(url: str) -> None:
    if url.isascii() and url.isprintable() and " " not in url and "\\" not in url:
        return  # the common case, decided without a per-character loop
    for ch in url:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise InvalidCustomHost("the URL contains a control character")
        if ch.isspace():
            raise InvalidCustomHost("the URL contains whitespace")
        if ch == "\\":
            raise InvalidCustomHost("the URL contains a backslash, which clients disagree about")
        if unicodedata.category(ch)[0] in "CZ":
            raise InvalidCustomHost(
                f"the URL contains an invisible or formatting character (U+{ord(ch):04X})"
            )


def _split(url: str) -> tuple[str, str, str]:
    """→ (scheme, authority, rest after the authority)."""
    match = _SCHEME.match(url)
    if match is None:
        raise InvalidCustomHost("the URL has no scheme; write it as http://host or https://host")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidCustomHost(f"scheme {scheme[:20]!r} is not allowed; use http or https")
    rest = url[match.end():]
    if not rest.startswith("//"):
        raise InvalidCustomHost(f"the URL must start with {scheme}://")
    rest = rest[2:]
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return scheme, rest[:cut], rest[cut:]


def _port(text: str | None, scheme: str) -> int:
    if text is None:
        return DEFAULT_PORTS[scheme]
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise InvalidCustomHost(f"port {text[:12]!r} is not valid; use a number from 1 to 65535")
    return int(text)


def _split_host_port(authority: str) -> tuple[str, bool, str | None]:
    """→ (host text, bracketed, port text or None)."""
    if authority.startswith("["):
        inner, sep, after = authority[1:].partition("]")
        if not sep or (after and not after.startswith(":")):
            raise InvalidCustomHost("the IPv6 address is not closed properly, e.g. http://[2001:db8::1]:8000")
        return inner, True, after[1:] if after else None
    if authority.count(":") > 1:
        raise InvalidCustomHost("IPv6 addresses must be written in brackets, e.g. http://[2001:db8::1]:8000")
    host, sep, port = authority.partition(":")
    return host, False, port if sep else None


def _host(text: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    if bracketed:
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            raise InvalidCustomHost(f"[{text[:60]}] is not a valid IPv6 address") from None
        return str(address), address
    try:
        name = normalise_name(text)
        v4 = parse_ipv4_host(name)
        if v4 is not None:
            return str(v4), v4
        check_name_syntax(name)
    except (BadHostName, NotAnIPv4) as exc:
        raise InvalidCustomHost(str(exc)) from None
    return name, None


def parse_url(url: object) -> ParsedURL:
    """Refuse anything ambiguous; return the parts in normal form. Judges syntax only, not targets."""
    if not isinstance(url, str):
        raise InvalidCustomHost("the custom host must be a string")
    if not url:
        raise InvalidCustomHost("the URL is empty")
    if len(url) > MAX_URL:
        raise InvalidCustomHost(f"the URL is longer than {MAX_URL} characters")
    _check_characters(url)
    if "@" in url:
        raise InvalidCustomHost("the URL contains '@'; credentials in the URL are not allowed")
    scheme, authority, rest = _split(url)
    if "?" in rest or "#" in rest:
        raise InvalidCustomHost("a custom host may not contain a query or fragment ('?' or '#')")
    if "%" in authority:
        zone = authority.startswith("[")
        raise InvalidCustomHost(
            "IPv6 zone identifiers are not allowed" if zone else "percent-encoded host names are not allowed"
        )
    host_text, bracketed, port_text = _split_host_port(authority)
    port = _port(port_text, scheme)
    host, address = _host(host_text, bracketed)
    path = quote(rest, safe=_PATH_SAFE).rstrip("/")
    return ParsedURL(scheme, host, address, port, path)
