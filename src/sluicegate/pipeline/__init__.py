"""The /v1 request pipeline: the ordered steps every inference request goes through after the edge.

    admit  →  select config  →  authorize  →  limits  →  cache  →  dispatch

``app.py`` builds the list once; ``server/routes.py`` runs it per request. A step is an async callable
``step(state, call_next) -> Outcome``: it may act before ``call_next`` (refuse, look up), answer without it
(a cache hit), or act on the outcome after it (store, count usage). Today admission lets every request in;
the cache step answers from the response cache (cache/) when the config has a ``cache`` block. The next
features plug in here (see docs/architecture.md, "where do I put X") rather than edit the handlers.
"""

from .admit import Admit, Authorize
from .core import DEFAULT_CACHE_SCOPE, Next, Pipeline, RequestState, Step
from .limit import LimitStep
from .select import ConfigSelector
from .steps import AdmitAll, CacheHit, CacheStep, DispatchStep, ResponseCache, SelectConfig, default_steps

__all__ = [
    "DEFAULT_CACHE_SCOPE", "Admit", "AdmitAll", "Authorize", "CacheHit", "CacheStep", "ConfigSelector",
    "DispatchStep", "LimitStep", "Next", "Pipeline", "RequestState", "ResponseCache", "SelectConfig", "Step",
    "default_steps",
]
