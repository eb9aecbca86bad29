from __future__ import annotations

import orjson
import pytest

from sluicegate.catalog import ConfigRepository, NotInCatalog, ProviderRepository, referenced_slugs
from sluicegate.catalog.configs import inlined_secret
from sluicegate.errors import BadRequest, ConfigError, Conflict

from .helpers import new_provider

FALLBACK = orjson.dumps(
    {"strategy": {"mode": "fallback"}, "targets": [{"provider": "@my-llm"}, {"provider": "@other"}]}
).decode()


@pytest.fixture
async def providers(engine, vault) -> ProviderRepository:
    repo = ProviderRepository(engine, vault)
    await repo.add(new_provider("my-llm"))
    await repo.add(new_provider("other"))
    return repo


@pytest.mark.parametrize(
    ("config", "slugs"),
    [
        ({"provider": "@a"}, ("a",)),
        ({"provider": "openai", "api_key": ""}, ()),
        ({"virtual_key": "vk-legacy"}, ("vk-legacy",)),
        (
            {"targets": [{"targets": [{"provider": "@deep"}]}, {"override_params": {"model": "@b/gpt-4o"}}]},
            ("deep", "b"),
        ),
        ({"override_params": {"model": "gpt-4o"}}, ()),
        ({"targets": [{"provider": "@a"}, {"provider": "@a"}]}, ("a",)),
    ],
)
def test_referenced_slugs(config, slugs) -> None:
    assert referenced_slugs(orjson.dumps(config).decode()) == slugs


def test_inlined_secret_path() -> None:
    assert inlined_secret({"targets": [{"provider": "@a"}, {"provider": "openai", "api_key": "sk"}]}) == (
        "config.targets[1].api_key"
    )
    assert inlined_secret({"provider": "openai", "api_key": ""}) is None


async def test_crud(engine, providers) -> None:
    repo = ConfigRepository(engine)
    view = await repo.add("fallback-prod", FALLBACK, notes="primary then backup")
    assert view.id == "fallback-prod" and view.text == FALLBACK and view.notes == "primary then backup"
    assert [c.id for c in await repo.list()] == ["fallback-prod"]
    replaced = await repo.replace("fallback-prod", '{"provider": "@other"}')
    assert replaced.text == '{"provider": "@other"}' and replaced.notes == "primary then backup"
    assert (await repo.replace("fallback-prod", replaced.text, notes="")).notes == ""
    await repo.remove("fallback-prod")
    assert await repo.list() == []
    with pytest.raises(NotInCatalog, match="^Config fallback-prod not found$"):
        await repo.get("fallback-prod")


async def test_duplicate_id_is_409(engine, providers) -> None:
    repo = ConfigRepository(engine)
    await repo.add("c1", FALLBACK)
    with pytest.raises(Conflict, match="^Config c1 already exists$"):
        await repo.add("c1", FALLBACK)


@pytest.mark.parametrize(
    ("config_id", "text", "message"),
    [
        ("Bad_Id", "{}", "^id: must be 1-63 lowercase"),
        ("c", "{not json", "^config: not valid JSON"),
        ("c", "[1, 2]", "^config: expected a JSON object$"),
        ("c", '{"provider": "@ghost"}', "^Provider @ghost not found in the catalog$"),
        ("c", '{"provider": "openai", "api_key": "sk-x"}', "^config.api_key: credentials cannot be stored"),
        # camelCase is the same field to the schema: it was stored in clear, and sent upstream.
        ("c", '{"provider": "openai", "apiKey": "sk-x"}', "^config.apiKey: credentials cannot be stored"),
        ("c", '{"targets": [{"provider": "openai", "awsSecretAccessKey": "x"}]}',
         r"^config.targets\[0\].awsSecretAccessKey: credentials cannot be stored"),
        (
            "c",
            '{"targets": [{"provider": "@my-llm"}, {"override_params": {"model": "@nope/m"}}]}',
            "@nope not found",
        ),
    ],
)
async def test_bad_configs_are_400(engine, providers, config_id: str, text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        await ConfigRepository(engine).add(config_id, text)


@pytest.mark.parametrize("notes", ["a\x00b", "\x1b[31mred"])
async def test_notes_with_a_control_character_are_a_400(engine, providers, notes: str) -> None:
    """A NUL was a 500 on PostgreSQL (it refuses one in text); an ESC rewrote the terminal of the CLI's listing."""
    repo = ConfigRepository(engine)
    with pytest.raises(BadRequest, match="^notes: no control characters"):
        await repo.add("c1", FALLBACK, notes=notes)
    await repo.add("c1", FALLBACK, notes="two\nlines\tand a tab")
    with pytest.raises(BadRequest, match="^notes: no control characters"):
        await repo.replace("c1", FALLBACK, notes=notes)
    assert (await repo.get("c1")).notes == "two\nlines\tand a tab"


async def test_injected_validator_runs_and_its_errors_pass_through(engine, providers) -> None:
    seen: list[str] = []

    def validate(text: str) -> None:
        seen.append(text)
        if "loadbalance" in text:
            raise ConfigError(["strategy.mode: loadbalance needs weights"])

    repo = ConfigRepository(engine, validate=validate)
    await repo.add("ok", FALLBACK)
    with pytest.raises(ConfigError) as caught:
        await repo.add("lb", '{"strategy": {"mode": "loadbalance"}, "targets": []}')
    assert caught.value.errors == ["strategy.mode: loadbalance needs weights"]
    assert seen[0] == FALLBACK and len(seen) == 2
    assert [c.id for c in await repo.list()] == ["ok"]


async def test_provider_in_use_cannot_be_deleted(engine, providers) -> None:
    configs = ConfigRepository(engine)
    await configs.add("b-uses", FALLBACK)
    await configs.add("a-uses", '{"override_params": {"model": "@my-llm/llama"}}')
    with pytest.raises(Conflict, match="^Provider @my-llm is used by saved config\\(s\\): a-uses, b-uses$"):
        await providers.remove("my-llm")
    await configs.remove("a-uses")
    await configs.remove("b-uses")
    await providers.remove("my-llm")


async def test_gateway_config_schema_as_validator(engine, providers) -> None:
    from sluicegate.catalog.configs import gateway_config_validator

    repo = ConfigRepository(engine, validate=gateway_config_validator())
    await repo.add("ok", FALLBACK)
    with pytest.raises(ConfigError) as caught:
        await repo.add("bad", '{"strategy": {"mode": "sideways"}, "targets": [{"provider": "@my-llm"}]}')
    assert caught.value.errors and "sideways" not in caught.value.message
