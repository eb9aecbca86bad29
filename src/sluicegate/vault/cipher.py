"""AES-256-GCM envelope for stored secrets.

A ciphertext is ``sg1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``: the key id says which master key
sealed it (rotation, clear errors), a fresh 96-bit random nonce per message, and associated data that binds
it to its row, so a ciphertext copied onto another provider or header fails to open instead of leaking.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..settings import Settings
from .keys import (
    ENV_NAME,
    Keyring,
    VaultError,
    create_key_file,
    key_file_path,
    keyring_from_env,
    read_key_file,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "sg1"
_NONCE_BYTES = 12


class UnknownKey(VaultError):
    """The ciphertext was sealed by a master key this process does not hold (wrong or missing key)."""

    def __init__(self, key_id: str, source: str) -> None:
        super().__init__(f"sealed with master key {key_id}, which is not in {source}")
        self.key_id = key_id


class TamperedCiphertext(VaultError):
    """The ciphertext is malformed or fails authentication (edited, truncated, or moved to another row)."""


def provider_header_aad(provider_id: int, header_name: str) -> bytes:
    """Associated data for a provider's auth header: the provider row id and the (case-folded) header name."""
    return f"sluicegate/provider/{provider_id}/header/{header_name.lower()}".encode()


def integration_aad(integration_id: str) -> bytes:
    """Associated data for an integration's sealed credential (catalog/integrations.py)."""
    return f"integration:{integration_id}".encode()


def key_id_of(token: str) -> str:
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != _VERSION:
        raise TamperedCiphertext("not a sluicegate ciphertext")
    return parts[1]


class Vault:
    """Encrypts with the keyring's first key, decrypts with any key in it.

    A key-file keyring is re-read when the file changes (``reload_if_changed``) or when a ciphertext names a
    key id we do not hold, which is how a running server picks up ``sluicegate vault rotate``.
    """

    def __init__(self, keyring: Keyring, *, loader: Callable[[], Keyring] | None = None) -> None:
        self._keyring = keyring
        self._loader = loader
        self._file_stamp = _stamp(keyring.path)

    @classmethod
    def load(cls, settings: Settings, *, create: bool = True) -> Vault:
        """The vault for ``settings``: the env keys, else the key file (created 0600 when ``create``)."""
        if settings.master_key:
            return cls(keyring_from_env(settings.master_key))
        path = key_file_path(settings.data_dir)
        if not path.exists():
            if not create:
                # Not "create it": a new key cannot open what the lost one sealed (serve makes one when none
                # is stored yet, and refuses one beside secrets it cannot open).
                raise VaultError(f"no master key: set {ENV_NAME}, or restore {path} (the key the stored "
                                 "secrets were sealed with)")
            keyring = create_key_file(path)
        else:
            keyring = read_key_file(path)
        return cls(keyring, loader=lambda: read_key_file(path))

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    @property
    def active_key_id(self) -> str:
        return self._keyring.active.key_id

    def encrypt(self, plaintext: str, aad: bytes) -> str:
        key = self._keyring.active
        header = f"{_VERSION}:{key.key_id}"
        nonce = os.urandom(_NONCE_BYTES)
        sealed = _aesgcm(key.material).encrypt(nonce, plaintext.encode("utf-8"), _aad(header, aad))
        return f"{header}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii').rstrip('=')}"

    def decrypt(self, token: str, aad: bytes) -> str:
        key_id = key_id_of(token)
        key = self._keyring.get(key_id)
        if key is None and self.reload_if_changed():
            key = self._keyring.get(key_id)
        if key is None:
            raise UnknownKey(key_id, self._keyring.source)
        blob = _b64decode(token.split(":", 2)[2])
        if len(blob) < _NONCE_BYTES + 16:
            raise TamperedCiphertext("ciphertext too short")
        from cryptography.exceptions import InvalidTag

        try:
            plain = _aesgcm(key.material).decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(f"{_VERSION}:{key_id}", aad)
            )
        except InvalidTag:
            raise TamperedCiphertext(
                "ciphertext failed authentication (tampered, or bound to another row)"
            ) from None
        return plain.decode("utf-8")

    def reload_if_changed(self) -> bool:
        """Re-read the key file if it changed on disk; True when the keyring was replaced."""
        if self._loader is None or self._keyring.path is None:
            return False
        stamp = _stamp(self._keyring.path)
        if stamp == self._file_stamp:
            return False
        keyring = self._loader()
        self._keyring, self._file_stamp = keyring, _stamp(keyring.path)
        return True

    def replace_keyring(self, keyring: Keyring) -> None:
        """Adopt a keyring just written by this process (rotation), without waiting for a file check."""
        self._keyring, self._file_stamp = keyring, _stamp(keyring.path)


def _aesgcm(material: bytes) -> AESGCM:
    # Imported with the first stored credential, not at start: cryptography's Rust module is ~8 MB of a
    # gateway's memory, and a gateway without catalog credentials never needs it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(material)


def _aad(header: str, aad: bytes) -> bytes:
    # The header is authenticated too, so the key id label cannot be edited without detection.
    return header.encode("ascii") + b"\x00" + aad


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TamperedCiphertext("ciphertext is not valid base64") from None


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)
