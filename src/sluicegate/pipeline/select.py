"""Which config tree a request runs: its Gateway Config (inline JSON or a saved config's id), or the
direct one-target tree when the request names its provider in headers or in the model."""

from __future__ import annotations

from collections.abc import Callable

from ..config import ConfigCache
from ..config.model import Node, Target
from ..errors import BadRequest
from ..types import Call

_DIRECT = Target(json_path="config")  # no config: provider, credential and host all come from the request


class ConfigSelector:
    def __init__(self, configs: ConfigCache, saved_config: Callable[[str], str | None]) -> None:
        self._configs = configs
        self._saved_config = saved_config  # the catalog's saved configs by id (in memory)

    def root_for(self, call: Call) -> Node:
        """The config tree for a request: its Gateway Config, or the direct one-target tree."""
        ctx = call.ctx
        if ctx.config:
            return self._configs.get(self._config_text(ctx.config))
        if ctx.provider or call.model_slug:
            return _DIRECT
        raise BadRequest("Either x-portkey-config or x-portkey-provider header is required")

    def _config_text(self, value: str) -> str:
        """Inline JSON, or the id of a saved config (the portkey-ai SDK sends either as is)."""
        if value[0] in "{[":
            return value
        text = self._saved_config(value)
        if text is None:
            raise BadRequest(f"Config '{value[:64]}' not found: x-portkey-config takes a JSON config "
                             "or the id of a saved config")
        return text
