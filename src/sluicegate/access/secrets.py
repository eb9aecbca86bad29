"""API key secrets: made random (256 bits) with a recognisable prefix, stored only as a keyed hash.

The hash is HMAC-SHA256 under a server-side key kept like the master key: ``SLUICEGATE_API_KEY_HASH_KEY``
(base64 of 32 bytes), else ``<data-dir>/api-key-hash.key`` (mode 0600, created on first use). A copy of the
database alone therefore cannot be used to test guesses, and the hash of a 256-bit secret needs no slow KDF.
Every process sharing a database must have the same hash key (as with the master key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import Settings
from ..vault.keys import VaultError, create_key_file, parse_key, read_key_file

KEY_PREFIX = "sg-"  # every gateway API key starts with it: recognisable in scans and in Authorization
SHOWN_PREFIX_CHARS = 10  # "sg-" and 7 characters (42 of the 256 bits): enough to tell keys apart
HASH_KEY_ENV = "SLUICEGATE_API_KEY_HASH_KEY"
HASH_KEY_FILE = "api-key-hash.key"


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX)


def shown_prefix(secret: str) -> str:
    return secret[:SHOWN_PREFIX_CHARS]


@dataclass(frozen=True)
class KeyHasher:
    material: bytes = field(repr=False)

    def digest(self, secret: str) -> str:
        return hmac.new(self.material, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    @classmethod
    def load(cls, settings: Settings, *, create: bool = True) -> KeyHasher:
        if settings.api_key_hash_key:
            return cls(parse_key(settings.api_key_hash_key, HASH_KEY_ENV).material)
        path = Path(settings.data_dir) / HASH_KEY_FILE
        if not path.exists():
            if not create:
                raise VaultError(f"no API key hash key: set {HASH_KEY_ENV} or create {path}")
            return cls(create_key_file(path).active.material)
        return cls(read_key_file(path).active.material)
