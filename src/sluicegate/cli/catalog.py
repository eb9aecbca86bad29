"""``sluicegate providers …`` and ``sluicegate configs …``: the catalog from the command line, straight
against the configured store (no server needed; a running server sees changes within a second)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import replace as with_changes
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.audit import record_event
from ..access.workspaces import resolve_workspace_id
from ..catalog.configs import ConfigRepository, ValidateConfig, gateway_config_validator
from ..catalog.entries import SPECS, UNSET, CheckHost, ProviderPatch, ProviderView, provider_input
from ..catalog.providers import ProviderRepository
from ..errors import BadRequest, is_utf8
from ..settings import Settings
from .support import (
    CLI_ACTOR,
    command,
    open_store,
    opened_vault,
    print_json,
    print_table,
    report,
    settings_from_args,
    store_options,
    terminal_safe,
    terminal_safe_json,
    wants_json,
)

# Injection points, built per invocation from the settings: the SSRF host check for custom hosts (default:
# none at save time; the guard still checks every request) and the saved-config validator (default: the
# Gateway Config schema without host checks, which run again when the config is used).
CheckHostFactory = Callable[[Settings], CheckHost | None]
ValidatorFactory = Callable[[Settings], ValidateConfig | None]


def register(
    subparsers: argparse._SubParsersAction,
    *,
    check_host: CheckHostFactory | None = None,
    config_validator: ValidatorFactory | None = None,
) -> None:
    """Add ``providers`` and ``configs``; the factories build the injected checks (see above)."""
    _register_providers(subparsers, check_host or (lambda _s: None))
    _register_configs(subparsers, config_validator or (lambda _s: gateway_config_validator()))


# ------------------------------------------------------------------------------------------- providers


def _register_providers(subparsers: argparse._SubParsersAction, check_host: CheckHostFactory) -> None:
    group = subparsers.add_parser("providers", help="Model Catalog providers (@slug)")
    actions = group.add_subparsers(
        dest="providers_command", required=True, metavar="{add,list,show,update,rm}"
    )
    common = store_options()
    add = actions.add_parser("add", parents=[common], help="add a provider")
    add.add_argument("slug")
    add.add_argument("--spec", default="openai", choices=SPECS, help="API spec (default openai)")
    add.add_argument(
        "--custom-host", required=True, metavar="URL", help="base URL incl. version, e.g. http://gpu:8000/v1"
    )
    _field_options(add)
    add.add_argument("--workspace", help="workspace id or slug (default: the default workspace)")
    add.set_defaults(func=command(_providers_add), check_host_factory=check_host)
    actions.add_parser("list", parents=[common], help="list providers").set_defaults(
        func=command(_providers_list)
    )
    show = actions.add_parser("show", parents=[common], help="show one provider (secrets masked)")
    show.add_argument("slug")
    show.set_defaults(func=command(_providers_show))
    update = actions.add_parser("update", parents=[common], help="change a provider; unspecified fields stay")
    update.add_argument("slug")
    update.add_argument("--spec", choices=SPECS)
    update.add_argument("--custom-host", metavar="URL")
    _field_options(update)
    update.add_argument("--remove-header", action="append", default=[], metavar="NAME")
    for name in CLEARED.values():
        update.add_argument(f"--clear-{name}", action="store_true")
    update.set_defaults(func=command(_providers_update), check_host_factory=check_host)
    remove = actions.add_parser(
        "rm", parents=[common], help="remove a provider (refused while a saved config uses it)"
    )
    remove.add_argument("slug")
    remove.set_defaults(func=command(_providers_rm))


def _field_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar='"NAME: VALUE"',
        help="auth header, stored encrypted (repeatable); see --header-env to keep it off argv",
    )
    parser.add_argument(
        "--header-env",
        action="append",
        default=[],
        metavar="NAME=ENV_VAR",
        help="auth header whose value is read from an environment variable",
    )
    parser.add_argument(
        "--model", action="append", default=None, metavar="NAME", help="allowed model (repeatable)"
    )
    parser.add_argument("--default-model", metavar="NAME")
    parser.add_argument(
        "--forward-header",
        action="append",
        default=None,
        metavar="NAME",
        help="client header forwarded verbatim (repeatable)",
    )
    parser.add_argument(
        "--allow-entry", metavar="HOST|IP|CIDR", help="SSRF allow-list entry this provider needs"
    )
    parser.add_argument("--notes")


def parse_header_args(headers: list[str], header_envs: list[str]) -> list[tuple[str, str]]:
    """``--header "Name: value"`` and ``--header-env Name=VAR`` → (name, value) pairs, in order given."""
    pairs = []
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep:
            raise BadRequest("--header: expected 'Name: value'")
        pairs.append((name.strip(), value.strip()))
    for item in header_envs:
        name, sep, variable = item.partition("=")
        if not sep or variable.strip() not in os.environ:
            raise BadRequest(f"--header-env: expected NAME=ENV_VAR with ENV_VAR set (got {item!r})")
        value = os.environ[variable.strip()]
        if not is_utf8(value):  # never shown: a credential
            raise BadRequest(f"--header-env: {variable.strip()} is not valid UTF-8")
        pairs.append((name.strip(), value))
    return pairs


async def _providers_add(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    raw = {
        "spec": args.spec,
        "custom_host": args.custom_host,
        "models": args.model or (),
        "default_model": args.default_model,
        "forward_headers": args.forward_header or (),
        "allow_entry": args.allow_entry,
        "notes": args.notes,
    }
    item = provider_input(
        args.slug, raw, parse_header_args(args.header, args.header_env), args.check_host_factory(settings)
    )
    async with open_store(settings) as engine:
        item = with_changes(item, workspace_id=await resolve_workspace_id(engine, args.workspace))
        view = await ProviderRepository(engine, await opened_vault(settings, engine)).add(item)
        await _audited(engine, "provider.create", "provider", view.slug, view.workspace_id, after=view.to_json())
    _show(view, args, f"added @{view.slug}")


async def _providers_update(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        repo = ProviderRepository(engine, await opened_vault(settings, engine),
                                  check_host=args.check_host_factory(settings))
        before = await repo.get(args.slug)
        view = await repo.update(args.slug, _patch_from_args(args, before))
        await _audited(engine, "provider.update", "provider", view.slug, view.workspace_id,
                       before=before.to_json(), after=view.to_json())
    _show(view, args, f"updated @{view.slug}")


async def _audited(engine: AsyncEngine, action: str, resource_type: str, resource_id: str,
                   workspace_id: str | None, *, before: Any = None, after: Any = None) -> None:
    """The audit trail's row for a catalog write made here, as the admin API adds one for its own (the CLI's
    providers and configs changes were missing from it): actor ``cli``, records as shown (never a secret)."""
    async with engine.begin() as conn:
        await record_event(conn, actor=CLI_ACTOR, action=action, resource_type=resource_type,
                           resource_id=resource_id, workspace_id=workspace_id, before=before, after=after)


# `providers update`'s flags that set a field, and the flag that clears it.
CLEARED = {"model": "models", "default-model": "default-model", "forward-header": "forward-headers",
           "allow-entry": "allow-entry"}


def _patch_from_args(args: argparse.Namespace, current: ProviderView) -> ProviderPatch:
    """The change the flags ask for, refused when they contradict each other (the clear won silently) or
    remove a header the provider does not have (a typo left the credential in place, "updated")."""
    def pick(value: Any, clear: bool, cleared: Any, field: str = "") -> Any:
        if clear and value is not None:
            raise BadRequest(f"--{field} and --clear-{CLEARED[field]} contradict each other")
        return cleared if clear else (UNSET if value is None else value)

    headers: list[tuple[str, str | None]] = list(parse_header_args(args.header, args.header_env))
    present = {name.lower() for name, _ in current.headers}
    for name in args.remove_header:
        if name.lower() not in present:
            raise BadRequest(f"--remove-header {name!r}: @{current.slug} has no such header (it has: "
                             f"{', '.join(sorted(present)) or 'none'})")
    headers += [(name, None) for name in args.remove_header]
    return ProviderPatch(
        spec=pick(args.spec, False, None),
        custom_host=pick(args.custom_host, False, None),
        models=pick(tuple(args.model) if args.model else None, args.clear_models, (), "model"),
        default_model=pick(args.default_model, args.clear_default_model, None, "default-model"),
        forward_headers=pick(
            tuple(args.forward_header) if args.forward_header else None, args.clear_forward_headers, (),
            "forward-header"),
        allow_entry=pick(args.allow_entry, args.clear_allow_entry, None, "allow-entry"),
        notes=pick(args.notes, False, None),
        headers=tuple(headers),
    )


async def _providers_list(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        views = await ProviderRepository(engine, await opened_vault(settings, engine)).list()
    if wants_json(args):
        print_json([v.to_json() for v in views])
        return
    rows = [
        (
            f"@{v.slug}",
            v.fields.spec,
            v.fields.custom_host,
            ", ".join(n for n, _ in v.headers) or "-",
            ", ".join(v.fields.models) or "(any)",
        )
        for v in views
    ]
    print_table(("SLUG", "SPEC", "CUSTOM HOST", "AUTH HEADERS", "MODELS"), rows)


async def _providers_show(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        view = await ProviderRepository(engine, await opened_vault(settings, engine)).get(args.slug)
    _show(view, args, None)


async def _providers_rm(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        repo = ProviderRepository(engine, await opened_vault(settings, engine))
        before = await repo.get(args.slug)
        await repo.remove(args.slug)
        await _audited(engine, "provider.delete", "provider", args.slug, before.workspace_id,
                       before=before.to_json())
    report(args, f"removed @{args.slug}", {"removed": args.slug})


def _show(view: ProviderView, args: argparse.Namespace, headline: str | None) -> None:
    if wants_json(args):
        print_json(view.to_json())
        return
    if headline:
        print(headline)
    data = view.to_json()
    data["headers"] = [f"{name}: {masked}" for name, masked in view.headers]
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':<17}{'' if shown in (None, '') else terminal_safe(str(shown))}")


# --------------------------------------------------------------------------------------------- configs


def _register_configs(subparsers: argparse._SubParsersAction, validator: ValidatorFactory) -> None:
    group = subparsers.add_parser("configs", help="saved Gateway Configs (x-portkey-config: ID)")
    actions = group.add_subparsers(dest="configs_command", required=True, metavar="{add,list,show,update,rm}")
    common = store_options()
    for name, helptext, func in (
        ("add", "save a new config", _configs_add),
        ("update", "replace a saved config", _configs_update),
    ):
        parser = actions.add_parser(name, parents=[common], help=helptext)
        parser.add_argument("id")
        parser.add_argument(
            "--file", required=True, type=Path, metavar="PATH", help="config JSON ('-': stdin)"
        )
        parser.add_argument("--notes")
        if name == "add":
            parser.add_argument("--workspace", help="workspace id or slug (default: the default workspace)")
        parser.set_defaults(func=command(func), validator_factory=validator)
    actions.add_parser("list", parents=[common], help="list saved configs").set_defaults(
        func=command(_configs_list)
    )
    for name, helptext, func in (
        ("show", "print a saved config", _configs_show),
        ("rm", "remove a saved config", _configs_rm),
    ):
        parser = actions.add_parser(name, parents=[common], help=helptext)
        parser.add_argument("id")
        parser.set_defaults(func=command(func))


def _read_config_file(path: Path) -> str:
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"--file: cannot read {path}: {exc}") from None


async def _configs_add(args: argparse.Namespace) -> None:
    await _configs_save(args, replace=False)


async def _configs_update(args: argparse.Namespace) -> None:
    await _configs_save(args, replace=True)


async def _configs_save(args: argparse.Namespace, *, replace: bool) -> None:
    settings = settings_from_args(args)
    text = _read_config_file(args.file)
    async with open_store(settings) as engine:
        repo = ConfigRepository(engine, validate=args.validator_factory(settings))
        if replace:
            before = await repo.get(args.id)
            view = await repo.replace(args.id, text, notes=UNSET if args.notes is None else args.notes)
            await _audited(engine, "config.update", "config", view.id, view.workspace_id,
                           before=before.to_json(), after=view.to_json())
        else:
            workspace = await resolve_workspace_id(engine, args.workspace)
            view = await repo.add(args.id, text, notes=args.notes, workspace_id=workspace)
            await _audited(engine, "config.create", "config", view.id, view.workspace_id, after=view.to_json())
    report(args, f"{'updated' if replace else 'saved'} config {view.id} (use it with x-portkey-config: {view.id})",
           view.to_json())


async def _configs_list(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        views = await ConfigRepository(engine).list()
    if wants_json(args):
        print_json([v.to_json() for v in views])
        return
    rows = [(v.id, v.updated_at.isoformat(timespec="seconds"), f"{len(v.text)} B", v.notes) for v in views]
    print_table(("ID", "UPDATED", "SIZE", "NOTES"), rows)


async def _configs_show(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        view = await ConfigRepository(engine).get(args.id)
    if wants_json(args):
        print_json(view.to_json())
    else:
        print(terminal_safe_json(view.text))


async def _configs_rm(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        repo = ConfigRepository(engine)
        before = await repo.get(args.id)
        await repo.remove(args.id)
        await _audited(engine, "config.delete", "config", args.id, before.workspace_id, before=before.to_json())
    report(args, f"removed config {args.id}", {"removed": args.id})
