"""``sluicegate admin-token reset``: the way back in when the once-printed admin token is lost."""

from __future__ import annotations

import argparse
import sys

from ..access.admin_token import reset_admin_token
from .support import command, open_store, report, settings_from_args, store_options


def register(subparsers: argparse._SubParsersAction) -> None:
    token = subparsers.add_parser("admin-token", help="the admin API token")
    actions = token.add_subparsers(dest="admin_token_command", required=True, metavar="{reset}")
    actions.add_parser(
        "reset", parents=[store_options()], help="replace the stored admin token, print the new one once"
    ).set_defaults(func=command(admin_token_reset))


async def admin_token_reset(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        token = await reset_admin_token(engine)
    report(args, f"new admin token (shown once, only its hash is stored):\n{token}", {"admin_token": token})
    if settings.admin_token:  # on stderr: stdout is the token (or its JSON), which a script reads
        print("note: SLUICEGATE_ADMIN_TOKEN is set, and a server started with it accepts only that token",
              file=sys.stderr)
