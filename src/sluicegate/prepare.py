"""Build the upstream request for one target: provider, host (SSRF-checked), credentials, body.

Precedence, from weakest to strongest: the spec's content type, the credential (config ``api_key``, or
the request's ``Authorization`` when the target takes its provider from the request), a catalog
provider's stored headers, and last the headers the client asked to forward verbatim.
A catalog provider's host is authoritative: a request may not redirect its stored credentials elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from multidict import CIMultiDict

from .config.model import Target
from .errors import BadRequest, EndpointNotSupported
from .jsontext import model_named
from .providers import registry
from .providers.contract import ApiSpec, Origin, Translation
from .providers.translate import TranslationError
from .types import Call, Prepared
from .upstream.auth import passthrough_headers, upstream_headers
from .upstream.guard import Guard

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


class CatalogEntry(Protocol):
    """What prepare needs of a Model Catalog provider (``catalog.ResolvedProvider``)."""

    @property
    def spec(self) -> str: ...
    @property
    def custom_host(self) -> str: ...
    @property
    def headers(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def default_model(self) -> str | None: ...
    @property
    def forward_headers(self) -> tuple[str, ...]: ...
    @property
    def models(self) -> tuple[str, ...]: ...

    def allows_model(self, model: str) -> bool: ...


class ProviderLookup(Protocol):
    def require(self, slug: str) -> CatalogEntry: ...


def split_model_slug(model: Any) -> tuple[str | None, str | None]:
    """``"@my-llm/llama-3"`` → ``("@my-llm", "llama-3")``; any other model → ``(None, None)``."""
    if not isinstance(model, str) or not model.startswith("@"):
        return None, None
    slug, sep, name = model.partition("/")
    if not sep or len(slug) < 2 or not name:
        raise BadRequest(f"Invalid model '{model}': use @provider-slug/model-name")
    return slug, name


def _allow_listed_passthrough(call: Call, slug: str, entry: CatalogEntry) -> Call:
    """A passthrough request with a body, to a provider with a models allow-list. Its body must be a JSON
    object whose model, when it names one, is on the list, and it goes upstream as parsed, so the upstream
    acts on the model that was checked (a duplicate "model" key cannot hide another). A body the gateway
    cannot read (multipart, not JSON) could name any model: refused. Without this check, a unified endpoint
    reached as a passthrough path (``/v1/chat%2Fcompletions``) used the stored credential for any model."""
    read = model_named(call.body)
    if read is None:
        raise BadRequest(f"{slug} serves only the models on its allow-list: a request with a body on this path "
                         "must send a JSON object naming one of them")
    body, model = read
    if model is not None and not entry.allows_model(model):
        raise BadRequest(f"Model '{model}' is not available on {slug}")
    return replace(call, body=body)


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

    def build(self, target: Target, call: Call) -> Prepared:
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

    def _from_catalog(self, slug: str, target: Target, call: Call) -> Prepared:
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
        elif entry.models and call.body:
            call = _allow_listed_passthrough(call, slug, entry)
        spec = registry.SPECS[entry.spec]
        return self._prepared(slug, spec, entry.custom_host, target, call, credential=dict(entry.headers),
                              model=model, default_forward=entry.forward_headers)

    def _prepared(self, provider_id: str, spec: ApiSpec, base: str, target: Target, call: Call, *,
                  credential: dict[str, str], model: str | None,
                  default_forward: Iterable[str] = ()) -> Prepared:
        ctx = call.ctx
        checked = self._guard.check_url(base)
        origin = Origin(ctx.trace_id, call.created, strict=strict_compliance(target, call))
        translation = spec.translation(call.endpoint, origin)
        body, edited = _edited_body(target, call, model)
        local = translation.local_answer(body)
        tail = "" if local is not None else _url_tail(spec, call, provider_id)
        body_out = b"" if local is not None else _translated(translation, body, call.body, edited)
        # Credentials and forwarded headers after translation: a translation never sees them.
        own_credential = bool(target.api_key) or provider_id.startswith("@")
        names = forward_names(target, ctx.forward_headers, tuple(default_forward), own_credential=own_credential)
        protocol = spec.client_headers(call.endpoint, ctx.headers, own_credential=own_credential)
        headers = _headers(provider_id, call, {**protocol, **credential}, ctx.forwarded_values(names))
        return Prepared(
            provider=provider_id, translation=translation, method=call.method, url=checked.base + tail,
            host=checked.base, headers=headers, body=body_out,
            timeout_ms=ctx.request_timeout_ms or target.request_timeout_ms,
            timeout_source="header" if ctx.request_timeout_ms else "config",
            rewrite_errors=call.endpoint != "proxy", local_answer=local,
        )


def strict_compliance(target: Target, call: Call) -> bool:
    """The effective ``strict_open_ai_compliance`` of one target: the request's header (for every target),
    else the target's config (inherited), else true, as in Portkey's gateway. The portkey-ai SDKs send the
    header as false unless told otherwise."""
    for value in (call.ctx.strict_open_ai_compliance, target.strict_open_ai_compliance):
        if value is not None:
            return value
    return True


def _translated(translation: Translation, body: dict[str, Any] | None, raw: bytes, edited: bool) -> bytes:
    """The upstream body; a request the target's API cannot express is the client's error (400)."""
    try:
        return translation.request_body(body, raw, edited=edited)
    except TranslationError as exc:
        raise BadRequest(str(exc)) from None


def _headers(provider_id: str, call: Call, credential: dict[str, str],
             forwarded: list[tuple[str, str]]) -> dict[str, str] | CIMultiDict[str]:
    headers: dict[str, str] | CIMultiDict[str]
    if call.endpoint == "proxy":
        # Passthrough: the client's own headers win over the spec's credential (Portkey's merge order),
        # but never over a catalog provider's stored ones.
        headers = CIMultiDict()
        if not provider_id.startswith("@"):
            headers.extend(credential)
        for name, value in passthrough_headers(call.ctx.headers.items()):
            # An Authorization that left no credential carried the gateway's own key (consumed) or an SDK's
            # placeholder (Bearer OPENAI_API_KEY, DUMMY-KEY): neither is the upstream's.
            if not (call.ctx.api_key is None and name.lower() == "authorization"):
                headers[name] = value
        if provider_id.startswith("@"):
            headers.update(credential)
    else:
        headers = {"content-type": "application/json", **credential}
    for name, value in forwarded:
        headers[name] = value
    return headers


def _url_tail(spec: ApiSpec, call: Call, provider_id: str) -> str:
    """What follows the base URL: the client's own tail (passthrough), or the spec's endpoint path."""
    if call.endpoint == "proxy":
        return call.url_tail
    tail = spec.endpoint_path(call.endpoint)
    if tail is None:
        raise EndpointNotSupported(f"{call.endpoint} is not supported by {provider_id}")
    return tail


def _edited_body(target: Target, call: Call, model: str | None) -> tuple[dict[str, Any] | None, bool]:
    """The body after the gateway's edits (model, override_params), and whether there were any: without
    edits an OpenAI-spec upstream gets ``call.body`` (the body as parsed, serialised once at the edge:
    server/routes.forwarded_body), not serialised a second time."""
    json = call.json
    if json is None or (not target.override_params and (model is None or model == json.get("model"))):
        return json, False
    body = dict(json)  # shallow: the cached config's nested values are read, never changed
    if model is not None:
        body["model"] = model
    body.update(target.override_params)
    return body, True
