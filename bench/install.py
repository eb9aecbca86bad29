"""Install the peers in their own environments under bench/.cache/, never in the project's venv.

Each installer is idempotent (a stamp file marks a finished install) and returns an Install that says
either where the peer is and which version, or why it is missing. A failed install is reported in the
results as missing with its reason; it never stops the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Install:
    name: str
    ok: bool
    version: str = ""
    home: Path | None = None
    reason: str = ""


def _run(argv: list[str], log: Path, cwd: Path | None = None) -> bool:
    with open(log, "ab") as out:
        try:
            done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.write(f"\n{exc}\n".encode())
            return False
    return done.returncode == 0


def litellm(cache: Path, spec: str = "litellm[proxy]") -> Install:
    """`pip install 'litellm[proxy]'` into bench/.cache/litellm-venv (the newest the resolver picks)."""
    home = cache / "litellm-venv"
    python = home / "bin" / "python"
    stamp = home / ".bench-installed"
    log = cache / "litellm-install.log"
    if not stamp.exists():
        cache.mkdir(parents=True, exist_ok=True)
        if not python.exists() and not _run([sys.executable, "-m", "venv", str(home)], log):
            return Install("litellm", False, reason=f"venv creation failed, see {log}")
        if not _run([str(python), "-m", "pip", "install", "--quiet", spec], log):
            return Install("litellm", False, reason=f"pip install {spec!r} failed, see {log}")
        stamp.write_text(spec)
    version = _python_dist_version(python, "litellm")
    if not version:
        return Install("litellm", False, reason="installed, but `import litellm` metadata is missing")
    return Install("litellm", True, version=version, home=home)


FLOOR_REQUIREMENTS = Path(__file__).resolve().parent / "floor" / "requirements.txt"


def floor(cache: Path, requirements: Path = FLOOR_REQUIREMENTS) -> Install:
    """The minimal hops' packages (granian, pyreqwest, aiohttp, orjson, uvloop), pinned, into
    bench/.cache/floor-venv; reinstalled when the pins change. `version` lists what was installed."""
    home = cache / "floor-venv"
    python = home / "bin" / "python"
    stamp = home / ".bench-installed"
    log = cache / "floor-install.log"
    wanted = requirements.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        cache.mkdir(parents=True, exist_ok=True)
        if not python.exists() and not _run([sys.executable, "-m", "venv", str(home)], log):
            return Install("floor", False, reason=f"venv creation failed, see {log}")
        if not _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], log):
            return Install("floor", False, reason=f"pip install -r {requirements.name} failed, see {log}")
        stamp.write_text(wanted)
    versions = [f"{dist} {_python_dist_version(python, dist)}" for dist in FLOOR_DISTS]
    if any(v.endswith(" ") for v in versions):
        return Install("floor", False, reason=f"installed, but some metadata is missing: {versions}")
    return Install("floor", True, version=", ".join(versions), home=home)


FLOOR_DISTS = ("granian", "pyreqwest", "aiohttp", "orjson", "uvloop")


def _python_dist_version(python: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


# Portkey's gateway declares `@hono/node-server ^1.3.3`, so npm picks the newest 1.x; from 1.14 on, that
# server hands the upstream fetch() Response (immutable headers) to Portkey's updateHeaders, and every
# streaming request answers 500 "Something went wrong" (TypeError: immutable; cf. Portkey-AI/gateway
# issues 1389 and 1550). 1.13.8 is the newest release with which both kinds of request work here.
PORTKEY_OVERRIDES = {"@hono/node-server": "1.13.8"}


def portkey_manifest(spec: str) -> str:
    """package.json for the bench's private Portkey install: the gateway plus the override above."""
    return json.dumps({"private": True, "dependencies": {"@portkey-ai/gateway": spec},
                       "overrides": PORTKEY_OVERRIDES}, indent=2) + "\n"


def portkey(cache: Path, spec: str = "latest") -> Install:
    """`npm install @portkey-ai/gateway` into bench/.cache/portkey (run with the machine's Node)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return Install("portkey", False, reason="node/npm not found on PATH")
    home = cache / "portkey"
    package = home / "node_modules" / "@portkey-ai" / "gateway"
    manifest, log = home / "package.json", cache / "portkey-install.log"
    wanted = portkey_manifest(spec)
    if not (package / "package.json").exists() or not manifest.exists() or manifest.read_text() != wanted:
        home.mkdir(parents=True, exist_ok=True)
        manifest.write_text(wanted)
        if not _run(["npm", "install", "--no-audit", "--no-fund"], log, cwd=home):
            return Install("portkey", False, reason=f"npm install @portkey-ai/gateway@{spec} failed, see {log}")
    try:
        version = json.loads((package / "package.json").read_text())["version"]
    except (OSError, KeyError, ValueError):
        return Install("portkey", False, reason="installed, but its package.json is unreadable")
    pins = ", ".join(f"{name} {pin}" for name, pin in PORTKEY_OVERRIDES.items())
    return Install("portkey", True, version=f"{version} (with {pins})", home=package)
