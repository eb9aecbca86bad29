"""``sluicegate db upgrade | current``."""

from __future__ import annotations

import argparse

from ..store.engine import create_engine, database_url
from ..store.migrate import current_revision, head_revision, upgrade
from .support import command, print_json, report, settings_from_args, store_options, wants_json


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="database schema")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="{upgrade,current}")
    common = store_options()
    actions.add_parser(
        "upgrade", parents=[common], help="apply pending migrations (serve does this too)"
    ).set_defaults(func=command(db_upgrade))
    actions.add_parser("current", parents=[common], help="show the schema revision").set_defaults(
        func=command(db_current)
    )


async def db_upgrade(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    engine = create_engine(settings)
    try:
        before = await current_revision(engine)
        await upgrade(engine)
        after = await current_revision(engine)
    finally:
        await engine.dispose()
    where = database_url(settings).render_as_string(hide_password=True)
    if wants_json(args):
        print_json({"database": where, "from": before, "to": after})
    elif before == after:
        print(f"{where}: already at {after}")
    else:
        print(f"{where}: upgraded {before or '(empty)'} -> {after}")


async def db_current(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    engine = create_engine(settings)
    try:
        current = await current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    report(args, f"current: {current or '(empty)'}\nhead:    {head}", {"current": current, "head": head})
    return 0 if current == head else 1
