"""A master key file that went missing while the store holds secrets it sealed: no command makes a new one.

A CLI command (or a server start) on such a data directory used to make a fresh ``master.key`` and carry
on: ``providers add`` sealed its header with the new key, beside secrets that no key present opened, and
restoring the backup of the old file then lost the new ones. Now each refuses, names the key ids to
restore, and leaves no key file behind. Real ``python -m sluicegate`` processes.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from tests.catalog.test_cli_first_run import sluicegate


def _sealed_store(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "data"
    added = sluicegate("providers", "add", "llm", "--custom-host", "http://127.0.0.1:8000/v1",
                       "--header", "Authorization: Bearer sk-sealed-0123456789", "--data-dir", str(data), cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    status = sluicegate("vault", "status", "--data-dir", str(data), cwd=tmp_path)
    key_id = status.stdout.split("\n")[2].split()[0]  # the table's first row
    (data / "master.key").rename(tmp_path / "master.key.backup")
    return data, key_id


def test_no_command_makes_a_key_beside_lost_ones(tmp_path: Path) -> None:
    data, key_id = _sealed_store(tmp_path)
    commands = [
        ("providers", "add", "p3", "--custom-host", "http://127.0.0.1:8000/v1", "--header", "X-A: hello12345"),
        ("providers", "list"),
        ("vault", "rotate"),
    ]
    for command in commands:
        done = sluicegate(*command, "--data-dir", str(data), cwd=tmp_path)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"sealed by the master key(s) {key_id}: restore the master.key" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert not (data / "master.key").exists()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = sluicegate("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data), cwd=tmp_path)
    assert served.returncode == 2 and "restore the master.key" in served.stderr, served.stderr
    assert not (data / "master.key").exists()
    shutil.copy(tmp_path / "master.key.backup", data / "master.key")  # restored: all is as before
    listed = sluicegate("providers", "list", "--data-dir", str(data), cwd=tmp_path)
    assert listed.returncode == 0 and "@llm" in listed.stdout, listed.stderr


def test_a_fresh_store_still_gets_its_key_on_first_use(tmp_path: Path) -> None:
    done = sluicegate("providers", "add", "llm", "--custom-host", "http://127.0.0.1:8000/v1", "--header",
                      "X-A: hello12345", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "master.key").exists()
