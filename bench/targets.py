"""What a request to each target looks like. Pure: ports and names in, URLs, headers and bodies out.

A target answers four kinds of request: `static` (non-streaming, to the nginx static upstream),
`stream` (the paced SSE upstream, fast shape), `hold` (the SSE upstream, slow shape, to keep many
streams open at once) and `ttft` (two chunks: many short streams give a time-to-first-token p99
worth the name). Gateways choose the upstream from headers (Portkey's wire format) or, for
LiteLLM, from the model alias in its config; nginx and direct need one port per upstream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

KINDS = ("static", "stream", "hold", "ttft")
API_KEY = "sk-bench-not-a-secret"
CATALOG_SLUG = "@bench-static"  # the provider slug the catalog scenario creates, pointing at nginx


@dataclass(frozen=True)
class Upstreams:
    static_port: int
    sse_port: int

    def base(self, kind: str, prefix: str = "") -> str:
        port = self.static_port if kind == "static" else self.sse_port
        return f"http://127.0.0.1:{port}{prefix}/v1"


@dataclass(frozen=True)
class Shapes:
    """The SSE model names (which carry their pacing) for the `stream` and `hold` kinds."""
    stream: str = "sse-64x20"
    hold: str = "sse-20x500"
    ttft: str = "sse-2x5"

    def model(self, kind: str) -> str:
        return {"static": "bench-static", "stream": self.stream, "hold": self.hold, "ttft": self.ttft}[kind]


@dataclass(frozen=True)
class Endpoint:
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Target:
    """A running (or runnable) hop. `endpoints` maps a request kind, and optional variants such as
    `fallback3`, to the exact request to send."""
    name: str
    role: str  # direct | floor | minimal | gateway | peer
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def _plain_headers() -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}


def direct(ups: Upstreams, shapes: Shapes) -> Target:
    endpoints = {kind: Endpoint(f"{ups.base(kind)}/chat/completions", _plain_headers(),
                                chat_body(shapes.model(kind), kind != "static")) for kind in KINDS}
    return Target("direct", "direct", endpoints)


def nginx_floor(static_listen: int, sse_listen: int, shapes: Shapes) -> Target:
    port = {kind: static_listen if kind == "static" else sse_listen for kind in KINDS}
    endpoints = {kind: Endpoint(f"http://127.0.0.1:{port[kind]}/v1/chat/completions", _plain_headers(),
                                chat_body(shapes.model(kind), kind != "static")) for kind in KINDS}
    return Target("nginx", "floor", endpoints)


def minimal_hop(name: str, port: int, ups: Upstreams, shapes: Shapes) -> Target:
    """A minimal hop (bench/floor/): the upstream's origin rides in a header, the path is kept."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    endpoints = {}
    for kind in KINDS:
        origin = ups.base(kind).removesuffix("/v1")
        headers = _plain_headers() | {"x-bench-upstream": origin}
        endpoints[kind] = Endpoint(url, headers, chat_body(shapes.model(kind), kind != "static"))
    return Target(name, "minimal", endpoints)


def portkey_style(name: str, role: str, port: int, ups: Upstreams, shapes: Shapes) -> Target:
    """sluicegate and Portkey's gateway: the provider and the upstream ride in x-portkey-* headers."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    endpoints = {}
    for kind in KINDS:
        headers = _plain_headers() | {"x-portkey-provider": "openai", "x-portkey-custom-host": ups.base(kind)}
        endpoints[kind] = Endpoint(url, headers, chat_body(shapes.model(kind), kind != "static"))
    endpoints["fallback3"] = Endpoint(url, _plain_headers() | {"x-portkey-config": fallback_config(ups)},
                                      chat_body(shapes.model("static"), False))
    # Model Catalog: the provider (and its host and key) come from a stored slug, named in the model.
    endpoints["catalog"] = Endpoint(url, {"content-type": "application/json"},
                                    chat_body(f"{CATALOG_SLUG}/{shapes.model('static')}", False))
    return Target(name, role, endpoints)


def fallback_config(ups: Upstreams) -> str:
    """Three targets: two that answer 503 (nginx's /fail/ location), then the static upstream."""
    def target(prefix: str) -> dict[str, str]:
        return {"provider": "openai", "api_key": API_KEY, "custom_host": ups.base("static", prefix)}
    config = {"strategy": {"mode": "fallback"}, "targets": [target("/fail"), target("/fail"), target("")]}
    return json.dumps(config, separators=(",", ":"))


def litellm(port: int, shapes: Shapes) -> Target:
    """LiteLLM routes by model alias (see litellm_config), so the body's model picks the upstream."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    endpoints = {kind: Endpoint(url, _plain_headers(), chat_body(shapes.model(kind), kind != "static"))
                 for kind in KINDS}
    return Target("litellm", "peer", endpoints)


def litellm_config(ups: Upstreams, shapes: Shapes) -> str:
    """LiteLLM's proxy config (YAML is a superset of JSON, so JSON keeps this dependency-free)."""
    models = [{"model_name": shapes.model(kind),
               "litellm_params": {"model": f"openai/{shapes.model(kind)}", "api_base": ups.base(kind),
                                  "api_key": API_KEY}} for kind in KINDS]
    config = {
        "model_list": models,
        # Lightest setting: no callbacks, no spend logs, no telemetry, nothing that phones home.
        "litellm_settings": {"telemetry": False, "callbacks": [], "success_callback": [],
                             "failure_callback": [], "drop_params": True, "turn_off_message_logging": True},
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True},
    }
    return json.dumps(config, indent=2)
