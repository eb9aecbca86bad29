"""Live validation of a config being edited: every problem the save would refuse, each with its JSON path.

The same checks as saving (catalog/configs.py): JSON syntax (with line and column), an object, no inlined
credential, the Gateway Config schema (config/schema.py, which reports ``path: targets,1,retry, message:
...``) and every ``@slug`` naming a catalog provider. Pure: the catalog's slugs and the SSRF guard's
request-time check are handed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from typing import Any

import orjson

from ..catalog.configs import MAX_CONFIG_BYTES, inlined_secret, referenced_slugs
from ..config.parse import LEGACY_CONFIG
from ..config.schema import validate_config
from ..errors import BadRequest
from ..jsontext import stored_json_object
from ..providers import registry

_ENTRY = re.compile(r"^path: (?P<path>.*?), message: (?P<message>.*)$", re.DOTALL)


def problem(path: list[str | int], message: str, **extra: Any) -> dict[str, Any]:
    return {"path": path, "pointer": pointer(path), "message": message, **extra}


def pointer(path: list[str | int]) -> str:
    """``["targets", 1, "retry"]`` → ``targets[1].retry`` (the root is ``$``)."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return "$" + text


def _parts(written: str) -> list[str | int]:
    return [int(part) if part.isascii() and part.isdigit() else part for part in written.split(",") if part != ""]


def config_problems(text: str, check_host: Callable[[str], object] | None,
                    slugs: Collection[str]) -> list[dict[str, Any]]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        return [problem([], f"larger than {MAX_CONFIG_BYTES // 1024} KiB")]
    try:
        tree = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return [problem([], f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                        line=exc.lineno, column=exc.colno)]
    try:  # what saving refuses, said here too: the walks below recursed past Python's limit (a 500)
        stored_json_object(text, invalid="{error}", what="config")
    except BadRequest as refused:
        return [problem([], refused.message.removeprefix("config: "))]
    if not isinstance(tree, dict):
        return [problem([], "expected a JSON object")]
    if "options" in tree:
        return [problem(["options"], LEGACY_CONFIG)]
    found: list[dict[str, Any]] = []
    if (where := inlined_secret(tree)) is not None:
        found.append(problem(_secret_path(where), "credentials cannot be stored in a saved config: add a catalog "
                                                  'provider with the credential as a header and use "@slug"'))
    _, errors = validate_config(tree, known_providers=registry.PROVIDERS.keys(), check_host=check_host)
    for entry in errors:
        match = _ENTRY.match(entry)
        found.append(problem(_parts(match["path"]), match["message"]) if match else problem([], entry))
    missing = set(referenced_slugs(text)) - set(slugs)
    found += [problem(path, f"Provider @{slug} not found in the catalog") for path, slug in _slug_paths(tree, [])
              if slug in missing]
    return found


def _slug_paths(node: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], str]]:
    """Where each catalog slug is named: ``provider: "@slug"``, ``virtual_key``, ``override_params.model``
    (the same places as catalog/configs.referenced_slugs, with their paths)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _slug_paths(item, [*path, index])
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        here = [*path, key]
        if key == "provider" and isinstance(value, str) and value.startswith("@"):
            yield here, value[1:]
        elif key == "virtual_key" and isinstance(value, str) and value:
            yield here, value.lstrip("@")
        elif key == "override_params" and isinstance(value, dict):
            model = value.get("model")
            if isinstance(model, str) and model.startswith("@") and "/" in model:
                yield [*here, "model"], model[1:].split("/", 1)[0]
        if isinstance(value, (dict, list)):
            yield from _slug_paths(value, here)


def _secret_path(where: str) -> list[str | int]:
    """``config.targets[0].api_key`` (catalog/configs.py's form) → ``["targets", 0, "api_key"]``."""
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", where.removeprefix("config")):
        parts.append(int(index) if index else name)
    return parts
