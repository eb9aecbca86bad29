"""A newcomer's first CLI commands, as real ``python -m sluicegate`` processes (issue: first-run friction).

The CLI must work on the gateway's own store from anywhere inside the clone, or refuse saying where it
looked; it must check a custom host by the same rule as the admin API and name the fix; and it prints its
result, not Alembic's progress.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def sluicegate(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_") and k != "TRUSTED_CUSTOM_HOSTS"}
    base["PYTHONPATH"] = str(SRC)
    return subprocess.run([sys.executable, "-m", "sluicegate", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_refuses_instead_of_creating_an_empty_store_elsewhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    done = sluicegate("providers", "add", "my-llm", "--custom-host", "http://127.0.0.1:8000/v1", cwd=elsewhere)
    assert done.returncode == 2
    assert str(elsewhere) in done.stderr and "SLUICEGATE_DATA_DIR" in done.stderr
    assert not (elsewhere / ".sluicegate").exists() and not list(tmp_path.rglob(".sluicegate"))


def test_finds_the_gateways_store_from_a_subdirectory(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "docs" / "deep").mkdir(parents=True)
    added = sluicegate("providers", "add", "my-llm", "--custom-host", "http://127.0.0.1:8000/v1",
                       cwd=tmp_path, env={"SLUICEGATE_DATA_DIR": str(project / ".sluicegate")})
    assert added.returncode == 0, added.stderr
    listed = sluicegate("providers", "list", cwd=project / "docs" / "deep")
    assert listed.returncode == 0, listed.stderr
    assert "@my-llm" in listed.stdout
    assert [p.parent for p in tmp_path.rglob(".sluicegate")] == [project]


def test_no_alembic_lines_on_cli_commands(tmp_path: Path) -> None:
    done = sluicegate("providers", "list", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("extra", [(), ("--allow-entry", "10.0.0.5")])
def test_private_custom_host_same_rule_as_admin_api(tmp_path: Path, extra: tuple[str, ...]) -> None:
    done = sluicegate("providers", "add", "gpu", "--custom-host", "http://10.0.0.5:8000/v1", *extra,
                      "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    if extra:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 1
    assert "10.0.0.5 is a private address" in done.stderr
    assert "--allow-entry 10.0.0.5" in done.stderr and "TRUSTED_CUSTOM_HOSTS" in done.stderr


def test_trusted_custom_hosts_lets_the_cli_register_a_private_host(tmp_path: Path) -> None:
    done = sluicegate("providers", "add", "gpu", "--custom-host", "http://10.0.0.5:8000/v1",
                      "--data-dir", str(tmp_path / "data"), cwd=tmp_path, env={"TRUSTED_CUSTOM_HOSTS": "10.0.0.5"})
    assert done.returncode == 0, done.stderr
