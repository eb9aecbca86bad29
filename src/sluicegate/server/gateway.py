"""The Gateway: every long-lived object a handler needs, built by ``app.py`` and hung off the application."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.registry import AccessRegistry
from ..cache import SemanticCache, SimpleCache
from ..catalog import Catalog
from ..config import ConfigCache
from ..dispatch import Dispatcher
from ..limits.limiter import Limiter
from ..limits.registry import LimitRegistry
from ..pipeline import Pipeline
from ..settings import Settings
from ..store.notify import ChangeListener
from ..store.polling import VersionWatch
from ..telemetry.service import Telemetry
from ..upstream.guard import Guard
from ..upstream.transport import Transport


@dataclass
class Gateway:
    settings: Settings
    guard: Guard
    configs: ConfigCache
    catalog: Catalog
    engine: AsyncEngine
    telemetry: Telemetry
    access: AccessRegistry
    limits: LimitRegistry
    limiter: Limiter
    watch: VersionWatch  # the snapshots' reload loop (catalog, access, limits)
    changes: ChangeListener | None = None  # PostgreSQL's change notifications (None on SQLite)
    # Built when the app starts (they need the running loop): the upstream transport and what uses it.
    transport: Transport | None = field(init=False, default=None)
    dispatcher: Dispatcher = field(init=False)
    pipeline: Pipeline = field(init=False)
    cache: SimpleCache | SemanticCache | None = field(init=False, default=None)  # None: no response cache
