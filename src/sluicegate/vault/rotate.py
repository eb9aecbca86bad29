"""Key rotation without downtime: new key first, re-encrypt row by row, retire the old key last.

With the key file (``<data-dir>/master.key``):
  1. a new key is generated and written *in front of* the old ones (old ones still decrypt);
  2. the catalog version is bumped; every running server re-reads the key file on its next poll (≤0.5 s)
     and from then on encrypts with the new key; we wait ``settle_s`` for that;
  3. every header sealed by another key is re-encrypted, in small transactions, each bumping the version;
  4. only when no row is left under an old key is the file rewritten with the new key alone.
A crash anywhere leaves every row readable with the file as it is; running ``rotate`` again finishes the job.

With ``SLUICEGATE_MASTER_KEY`` the process environment cannot be rewritten for the servers, so the operator
puts the new key first (``NEW,OLD``), restarts the servers, runs ``rotate`` (which re-encrypts everything
under NEW) and finally drops OLD from the variable (docs/catalog.md, "Rotating the master key").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.state import bump_catalog_version
from ..store.tables import integrations, provider_headers, providers
from .cipher import Vault, integration_aad, key_id_of, provider_header_aad
from .keys import ENV_NAME, Keyring, VaultError, generate_key, write_key_file

BATCH_ROWS = 200
MAX_STALLS = 5


@dataclass(frozen=True)
class RotationReport:
    active_key_id: str
    reencrypted: int
    retired_key_ids: tuple[str, ...]
    source: str


async def key_usage(engine: AsyncEngine) -> dict[str, int]:
    """How many stored secrets each key id seals (``vault status``)."""
    query = select(provider_headers.c.key_id, func.count()).group_by(provider_headers.c.key_id)
    async with engine.connect() as conn:
        usage = {key_id: int(count) for key_id, count in (await conn.execute(query)).all()}
        sealed = (await conn.execute(select(integrations.c.secret).where(integrations.c.secret.is_not(None)))).scalars()
        for secret in sealed:  # integrations: a few rows, their key id read from the ciphertext
            usage[key_id_of(secret)] = usage.get(key_id_of(secret), 0) + 1
    return usage


async def refuse_a_new_key_beside_lost_ones(engine: AsyncEngine, vault: Vault) -> None:
    """Refuse a key file this process just made (the file was missing) when the store holds secrets sealed
    by keys it does not hold: the master key was lost or moved, and new secrets sealed by a new key would
    sit beside ones no key opens, so that restoring the old file would then lose the new ones. The new file
    is removed, and the error says what to restore."""
    keyring = vault.keyring
    if not keyring.created or keyring.path is None:
        return
    lost = sorted(key_id for key_id in await key_usage(engine) if keyring.get(key_id) is None)
    if not lost:
        return
    keyring.path.unlink(missing_ok=True)
    raise VaultError(f"{keyring.path} was missing, but the store holds secrets sealed by the master key(s) "
                     f"{', '.join(lost)}: restore the master.key they were sealed with (or set {ENV_NAME})"
                     "; no new key was made")


async def rotate(
    engine: AsyncEngine,
    vault: Vault,
    *,
    settle_s: float = 2.0,
    say: Callable[[str], None] = lambda _line: None,
) -> RotationReport:
    """Rotate as the module docstring describes; ``say`` receives progress lines (never secrets)."""
    keyring = vault.keyring
    if keyring.path is not None:
        path = keyring.path
        keyring = Keyring(keys=(generate_key(),) + keyring.keys, source=keyring.source, path=path)
        write_key_file(path, keyring.keys)
        vault.replace_keyring(keyring)
        say(f"new master key {keyring.active.key_id} written to {keyring.path}")
        await _bump(engine)
        await asyncio.sleep(settle_s)  # running servers switch to the new key on their next poll
    moved = await _sweep_until_done(engine, vault) + await _reencrypt_integrations(engine, vault)
    say(f"{moved} secret(s) re-encrypted under {keyring.active.key_id}")
    retired = tuple(k.key_id for k in keyring.keys[1:])
    if keyring.path is not None and retired:
        write_key_file(keyring.path, keyring.keys[:1])
        vault.replace_keyring(Keyring(keys=keyring.keys[:1], source=keyring.source, path=keyring.path))
        await _bump(engine)
        say(f"retired key(s) {', '.join(retired)} removed from {keyring.path}")
    return RotationReport(keyring.active.key_id, moved, retired, keyring.source)


async def _sweep_until_done(engine: AsyncEngine, vault: Vault) -> int:
    moved, stalls = 0, 0
    while True:
        batch = await _reencrypt_batch(engine, vault)
        moved += batch
        if batch:
            continue
        left = await _remaining(engine, vault.active_key_id)
        if left == 0:
            return moved
        # Rows under an old key that we could not move: a writer replaced them between our read and update.
        stalls += 1
        if stalls >= MAX_STALLS:
            raise VaultError(
                f"{left} secret(s) are still sealed by an old key (a server still writing with it?); "
                "no key was retired: run `sluicegate vault rotate` again"
            )
        await asyncio.sleep(0.5)


async def _reencrypt_batch(engine: AsyncEngine, vault: Vault) -> int:
    """Re-encrypt up to BATCH_ROWS rows not under the active key; a row changed meanwhile is left alone."""
    t = provider_headers
    query = (
        select(t.c.id, t.c.provider_id, t.c.name, t.c.ciphertext, providers.c.slug)
        .join(providers, providers.c.id == t.c.provider_id)
        .where(t.c.key_id != vault.active_key_id)
        .limit(BATCH_ROWS)
    )
    moved = 0
    async with engine.begin() as conn:
        for row in (await conn.execute(query)).all():
            aad = provider_header_aad(row.provider_id, row.name)
            try:
                plain = vault.decrypt(row.ciphertext, aad)
            except VaultError as exc:
                raise VaultError(f"provider @{row.slug}, header {row.name!r}: {exc}") from None
            result = await conn.execute(
                update(t)
                .where(t.c.id == row.id, t.c.ciphertext == row.ciphertext)
                .values(ciphertext=vault.encrypt(plain, aad), key_id=vault.active_key_id)
            )
            moved += result.rowcount
        if moved:
            await bump_catalog_version(conn)
    return moved


async def _reencrypt_integrations(engine: AsyncEngine, vault: Vault) -> int:
    """Integrations' sealed credentials (few: one transaction); a row changed meanwhile is left alone and
    named, so that no key is retired while it still seals something."""
    t = integrations
    moved = 0
    async with engine.begin() as conn:
        for row in (await conn.execute(select(t.c.id, t.c.slug, t.c.secret).where(t.c.secret.is_not(None)))).all():
            if key_id_of(row.secret) == vault.active_key_id:
                continue
            try:
                plain = vault.decrypt(row.secret, integration_aad(row.id))
            except VaultError as exc:
                raise VaultError(f"integration {row.slug}: {exc}") from None
            result = await conn.execute(update(t).where(t.c.id == row.id, t.c.secret == row.secret)
                                        .values(secret=vault.encrypt(plain, integration_aad(row.id))))
            if result.rowcount != 1:
                raise VaultError(f"integration {row.slug} changed during the rotation: run it again")
            moved += 1
    return moved


async def _remaining(engine: AsyncEngine, active_key_id: str) -> int:
    query = (
        select(func.count()).select_from(provider_headers).where(provider_headers.c.key_id != active_key_id)
    )
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def _bump(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await bump_catalog_version(conn)
