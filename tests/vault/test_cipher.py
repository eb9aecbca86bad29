from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sluicegate.settings import Settings
from sluicegate.vault import (
    TamperedCiphertext,
    UnknownKey,
    Vault,
    encode_key,
    generate_key,
    key_id_of,
    provider_header_aad,
)
from sluicegate.vault.keys import Keyring, read_key_file, write_key_file

AAD = provider_header_aad(7, "Authorization")
SECRET = "Bearer sk-live-0123456789abcdef"


def env_vault(*keys) -> Vault:
    return Vault.load(Settings(master_key=",".join(encode_key(k) for k in keys)))


def test_round_trip_and_format() -> None:
    vault = env_vault(generate_key())
    token = vault.encrypt(SECRET, AAD)
    assert token.startswith(f"sg1:{vault.active_key_id}:")
    assert key_id_of(token) == vault.active_key_id
    assert SECRET not in token and "sk-live" not in token
    assert vault.decrypt(token, AAD) == SECRET


def test_nonce_is_random() -> None:
    vault = env_vault(generate_key())
    assert vault.encrypt(SECRET, AAD) != vault.encrypt(SECRET, AAD)


def test_aad_binds_provider_and_header() -> None:
    vault = env_vault(generate_key())
    token = vault.encrypt(SECRET, AAD)
    for other in (provider_header_aad(8, "Authorization"), provider_header_aad(7, "x-api-key")):
        with pytest.raises(TamperedCiphertext, match="failed authentication"):
            vault.decrypt(token, other)
    assert vault.decrypt(token, provider_header_aad(7, "AUTHORIZATION")) == SECRET  # names ignore case


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_flipped_byte_is_detected(position: int) -> None:
    vault = env_vault(generate_key())
    prefix, body = vault.encrypt(SECRET, AAD).rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    tampered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(TamperedCiphertext):
        vault.decrypt(tampered, AAD)


@pytest.mark.parametrize(
    "token", ["", "plain text", "sg1:abc", "sg2:abc:AAAA", "sg1:{kid}:AAAA", "sg1:{kid}:!!"]
)
def test_malformed_tokens(token: str) -> None:
    vault = env_vault(generate_key())
    with pytest.raises((TamperedCiphertext, UnknownKey)):
        vault.decrypt(token.format(kid=vault.active_key_id), AAD)


def test_wrong_master_key_names_key_ids() -> None:
    right, wrong = generate_key(), generate_key()
    token = env_vault(right).encrypt(SECRET, AAD)
    with pytest.raises(
        UnknownKey, match=f"sealed with master key {right.key_id}, which is not in SLUICEGATE_MASTER_KEY"
    ):
        env_vault(wrong).decrypt(token, AAD)


def test_relabelled_key_id_is_detected() -> None:
    a, b = generate_key(), generate_key()
    vault = env_vault(a, b)
    token = vault.encrypt(SECRET, AAD)
    relabelled = token.replace(a.key_id, b.key_id)
    with pytest.raises(TamperedCiphertext):
        vault.decrypt(relabelled, AAD)


def test_old_keys_still_decrypt() -> None:
    old, new = generate_key(), generate_key()
    token = env_vault(old).encrypt(SECRET, AAD)
    rotated = env_vault(new, old)
    assert rotated.decrypt(token, AAD) == SECRET
    assert key_id_of(rotated.encrypt(SECRET, AAD)) == new.key_id


def test_running_vault_picks_up_a_rewritten_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    server = Vault.load(settings)  # a long-running process
    cli = Vault.load(settings)
    path = server.keyring.path
    assert path is not None
    new = generate_key()
    write_key_file(path, (new,) + read_key_file(path).keys)
    cli.replace_keyring(Keyring((new,) + cli.keyring.keys, cli.keyring.source, path))
    token = cli.encrypt(SECRET, AAD)  # sealed under a key the server has never seen
    assert server.decrypt(token, AAD) == SECRET  # unknown key id → re-read the file → decrypts
    assert server.active_key_id == new.key_id
    assert server.reload_if_changed() is False  # nothing new since
