"""What the figures were measured on: machine, load, tool versions. Read-only look-ups."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def _first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_at_start": os.getloadavg(),
    }


def tool_versions(node: str = "node") -> dict:
    import aiohttp
    return {
        "python_bench": sys.version.split()[0],
        "aiohttp_bench": aiohttp.__version__,
        "nginx": _first_line([shutil.which("nginx") or "/usr/sbin/nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": _first_line(["wrk", "-v"]).split(" Copyright")[0],
        "node": _first_line([node, "--version"]),
    }


def sluicegate_version(cmd: Sequence[str]) -> str:
    """Package version and, when its source is a git checkout, the commit it was run from."""
    if len(cmd) >= 3 and cmd[1] == "-m":
        code = ("import importlib.metadata as m, sluicegate, os; "
                "print(m.version('sluicegate'), os.path.dirname(sluicegate.__file__))")
        line = _first_line([cmd[0], "-c", code])
        if line and " " in line:
            version, where = line.split(" ", 1)
            commit = _first_line(["git", "-C", where, "rev-parse", "--short", "HEAD"])
            return f"{version} ({commit})" if commit and "fatal" not in commit else version
    return _first_line([*cmd, "--version"])


def repo_commit(repo: Path) -> str:
    return _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
