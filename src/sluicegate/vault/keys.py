"""Master keys: where they come from, how they are named, how the key file is created and rewritten.

Sources, in order: ``SLUICEGATE_MASTER_KEY`` (comma-separated base64 keys, the first one encrypts), else
``<data-dir>/master.key`` (one base64 key per line, the first one encrypts), created on first use.

Decision: a key file readable or writable by group or others is refused (like ssh does with private keys),
because a key that leaked through a loose mode cannot be un-leaked by fixing the mode later; the error says
which ``chmod`` to run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

KEY_BYTES = 32  # AES-256
KEY_FILE_NAME = "master.key"
ENV_NAME = "SLUICEGATE_MASTER_KEY"

_FILE_HEADER = (
    "# sluicegate master keys: base64 of 32 random bytes, one per line.\n"
    "# The first key encrypts; the others only decrypt (kept during a rotation).\n"
    "# Keep this file secret and backed up: without it the stored credentials cannot be read.\n"
)


class VaultError(Exception):
    """The vault cannot do its job: no usable key, a refused key file, a ciphertext that does not decrypt."""


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    material: bytes = field(repr=False)

    @classmethod
    def from_material(cls, material: bytes) -> MasterKey:
        return cls(key_id=key_id_for(material), material=material)


@dataclass(frozen=True)
class Keyring:
    keys: tuple[MasterKey, ...]  # keys[0] encrypts
    source: str  # shown in errors: "SLUICEGATE_MASTER_KEY" or the key file path
    path: Path | None = None  # the key file, when the keys come from one
    created: bool = False  # this process made the key file (it was absent): its key seals nothing yet

    @property
    def active(self) -> MasterKey:
        return self.keys[0]

    def get(self, key_id: str) -> MasterKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)


def key_id_for(material: bytes) -> str:
    """A short public name for a key: stored beside every ciphertext so rotation knows what to re-encrypt.

    Derived from the key (domain-separated hash), so the same key always has the same id wherever it is
    configured, and a wrong key is recognised by its id before any decryption is attempted.
    """
    return hashlib.sha256(b"sluicegate/master-key-id/v1\x00" + material).hexdigest()[:16]


def generate_key() -> MasterKey:
    return MasterKey.from_material(secrets.token_bytes(KEY_BYTES))


def encode_key(key: MasterKey) -> str:
    return base64.b64encode(key.material).decode("ascii")


def parse_key(text: str, where: str) -> MasterKey:
    """Decode one base64 key (standard or URL-safe alphabet); ``where`` names its origin in the error."""
    try:
        material = _b64decode(text.strip())
    except (binascii.Error, ValueError):
        raise VaultError(f"{where}: not valid base64") from None
    if len(material) != KEY_BYTES:
        raise VaultError(
            f"{where}: a master key is base64 of {KEY_BYTES} bytes, this one has {len(material)}"
        )
    return MasterKey.from_material(material)


def _b64decode(text: str) -> bytes:
    # Both alphabets: keys get pasted from `openssl rand -base64 32` and from URL-safe generators alike.
    normal = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)


def keyring_from_env(value: str) -> Keyring:
    entries = [part for part in value.split(",") if part.strip()]
    if not entries:
        raise VaultError(f"{ENV_NAME} is set but empty")
    keys = tuple(parse_key(part, f"{ENV_NAME} entry {i + 1}") for i, part in enumerate(entries))
    return Keyring(keys=_dedupe(keys), source=ENV_NAME)


def key_file_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE_NAME


def read_key_file(path: Path) -> Keyring:
    _check_mode(path)
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError:  # never shown: the bytes may be a key
        raise VaultError(f"{path}: not a key file (keys are base64 text, one per line)") from None
    entries = [
        (n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")
    ]
    if not entries:
        raise VaultError(f"{path}: no key in the key file")
    keys = tuple(parse_key(line, f"{path} line {n}") for n, line in entries)
    return Keyring(keys=_dedupe(keys), source=str(path), path=path)


def create_key_file(path: Path) -> Keyring:
    """Create ``path`` with a fresh key, mode 0600; if another process won the race, read its file instead."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = _write_private_temp(path, (generate_key(),))
    try:
        os.link(tmp, path)  # atomic "create if absent": nobody ever sees a half-written key file
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(tmp)
    return replace(read_key_file(path), created=created)


def write_key_file(path: Path, keys: tuple[MasterKey, ...]) -> None:
    """Atomically replace the key file (rotation): readers see the old file or the new one, never a mix."""
    tmp = _write_private_temp(path, keys)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def restore_key_file(path: Path, content: bytes) -> None:
    """Atomically put back a key file's earlier bytes (a rotation that failed): comments and all."""
    tmp = _write_private_bytes(path, content)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_private_temp(path: Path, keys: tuple[MasterKey, ...]) -> Path:
    return _write_private_bytes(path, (_FILE_HEADER + "".join(encode_key(k) + "\n" for k in keys)).encode("ascii"))


def _write_private_bytes(path: Path, content: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_mode(path: Path) -> None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise VaultError(f"{path}: master key file not found") from None
    if not stat.S_ISREG(status.st_mode):  # a directory's mode would be reported as the problem
        raise VaultError(f"{path}: not a file (a key file holds one base64 key per line)")
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o077:
        raise VaultError(
            f"{path}: master key file has mode {mode:04o}; it must be readable by its owner only "
            f"(run: chmod 600 {path})"
        )


def _dedupe(keys: tuple[MasterKey, ...]) -> tuple[MasterKey, ...]:
    seen: dict[str, MasterKey] = {}
    for key in keys:
        seen.setdefault(key.key_id, key)
    return tuple(seen.values())
