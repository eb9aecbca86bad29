"""Entry points: ``parse_config`` (text → compiled tree) and ``ConfigCache`` (the same text parsed once)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sluicegate.config.compile import compile_node
from sluicegate.config.model import Node
from sluicegate.config.schema import validate_config
from sluicegate.errors import BadRequest, ConfigError
from sluicegate.jsontext import stored_json_object

INVALID_JSON = "Invalid config passed. You need to pass a valid json"
LEGACY_CONFIG = "This version of config is not supported in this route. Please migrate to the latest version"


def parse_config(
    text: str | bytes,
    *,
    known_providers: Collection[str],
    check_host: Callable[[str], object] | None = None,
) -> Node:
    """Validate and compile an ``x-portkey-config`` value (or a saved config's JSON).

    Raises ``BadRequest`` for text that is not a JSON object or a legacy (v0, ``options``) config, and
    ``ConfigError`` listing every schema problem. ``check_host`` is the SSRF guard's request-time check;
    it must be pure (no DNS) because its verdict is cached with the config.
    """
    raw = _decode(text)
    spec, errors = validate_config(raw, known_providers=known_providers, check_host=check_host)
    if errors:
        raise ConfigError(errors)
    return compile_node(spec)


def _decode(text: str | bytes) -> dict[str, Any]:
    raw = stored_json_object(text, invalid=INVALID_JSON, what="config")  # its values are written into bodies
    if "options" in raw:
        raise BadRequest(LEGACY_CONFIG)
    return raw


@dataclass(frozen=True, slots=True)
class _Failure:
    """A cached refusal. A fresh exception is raised each time: re-raising one shared instance would
    chain tracebacks and contexts across unrelated requests."""

    message: str
    errors: tuple[str, ...] | None

    def error(self) -> BadRequest:
        if self.errors is None:
            return BadRequest(self.message)
        return ConfigError(list(self.errors), self.message)


class ConfigCache:
    """A bounded LRU of compiled configs keyed by the exact config text, owned by the app.

    Failures are cached too: a client that repeats a broken header gets its 400 without a new parse.
    Texts longer than ``max_text_chars`` are parsed but not kept, so memory stays near
    ``maxsize * max_text_chars``. The event loop is single-threaded, so no lock is needed.
    """

    def __init__(
        self,
        *,
        known_providers: Collection[str],
        check_host: Callable[[str], object] | None = None,
        maxsize: int = 512,
        max_text_chars: int = 64 * 1024,
    ) -> None:
        self._known_providers = frozenset(known_providers)
        self._check_host = check_host
        self._maxsize = maxsize
        self._max_text_chars = max_text_chars
        self._entries: OrderedDict[str | bytes, Node | _Failure] = OrderedDict()

    def get(self, text: str | bytes) -> Node:
        entry = self._entries.get(text)
        if entry is None:
            entry = self._parse(text)
            if len(text) <= self._max_text_chars:
                self._entries[text] = entry
                if len(self._entries) > self._maxsize:
                    self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(text)
        if isinstance(entry, _Failure):
            raise entry.error()
        return entry

    def _parse(self, text: str | bytes) -> Node | _Failure:
        try:
            return parse_config(text, known_providers=self._known_providers, check_host=self._check_host)
        except ConfigError as exc:
            return _Failure(exc.message, tuple(exc.errors))
        except BadRequest as exc:
            return _Failure(exc.message, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
