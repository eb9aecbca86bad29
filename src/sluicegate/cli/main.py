"""Command line: ``sluicegate serve`` and the management commands of each subsystem."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import serve
from ..settings import SettingsError, flag_type, settings_from_env
from ..upstream.guard import Guard, GuardPolicy
from . import access as access_commands
from . import catalog as catalog_commands
from . import keys as keys_commands
from . import limits as limits_commands
from . import logs as telemetry_commands
from . import store as store_commands
from . import vault as vault_commands


def _add_serve(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the gateway", description="Run the gateway.")
    p.add_argument("--host", type=flag_type("host"), help="listen address (default 127.0.0.1; env SLUICEGATE_HOST)")
    p.add_argument("--port", type=flag_type("port"), help="listen port (default 8787; env SLUICEGATE_PORT)")
    p.add_argument("--workers", type=flag_type("workers"), help="worker processes sharing the port (default 1)")
    p.add_argument("--data-dir", type=flag_type("data_dir"),
                   help="where the database and keys live (default ./.sluicegate)")
    p.add_argument("--log-retention-days", type=flag_type("log_retention_days"),
                   help="delete request logs older than this (default: keep; env SLUICEGATE_LOG_RETENTION_DAYS)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_env(
            host=args.host, port=args.port, workers=args.workers, data_dir=args.data_dir,
            log_retention_days=args.log_retention_days,
        )
    except SettingsError as exc:
        print(f"sluicegate: cannot start: {exc}", file=sys.stderr)
        return 2
    return serve.run(settings, worker=args.worker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluicegate",
        description="An AI gateway for privately hosted and commercial LLMs, compatible with Portkey's clients.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_serve(subparsers)
    # providers, configs: a custom host is checked by the same SSRF rules as the admin API and the gateway
    catalog_commands.register(subparsers,
                              check_host=lambda settings: Guard(GuardPolicy.from_settings(settings)).check_url)
    store_commands.register(subparsers)  # db upgrade | current
    vault_commands.register(subparsers)  # vault rotate | status | generate-key
    access_commands.register(subparsers)  # admin-token reset
    keys_commands.register(subparsers)  # workspaces, keys, audit
    limits_commands.register(subparsers)  # limits show | set | clear | reset-usage
    telemetry_commands.register(subparsers)  # logs tail | show
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    for position, argument in enumerate(arguments, 1):
        if not _is_utf8(argument):  # names and notes are stored as text: the store refused them with a traceback
            print(f"sluicegate: error: argument {position} is not valid UTF-8", file=sys.stderr)
            return 2
    args = build_parser().parse_args(arguments)
    # The server logs what it does; a management command prints its result and only warnings besides
    # (no "Context impl SQLiteImpl" / "Will assume non-transactional DDL" from Alembic on every command).
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


def _is_utf8(argument: str) -> bool:
    """Bytes that are not UTF-8 reach Python as lone surrogates (the file system's error handler)."""
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
