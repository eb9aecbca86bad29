"""``sluicegate workspaces|keys|audit`` in-process, on both dialects: the whole life of a workspace and its
keys, catalog entries placed in a workspace, and what the audit trail says about it all."""

from __future__ import annotations

import os

import orjson
import pytest

from sluicegate.cli import main
from sluicegate.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUICEGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str]):
    store = ["--data-dir", str(settings.data_dir)] + (
        ["--database-url", settings.database_url] if settings.database_url else [])
    seen: list[str] = []

    def run(*argv: str, code: int = 0) -> dict | list | str:
        got = main([*argv, *store, "--json"])
        out, err = capsys.readouterr()
        seen.append(out + err)
        assert got == code, err
        return orjson.loads(out) if code == 0 and out.strip().startswith(("{", "[")) else out + err

    run.seen = seen  # type: ignore[attr-defined]
    return run


def test_workspace_and_key_lifecycle(cli, tmp_path) -> None:
    space = cli("workspaces", "create", "Team A", "--no-direct", "--allow-provider", "team-llm")
    assert space["slug"] == "team-a" and space["permissions"]["direct_integration"] is False
    assert space["permissions"]["providers"] == ["team-llm"]
    assert [w["slug"] for w in cli("workspaces", "list")] == ["default", "team-a"]
    assert cli("workspaces", "show", "team-a")["id"] == space["id"]

    cli("providers", "add", "team-llm", "--custom-host", "http://127.0.0.1:9/v1", "--workspace", "team-a")
    path = tmp_path / "config.json"
    path.write_text('{"provider": "@team-llm"}')
    cli("configs", "add", "team-config", "--file", str(path), "--workspace", "team-a")
    assert "not found" in cli("configs", "add", "elsewhere", "--file", str(path), code=1)  # @team-llm is team-a's

    made = cli("keys", "create", "--name", "ci", "--workspace", "team-a", "--scope", "completions.write",
               "--scope", "logs.list", "--config-id", "team-config", "--metadata", "team=a",
               "--expires-at", "2040-01-01T00:00:00Z", "--allow-model", "llama-3")
    secret = made["key"]
    assert secret.startswith("sg-") and made["workspace_id"] == space["id"]
    shown = cli("keys", "show", made["id"])
    assert shown["key"] == secret[:10] + "********" and shown["scopes"] == ["completions.write", "logs.list"]
    assert shown["defaults"] == {"config_id": "team-config", "metadata": {"team": "a"}}
    assert shown["permissions"]["models"] == ["llama-3"] and shown["expires_at"].startswith("2040-01-01")
    updated = cli("keys", "update", made["id"], "--name", "ci-2", "--no-direct")
    assert updated["name"] == "ci-2" and updated["permissions"]["direct_integration"] is False
    assert [k["id"] for k in cli("keys", "list", "--workspace", "team-a")] == [made["id"]]
    assert cli("keys", "revoke", made["id"])["status"] == "revoked"

    assert "still has 1 providers" in cli("workspaces", "rm", "team-a", code=1)
    assert "cannot be deleted" in cli("workspaces", "rm", "default", code=1)
    assert "not found" in cli("keys", "show", "no-such-key", code=1)

    events = cli("audit", "list", "--workspace", "team-a")
    assert [e["action"] for e in events] == ["api_key.revoke", "api_key.update", "api_key.create",
                                             "config.create", "provider.create", "workspace.create"]
    assert {e["actor"] for e in events} == {"cli"}
    assert sum(secret in text for text in cli.seen) == 1  # printed once, by `keys create`


# The CLI writes through the same repositories as the admin API: the same refusals, as an error line and
# exit code 1. (argv after `keys create --name x`, words of the error)
CLI_REFUSED = [
    (("--metadata", 'te"am=a'), "defaults.metadata: the key 'te\"am' must be non-empty, with no control"),
    (("--metadata", "te\\am=a"), "defaults.metadata: the key 'te\\\\am' must be non-empty"),
    (("--metadata", "te\tam=a"), "defaults.metadata: the key 'te\\tam' must be non-empty"),
    (("--metadata", "team=" + "x" * 129), "value of 'team' is longer than 128 characters"),
    (("--expires-at", "2001-01-01T00:00:00Z"),
     "expires_at: 2001-01-01T00:00:00+00:00 is not in the future; a key must be usable when it is made"),
    # Dropped without a word: the key was made, in no workspace.
    (("--type", "organisation", "--workspace", "default"), "--workspace: an organisation key belongs to no workspace"),
    (("--expires-at", "9999-12-31T23:59:59-12:00"), "expires_at: out of range"),  # "store unavailable", exit 2
]


