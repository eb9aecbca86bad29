"""The limits step: after admission and authorization, every limit of the key, its workspace and the
catalog provider the request reaches, in one all-or-nothing check (limits/limiter.py). The provider is
the ``@slug`` the request names (header or model), or the one its config tree leads to when every
target of the tree is that provider (a saved config such as a key's default, or an inline one). A tree
over several catalog providers has their limits checked per attempt by the dispatcher instead
(limits/attempts.py); the provider admitted here is marked on the call so it is not counted twice.

A refusal raises (429 with Retry-After and x-ratelimit-*, 412 for a budget, 503 when the store is down
and limits fail closed); an admitted request carries its ticket on ``call.on_usage`` so the request
log's task settles it with the actual usage once the answer or the stream has ended.
"""

from __future__ import annotations

from typing import Protocol

from ..access.policy import leaves
from ..config.model import Node, Target
from ..limits.checks import Subject
from ..limits.limiter import Limiter
from ..limits.model import Limits
from ..types import Outcome
from .core import Next, RequestState


class LimitFacts(Protocol):
    """Where limits and prices are read from (in-memory snapshots, never the database)."""

    def key_limits(self, key_id: str) -> Limits | None: ...

    def workspace_limits(self, workspace_id: str) -> Limits | None: ...

    def provider_limits(self, slug: str) -> Limits | None: ...

    def price(self, slug: str | None, model: str | None) -> tuple[float, float] | None: ...


class LimitStep:
    def __init__(self, limiter: Limiter, facts: LimitFacts) -> None:
        self._limiter = limiter
        self._facts = facts

    def subjects(self, state: RequestState) -> tuple[list[Subject], str | None, str | None]:
        """(the subjects whose limits apply, the catalog provider reached, the model a config sets)."""
        ctx, call = state.call.ctx, state.call
        found: list[Subject] = []
        if ctx.api_key_id and (limits := self._facts.key_limits(ctx.api_key_id)) is not None:
            found.append(Subject("key", ctx.api_key_id, limits))
        if ctx.workspace_id and (limits := self._facts.workspace_limits(ctx.workspace_id)) is not None:
            found.append(Subject("workspace", ctx.workspace_id, limits))
        # What a target without a provider of its own reaches, by routing's rule (prepare.py): the header's
        # provider before the model's "@slug/" (the model's came first here, and a key spent another workspace's
        # provider limits by naming its slug in a model its request never sent there).
        fallback = ctx.provider or call.model_slug
        if state.root is not None:
            slug, model = only_catalog_target(state.root, fallback)
        else:
            slug, model = (fallback[1:] if fallback and fallback.startswith("@") else None), None
        if slug and (limits := self._facts.provider_limits(slug)) is not None:
            found.append(Subject("provider", slug, limits))
        return found, slug, model

    async def __call__(self, state: RequestState, call_next: Next) -> Outcome:
        subjects, slug, config_model = self.subjects(state)
        if not subjects:
            return await call_next(state)
        call = state.call
        model = config_model or call.model or (call.json or {}).get("model")
        price = self._facts.price(slug, model if isinstance(model, str) else None)
        if subjects[-1].kind == "provider":
            call.limited_provider = slug  # counted here: the dispatcher does not count it again per attempt
        ticket = await self._limiter.admit(subjects, call.json, price)
        if ticket is None:
            return await call_next(state)
        call.on_usage = ticket.settle
        outcome = await call_next(state)
        outcome.headers.extend(ticket.headers.items())
        return outcome


def only_catalog_target(root: Node, fallback: str | None = None) -> tuple[str | None, str | None]:
    """The catalog provider (slug) every target of a config tree reaches (``fallback``: what a target without
    a provider reaches), and the model when the tree is one target that sets it; (None, None) when targets
    differ: which one serves is known only at dispatch, which checks each attempt's provider limits
    (limits/attempts.py)."""
    targets = [root] if isinstance(root, Target) else list(leaves(root))  # one target: the usual tree
    providers = {target.provider or fallback for target in targets}
    if len(providers) != 1:
        return None, None
    (provider,) = providers
    if not provider or not provider.startswith("@"):
        return None, None
    model = targets[0].override_params.get("model") if len(targets) == 1 else None
    return provider[1:], model if isinstance(model, str) else None
