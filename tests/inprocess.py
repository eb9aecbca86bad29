"""Building the core in-process for fast tests: a Call as the routes build it, a Dispatcher on a fake
transport with a fake clock, sleep and rng."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from sluicegate.config import parse_config
from sluicegate.config.model import Node, Target
from sluicegate.dispatch import Dispatcher
from sluicegate.prepare import RequestBuilder, split_model_slug
from sluicegate.providers import registry
from sluicegate.routing import CircuitBreaker
from sluicegate.routing.load import LoadBoard
from sluicegate.server.headers import parse_request_headers
from sluicegate.settings import Settings
from sluicegate.types import Call
from sluicegate.upstream.guard import Guard, GuardPolicy
from tests.fakes.transport import FakeTransport

HOST = "http://127.0.0.1:9/v1"  # never contacted: the fake transport answers
DIRECT = Target(json_path="config")


def call(headers: dict[str, str] | None = None, body: dict[str, Any] | None = None, *,
         endpoint: str = "chat") -> Call:
    """A unified-endpoint request, as server/routes.py builds it."""
    ctx = parse_request_headers(CIMultiDictProxy(CIMultiDict(headers or {})))
    body = body if body is not None else {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    slug, model = split_model_slug(body.get("model"))
    return Call(ctx, endpoint, "POST", "", orjson.dumps(body), body, stream=body.get("stream") is True,
                pathname=f"/v1/{endpoint}", model=model, model_slug=slug)


def config(value: dict[str, Any]) -> Node:
    guard = Guard(GuardPolicy.from_settings(Settings()))
    return parse_config(orjson.dumps(value), known_providers=registry.PROVIDERS.keys(), check_host=guard.check_url)


@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def dispatcher(transport: FakeTransport, *, clock: Clock | None = None, rng: float | Callable[[], float] = 0.5,
               catalog: Any = None, board: LoadBoard | None = None, limits: Any = None) -> Dispatcher:
    clock = clock or Clock()
    builder = RequestBuilder(Guard(GuardPolicy.from_settings(Settings())), catalog=catalog)
    draw = rng if callable(rng) else (lambda: rng)
    return Dispatcher(transport, builder, breaker=CircuitBreaker(clock), board=board if board is not None else LoadBoard(clock),
                      sleep=clock.sleep, rng=draw, clock=clock, wall_clock=lambda: 1_700_000_000.0,
                      limits=limits)
