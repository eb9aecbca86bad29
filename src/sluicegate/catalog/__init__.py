"""Model Catalog: ``@slug`` providers (custom host, encrypted auth headers) and saved Gateway Configs."""

from .cache import Catalog, CatalogKeyError, CatalogSnapshot
from .configs import ConfigRepository, ValidateConfig, referenced_slugs
from .entries import (
    SPECS,
    UNSET,
    CheckHost,
    NotInCatalog,
    ProviderFields,
    ProviderInput,
    ProviderPatch,
    ProviderView,
    ResolvedProvider,
    SavedConfigView,
    mask_secret,
    provider_input,
    provider_not_found,
)
from .providers import ProviderRepository

__all__ = [
    "SPECS",
    "UNSET",
    "Catalog",
    "CatalogKeyError",
    "CatalogSnapshot",
    "CheckHost",
    "ConfigRepository",
    "NotInCatalog",
    "ProviderFields",
    "ProviderInput",
    "ProviderPatch",
    "ProviderRepository",
    "ProviderView",
    "ResolvedProvider",
    "SavedConfigView",
    "ValidateConfig",
    "mask_secret",
    "provider_input",
    "provider_not_found",
    "referenced_slugs",
]
