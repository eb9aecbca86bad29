"""What the request log asks of the catalog and the config cache (telemetry sits below both, and names
this only as its ``rows.Lookups`` protocol)."""

from __future__ import annotations

from ..config import ConfigCache
from ..config.model import Node, targets
from .cache import Catalog


class LogLookups:
    def __init__(self, catalog: Catalog, configs: ConfigCache) -> None:
        self._catalog, self._configs = catalog, configs

    def provider(self, provider_id: str) -> tuple[str | None, tuple[str, ...]]:
        found = self._catalog.resolve(provider_id) if provider_id.startswith("@") else None
        if found is None:
            return None, ()
        return found.spec, tuple(value for _, value in found.headers)

    def config_secrets(self, config: str) -> tuple[str, ...]:
        if config[:1] not in "{[":
            return ()  # a saved config's id: saved configs cannot hold credentials
        root = self._compiled(config)
        return tuple(target.api_key for target in targets(root) if target.api_key) if root else ()

    def config_forward_names(self, config: str) -> tuple[str, ...]:
        root = self._compiled(config)
        return tuple(dict.fromkeys(n for target in targets(root) for n in target.forward_headers)) if root else ()

    def _compiled(self, config: str) -> Node | None:
        text = config if config[:1] in "{[" else self._catalog.saved_config(config)
        if text is None:
            return None
        try:
            return self._configs.get(text)  # cached: the request compiled it already
        except Exception:
            return None
