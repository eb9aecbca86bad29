"""``sluicegate workspaces …``, ``sluicegate keys …`` and ``sluicegate audit list``: access control from the
command line, straight against the configured store (a running server sees a change within a second).
The secret of a new key is printed once; nothing else ever shows more than its prefix."""

from __future__ import annotations

import argparse
from typing import Any

from ..access.audit import MAX_PAGE, AuditFilter, list_events
from ..access.keys import KeyRepository
from ..access.model import KEY_TYPES, SUB_TYPES
from ..access.secrets import KeyHasher
from ..access.workspaces import WorkspaceRepository, resolve_workspace_id
from ..errors import BadRequest
from .support import (
    CLI_ACTOR,
    command,
    open_store,
    print_json,
    print_table,
    report,
    settings_from_args,
    store_options,
    terminal_safe,
    wants_json,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_workspaces(subparsers)
    _register_keys(subparsers)
    audit = subparsers.add_parser("audit", help="the audit trail of admin actions")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="{list}")
    listing = actions.add_parser("list", parents=[store_options()], help="newest first")
    for name in ("workspace", "actor", "action"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=command(_audit_list))


def _permission_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-provider", action="append", metavar="SLUG", help="only these @slugs (repeatable)")
    parser.add_argument("--allow-model", action="append", metavar="NAME", help="only these models (repeatable)")
    parser.add_argument("--allow-config", action="append", metavar="ID", help="only these saved configs")
    parser.add_argument("--no-direct", action="store_true",
                        help="refuse direct integration (provider/custom host named in the request)")


def _permissions(args: argparse.Namespace) -> dict[str, Any]:
    return {"providers": args.allow_provider, "models": args.allow_model, "configs": args.allow_config,
            "direct_integration": not args.no_direct}


