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


def _python_dist_version(python: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def portkey(cache: Path, spec: str = "@portkey-ai/gateway") -> Install:
    """`npm install @portkey-ai/gateway` into bench/.cache/portkey (Node from the machine)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return Install("portkey", False, reason="node/npm not found on PATH")
    home = cache / "portkey"
    package = home / "node_modules" / "@portkey-ai" / "gateway"
    log = cache / "portkey-install.log"
    if not (package / "package.json").exists():
        home.mkdir(parents=True, exist_ok=True)
        argv = ["npm", "install", "--no-audit", "--no-fund", "--no-save", spec]
        if not _run(argv, log, cwd=home):
            return Install("portkey", False, reason=f"npm install {spec} failed, see {log}")
    try:
        version = json.loads((package / "package.json").read_text())["version"]
    except (OSError, KeyError, ValueError):
        return Install("portkey", False, reason="installed, but its package.json is unreadable")
    return Install("portkey", True, version=version, home=package)
