"""A wrong master key file (another valid key in place of ``master.key``): nothing is sealed under it, and
``vault rotate`` changes nothing.

``providers add`` used to seal its header under the wrong key (exit 0): afterwards the store held secrets
under two keys, no key file opened both, and ``serve`` refused to start with either. ``vault rotate`` with a
wrong key, or with a ciphertext that does not open, wrote a new key in front of the old one before failing,
one more on each retry. Real ``python -m sluicegate`` processes (and one real gateway).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from sluicegate.vault import encode_key, generate_key
from tests.catalog.test_cli_first_run import sluicegate
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

HOST = "http://127.0.0.1:8000/v1"


def _store(tmp_path: Path) -> tuple[Path, bytes, str]:
    """A data dir with @vp1 sealed by the right key: (data dir, the right key file's bytes, its key id)."""
    data = tmp_path / "data"
    added = sluicegate("providers", "add", "vp1", "--custom-host", HOST, "--header",
                       "Authorization: Bearer sk-right-0123456789", "--data-dir", str(data), cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    status = sluicegate("vault", "status", "--data-dir", str(data), cwd=tmp_path)
    key_id = status.stdout.split("\n")[2].split()[0]  # the table's first row
    return data, (data / "master.key").read_bytes(), key_id


def _put_key(data: Path, content: bytes) -> None:
    key_file = data / "master.key"
    key_file.write_bytes(content)
    key_file.chmod(0o600)


def _wrong_key() -> bytes:
    return (encode_key(generate_key()) + "\n").encode()


def test_a_wrong_key_file_seals_nothing_and_the_right_one_still_serves(tmp_path: Path) -> None:
    data, right, key_id = _store(tmp_path)
    _put_key(data, _wrong_key())
    refused = [
        ("providers", "add", "vp2", "--custom-host", HOST, "--header", "Authorization: Bearer sk-wrong-0123456789"),
        ("providers", "update", "vp1", "--notes", "changed", "--header", "Authorization: Bearer sk-wrong-0123456789"),
    ]
    for command in refused:
        done = sluicegate(*command, "--data-dir", str(data), cwd=tmp_path)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"sealed by the master key(s) {key_id}, which {data / 'master.key'} does not hold" in done.stderr
        assert "restore the master.key" in done.stderr and "nothing was sealed or stored" in done.stderr
        assert "Traceback" not in done.stderr
    # A change that seals nothing is not a wrong key's to refuse.
    noted = sluicegate("providers", "update", "vp1", "--notes", "hi", "--data-dir", str(data), cwd=tmp_path)
    assert noted.returncode == 0, noted.stderr
    listed = sluicegate("providers", "list", "--data-dir", str(data), cwd=tmp_path)
    assert "@vp1" in listed.stdout and "@vp2" not in listed.stdout
    db = sqlite3.connect(data / "sluicegate.db")
    try:
        assert db.execute("SELECT DISTINCT key_id FROM provider_headers").fetchall() == [(key_id,)]
    finally:
        db.close()

    _put_key(data, right)
    status = sluicegate("vault", "status", "--data-dir", str(data), cwd=tmp_path)
    assert status.returncode == 0 and "MISSING" not in status.stdout, status.stdout
    gateway = GatewayProcess(data).start()  # raises, with the gateway's output, if it refuses to start
    try:
        assert httpx.get(f"{gateway.url}/livez", timeout=5, trust_env=False).status_code == 200
    finally:
        gateway.stop()
    added = sluicegate("providers", "add", "vp2", "--custom-host", HOST, "--header",
                       "Authorization: Bearer sk-right-0123456789", "--data-dir", str(data), cwd=tmp_path)
    assert added.returncode == 0, added.stderr


def test_a_wrong_key_in_the_environment_seals_nothing(tmp_path: Path) -> None:
    data, _right, key_id = _store(tmp_path)
    done = sluicegate("providers", "add", "vp2", "--custom-host", HOST, "--header", "X-Api-Key: sk-0123456789",
                      "--data-dir", str(data), cwd=tmp_path,
                      env={"SLUICEGATE_MASTER_KEY": _wrong_key().decode().strip()})
    assert done.returncode == 2, done.stderr
    assert f"{key_id}, which SLUICEGATE_MASTER_KEY does not hold" in done.stderr


def test_a_gateway_whose_key_file_is_swapped_seals_nothing_through_its_apis(tmp_path: Path) -> None:
    """The server checked its key at start; a key file replaced while it runs is adopted on the next write
    (the file changed) and refused there, on the admin API and the Portkey-compatible one alike."""
    data, right, key_id = _store(tmp_path)
    gateway = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        _put_key(data, _wrong_key())
        made = httpx.post(f"{gateway.url}/admin/api/providers", headers=admin, timeout=30, trust_env=False,
                          json={"slug": "vp2", "spec": "openai", "custom_host": HOST,
                                "headers": {"Authorization": "Bearer sk-wrong-0123456789"}})
        assert made.status_code == 503, made.text
        assert f"sealed by the master key(s) {key_id}" in made.json()["message"]
        integration = httpx.post(f"{gateway.url}/v1/integrations", headers={"x-portkey-api-key": ADMIN_TOKEN},
                                 timeout=30, trust_env=False,
                                 json={"ai_provider_id": "openai", "slug": "wrong-int", "key": "sk-wrong-0123456789"})
        assert integration.status_code == 503, integration.text
        assert f"vault: the store holds secrets sealed by the master key(s) {key_id}" in integration.json()["message"]
        _put_key(data, right)
        assert gateway.stop() == 0
    finally:
        gateway.stop()
    db = sqlite3.connect(data / "sluicegate.db")
    try:
        assert db.execute("SELECT DISTINCT key_id FROM provider_headers").fetchall() == [(key_id,)]
        assert db.execute("SELECT count(*) FROM integrations").fetchone() == (0,)
        assert db.execute("SELECT slug FROM providers").fetchall() == [("vp1",)]
    finally:
        db.close()
    GatewayProcess(data).start().stop()  # the right key opens everything stored: it starts


def test_rotate_with_a_wrong_key_leaves_the_key_file_as_it_was(tmp_path: Path) -> None:
    data, right, key_id = _store(tmp_path)
    wrong = _wrong_key()
    _put_key(data, wrong)
    for _retry in range(2):  # a retry adds nothing either
        done = sluicegate("vault", "rotate", "--settle", "0", "--data-dir", str(data), cwd=tmp_path)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert f"provider @vp1, header 'Authorization': sealed with master key {key_id}" in done.stderr
        assert f"the master key(s) {key_id} are not in" in done.stderr
        assert "the key file was not changed" in done.stderr and "Traceback" not in done.stderr
        assert (data / "master.key").read_bytes() == wrong
    _put_key(data, right)
    rotated = sluicegate("vault", "rotate", "--settle", "0", "--data-dir", str(data), cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr


def test_rotate_with_a_ciphertext_that_does_not_open_leaves_the_key_file_as_it_was(tmp_path: Path) -> None:
    data, right, key_id = _store(tmp_path)
    db = sqlite3.connect(data / "sluicegate.db")
    try:
        (token,) = db.execute("SELECT ciphertext FROM provider_headers").fetchone()
        at = token.rindex(":") + 6  # a character of the nonce-and-ciphertext part
        flipped = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]
        with db:
            db.execute("UPDATE provider_headers SET ciphertext = ?", (flipped,))
    finally:
        db.close()
    for _retry in range(2):
        done = sluicegate("vault", "rotate", "--settle", "0", "--data-dir", str(data), cwd=tmp_path)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "provider @vp1, header 'Authorization': ciphertext failed authentication" in done.stderr
        assert "the key file was not changed" in done.stderr and "Traceback" not in done.stderr
        assert (data / "master.key").read_bytes() == right

