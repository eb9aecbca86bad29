from __future__ import annotations

import base64
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sluicegate.settings import Settings
from sluicegate.vault import KEY_BYTES, Vault, VaultError, encode_key, generate_key, key_file_path
from sluicegate.vault.keys import create_key_file, keyring_from_env, read_key_file, write_key_file


def test_env_key_standard_and_urlsafe_base64() -> None:
    material = bytes(range(KEY_BYTES))
    std = base64.b64encode(material).decode()
    url = base64.urlsafe_b64encode(material).decode().rstrip("=")
    assert keyring_from_env(std).active.material == material
    assert keyring_from_env(url).active.material == material
    assert keyring_from_env(std).active.key_id == keyring_from_env(url).active.key_id


def test_env_keyring_first_key_encrypts_others_decrypt() -> None:
    new, old = generate_key(), generate_key()
    ring = keyring_from_env(f"{encode_key(new)}, {encode_key(old)}")
    assert ring.active.key_id == new.key_id
    assert ring.get(old.key_id) == old
    assert ring.source == "SLUICEGATE_MASTER_KEY"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("not base64!!", "entry 1: not valid base64"),
        (base64.b64encode(b"short").decode(), "entry 1: a master key is base64 of 32 bytes, this one has 5"),
    ],
)
def test_bad_env_key_is_a_clear_error(value: str, message: str) -> None:
    with pytest.raises(VaultError, match=message):
        keyring_from_env(value or " , ")


def test_key_id_is_stable_public_name() -> None:
    key = generate_key()
    assert len(key.key_id) == 16 and int(key.key_id, 16) >= 0
    assert keyring_from_env(encode_key(key)).active.key_id == key.key_id
    assert encode_key(key) not in repr(key) and key.material.hex() not in repr(key)


def test_key_file_created_0600_on_first_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = Vault.load(settings)
    path = key_file_path(settings.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert Vault.load(settings).active_key_id == first.active_key_id  # reused, not regenerated
    assert first.keyring.source == str(path)


def test_env_key_wins_over_key_file(tmp_path: Path) -> None:
    key = generate_key()
    settings = Settings(data_dir=tmp_path / "data", master_key=encode_key(key))
    assert Vault.load(settings).active_key_id == key.key_id
    assert not key_file_path(settings.data_dir).exists()  # nothing generated when the env provides the key


def test_missing_key_file_without_create(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="no master key: set SLUICEGATE_MASTER_KEY, or restore .*master.key .the key the stored secrets were sealed with"):
        Vault.load(Settings(data_dir=tmp_path), create=False)


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_loose_key_file_permissions_are_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(VaultError, match=rf"mode 0{mode:o}.*chmod 600 {path}"):
        read_key_file(path)


def test_racing_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.key"
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: create_key_file(path).active.key_id, range(16)))
    assert len(ids) == 1
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp files left behind


def test_rewrite_keeps_order_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    old = create_key_file(path).active
    new = generate_key()
    write_key_file(path, (new, old))
    ring = read_key_file(path)
    assert [k.key_id for k in ring.keys] == [new.key_id, old.key_id]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_with_comments_and_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"# comment\n\nnot-a-key\n")
    os.close(fd)
    with pytest.raises(VaultError, match="line 3: "):
        read_key_file(path)


@pytest.mark.parametrize("content", [b"\xc3\xa9t\xc3\xa9\n", b"\xff\xfe\x00k\n"])
def test_a_key_file_that_is_not_text_is_refused_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(VaultError, match=rf"^{path}: not a key file") as caught:
        read_key_file(path)
    assert "\\x" not in str(caught.value) and "é" not in str(caught.value)  # the bytes are never shown


def test_a_directory_in_the_key_file_s_place_is_not_a_mode_problem(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.mkdir(mode=0o700)
    with pytest.raises(VaultError, match=rf"^{path}: not a file"):
        read_key_file(path)
