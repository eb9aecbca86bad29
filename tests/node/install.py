"""Install the Node SDKs the seed's NodeJS snippets use, outside the clone, cached per pinned version.

`python3 -m tests.node.install` (what `.ci/run` calls) installs them into
~/.cache/sluicegate/node-sdk/<pins>/ (override with SLUICEGATE_NODE_SDK_CACHE); the test fixture calls the
same function, so a plain `make test` installs on demand too. A finished install is marked by a stamp
file and reused. Nothing goes into the repository or into the project's venv.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The versions the seed's snippets are tested with (the issue's: portkey-ai 3.1.0; openai as the Node
# SDK itself depends on). A new pin is a new cache directory, so an old install is never half-reused.
PINS = {"portkey-ai": "3.1.0", "openai": "6.8.1"}
INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True)
class NodeSdks:
    ok: bool
    node_modules: Path | None = None
    reason: str = ""


def cache_root() -> Path:
    default = Path.home() / ".cache" / "sluicegate" / "node-sdk"
    return Path(os.environ.get("SLUICEGATE_NODE_SDK_CACHE") or default)


def home_for(pins: dict[str, str]) -> Path:
    return cache_root() / "-".join(f"{name}@{version}" for name, version in sorted(pins.items()))


def ensure(pins: dict[str, str] = PINS) -> NodeSdks:
    """The installed node_modules, or why there is none (node/npm missing, or the install failed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return NodeSdks(False, reason="node/npm not found on PATH (install Node.js 18+ to run tests/node)")
    home = home_for(pins)
    home.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may both get here on a fresh machine: one installs, the other waits for it.
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(home, pins)


def _install(home: Path, pins: dict[str, str]) -> NodeSdks:
    stamp, log = home / ".installed", home / "install.log"
    manifest = json.dumps({"private": True, "dependencies": pins}, indent=2) + "\n"
    if not stamp.exists() or stamp.read_text() != manifest:
        (home / "package.json").write_text(manifest)
        with open(log, "ab") as out:
            try:
                done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-save"], cwd=home,
                                      stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=INSTALL_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return NodeSdks(False, reason=f"npm install failed ({exc}), see {log}")
        if done.returncode != 0:
            return NodeSdks(False, reason=f"npm install failed (exit {done.returncode}), see {log}")
        stamp.write_text(manifest)
    return NodeSdks(True, node_modules=home / "node_modules")


def main() -> int:
    found = ensure()
    print(f"node SDKs: {found.node_modules}" if found.ok else f"node SDKs missing: {found.reason}")
    return 0 if found.ok or "not found on PATH" in found.reason else 1


if __name__ == "__main__":
    sys.exit(main())
