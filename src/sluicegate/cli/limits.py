"""``sluicegate limits show|set|clear|reset-usage KIND ID``: usage limits from the command line, straight
against the configured store (a running server sees a change within a second).

KIND is ``key`` (an API key id), ``workspace`` (a workspace id or slug) or ``provider`` (a catalog provider
slug); an unknown one is refused, as the admin API answers 404.
``reset-usage`` resets budget usage in Redis (with SLUICEGATE_REDIS_URL); without Redis the usage lives in
the running server's memory: reset it there with ``POST /admin/api/limits/{kind}/{id}/reset``, or here while
the server is stopped.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import delete

from .. import numerals
from ..errors import BadRequest
from ..limits.store import KINDS, LimitRepository
from ..server.limits_admin import stored_subject  # named as the admin API names it
from ..store.limit_tables import limit_usage
from .support import command, open_store, print_json, report, settings_from_args, store_options


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("limits", help="usage limits of API keys, workspaces and catalog providers")
    actions = group.add_subparsers(dest="limits_command", required=True, metavar="{show,set,clear,reset-usage}")
    common = store_options()
    for name, func, text in (("show", _show, "show a subject's limits"),
                             ("set", _set, "set rate limits, a budget, prices"),
                             ("clear", _clear, "remove every limit of a subject"),
                             ("reset-usage", _reset, "budget usage back to zero")):
        parser = actions.add_parser(name, parents=[common], help=text)
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("id", help="API key id, workspace id or provider slug")
        if name == "set":
            _set_options(parser)
        parser.set_defaults(func=command(func))


def _set_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", action="append", metavar="TYPE:UNIT:VALUE",
                        help="e.g. requests:rpm:100 or tokens:rpd:100000 (repeatable; replaces the list)")
    parser.add_argument("--budget", metavar="TYPE:CREDIT_LIMIT", help="e.g. cost:50 or tokens:1000000")
    parser.add_argument("--reset", choices=("daily", "weekly", "monthly", "none"),
                        help="when the budget starts again (UTC boundaries; default none)")
    parser.add_argument("--alert", type=float, help="alert threshold of the budget")
    parser.add_argument("--price", action="append", metavar="MODEL:INPUT:OUTPUT[:PER]",
                        help="provider price per 1000 (or PER = 1000000) tokens; MODEL * for any model")
    parser.add_argument("--no-rate", action="store_true", help="remove the rate limits")
    parser.add_argument("--no-budget", action="store_true", help="remove the budget")


def _number(text: str, what: str) -> float:
    value = numerals.decimal(text)  # "nan", "inf", "1e400" and "1_0" are floats to Python, never a limit or a price
    if value is None:
        raise BadRequest(f"{what}: {text[:32]!r} is not a number")
    return value


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    # Both ways at once was taken as "remove" or "set" by which flag the code read first.
    if args.no_rate and args.rate:
        raise BadRequest("--no-rate and --rate contradict each other: give one")
    if args.no_budget and args.budget:
        raise BadRequest("--no-budget and --budget contradict each other: give one")
    body: dict[str, Any] = {}
    if args.no_rate or args.rate:
        body["rate_limits"] = []
        for rate in args.rate or ():
            parts = rate.split(":")
            if len(parts) != 3:
                raise BadRequest(f"--rate {rate!r}: expected TYPE:UNIT:VALUE, e.g. requests:rpm:100")
            value = _number(parts[2], "--rate")
            body["rate_limits"].append({"type": parts[0], "unit": parts[1],
                                        "value": int(value) if value.is_integer() else value})
    if not args.budget and (args.reset is not None or args.alert is not None):  # they were dropped silently
        raise BadRequest("--reset and --alert describe a budget: give --budget with them")
    if args.no_budget:
        body["usage_limits"] = None
    elif args.budget:
        kind, _, credit = args.budget.partition(":")
        body["usage_limits"] = {"type": kind, "credit_limit": _number(credit, "--budget"),
                                "periodic_reset": None if args.reset in (None, "none") else args.reset,
                                "alert_threshold": args.alert}
    if args.price:
        prices = {}
        for price in args.price:
            model, numbers = _price_parts(price)
            per = _number(numbers[2], "--price PER") if len(numbers) == 3 else 1000
            if not float(per).is_integer():  # 1000.7 was stored as 1000
                raise BadRequest(f"--price {price!r}: PER is 1000 or 1000000")
            prices[model] = {"input": _number(numbers[0], "--price"), "output": _number(numbers[1], "--price"),
                             "per": int(per)}
        body["prices"] = prices
    if not body:
        raise BadRequest("nothing to set: give --rate, --budget, --price, --no-rate or --no-budget")
    return body


def _price_parts(price: str) -> tuple[str, list[str]]:
    """``MODEL:INPUT:OUTPUT[:PER]`` → (model, its two or three numbers). A model name may hold colons
    (Ollama's ``llama3.1:8b``): the numbers are the last fields that read as numbers, PER only when the
    three before it do."""
    parts = price.split(":")
    for count in (3, 2):
        if len(parts) > count and all(numerals.decimal(part) is not None for part in parts[-count:]):
            return ":".join(parts[:-count]), parts[-count:]
    if len(parts) < 3:
        raise BadRequest(f"--price {price!r}: expected MODEL:INPUT:OUTPUT[:PER]")
    return ":".join(parts[:-2]), parts[-2:]  # the caller says which of the two is not a number


async def _show(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        subject_id, _ = await stored_subject(engine, args.kind, args.id)
        print_json(await LimitRepository(engine).get(args.kind, subject_id))


async def _set(args: argparse.Namespace) -> None:
    body = body_of(args)
    async with open_store(settings_from_args(args)) as engine:
        subject_id, _ = await stored_subject(engine, args.kind, args.id)  # a slug stored as typed bound nobody
        print_json(await LimitRepository(engine).set(args.kind, subject_id, body))


async def _clear(args: argparse.Namespace) -> None:
    async with open_store(settings_from_args(args)) as engine:
        subject_id, _ = await stored_subject(engine, args.kind, args.id)
        await LimitRepository(engine).delete(args.kind, subject_id)
    report(args, f"limits of {args.kind} {args.id} removed", {"removed": {"kind": args.kind, "id": args.id}})


async def _reset(args: argparse.Namespace) -> None:
    settings = settings_from_args(args)
    async with open_store(settings) as engine:
        subject_id, _ = await stored_subject(engine, args.kind, args.id)
    prefix = f"{args.kind}:{subject_id}:"
    if settings.redis_url:
        from ..limits.backend import StoreUnavailable
        from ..limits.redis_backend import RedisCounters

        counters = RedisCounters(settings.redis_url)
        try:
            await counters.reset(prefix)
        except StoreUnavailable as exc:  # its text names the failure, never the URL (it may hold a password)
            raise BadRequest(f"usage not reset: {exc}") from None
        finally:
            await counters.close()
    else:
        async with open_store(settings) as engine, engine.begin() as conn:
            await conn.execute(delete(limit_usage).where(limit_usage.c.counter.startswith(prefix, autoescape=True)))
    report(args, f"usage of {args.kind} {args.id} reset", {"reset": {"kind": args.kind, "id": args.id}})
