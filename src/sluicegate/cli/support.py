"""What every management subcommand (``cli/catalog.py``, ``cli/store.py``, …) shares: store
options, the Settings they build, running a coroutine, mapping errors to exit codes, printing tables or JSON.

Exit codes: 0 done; 1 the request was refused (bad input, unknown name, conflict); 2 the gateway is not
usable as configured (master key, database URL or server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.admin_token import AdminTokenError
from ..errors import ConfigError, GatewayError, first_line
from ..settings import Settings, SettingsError, flag_type, settings_from_env
from ..store import StoreConfigError, opened_store
from ..store.engine import StoreUnwritable, with_driver_errors
from ..vault import Vault, VaultError
from ..vault.rotate import refuse_a_new_key_beside_lost_ones

CLI_ACTOR = "cli"  # the audit trail's actor for changes made on the command line
EXIT_OK, EXIT_REFUSED, EXIT_UNUSABLE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
DATA_DIR_ENV = "SLUICEGATE_DATA_DIR"
DEFAULT_DATA_DIR = ".sluicegate"  # Settings.data_dir's default, relative to where the gateway runs


def store_options() -> argparse.ArgumentParser:
    """A parent parser for leaf subcommands. SUPPRESS defaults: a value given before the subcommand (on the
    top-level parser) is not overwritten by the leaf's default."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--data-dir",
        type=flag_type("data_dir"),
        default=argparse.SUPPRESS,
        help="data directory (default: $SLUICEGATE_DATA_DIR or ./.sluicegate)",
    )
    parent.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="postgresql://… (default: $SLUICEGATE_DATABASE_URL or SQLite in the data dir)",
    )
    parent.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    return parent


def settings_from_args(args: argparse.Namespace, *, store_only: bool = False) -> Settings:
    """The settings of a management command: the gateway's store, never a new empty one by accident.

    With ``--data-dir`` or ``SLUICEGATE_DATA_DIR`` that directory is used (created if new: it was named).
    Otherwise the command looks for the gateway's ``.sluicegate`` in the current directory and its parents,
    so it finds the store of a gateway started with ``make serve`` from anywhere inside the clone, and
    refuses, saying where it looked, when there is none. ``store_only``: a command that reads the database
    alone (the request log) needs no data directory when a database URL names the store.
    """
    settings = settings_from_env(
        data_dir=getattr(args, "data_dir", None), database_url=getattr(args, "database_url", None)
    )
    if getattr(args, "data_dir", None) is None and not os.environ.get(DATA_DIR_ENV):
        try:
            settings = replace(settings, data_dir=find_data_dir(Path.cwd()))
        except StoreConfigError:
            if not (store_only and settings.database_url):
                raise
    return settings


def find_data_dir(start: Path) -> Path:
    for directory in (start, *start.parents):
        candidate = directory / DEFAULT_DATA_DIR
        if candidate.is_dir():
            return candidate
    raise StoreConfigError(
        f"no gateway data directory found: looked for {DEFAULT_DATA_DIR} in {start} and every parent. Run "
        f"the command where the gateway runs (`make serve` keeps it in the repository root), or name the "
        f"gateway's data directory: {DATA_DIR_ENV}=/path/to/{DEFAULT_DATA_DIR} (or --data-dir)"
    )


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def open_store(settings: Settings) -> contextlib.AbstractAsyncContextManager[AsyncEngine]:
    """The store, migrated: a CLI command works on a fresh data dir before any server ever started."""
    return opened_store(settings)


async def opened_vault(settings: Settings, engine: AsyncEngine) -> Vault:
    """The vault for ``settings`` (its key file made on first use), refused when the file was missing while
    the store holds secrets sealed by the keys it held (vault/rotate.py)."""
    vault = Vault.load(settings)
    await refuse_a_new_key_beside_lost_ones(engine, vault)
    return vault


def run(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int | None]],
        args: argparse.Namespace) -> int:
    """Run an async command; turn the errors we know into one clear line on stderr and an exit code."""
    try:
        return asyncio.run(command(args)) or EXIT_OK
    except StoreUnwritable as exc:  # not a refusal of what was asked: the store cannot be used as configured
        return fail(exc.message.partition("; see the gateway's log")[0], EXIT_UNUSABLE)
    except GatewayError as exc:
        details = "".join(f"\n  {line}" for line in exc.errors) if isinstance(exc, ConfigError) else ""
        return fail(exc.message + details, EXIT_REFUSED)
    except (VaultError, StoreConfigError, AdminTokenError, SettingsError) as exc:
        return fail(str(exc), EXIT_UNUSABLE)
    except KeyboardInterrupt:  # Ctrl-C is how `logs tail -f` ends: no traceback for it
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader stopped early (`| head`): what it took was printed, as for any tool
        _quiet_stdout()
        return EXIT_OK
    except with_driver_errors(SQLAlchemyError, OSError) as exc:
        return fail(f"store unavailable: {type(exc).__name__}: {first_line(exc)}", EXIT_UNUSABLE)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's flush at exit would hit the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def fail(message: str, code: int) -> int:
    shown = "\n".join(terminal_safe(line) for line in message.split("\n"))  # its lines may quote what was asked
    print(f"sluicegate: error: {shown}", file=sys.stderr)
    return code


def report(args: argparse.Namespace, message: str, value: Any) -> None:
    """What a command did: ``value`` as JSON with ``--json`` (which some commands ignored), else ``message``."""
    if wants_json(args):
        print_json(value)
    else:
        print(message)


def print_json(value: Any) -> None:
    sys.stdout.write(terminal_safe_json(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()) + "\n")


def terminal_safe_json(text: str) -> str:
    """JSON text with each character a terminal would act on written as its JSON escape, which is valid where
    such a character can stand (inside a string: JSON allows no other raw control character), and carriage
    returns as line ends (whitespace either way): the same JSON, which cannot rewrite the operator's
    terminal. orjson escapes C0 controls itself, but not C1 ones (U+009B starts an escape sequence) nor
    bidi overrides."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if all(line.isprintable() for line in text.split("\n")):
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else _json_escape(c) for c in text)


def _json_escape(character: str) -> str:
    code = ord(character)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: JSON escapes it as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def terminal_safe(text: str) -> str:
    """``text`` with each character a terminal would act on (an escape sequence, a carriage return, a bidi
    override) written as its escape: table cells hold what clients sent (a model name, a user), and a client
    could otherwise recolour, retitle or clear the operator's terminal, or overwrite the lines above."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [["" if c is None else terminal_safe(str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def command(
    func: Callable[[argparse.Namespace], Coroutine[Any, Any, int | None]],
) -> Callable[[argparse.Namespace], int]:
    """Wrap an async command as the sync ``args.func(args) -> exit code`` that cli/main.py calls."""

    def sync(args: argparse.Namespace) -> int:
        return run(func, args)

    sync.__name__ = func.__name__
    sync.__doc__ = func.__doc__
    return sync
