"""``sluicegate vault rotate | status | generate-key``."""

from __future__ import annotations

import argparse

from ..settings import flag_type
from ..vault.cipher import Vault
from ..vault.keys import ENV_NAME, VaultError, encode_key, generate_key
from ..vault.rotate import key_usage, refuse_a_new_key_beside_lost_ones, rotate
from .support import (
    EXIT_UNUSABLE,
    command,
    fail,
    open_store,
    print_json,
    print_table,
    report,
    settings_from_args,
    store_options,
    wants_json,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    vault = subparsers.add_parser("vault", help="master key and encrypted credentials")
    actions = vault.add_subparsers(
        dest="vault_command", required=True, metavar="{rotate,status,generate-key}"
    )
    common = store_options()
    rot = actions.add_parser(
        "rotate", parents=[common], help="re-encrypt every secret under a new master key"
    )
    rot.add_argument(
        "--settle",
        type=flag_type("settle"),
        default=2.0,
        metavar="SECONDS",
        help="wait this long after writing the new key so running servers adopt it (default 2)",
    )
    rot.set_defaults(func=command(vault_rotate))
    actions.add_parser(
        "status", parents=[common], help="keys and how many secrets each one seals"
    ).set_defaults(func=command(vault_status))
    actions.add_parser("generate-key", help=f"print a new random key for {ENV_NAME}").set_defaults(
        func=lambda _args: print(encode_key(generate_key())) or 0
    )


async def vault_rotate(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    vault = Vault.load(settings)
    if vault.keyring.path is None and len(vault.keyring.keys) == 1:
        return fail(
            f"the master key comes from {ENV_NAME}: put a new key first ({ENV_NAME}=NEW,OLD; "
            "`sluicegate vault generate-key` makes one), restart the servers with it, then run rotate again",
            EXIT_UNUSABLE,
        )
    quiet = wants_json(args)
    async with open_store(settings) as engine:
        await refuse_a_new_key_beside_lost_ones(engine, vault)
        report = await rotate(engine, vault, settle_s=args.settle, say=(lambda _l: None) if quiet else print)
    if quiet:
        print_json(
            {
                "active_key_id": report.active_key_id,
                "reencrypted": report.reencrypted,
                "retired_key_ids": list(report.retired_key_ids),
                "source": report.source,
            }
        )
    elif report.source == ENV_NAME and report.retired_key_ids:
        print(
            f"done: every secret is sealed by {report.active_key_id}; remove the old key(s) "
            f"{', '.join(report.retired_key_ids)} from {ENV_NAME} (servers need a restart to forget them)"
        )
    else:
        print(f"done: every secret is sealed by {report.active_key_id}")
    return 0


async def vault_status(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        usage = await key_usage(engine)
    try:
        vault = Vault.load(settings, create=False)
    except VaultError:
        if usage:
            raise
        # A store without secrets needs no key yet: it was "restore the key the stored secrets were sealed
        # with" (exit 2) on a fresh data directory.
        report(args, "no master key yet, and no secret stored: the first secret stored makes one",
               {"source": None, "keys": []})
        return 0
    known = {k.key_id for k in vault.keyring.keys}
    rows = [
        (k.key_id, "encrypts" if k is vault.keyring.active else "decrypts", usage.get(k.key_id, 0))
        for k in vault.keyring.keys
    ]
    rows += [(key_id, "MISSING", count) for key_id, count in sorted(usage.items()) if key_id not in known]
    if wants_json(args):
        print_json(
            {
                "source": vault.keyring.source,
                "keys": [{"key_id": r[0], "role": r[1], "secrets": r[2]} for r in rows],
            }
        )
    else:
        print(f"keys from: {vault.keyring.source}")
        print_table(("KEY ID", "ROLE", "SECRETS"), rows)
    return 1 if any(role == "MISSING" for _, role, _ in rows) else 0
