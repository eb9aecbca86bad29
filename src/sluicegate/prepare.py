"""Build the upstream request for one target: provider, host (SSRF-checked), credentials, body.

Precedence, from weakest to strongest: the spec's content type, the credential (config ``api_key``, or
the request's ``Authorization`` when the target takes its provider from the request), a catalog
provider's stored headers, and last the headers the client asked to forward verbatim.
A catalog provider's host is authoritative: a request may not redirect its stored credentials elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Protocol

import orjson
from multidict import CIMultiDict

from .config.model import Target
from .errors import BadRequest, EndpointNotSupported
from .providers import registry
from .upstream.auth import passthrough_headers, upstream_headers
from .upstream.exchange import Prepared
from .upstream.guard import Guard

if TYPE_CHECKING:
    from .catalog import ResolvedProvider
    from .dispatch import Call

NO_PROVIDER = (
    "Either x-portkey-provider needs to be passed. Or the x-portkey-config header should have a valid "
    "config with provider details in it."
)


# Model servers people name as if they were providers; each speaks the OpenAI API (Ollama has its own id).
_MODEL_SERVERS = frozenset({"vllm", "llama.cpp", "llamacpp", "llama-cpp", "tgi", "text-generation-inference",
                            "lmstudio", "lm-studio", "localai", "sglang"})


def invalid_provider_message(provider_id: str) -> str:
    """Portkey's message, plus the way out when the name is a model server rather than an API spec."""
    if provider_id.strip().lower() not in _MODEL_SERVERS:
        return "Invalid provider passed"
    return (f"Invalid provider passed: '{provider_id}' is a model server, not an API spec. A private server "
            "is reached with the spec it implements and its address: x-portkey-provider: openai and "
            "x-portkey-custom-host: http://HOST:PORT/v1 (or a catalog provider: @slug)")


class ProviderLookup(Protocol):
    def require(self, slug: str) -> "ResolvedProvider": ...


def split_model_slug(model: Any) -> tuple[str | None, str | None]:
    """``"@my-llm/llama-3"`` → ``("@my-llm", "llama-3")``; any other model → ``(None, None)``."""
    if not isinstance(model, str) or not model.startswith("@"):
        return None, None
    slug, sep, name = model.partition("/")
    if not sep or len(slug) < 2 or not name:
        raise BadRequest(f"Invalid model '{model}': use @provider-slug/model-name")
    return slug, name


def forward_names(target: Target, requested: tuple[str, ...] | None, catalog_default: tuple[str, ...], *,
                  own_credential: bool) -> tuple[str, ...]:
    """Which client headers one target receives verbatim (docs/configuration.md, "Forward headers").

    Without a config (or for a config target that takes its provider from the request) the request's
    ``x-portkey-forward-headers`` decides, as in Portkey. A config target that names its provider gets
    its own ``forward_headers`` (inherited ones included) and only those: a private header listed for the
    private target never reaches the commercial fallback. Such a target without a list of its own gets
    the request's list only when it brings no credential of its own (no ``api_key``, not a catalog
    provider), so a forwarded ``Authorization`` never replaces a fallback's key.
    """
    if target.provider is None:
        return requested if requested is not None else (target.forward_headers or catalog_default)
    if target.forward_headers:
        return target.forward_headers
    if own_credential:
        return catalog_default
    return requested or ()


class RequestBuilder:
    def __init__(self, guard: Guard, *, catalog: ProviderLookup | None = None,
                 provider_urls: Mapping[str, str] | None = None) -> None:
        self._guard = guard
        self._catalog = catalog
        self._provider_urls = provider_urls or {}

    def build(self, target: Target, call: "Call") -> Prepared:
        provider_id = target.provider or call.ctx.provider or call.model_slug
        if not provider_id:
            raise BadRequest(NO_PROVIDER)
        if provider_id.startswith("@"):
            return self._from_catalog(provider_id, target, call)
        info = registry.lookup(provider_id)
        if info is None:
            raise BadRequest(invalid_provider_message(provider_id))
        base = call.ctx.custom_host or target.custom_host or registry.base_url(info, self._provider_urls)
        if not base:
            raise BadRequest(f"Provider {provider_id} needs a custom host")
        api_key = target.api_key if target.provider else call.ctx.api_key
        return self._prepared(provider_id, info.spec, base + info.path_prefix, target, call,
                              credential=upstream_headers(info.spec, api_key, (), content_type=None),
                              model=call.model)

    def _from_catalog(self, slug: str, target: Target, call: "Call") -> Prepared:
        if self._catalog is None:
            raise BadRequest(f"Provider {slug} not found in the catalog")
        entry = self._catalog.require(slug)
        if call.ctx.custom_host:
            raise BadRequest(f"x-portkey-custom-host cannot be used with the catalog provider {slug}: "
                             "its stored credentials only go to its registered host")
        model = call.model
        if call.json is not None:
            model = model or call.json.get("model") or entry.default_model
            if isinstance(model, str) and not entry.allows_model(model):
                raise BadRequest(f"Model '{model}' is not available on {slug}")
        spec = registry.SPECS[entry.spec]
        return self._prepared(slug, spec, entry.custom_host, target, call, credential=dict(entry.headers),
                              model=model, default_forward=entry.forward_headers)

    def _prepared(self, provider_id: str, spec, base: str, target: Target, call: "Call", *,
                  credential: dict[str, str], model: str | None,
                  default_forward: Iterable[str] = ()) -> Prepared:
        ctx = call.ctx
        checked = self._guard.check_url(base)
        names = forward_names(target, ctx.forward_headers, tuple(default_forward),
                              own_credential=bool(target.api_key) or provider_id.startswith("@"))
        forwarded = ctx.forwarded_values(names)
        if call.endpoint == "proxy":
            # Passthrough: the client's own headers win over the spec's credential (Portkey's merge order),
            # but never over a catalog provider's stored ones.
            headers: Any = CIMultiDict()
            if not provider_id.startswith("@"):
                headers.extend(credential)
            for name, value in passthrough_headers(ctx.headers.items()):
                headers[name] = value
            if provider_id.startswith("@"):
                headers.update(credential)
            path = call.path
        else:
            path = spec.endpoint_path(call.endpoint)
            if path is None:
                raise EndpointNotSupported(f"{call.endpoint} is not supported by {provider_id}")
            headers = {"content-type": "application/json", **credential}
        for name, value in forwarded:
            headers[name] = value
        return Prepared(
            provider=provider_id, spec=spec, method=call.method, url=checked.base + path, host=checked.base,
            headers=headers, body=_body(target, call, model),
            timeout_ms=ctx.request_timeout_ms or target.request_timeout_ms,
            timeout_source="header" if ctx.request_timeout_ms else "config",
            rewrite_errors=call.endpoint != "proxy",
        )


def _body(target: Target, call: "Call", model: str | None) -> bytes:
    json = call.json
    if json is None or (not target.override_params and (model is None or model == json.get("model"))):
        return call.body  # as parsed (server/routes.forwarded_body): not serialised a second time
    body = dict(json)  # shallow: the cached config's nested values are read, never changed
    if model is not None:
        body["model"] = model
    body.update(target.override_params)
    return orjson.dumps(body)
