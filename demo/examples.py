"""The copy-paste examples `make demo` prints, filled in with the running demo's addresses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoInfo:
    gateway: str  # http://127.0.0.1:8787
    model_a: str  # http://127.0.0.1:PORT/v1
    model_b: str
    dead: str
    model: str
    slug: str | None  # "local-smollm2" once the catalog registered it, else None
    fallback_json: Path
    loadbalance_json: Path
    configs: bool


def direct_examples(d: DemoInfo) -> str:
    return f"""\
── curl (direct integration: provider + custom host headers) ──
curl {d.gateway}/v1/chat/completions \\
  -H "Content-Type: application/json" \\
  -H "x-portkey-provider: openai" \\
  -H "x-portkey-custom-host: {d.model_a}" \\
  -d '{{"model": "{d.model}", "max_tokens": 64, "messages": [{{"role": "user", "content": "Hello!"}}]}}'

── portkey-ai (pip install portkey-ai) ──
from portkey_ai import Portkey
portkey = Portkey(base_url="{d.gateway}/v1", provider="openai", custom_host="{d.model_a}")
reply = portkey.chat.completions.create(
    model="{d.model}", max_tokens=64, messages=[{{"role": "user", "content": "Hello!"}}])
print(reply.choices[0].message.content)

── openai (pip install openai), streaming ──
from openai import OpenAI
client = OpenAI(base_url="{d.gateway}/v1", api_key="unused",
                default_headers={{"x-portkey-provider": "openai", "x-portkey-custom-host": "{d.model_a}"}})
for chunk in client.chat.completions.create(model="{d.model}", max_tokens=64, stream=True,
                                            messages=[{{"role": "user", "content": "Tell me a joke."}}]):
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
"""


def catalog_examples(d: DemoInfo) -> str:
    if not d.slug:
        return ("── Model Catalog: this gateway does not serve it yet. Once it does (`sluicegate providers` and\n"
                f"   @slug resolution), the demo registers the model as @local-smollm2 and shows\n"
                f"   `model=\"@local-smollm2/{d.model}\"` here. ──\n")
    return f"""\
── Model Catalog: the model is registered as @{d.slug} ──
curl {d.gateway}/v1/chat/completions -H "Content-Type: application/json" \\
  -d '{{"model": "@{d.slug}/{d.model}", "max_tokens": 64, "messages": [{{"role": "user", "content": "Hi"}}]}}'

from portkey_ai import Portkey
portkey = Portkey(base_url="{d.gateway}/v1", provider="@{d.slug}")
print(portkey.chat.completions.create(model="{d.model}", max_tokens=64,
      messages=[{{"role": "user", "content": "Hi"}}]).choices[0].message.content)
"""


def config_examples(d: DemoInfo) -> str:
    state = ("" if d.configs else
             "   (Gateway Configs are not in this gateway yet: these answer 400 until the config branch is merged)\n")
    return f"""\
── Gateway Configs: fallback from a dead server ({d.dead}) to a live one, and load balancing ──
{state}curl {d.gateway}/v1/chat/completions -H "Content-Type: application/json" \\
  -H "x-portkey-config: $(cat {d.fallback_json})" -si \\
  -d '{{"model": "{d.model}", "max_tokens": 16, "messages": [{{"role": "user", "content": "Hi"}}]}}' \\
  | grep -i x-portkey-last-used-option-index      # config.targets[1]: the live one answered

from openai import OpenAI      # portkey-ai: Portkey(base_url=…, config=json.load(open(…)))
client = OpenAI(base_url="{d.gateway}/v1", api_key="unused",
                default_headers={{"x-portkey-config": open("{d.loadbalance_json}").read()}})
for _ in range(6):   # spread over {d.model_a} and {d.model_b}
    raw = client.chat.completions.with_raw_response.create(
        model="{d.model}", max_tokens=4, messages=[{{"role": "user", "content": "Hi"}}])
    print(raw.headers["x-portkey-last-used-option-index"])
"""


def write_configs(directory: Path, d_a: str, d_b: str, dead: str) -> tuple[Path, Path]:
    fallback = {"strategy": {"mode": "fallback"},
                "targets": [{"provider": "openai", "custom_host": dead},
                            {"provider": "openai", "custom_host": d_a}]}
    loadbalance = {"strategy": {"mode": "loadbalance"},
                   "targets": [{"provider": "openai", "custom_host": d_a, "weight": 1},
                               {"provider": "openai", "custom_host": d_b, "weight": 1}]}
    paths = directory / "fallback.json", directory / "loadbalance.json"
    for path, config in zip(paths, (fallback, loadbalance), strict=True):
        path.write_text(json.dumps(config))
    return paths
