"""`make demo`: a real private LLM behind sluicegate on this machine, with examples to paste.

    python -m demo [--port 8787] [--minutes 120] [--check]

Builds llama.cpp's server once (cached, see build.py), starts two instances of it with SmolLM2-135M, a
`sluicegate serve` in front, registers the model in the Model Catalog as @local-smollm2 when the
gateway has a catalog, and prints curl / portkey-ai / openai examples. Ctrl-C (or --minutes) stops
everything it started. `--check` stops after the first round of requests: the test suite runs that.
Everything binds 127.0.0.1. The gateway (gateway.py) points every commercial provider's default URL at
a dead loopback port: nothing the demo does leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from demo import probes
from demo.build import build, layout
from demo.examples import DemoInfo, catalog_examples, config_examples, direct_examples, write_configs
from demo.gateway import DemoGateway
from demo.server import MODEL_ALIAS, LlamaServer, free_port, port_free

SLUG = "local-smollm2"


def say(text: str) -> None:
    print(text, flush=True)


def _register(slug: str, host: str, data_dir: Path) -> bool:
    """With the CLI, as a user would; it shares the gateway's data dir (and so its database)."""
    env = {**os.environ, "SLUICEGATE_DATA_DIR": str(data_dir)}
    result = subprocess.run([sys.executable, "-m", "sluicegate", "providers", "add", slug, "--spec", "openai",
                             "--custom-host", host, "--model", MODEL_ALIAS], env=env, capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        say(f"✗ `sluicegate providers add {slug}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.returncode == 0


def _chat(gateway: str, headers: dict, content: str = "Say hello in five words.") -> tuple[int, dict, dict]:
    body = json.dumps({"model": MODEL_ALIAS, "max_tokens": 24,
                       "messages": [{"role": "user", "content": content}]}).encode()
    request = urllib.request.Request(f"{gateway}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def _first_round(info: DemoInfo) -> bool:
    """One request of each kind the demo offers; True if every one that should work did."""
    started = time.monotonic()
    status, _, body = _chat(info.gateway, {"x-portkey-provider": "openai", "x-portkey-custom-host": info.model_a})
    ok = status == 200
    reply = body["choices"][0]["message"]["content"].strip() if ok else body
    say(f"✓ direct: {reply!r} ({time.monotonic() - started:.2f} s)" if ok else f"✗ direct: {status} {reply}")
    if info.slug:
        for _ in range(20):  # the gateway polls the catalog every ~0.5 s: a new slug may need a moment
            status, _, _ = _chat(info.gateway, {"x-portkey-provider": f"@{info.slug}"}, "Hi")
            if status != 400:
                break
            time.sleep(0.25)
        ok &= status == 200
        say(f"{'✓' if status == 200 else '✗'} catalog @{info.slug}: HTTP {status}")
    if info.configs:
        ok &= _show_configs(info)
    return ok


def _used_target(headers: dict) -> str | None:
    return {k.lower(): v for k, v in headers.items()}.get("x-portkey-last-used-option-index")


def _show_configs(info: DemoInfo) -> bool:
    status, headers, _ = _chat(info.gateway, {"x-portkey-config": info.fallback_json.read_text()}, "Hi")
    ok = status == 200
    say(f"{'✓' if ok else '✗'} fallback: HTTP {status}, answered by {_used_target(headers)} "
        "(targets[0] is the dead one)")
    picks = []
    for _ in range(6):  # bounded: enough to see both instances answer, most of the time
        code, headers, _ = _chat(info.gateway, {"x-portkey-config": info.loadbalance_json.read_text()}, "Hi")
        ok &= code == 200
        picks.append(_used_target(headers) if code == 200 else f"HTTP {code}")
    say(f"{'✓' if ok else '✗'} load balance over the two instances, six calls: {', '.join(picks)}")
    return ok


def _wait(children: dict, minutes: float) -> str:
    """Until Ctrl-C, a child's death, or the time limit (the demo never outlives a forgotten terminal)."""
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        for name, alive in children.items():
            if not alive():
                return f"{name} exited on its own; see its log"
        time.sleep(0.5)
    return f"stopping after {minutes:g} minutes (--minutes)"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _start_gateway(work: Path, port: int, stack: ExitStack, *, chosen: bool) -> DemoGateway:
    """The gateway on ``port``; a port the demo picked itself and another process took before the gateway
    could bind it (it was free when picked, not reserved) is traded for another, twice at most."""
    for attempt in range(3):
        gateway = DemoGateway(work, port=port)
        stack.callback(gateway.stop)
        try:
            return gateway.start()
        except RuntimeError:
            taken = "address already in use" in gateway.log_path.read_text(errors="replace").lower()
            if chosen or not taken or attempt == 2:
                raise
            port = free_port()
    raise AssertionError("unreachable")


def run(args: argparse.Namespace, stack: ExitStack) -> int:
    say("→ llama.cpp server + SmolLM2-135M-Instruct (built once, then cached; the first build takes minutes)")
    record = build(layout())
    work = Path(tempfile.mkdtemp(prefix="sluicegate-demo-"))
    stack.callback(shutil.rmtree, work, ignore_errors=True)
    servers = []
    for name in ("a", "b"):
        server = LlamaServer(record["python"], record["gguf"], work / f"llama-{name}.log")
        stack.callback(server.stop)
        servers.append(server.start())
    dead = f"http://127.0.0.1:{free_port()}/v1"
    say(f"→ model servers: {servers[0].v1} and {servers[1].v1} (model name {MODEL_ALIAS!r})")
    port = args.port if args.port and port_free(args.port) else free_port()
    if args.port and port != args.port:
        say(f"  port {args.port} is busy: the gateway takes {port} instead")
    gateway = _start_gateway(work, port, stack, chosen=port == args.port)
    # The catalog CLI writes to the data dir; the running gateway picks the change up (it polls).
    slug = SLUG if probes.has_catalog(gateway.url) and _register(SLUG, servers[0].v1, work) else None
    say(f"→ sluicegate: {gateway.url}  (its log: {gateway.log_path})")
    fallback, loadbalance = write_configs(work, servers[0].v1, servers[1].v1, dead)
    info = DemoInfo(gateway.url, servers[0].v1, servers[1].v1, dead, MODEL_ALIAS, slug, fallback, loadbalance,
                    probes.has_configs(gateway.url))
    ok = _first_round(info)
    say("\n" + "\n".join((direct_examples(info), catalog_examples(info), config_examples(info))))
    if args.check:
        return 0 if ok else 1
    say("Everything above runs until Ctrl-C.")
    children = {"the gateway": lambda: gateway.proc is not None and gateway.proc.poll() is None}
    children.update({f"model server {s.v1}": s.alive for s in servers})
    say(_wait(children, args.minutes))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SLUICEGATE_PORT", 8787)),
                        help="gateway port (default 8787; 0 or busy: any free port)")
    parser.add_argument("--minutes", type=float, default=120, help="stop by itself after this long")
    parser.add_argument("--check", action="store_true", help="start, run one round of requests, stop")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` stops it as cleanly as Ctrl-C does
    with ExitStack() as stack:  # unwinds in reverse: gateway, model servers, then the work dir
        try:
            return run(args, stack)
        except KeyboardInterrupt:
            say("\n→ stopping the gateway and the model servers")
            return 0
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave servers behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