def _register_workspaces(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("workspaces", help="workspaces (keys, providers, configs and logs belong to one)")
    actions = group.add_subparsers(dest="workspaces_command", required=True, metavar="{create,list,show,rm}")
    common = store_options()
    create = actions.add_parser("create", parents=[common], help="create a workspace")
    create.add_argument("name")
    create.add_argument("--slug")
    create.add_argument("--description")
    _permission_options(create)
    create.set_defaults(func=command(_workspaces_create))
    actions.add_parser("list", parents=[common], help="list workspaces").set_defaults(func=command(_workspaces_list))
    for name, func, text in (("show", _workspaces_show, "show one workspace"),
                             ("rm", _workspaces_rm, "delete an empty workspace")):
        parser = actions.add_parser(name, parents=[common], help=text)
        parser.add_argument("workspace", help="id or slug")
        parser.set_defaults(func=command(func))


def _register_keys(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("keys", help="gateway API keys")
    actions = group.add_subparsers(dest="keys_command", required=True, metavar="{create,list,show,update,revoke}")
    common = store_options()
    create = actions.add_parser("create", parents=[common], help="create a key; its secret is printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--type", choices=KEY_TYPES, default="workspace")
    create.add_argument("--sub-type", choices=SUB_TYPES, default="service")
    create.add_argument("--workspace", help="id or slug (workspace keys only; default: default)")
    _key_options(create)
    create.set_defaults(func=command(_keys_create))
    listing = actions.add_parser("list", parents=[common], help="list keys (prefixes only)")
    listing.add_argument("--workspace")
    listing.set_defaults(func=command(_keys_list))
    show = actions.add_parser("show", parents=[common], help="show one key")
    show.add_argument("id")
    show.set_defaults(func=command(_keys_show))
    update = actions.add_parser("update", parents=[common], help="change a key; unspecified fields stay")
    update.add_argument("id")
    update.add_argument("--name")
    _key_options(update)
    update.set_defaults(func=command(_keys_update))
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key (refused from then on)")
    revoke.add_argument("id")
    revoke.set_defaults(func=command(_keys_revoke))


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description")
    parser.add_argument("--scope", action="append", metavar="SCOPE",
                        help="Portkey scope name (repeatable; default completions.write)")
    parser.add_argument("--config-id", help="default saved config (requests naming no config or provider)")
    parser.add_argument("--metadata", action="append", metavar="KEY=VALUE", help="default metadata")
    parser.add_argument("--expires-at", metavar="ISO8601")
    _permission_options(parser)


def _key_body(args: argparse.Namespace, *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``keys create``, or of ``keys update`` given the key as it is (``current``): then what the
    flags do not name stays as it is, inside ``defaults`` and ``permissions`` too (restating one allow-list
    lifted the others, and one default dropped the other)."""
    body: dict[str, Any] = {}
    for name in ("name", "description", "expires_at"):
        if getattr(args, name, None) is not None:
            body[name] = getattr(args, name)
    if args.scope is not None:
        body["scopes"] = args.scope
    defaults: dict[str, Any] = {}
    if args.config_id:
        defaults["config_id"] = args.config_id
    if args.metadata:
        pairs = [item.partition("=") for item in args.metadata]
        if any(not sep or not k for k, sep, _ in pairs):
            raise BadRequest("--metadata: expected KEY=VALUE")
        defaults["metadata"] = {k: v for k, _, v in pairs}
    if defaults:
        body["defaults"] = {**(current or {}).get("defaults", {}), **defaults}
    if current is None:
        body["permissions"] = _permissions(args)
        return body
    given = {name: value for name, value in _permissions(args).items() if value is not None}
    given.pop("direct_integration")
    if args.no_direct:
        given["direct_integration"] = False
    if given:
        body["permissions"] = {**current["permissions"], **given}
    return body


def _print_key(args: argparse.Namespace, view: dict[str, Any]) -> None:
    if wants_json(args):
        print_json(view)
        return
    for name in ("id", "key", "name", "type", "workspace_id", "status", "scopes", "defaults", "permissions",
                 "expires_at", "created_at"):
        print(f"{name}: {terminal_safe(str(view.get(name)))}")


async def _keys_create(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    body = {**_key_body(args), "type": args.type, "sub_type": args.sub_type}
    if args.type == "workspace":
        body["workspace_id"] = args.workspace or "default"
    elif args.workspace is not None:  # it was dropped without a word
        raise BadRequest("--workspace: an organisation key belongs to no workspace")
    async with open_store(settings) as engine:
        view, secret = await KeyRepository(engine, KeyHasher.load(settings)).create(body, actor=CLI_ACTOR)
    if wants_json(args):
        print_json({**view, "key": secret})
        return
    print(f"API key {view['id']} created. Its secret, shown this once (only a keyed hash is stored):\n{secret}")


async def _keys_list(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        workspace = await resolve_workspace_id(engine, args.workspace) if args.workspace else None
        views = await KeyRepository(engine, KeyHasher.load(settings)).list(workspace_id=workspace)
    if wants_json(args):
        print_json(views)
        return
    print_table(["ID", "KEY", "NAME", "TYPE", "WORKSPACE", "STATUS", "EXPIRES"],
                [[v["id"], v["key"], v["name"], v["type"], v["workspace_id"], v["status"], v["expires_at"]]
                 for v in views])


async def _keys_show(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        _print_key(args, await KeyRepository(engine, KeyHasher.load(settings)).get(args.id))


async def _keys_update(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        repo = KeyRepository(engine, KeyHasher.load(settings))
        body = _key_body(args, current=await repo.get(args.id))
        _print_key(args, await repo.update(args.id, body, actor=CLI_ACTOR))


async def _keys_revoke(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        _print_key(args, await KeyRepository(engine, KeyHasher.load(settings)).revoke(args.id, actor=CLI_ACTOR))


async def _workspaces_create(args: argparse.Namespace) -> None:
    body = {"name": args.name, "slug": args.slug, "description": args.description,
            "permissions": _permissions(args)}
    async with open_store(settings_from_args(args)) as engine:
        _print_workspace(args, await WorkspaceRepository(engine).create(body, actor=CLI_ACTOR))


async def _workspaces_list(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        views = await WorkspaceRepository(engine).list()
    if wants_json(args):
        print_json(views)
        return
    print_table(["ID", "SLUG", "NAME", "DESCRIPTION"], [[v["id"], v["slug"], v["name"], v["description"]]
                                                       for v in views])


async def _workspaces_show(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        _print_workspace(args, await WorkspaceRepository(engine).get(args.workspace))


async def _workspaces_rm(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        await WorkspaceRepository(engine).remove(args.workspace, actor=CLI_ACTOR)
    report(args, f"workspace {args.workspace} deleted", {"deleted": args.workspace})


def _print_workspace(args: argparse.Namespace, view: dict[str, Any]) -> None:
    if wants_json(args):
        print_json(view)
        return
    for name in ("id", "slug", "name", "description", "defaults", "permissions", "created_at"):
        print(f"{name}: {terminal_safe(str(view.get(name)))}")


async def _audit_list(args: argparse.Namespace) -> None:
    if not 1 <= args.limit <= MAX_PAGE:  # as the API answers it, not clamped (0 listed all, -1 all but one)
        raise BadRequest(f"--limit must be an integer from 1 to {MAX_PAGE}")
    async with open_store(settings_from_args(args)) as engine:
        workspace = await resolve_workspace_id(engine, args.workspace) if args.workspace else None
        events = await list_events(engine, AuditFilter(workspace_id=workspace, actor=args.actor,
                                                       action=args.action, limit=args.limit))
    if wants_json(args):
        print_json(events)
        return
    print_table(["ID", "WHEN (ms)", "ACTOR", "ACTION", "RESOURCE", "WORKSPACE"],
                [[e["id"], e["created_ms"], e["actor"], e["action"], e["resource_id"], e["workspace_id"]]
                 for e in events])
