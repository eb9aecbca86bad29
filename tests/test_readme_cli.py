"""A newcomer follows the README alone: its CLI lines run as written (from where `make serve` keeps the
store), and it says where the admin token is and how to reset it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_cli_lines() -> list[list[str]]:
    return [shlex.split(line) for line in re.findall(r"^\.venv/bin/sluicegate .+$", README, re.MULTILINE)]


def test_readme_tells_how_to_run_the_cli_and_find_the_token() -> None:
    for needed in (".venv/bin/sluicegate", "admin-token reset", "SLUICEGATE_ADMIN_TOKEN", "SLUICEGATE_DATA_DIR",
                   "--allow-entry", "TRUSTED_CUSTOM_HOSTS", "Admin token (shown once, keep it)"):
        assert needed in README, needed
    announced = (ROOT / "src" / "sluicegate" / "access" / "admin_token.py").read_text()  # announce_admin_token
    assert "Admin token (shown once, keep it)" in announced  # the line the README tells you to look for
    assert {tuple(argv[1:3]) for argv in readme_cli_lines()} >= {("providers", "add"), ("admin-token", "reset")}


def test_readme_cli_lines_run_as_written(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    (clone / ".sluicegate").mkdir(parents=True)  # what `make serve` leaves at the repository root
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    for argv in readme_cli_lines():
        done = subprocess.run([sys.executable, "-m", "sluicegate", *argv[1:]], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stderr}"
        assert done.stderr == "", done.stderr
    listed = subprocess.run([sys.executable, "-m", "sluicegate", "providers", "list"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "@my-llm" in listed.stdout
