"""Envelope encryption of stored credentials (AES-256-GCM, key id in every ciphertext, rotation)."""

from .cipher import TamperedCiphertext, UnknownKey, Vault, integration_aad, key_id_of, provider_header_aad
from .keys import ENV_NAME, KEY_BYTES, Keyring, MasterKey, VaultError, encode_key, generate_key, key_file_path

__all__ = [
    "ENV_NAME",
    "KEY_BYTES",
    "Keyring",
    "MasterKey",
    "TamperedCiphertext",
    "UnknownKey",
    "Vault",
    "VaultError",
    "encode_key",
    "generate_key",
    "integration_aad",
    "key_file_path",
    "key_id_of",
    "provider_header_aad",
]
