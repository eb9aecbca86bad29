"""No new secret is sealed beside stored ones that the loaded keys cannot open.

A wrong key file (another valid key put in place of ``master.key``, a wrong ``SLUICEGATE_MASTER_KEY``) used
to seal new secrets under that wrong key: afterwards no key file opened every stored secret, and the server
refused to start with either. Every write that seals a secret (catalog/providers.py, catalog/integrations.py,
whoever calls them: the CLI, the admin API, the Portkey-compatible routes) first asks
``refuse_sealing_beside_lost_keys`` in its own transaction.

The check is cheap: the key id is stored beside each header's ciphertext (an indexed column), so it is one
``SELECT DISTINCT`` and the integrations' few ciphertexts, whose key id is their prefix; nothing is decrypted.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..store.tables import integrations, provider_headers
from .cipher import Vault, key_id_of
from .keys import ENV_NAME, Keyring, VaultError


class LostKeys(VaultError):
    """The store holds secrets sealed by master keys the loaded keyring does not hold (a wrong key)."""

    def __init__(self, key_ids: list[str], source: str) -> None:
        super().__init__(
            f"the store holds secrets sealed by the master key(s) {', '.join(key_ids)}, which {source} does not "
            f"hold (a wrong key?): restore the master.key they were sealed with (or set {ENV_NAME} to it); "
            "nothing was sealed or stored"
        )
        self.key_ids = key_ids


async def sealed_key_ids(conn: AsyncConnection) -> set[str]:
    """The ids of the keys that seal at least one stored secret."""
    found = set((await conn.execute(select(provider_headers.c.key_id).distinct())).scalars())
    sealed = await conn.execute(select(integrations.c.secret).where(integrations.c.secret.is_not(None)))
    found.update(key_id_of(secret) for secret in sealed.scalars())
    return found


def lost_key_ids(used: set[str], keyring: Keyring) -> list[str]:
    return sorted(key_id for key_id in used if keyring.get(key_id) is None)


async def refuse_sealing_beside_lost_keys(conn: AsyncConnection, vault: Vault) -> None:
    """Raise LostKeys when a stored secret is sealed by a key ``vault`` does not hold.

    The key file is re-read first if it changed on disk (a rotation, or the right file put back), so a
    process never seals with a key that the file no longer has, nor refuses for a key it just gained."""
    vault.reload_if_changed()
    lost = lost_key_ids(await sealed_key_ids(conn), vault.keyring)
    if lost:
        raise LostKeys(lost, vault.keyring.source)
