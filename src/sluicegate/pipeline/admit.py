"""Admission: who is calling (a gateway API key), and whether it may make this request.

  Admit      before the config is chosen: the key (401 when missing, unknown, expired or revoked), the
             ``completions.write`` scope, the key's defaults (config id, metadata), its saved config
  Authorize  after it: every target of the config tree — catalog provider (workspace, allow-list),
             direct integration, model — so a refusal never depends on which target routing picks

Both read in-memory snapshots only (access/registry.py, the catalog); a refusal is a ``GatewayError``.
"""

from __future__ import annotations

from typing import Protocol

from ..access import policy
from ..access.mode import OFF, Requirement
from ..access.model import INFERENCE_SCOPE, Principal
from ..access.registry import AccessRegistry
from ..errors import BadRequest, Unauthorized
from ..jsontext import model_named
from ..types import Call, Outcome
from .core import Next, RequestState

MISSING_KEY = ("Missing API key: send it in the x-portkey-api-key header "
               "(or as Authorization: Bearer sg-…)")


class CatalogFacts(Protocol):
    """What admission asks of the catalog (in memory): whose provider or config is it."""

    def provider_workspace(self, slug: str) -> tuple[bool, str | None, str | None]: ...

    def config_workspace(self, config_id: str) -> tuple[bool, str | None]: ...


class Admit:
    def __init__(self, access: AccessRegistry, catalog: CatalogFacts, *, mode: str, host: str) -> None:
        self._access = access
        self._catalog = catalog
        self._off = mode == OFF
        self._requirement = Requirement.of(mode, host)

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        ctx = state.call.ctx
        required = self._requirement.required(self._access.snapshot.has_keys)
        if ctx.gateway_key is None or self._off:
            if required:
                raise Unauthorized(MISSING_KEY)
            return await call_next(state)
        try:
            principal = self._access.authenticate(ctx.gateway_key)
        except Unauthorized:
            if required:
                raise
            return await call_next(state)  # open (loopback, no key exists): an unknown key changes nothing
        self._admit(state.call, principal)
        state.principal = principal
        # A key reads and writes only its own cache entries (x-portkey-cache-namespace shares on purpose).
        state.cache_scope = f"{principal.workspace_id}/{principal.key_id}"
        return await call_next(state)

    def _admit(self, call: Call, principal: Principal) -> None:
        ctx = call.ctx
        ctx.workspace_id, ctx.api_key_id = principal.workspace_id, principal.key_id
        policy.require_scope(principal, INFERENCE_SCOPE)
        defaults = principal.defaults
        by_default = bool(defaults.config_id) and not (ctx.config or ctx.provider or call.model_slug)
        if by_default:
            ctx.config = defaults.config_id
        if defaults.metadata:
            ctx.metadata = {**defaults.metadata, **ctx.metadata}
        config = ctx.config
        if config and config[0] not in "{[":
            known, workspace = self._catalog.config_workspace(config)
            if known:
                policy.check_config(principal, config, workspace)
            elif by_default:  # the client sent no config: the "x-portkey-config" error would mislead it
                raise BadRequest(f"This API key's default config '{config[:64]}' no longer exists: send "
                                 "x-portkey-config or x-portkey-provider, or have an admin set another default")


class Authorize:
    """After SelectConfig: each target the tree may try is one the key may use."""

    def __init__(self, catalog: CatalogFacts) -> None:
        self._catalog = catalog

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        principal = state.principal
        if principal is not None and state.root is not None and not policy.is_unrestricted(principal):
            for target in policy.leaves(state.root):
                self._check_target(principal, state.call, target.provider, target.override_params.get("model"))
        return await call_next(state)

    def _check_target(self, principal: Principal, call: Call, provider: str | None, model: object) -> None:
        provider = provider or call.ctx.provider or call.model_slug
        if provider is None:
            return  # no provider at all: the dispatcher answers 400
        default_model = None
        if provider.startswith("@"):
            known, workspace, default_model = self._catalog.provider_workspace(provider[1:])
            if known:
                policy.check_provider(principal, provider[1:], workspace)
        else:
            policy.check_direct(principal, provider)
        restricted = any(p.models is not None for p in (principal.permissions, principal.workspace_permissions))
        if not isinstance(model, str):
            if call.json is None and call.body and restricted:  # a passthrough path: /v1/responses, /v1/chat%2F…
                model = _passthrough_model(call)
            model = model or call.model or (call.json or {}).get("model") or default_model
        if isinstance(model, str):
            policy.check_model(principal, model)
        elif restricted:
            raise policy.Forbidden("This API key may only use the models it is allowed: name one in 'model'")


def _passthrough_model(call: Call) -> str | None:
    """The model a passthrough body names, for a key allowed only some models. The body must be a JSON object
    (one the gateway cannot read could name any model), and it goes upstream as parsed, so the upstream acts
    on the model checked (a second "model" key cannot hide another). The provider's default model was
    checked instead, and the body's went upstream unchecked."""
    read = model_named(call.body)
    if read is None:
        raise policy.Forbidden("This API key may only use the models it is allowed: a request with a body must "
                               "send a JSON object naming one in 'model'")
    call.body, model = read
    return model


