"""Start each hop (upstreams, floors, minimal hops, sluicegate, peers) and wait until it serves.

A launcher returns a Running hop (its Target, its process, startup time, idle RSS) or raises
NotReady with the reason, which the run records as "missing".
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import nginx_conf, targets
from bench.install import Install
from bench.procs import Child, Supervisor, free_port, rss_bytes
from bench.ready import NotReady, wait_first_200
from bench.targets import Shapes, Target, Upstreams

EXPECT = nginx_conf.STATIC_ID.encode()
BENCH_DIR = Path(__file__).resolve().parent
# Variables that would change a hop's defaults; each hop starts from the environment without them.
FOREIGN_ENV_PREFIXES = ("SLUICEGATE_", "LITELLM_", "PORTKEY_")
FOREIGN_ENV = {"TRUSTED_CUSTOM_HOSTS", "PORT", "NODE_ENV", "DATABASE_URL", "NODE_OPTIONS"}


@dataclass
class Running:
    target: Target
    child: Child | None
    startup_s: float | None
    idle_rss: int | None
    version: str = ""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in FOREIGN_ENV and not k.startswith(FOREIGN_ENV_PREFIXES)}
    env.update(extra)
    return env


def _settled(sup: Supervisor, target: Target, child: Child, timeout_s: float, settle_s: float,
             version: str) -> Running:
    try:
        startup = wait_first_200(target.endpoints["static"], child, timeout_s, EXPECT)
    except NotReady:
        sup.stop(child)  # a hop that never came up must not eat CPU during the others' runs
        raise
    time.sleep(settle_s)  # let start-up allocations and lazy imports finish before "idle"
    return Running(target, child, startup, rss_bytes(child.pid), version)


def start_nginx(sup: Supervisor, name: str, prefix: Path, conf_text: str) -> Child:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(prefix / "tmp" / sub, 0o777)  # nginx workers may drop to `nobody` when run as root
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian puts it in sbin, off some PATHs
    return sup.start(name, [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                     env=clean_env())


def start_upstreams(sup: Supervisor, work: Path, python: str) -> Upstreams:
    """nginx static JSON + the paced SSE upstream; both must answer before anything else starts."""
    ups = Upstreams(static_port=free_port(), sse_port=free_port())
    static = start_nginx(sup, "upstream-static", work / "nginx-static",
                         nginx_conf.static_upstream(str(work / "nginx-static"), ups.static_port))
    sse = sup.start("upstream-sse", [python, "-m", "bench.sse_upstream", "--port", str(ups.sse_port)],
                    env=clean_env(PYTHONPATH=str(BENCH_DIR.parent)))
    direct = targets.direct(ups, Shapes(stream="sse-1x0"))
    wait_first_200(direct.endpoints["static"], static, 20, EXPECT)
    wait_first_200(direct.endpoints["stream"], sse, 20, b"[DONE]")
    return ups


def start_nginx_floor(sup: Supervisor, work: Path, ups: Upstreams, shapes: Shapes, settle_s: float) -> Running:
    listen_static, listen_sse = free_port(), free_port()
    prefix = work / "nginx-floor"
    text = nginx_conf.proxy_floor(str(prefix), ups.static_port, ups.sse_port, listen_static, listen_sse)
    child = start_nginx(sup, "nginx", prefix, text)
    return _settled(sup, targets.nginx_floor(listen_static, listen_sse, shapes), child, 20, settle_s, "")


def start_sluicegate(sup: Supervisor, work: Path, ups: Upstreams, shapes: Shapes, cmd: Sequence[str],
                     workers: int, name: str, settle_s: float, version: str,
                     gateway_key: str | None = None, env: dict[str, str] | None = None) -> Running:
    """sluicegate with its real defaults: its own data dir (so its SQLite log store), logging on.
    ``gateway_key``: an API key made in that data dir beforehand; every request then carries it.
    ``env``: extra settings (the "limits on" scenario's SLUICEGATE_REDIS_URL)."""
    port = free_port()
    data_dir = work / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    child = sup.start(name, argv, env=clean_env(SLUICEGATE_DATA_DIR=str(data_dir), **(env or {})))
    target = targets.portkey_style(name, "gateway", port, ups, shapes, gateway_key)
    return _settled(sup, target, child, 30, settle_s, version)


def start_cluster(sup: Supervisor, work: Path, ups: Upstreams, shapes: Shapes, python: str, replicas: int,
                  name: str, settle_s: float, version: str) -> Running:
    """`make cluster`'s topology (demo/cluster.py): ``replicas`` sluicegates on a fresh PostgreSQL database
    of their own (dropped when the cluster stops) and the local Redis, behind one nginx worker. ``python``
    is the one sluicegate runs on; the idle RSS is summed over nginx and every replica."""
    port, ready = free_port(), work / f"{name}-ready.json"
    argv = [python, "-m", "demo.cluster", "--replicas", str(replicas), "--port", str(port), "--database",
            f"sluicegate_bench_{uuid.uuid4().hex[:10]}", "--fresh", "--drop-on-exit", "--state-dir",
            str(work / f"{name}-state"), "--ready-file", str(ready), "--minutes", "60"]
    child = sup.start(name, argv, env=clean_env(), cwd=BENCH_DIR.parent)
    target = targets.portkey_style(name, "gateway", port, ups, shapes)
    running = _settled(sup, target, child, 180, settle_s, version)
    try:
        layout = json.loads(_written(ready, child, 30))
    except NotReady:
        sup.stop(child)
        raise
    leaders = [layout["nginx_pid"], *(replica["pid"] for replica in layout["replicas"])]
    running.idle_rss = sum(rss_bytes(pid) for pid in leaders)
    return running


def _written(path: Path, child: Child, timeout_s: float) -> str:
    """The file's text once ``child`` has written it: nginx answers as soon as the replicas do, a moment before
    demo.cluster writes its ready file."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if not child.alive() or time.monotonic() > deadline:
            raise NotReady(f"{path.name} not written within {timeout_s:.0f} s: {child.log_tail(5)}")
        time.sleep(0.05)
    return path.read_text()


# The minimal hops (issue 14's reference rows): name -> (server, module in bench/floor/, the packages
# it runs on). Granian serves the module's `app` (RSGI, or ASGI for "granian-asgi"); the aiohttp ones
# are scripts with a --port.
MINIMAL_HOPS = {
    "min-granian-pyreqwest": ("granian", "bench.floor.granian_pyreqwest", ("granian", "pyreqwest", "orjson")),
    "min-aiohttp-pyreqwest": ("aiohttp", "bench.floor.aiohttp_pyreqwest", ("aiohttp", "pyreqwest", "orjson")),
    "min-granian-aiohttp": ("granian", "bench.floor.granian_aiohttp", ("granian", "aiohttp", "orjson")),
    "min-aiohttp-aiohttp": ("aiohttp", "bench.floor.aiohttp_aiohttp", ("aiohttp", "uvloop", "orjson")),
    "min-granian-asgi-pyreqwest": ("granian-asgi", "bench.floor.granian_asgi_pyreqwest",
                                   ("granian", "pyreqwest", "orjson")),
}


def minimal_argv(name: str, python: str, port: int) -> list[str]:
    server, module, _packages = MINIMAL_HOPS[name]
    if server == "aiohttp":
        return [python, "-m", module, "--port", str(port)]
    # One worker, uvloop, HTTP/1.1, no websockets, no access log: the same shape as sluicegate's default.
    interface = "asgi" if server == "granian-asgi" else "rsgi"
    return [python, "-m", "granian", "--interface", interface, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning",
            f"{module}:app"]


def minimal_version(name: str, installed: str) -> str:
    """The installed versions (install.floor's "granian 2.8.9, …") of just the packages this hop runs on."""
    wanted = MINIMAL_HOPS[name][2]
    return ", ".join(item for item in installed.split(", ") if item.split(" ")[0] in wanted)


def start_minimal(sup: Supervisor, install: Install, name: str, ups: Upstreams, shapes: Shapes,
                  settle_s: float) -> Running:
    """One minimal hop, on the floor venv's Python, importing bench.floor from this repository."""
    port = free_port()
    argv = minimal_argv(name, str(install.home / "bin" / "python"), port)
    child = sup.start(name, argv, env=clean_env(PYTHONPATH=str(BENCH_DIR.parent)))
    target = targets.minimal_hop(name, port, ups, shapes)
    return _settled(sup, target, child, 30, settle_s, minimal_version(name, install.version))


def start_portkey(sup: Supervisor, install: Install, ups: Upstreams, shapes: Shapes, settle_s: float,
                  node: str = "node") -> Running:
    """Portkey's Node gateway, headless (no UI, no log stream), bound to loopback by a preload shim."""
    port = free_port()
    argv = [node, "--require", str(BENCH_DIR / "loopback.cjs"),
            str(install.home / "build" / "start-server.js"), f"--port={port}", "--headless"]
    child = sup.start("portkey", argv, env=clean_env())
    target = targets.portkey_style("portkey", "peer", port, ups, shapes)
    return _settled(sup, target, child, 60, settle_s, install.version)


def start_litellm(sup: Supervisor, install: Install, work: Path, ups: Upstreams, shapes: Shapes,
                  settle_s: float) -> Running:
    """LiteLLM's proxy: one worker, no database, no callbacks, the cost map read from the package."""
    port = free_port()
    config = work / "litellm.yaml"
    config.write_text(targets.litellm_config(ups, shapes))
    argv = [str(install.home / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", "1", "--telemetry", "False"]
    # No master key is the lightest auth path; since 1.108 the proxy refuses that unless told the
    # operator means it (safe here: it listens on 127.0.0.1 and lives for one run).
    env = clean_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", NO_DOCS="True",
                    LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true")
    child = sup.start("litellm", argv, env=env)
    return _settled(sup, targets.litellm(port, shapes), child, 240, settle_s, install.version)


__all__ = [
    "NotReady",
    "Running",
    "start_cluster",
    "start_litellm",
    "start_minimal",
    "start_nginx_floor",
    "start_portkey",
    "start_sluicegate",
    "start_upstreams",
]