@pytest.mark.parametrize(("argv", "words"), CLI_REFUSED, ids=[" ".join(a)[:40] for a, _ in CLI_REFUSED])
def test_keys_create_refusals(cli, argv: tuple[str, ...], words: str) -> None:
    said = cli("keys", "create", "--name", "refused", *argv, code=1)
    assert said.startswith("sluicegate: error: ") and words in said, said
    assert cli("keys", "list") == []  # nothing was made


def test_keys_update_refusals_change_nothing(cli) -> None:
    made = cli("keys", "create", "--name", "ci", "--metadata", "team=a", "--expires-at", "2100-01-01T00:00:00Z")
    for argv, words in ((("--metadata", "a\nb=c"), "defaults.metadata: the key 'a\\nb' must be non-empty"),
                        (("--expires-at", "2001-01-01T00:00:00Z"), "to stop a key now, revoke it")):
        said = cli("keys", "update", made["id"], *argv, code=1)
        assert words in said, said
    shown = cli("keys", "show", made["id"])
    assert shown["defaults"] == {"metadata": {"team": "a"}} and shown["expires_at"].startswith("2100-01-01")


@pytest.mark.parametrize("limit", ["0", "-1", "1001"])
def test_audit_list_refuses_a_limit_out_of_range(cli, limit: str) -> None:
    # 0 listed everything and -1 all but one, where the API answers 400.
    said = cli("audit", "list", "--limit", limit, code=1)
    assert said.strip() == "sluicegate: error: --limit must be an integer from 1 to 1000"


def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path) -> None:
    """`sluicegate keys list | head -1` said "store unavailable: BrokenPipeError" and exited 2."""
    import subprocess
    import sys

    script = ("import sys\nfrom sluicegate.cli.support import run\n"
              "async def listing(_):\n    for i in range(200000):\n        print('row', i)\n"
              "sys.exit(run(listing, None))\n")
    reader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None
    reader.stdout.read(10)
    reader.stdout.close()  # as head does after its line
    _, err = reader.communicate(timeout=60)
    assert reader.returncode == 0 and err == b"", err


def test_workspace_show_writes_what_a_terminal_would_act_on_as_escapes(settings, capsys) -> None:
    store = ["--data-dir", str(settings.data_dir)] + (
        ["--database-url", settings.database_url] if settings.database_url else [])
    assert main(["workspaces", "create", "Team C", "--description", "safe text\r\u202eevil\u2066", *store]) == 0
    capsys.readouterr()
    assert main(["workspaces", "show", "team-c", *store]) == 0
    out = capsys.readouterr().out
    assert all(line.isprintable() for line in out.split("\n")), out
    assert "safe text\\r\\u202eevil\\u2066" in out


def test_keys_update_changes_what_its_flags_name_and_keeps_the_rest(cli, tmp_path) -> None:
    """Restating one allow-list lifted the others (and direct integration came back); one default dropped the
    other: 'unspecified fields stay', inside permissions and defaults too."""
    path = tmp_path / "config.json"
    path.write_text('{"provider": "openai"}')
    cli("configs", "add", "kept-config", "--file", str(path))
    made = cli("keys", "create", "--name", "restricted", "--allow-provider", "lp", "--allow-model", "m1",
               "--no-direct", "--config-id", "kept-config", "--metadata", "team=a")
    updated = cli("keys", "update", made["id"], "--allow-config", "kept-config")
    assert updated["permissions"] == {"providers": ["lp"], "models": ["m1"], "configs": ["kept-config"],
                                      "direct_integration": False}
    updated = cli("keys", "update", made["id"], "--metadata", "env=prod")
    assert updated["defaults"] == {"config_id": "kept-config", "metadata": {"env": "prod"}}
    updated = cli("keys", "update", made["id"], "--name", "renamed")
    assert updated["permissions"]["models"] == ["m1"] and updated["defaults"]["config_id"] == "kept-config"
