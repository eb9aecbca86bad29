"""One end-to-end SSRF scenario, run INSIDE a throw-away network namespace (see ``harness.py``).

    ip netns exec NS python -m tests.ssrf.scenario PLAN.json   →   one JSON report on stdout

It starts trap listeners (``listeners.py``) and a real ``sluicegate serve``, sends the plan's requests
one after another with httpx, and reports for each: the status, the body, the trap hits it caused and
the gateway's ``ssrf_blocked`` log lines. Requests go one at a time and every trap answers with
``connection: close``, so a hit between a request's start and its answer belongs to that request. Hits
that arrive before the first request or after the last answer are reported separately
(``stray_hits``), so nothing goes unseen.

The namespace has only ``lo``: whatever the gateway does, no packet can leave the machine. This script
assumes that and never checks it itself; the harness made the namespace.

Plan (JSON): ``workdir``, ``deadline_s``, ``gateway`` {``listen``, ``env``}, ``trap_ports``,
``resolve`` (names to look up with aiohttp's ThreadedResolver, as the gateway does), ``requests``
[{``id``, ``method``, ``path``, ``headers``, ``body``}].
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from tests.gateway import GatewayProcess
from tests.ssrf.listeners import Traps

SETTLE_S = 0.3  # after the last answer: time for a (wrongly) delayed connection attempt to show up
REQUEST_TIMEOUT_S = 15.0
_STAGE = re.compile(r"ssrf_blocked stage=(\w+)")


async def resolve_all(names: list[str]) -> dict[str, Any]:
    """What aiohttp's ThreadedResolver (getaddrinfo, the gateway's inner resolver) answers here."""
    resolver = aiohttp.ThreadedResolver()
    answers: dict[str, Any] = {}
    for name in names:
        try:
            found = await resolver.resolve(name, 80, family=socket.AF_UNSPEC)
            answers[name] = sorted({result["host"] for result in found})
        except OSError as exc:
            answers[name] = f"error: {exc}"
    await resolver.close()
    return answers


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def _log_size(gateway: GatewayProcess) -> int:
    return gateway.log_path.stat().st_size if gateway.log_path.exists() else 0


def _security_lines(gateway: GatewayProcess, start: int) -> list[str]:
    with open(gateway.log_path, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if "ssrf_blocked" in line]


async def send(client: httpx.AsyncClient, gateway: GatewayProcess, traps: Traps, spec: dict) -> dict:
    """One request; its answer, the trap hits it caused and the refusals the gateway logged for it."""
    hits_before, log_before = len(traps.hits), _log_size(gateway)
    # Header values as UTF-8 bytes: httpx would refuse non-ASCII text, a hostile client sends it anyway.
    headers = [(name, value.encode()) for name, value in spec.get("headers", {}).items()]
    body = spec.get("body")
    try:
        response = await client.request(spec.get("method", "POST"), gateway.url + spec["path"],
                                        headers=headers, content=body.encode() if body is not None else None)
        answer: dict[str, Any] = {"status": response.status_code, "body": _body(response)}
    except httpx.HTTPError as exc:
        answer = {"status": None, "body": f"{type(exc).__name__}: {exc}"}
    await asyncio.sleep(0)  # let an accept that raced the answer be recorded against this request
    lines = _security_lines(gateway, log_before)
    answer["hits"] = [hit.as_dict() for hit in traps.hits[hits_before:]]
    answer["security_log"] = lines
    answer["stages"] = [match.group(1) for line in lines if (match := _STAGE.search(line))]
    return answer


async def run_requests(plan: dict, gateway: GatewayProcess, traps: Traps) -> dict[str, dict]:
    cases: dict[str, dict] = {}
    async with httpx.AsyncClient(trust_env=False, timeout=REQUEST_TIMEOUT_S) as client:
        for spec in plan["requests"]:
            cases[spec["id"]] = await send(client, gateway, traps, spec)
    return cases


async def run(plan: dict) -> dict:
    workdir = Path(plan["workdir"])
    traps = await Traps(plan["trap_ports"]).start()
    # These scenarios judge the SSRF guard, often on a gateway listening beyond loopback, where API keys
    # are required by default: admission is tested in tests/access, so it is switched off here.
    env = {"SLUICEGATE_AUTH": "off", **(plan["gateway"].get("env") or {})}
    gateway = GatewayProcess(workdir / "gateway", env=env, listen=plan["gateway"]["listen"])
    try:
        await asyncio.to_thread(gateway.start)
        report: dict[str, Any] = {"resolved": await resolve_all(plan.get("resolve", []))}
        first = len(traps.hits)
        report["cases"] = await run_requests(plan, gateway, traps)
        last = len(traps.hits)
        await asyncio.sleep(SETTLE_S)
        # Hits no request can be blamed for: before the first one, or after the last answer.
        report["stray_hits"] = [hit.as_dict() for hit in traps.hits[:first] + traps.hits[last:]]
        return report
    finally:
        await asyncio.to_thread(gateway.stop)
        await traps.stop()
        print(gateway.log()[-4000:], file=sys.stderr)  # the harness shows it when something goes wrong


async def main(plan_path: str) -> None:
    plan = orjson.loads(Path(plan_path).read_bytes())
    async with asyncio.timeout(plan.get("deadline_s", 90)):
        report = await run(plan)
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
