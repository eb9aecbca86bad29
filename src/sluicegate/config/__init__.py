"""Gateway Config: schema, validation messages, compilation to frozen runtime objects."""

from sluicegate.config.parse import ConfigCache, parse_config

__all__ = ["ConfigCache", "parse_config"]
