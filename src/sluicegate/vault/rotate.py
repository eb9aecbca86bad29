"""Key rotation without downtime: new key first, re-encrypt row by row, retire the old key last.

With the key file (``<data-dir>/master.key``):
  1. a new key is generated and written *in front of* the old ones (old ones still decrypt);
  2. the catalog version is bumped; every running server re-reads the key file on its next poll (≤0.5 s)
     and from then on encrypts with the new key; we wait ``settle_s`` for that;
  3. every header sealed by another key is re-encrypted, in small transactions, each bumping the version;
  4. only when no row is left under an old key is the file rewritten with the new key alone.
Before step 1 every stored secret is opened with the loaded keys: a wrong key file, or a ciphertext that does
not open, is refused with the key file untouched (a new key in front of a wrong one would be one more key that
opens nothing). A failure after step 1 is rolled back the same way round (the old keys first, the new one
only decrypting, the rows it sealed re-encrypted under the old key, then the file's old bytes put back), so
a failed rotation leaves no extra key behind; only when that roll-back fails too (a store gone meanwhile) is
the new key kept, since rows may be sealed by it. A crash anywhere leaves every row readable with the file as
it is; running ``rotate`` again finishes the job.

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
from .guard import lost_key_ids
from .keys import ENV_NAME, Keyring, MasterKey, VaultError, generate_key, restore_key_file, write_key_file

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
    await verify_all_open(engine, vault)  # before the key file is touched
    keyring = vault.keyring
    if keyring.path is None:
        moved = await _reencrypt_all(engine, vault)
        say(f"{moved} secret(s) re-encrypted under {keyring.active.key_id}")
        return RotationReport(keyring.active.key_id, moved, tuple(k.key_id for k in keyring.keys[1:]),
                              keyring.source)
    path, before = keyring.path, keyring.path.read_bytes()
    new = generate_key()
    rotated = Keyring(keys=(new,) + keyring.keys, source=keyring.source, path=path)
    try:
        await _adopt(engine, vault, rotated, settle_s)
        say(f"new master key {new.key_id} written to {path}")
        moved = await _reencrypt_all(engine, vault)
    except Exception as exc:
        await _roll_back(engine, vault, keyring, new, before, settle_s, exc)
        say(f"rotation failed; {path} holds the keys it held before")
        raise
    say(f"{moved} secret(s) re-encrypted under {new.key_id}")
    retired = tuple(k.key_id for k in keyring.keys)
    write_key_file(path, (new,))
    vault.replace_keyring(Keyring(keys=(new,), source=keyring.source, path=path))
    await _bump(engine)
    say(f"retired key(s) {', '.join(retired)} removed from {path}")
    return RotationReport(new.key_id, moved, retired, keyring.source)


async def verify_all_open(engine: AsyncEngine, vault: Vault) -> None:
    """Open every stored secret with ``vault``'s keys; raise a VaultError naming each that does not (at most
    a few, and the key ids missing from the keyring), having changed nothing."""
    failures: list[str] = []
    async with engine.connect() as conn:
        headers = await conn.execute(
            select(provider_headers.c.provider_id, provider_headers.c.name, provider_headers.c.ciphertext,
                   providers.c.slug)
            .join(providers, providers.c.id == provider_headers.c.provider_id)
            .order_by(providers.c.slug, provider_headers.c.position)
        )
        sealed = [(f"provider @{row.slug}, header {row.name!r}", row.ciphertext,
                   provider_header_aad(row.provider_id, row.name)) for row in headers.all()]
        rows = await conn.execute(select(integrations.c.id, integrations.c.slug, integrations.c.secret)
                                  .where(integrations.c.secret.is_not(None)).order_by(integrations.c.slug))
        sealed += [(f"integration {row.slug}", row.secret, integration_aad(row.id)) for row in rows.all()]
    used: set[str] = set()
    for where, token, aad in sealed:
        try:
            used.add(key_id_of(token))
            vault.decrypt(token, aad)
        except VaultError as exc:
            failures.append(f"{where}: {exc}")
    if not failures:
        return
    shown = failures[:5] + ([f"… and {len(failures) - 5} more"] if len(failures) > 5 else [])
    lost = lost_key_ids(used, vault.keyring)
    cause = (f"the master key(s) {', '.join(lost)} are not in {vault.keyring.source}: restore the master.key "
             "they were sealed with" if lost else "a stored secret does not open")
    raise VaultError(f"{'; '.join(shown)}\n{len(failures)} stored secret(s) do not open with the loaded keys "
                     f"({cause}); nothing was rotated and the key file was not changed")


async def _reencrypt_all(engine: AsyncEngine, vault: Vault) -> int:
    return await _sweep_until_done(engine, vault) + await _reencrypt_integrations(engine, vault)


async def _adopt(engine: AsyncEngine, vault: Vault, keyring: Keyring, settle_s: float) -> None:
    """Write ``keyring`` to its file and wait for running servers to encrypt with its first key."""
    assert keyring.path is not None
    write_key_file(keyring.path, keyring.keys)
    vault.replace_keyring(keyring)
    await _bump(engine)
    await asyncio.sleep(settle_s)  # running servers switch to the new key on their next poll


async def _roll_back(engine: AsyncEngine, vault: Vault, before: Keyring, new: MasterKey, file_bytes: bytes,
                     settle_s: float, failure: Exception) -> None:
    """Undo a rotation that failed after writing ``new`` in front: the old keys first again (``new`` only
    decrypts), every row back under the old active key, then the file's old bytes. If that fails too the
    file keeps ``new`` (rows may be sealed by it) and the error says so."""
    assert before.path is not None
    try:
        await _adopt(engine, vault, Keyring(keys=before.keys + (new,), source=before.source, path=before.path),
                     settle_s)
        await _reencrypt_all(engine, vault)
        restore_key_file(before.path, file_bytes)
        vault.replace_keyring(before)
        await _bump(engine)
    except Exception as exc:
        raise VaultError(f"{failure}; undoing the rotation failed too ({exc}): {before.path} keeps the new key "
                         f"{new.key_id}, which may seal secrets: run `sluicegate vault rotate` again") from exc


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
