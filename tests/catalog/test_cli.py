"""The management CLI, in-process (fast, both dialects) and as a real ``python -m sluicegate`` process."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from sluicegate.catalog import Catalog
from sluicegate.cli import main
from sluicegate.settings import Settings
from sluicegate.store import create_engine, head_revision, upgrade
from sluicegate.store.periodic_reads import periodic_reads
from sluicegate.store.polling import VersionWatch
from sluicegate.vault import Vault

from .helpers import API_KEY, SECRET

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUICEGATE_"):
            monkeypatch.delenv(name)
    # The CLI checks custom hosts with the gateway's SSRF rules: the operator trusts the tests' model hosts.
    monkeypatch.setenv("TRUSTED_CUSTOM_HOSTS", "gpu.lan,h,localhost,127.0.0.1")


class Cli:
    def __init__(self, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        self.store = ["--data-dir", str(settings.data_dir)]
        if settings.database_url:
            self.store += ["--database-url", settings.database_url]
        self.capsys = capsys
        self.seen = ""

    def __call__(self, *argv: str, json: bool = False) -> tuple[int, str, str]:
        code = main([*argv, *self.store, *(["--json"] if json else [])])
        out, err = self.capsys.readouterr()
        self.seen += out + err
        return code, out, err

    def json(self, *argv: str):
        code, out, err = self(*argv, json=True)
        assert code == 0, err
        return orjson.loads(out)


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str]):
    runner = Cli(settings, capsys)
    yield runner
    assert SECRET not in runner.seen and API_KEY not in runner.seen and "PLAINTEXT" not in runner.seen


ADD = [
    "providers",
    "add",
    "my-llm",
    "--custom-host",
    "http://gpu.lan:8000/v1",
    "--header",
    f"Authorization: {SECRET}",
    "--model",
    "llama-3",
    "--model",
    "qwen",
    "--default-model",
    "qwen",
    "--forward-header",
    "X-Trace",
]


def test_provider_round_trip(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = cli(*ADD)
    assert code == 0 and out.startswith("added @my-llm") and "Authorization: Bearer sk-…2e1b" in out
    listed = cli.json("providers", "list")
    assert [p["slug"] for p in listed] == ["my-llm"] and listed[0]["models"] == ["llama-3", "qwen"]
    code, out, _ = cli("providers", "list")
    assert out.splitlines()[0].split() == ["SLUG", "SPEC", "CUSTOM", "HOST", "AUTH", "HEADERS", "MODELS"]
    assert "@my-llm" in out and "Authorization" in out
    monkeypatch.setenv("MY_KEY", API_KEY)
    shown = cli.json(
        "providers",
        "update",
        "my-llm",
        "--header-env",
        "x-api-key=MY_KEY",
        "--remove-header",
        "authorization",
        "--clear-models",
        "--clear-default-model",
        "--notes",
        "gpu box",
    )
    assert (
        shown["headers"] == {"x-api-key": "xk-…alue"}
        and shown["models"] == []
        and shown["notes"] == "gpu box"
    )
    assert shown["forward_headers"] == ["x-trace"] and shown["default_model"] is None
    assert cli.json("providers", "show", "my-llm") == shown
    assert cli("providers", "rm", "my-llm")[:2] == (0, "removed @my-llm\n")
    assert cli.json("providers", "list") == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["providers", "show", "ghost"], "Provider @ghost not found in the catalog"),
        (["providers", "rm", "ghost"], "Provider @ghost not found in the catalog"),
        (["providers", "update", "ghost", "--notes", "x"], "Provider @ghost not found in the catalog"),
        (["providers", "add", "Bad_Slug", "--custom-host", "http://h/v1"], "slug: must be 1-63 lowercase"),
        (
            ["providers", "add", "ok", "--custom-host", "gopher://h"],
            "custom_host: must be an http:// or https:// URL",
        ),
        (
            ["providers", "add", "ok", "--custom-host", "http://h/v1", "--header", "no colon"],
            "--header: expected 'Name: value'",
        ),
        (
            ["providers", "add", "ok", "--custom-host", "http://h/v1", "--header", "Bad Name: v"],
            "headers: invalid header name",
        ),
        (
            ["providers", "add", "ok", "--custom-host", "http://h/v1", "--header-env", "X=UNSET_VAR"],
            "--header-env: expected NAME=ENV_VAR",
        ),
        (["configs", "show", "ghost"], "Config ghost not found"),
    ],
)
def test_refusals_exit_1_with_one_clear_line(cli: Cli, argv: list[str], message: str) -> None:
    code, out, err = cli(*argv)
    assert code == 1 and out == ""
    assert err.startswith(f"sluicegate: error: {message}"), err


def test_duplicate_is_refused(cli: Cli) -> None:
    assert cli(*ADD)[0] == 0
    code, _, err = cli(*ADD)
    assert code == 1 and err == "sluicegate: error: Provider @my-llm already exists\n"


def test_configs_round_trip(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli(*ADD)
    path = tmp_path / "cfg.json"
    path.write_text('{"strategy": {"mode": "fallback"}, "targets": [{"provider": "@my-llm"}]}')
    code, out, _ = cli("configs", "add", "prod", "--file", str(path), "--notes", "fallback")
    assert code == 0 and out == "saved config prod (use it with x-portkey-config: prod)\n"
    assert cli("configs", "show", "prod")[1] == path.read_text() + "\n"
    assert [c["id"] for c in cli.json("configs", "list")] == ["prod"]
    code, _, err = cli("providers", "rm", "my-llm")
    assert code == 1 and err == "sluicegate: error: Provider @my-llm is used by saved config(s): prod\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"provider": "@my-llm"}'))
    updated = cli.json("configs", "update", "prod", "--file", "-")
    assert updated["config"] == '{"provider": "@my-llm"}' and updated["notes"] == "fallback"
    code, _, err = cli("configs", "add", "bad", "--file", str(tmp_path / "missing.json"))
    assert code == 1 and "--file: cannot read" in err
    path.write_text('{"provider": "@ghost"}')
    code, _, err = cli("configs", "add", "bad", "--file", str(path))
    assert code == 1 and err == "sluicegate: error: Provider @ghost not found in the catalog\n"
    path.write_text('{"strategy": {"mode": "sideways"}, "targets": [{"provider": "@my-llm"}]}')
    code, _, err = cli("configs", "add", "bad", "--file", str(path))  # the Gateway Config schema applies
    assert code == 1 and err.startswith("sluicegate: error: Invalid config passed\n  ")
    assert cli("configs", "rm", "prod")[:2] == (0, "removed config prod\n")
    assert cli("providers", "rm", "my-llm")[0] == 0


def test_injected_config_validator(settings: Settings, capsys, tmp_path: Path) -> None:
    import argparse

    from sluicegate.cli import catalog as commands
    from sluicegate.errors import ConfigError

    calls = []

    def factory(got_settings: Settings):
        def validate(text: str) -> None:
            calls.append(got_settings.data_dir)
            raise ConfigError(["targets: at least one target is required"])

        return validate

    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(), config_validator=factory)
    path = tmp_path / "c.json"
    path.write_text('{"targets": []}')
    args = parser.parse_args(
        [
            "configs",
            "add",
            "c",
            "--file",
            str(path),
            "--data-dir",
            str(settings.data_dir),
            *(["--database-url", settings.database_url] if settings.database_url else []),
        ]
    )
    assert args.func(args) == 1
    assert capsys.readouterr().err == (
        "sluicegate: error: Invalid config passed\n  targets: at least one target is required\n"
    )
    assert calls == [settings.data_dir]


def test_db_vault_and_admin_token_commands(cli: Cli) -> None:
    head = head_revision()  # the newest migration, whichever subsystem added it
    assert cli.json("db", "upgrade")["to"] == head
    assert cli.json("db", "current") == {"current": head, "head": head}
    cli(*ADD)
    status = cli.json("vault", "status")
    assert [k["secrets"] for k in status["keys"]] == [1] and status["keys"][0]["role"] == "encrypts"
    rotated = cli.json("vault", "rotate", "--settle", "0")
    assert rotated["reencrypted"] == 1 and rotated["retired_key_ids"] == [status["keys"][0]["key_id"]]
    token = cli.json("admin-token", "reset")["admin_token"]
    assert token.startswith("sgadm_") and len(token) > 40


def test_vault_rotate_with_a_single_env_key_explains(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assert main(["vault", "generate-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(key) == 44 and key.endswith("=")
    monkeypatch.setenv("SLUICEGATE_MASTER_KEY", key)
    code, _, err = cli("vault", "rotate")
    assert code == 2 and "put a new key first (SLUICEGATE_MASTER_KEY=NEW,OLD" in err


def test_store_errors_exit_2(tmp_path: Path, capsys) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["providers", "list", "--database-url", "mysql://x@y/z", *data]) == 2
    assert "unsupported scheme 'mysql'" in capsys.readouterr().err
    assert main(["providers", "list", "--database-url", "postgresql://nobody@127.0.0.1:1/none", *data]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sluicegate: error: store unavailable:") and len(err.splitlines()) == 1


@pytest.mark.postgres
def test_a_postgresql_role_or_database_that_does_not_exist_exits_2_in_one_line(tmp_path: Path, capsys,
                                                                                pg_url: str) -> None:
    # asyncpg raises these itself, unwrapped by SQLAlchemy: a traceback and exit 1, in the CLI and at start.
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    data = ["--data-dir", str(tmp_path / "data")]
    for wrong in (url.set(database="no_such_database_here"), url.set(username="no_such_role_here")):
        assert main(["providers", "list", "--database-url", wrong.render_as_string(hide_password=False),
                     *data]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sluicegate: error: store unavailable:") and len(err.splitlines()) == 1, err
        assert "does not exist" in err and "Traceback" not in err


def test_loose_key_file_exits_2(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    assert main(["providers", "list", "--data-dir", str(data)]) == 0
    (data / "master.key").chmod(0o644)
    assert main(["providers", "list", "--data-dir", str(data)]) == 2
    assert "chmod 600" in capsys.readouterr().err


# --------------------------------------------------------------------------------- a real second process

needs_main = pytest.mark.skipif(
    importlib.util.find_spec("sluicegate.__main__") is None,
    reason="python -m sluicegate needs sluicegate/__main__.py (core's cli package)",
)


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICEGATE_")}
    full_env.update(env or {}, PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "sluicegate", *argv], capture_output=True, text=True, env=full_env, timeout=60
    )


@needs_main
async def test_running_server_sees_a_cli_add_within_a_second(settings: Settings) -> None:
    engine = create_engine(settings)
    await upgrade(engine)
    catalog = Catalog(engine, Vault.load(settings))
    await catalog.start()
    watch = VersionWatch(periodic_reads(engine), 0.5)  # the server's reload loop, at the SQLite default interval
    watch.add(catalog.follower)
    watch.start()
    env = {"SLUICEGATE_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["SLUICEGATE_DATABASE_URL"] = settings.database_url
    try:
        done = await asyncio.to_thread(
            run_cli,
            "providers",
            "add",
            "from-cli",
            "--custom-host",
            "http://h/v1",
            "--header",
            f"Authorization: {SECRET}",
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        deadline = asyncio.get_running_loop().time() + 1.0
        while catalog.resolve("from-cli") is None:
            assert asyncio.get_running_loop().time() < deadline, "not visible within a second"
            await asyncio.sleep(0.02)
        assert dict(catalog.resolve("from-cli").headers) == {"Authorization": SECRET}
        listed = await asyncio.to_thread(run_cli, "providers", "list", "--json", env=env)
        assert [p["slug"] for p in orjson.loads(listed.stdout)] == ["from-cli"]
    finally:
        await watch.stop()
        await engine.dispose()


@needs_main
def test_cli_process_exit_codes(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "d")]
    assert run_cli("providers", "show", "ghost", *data).returncode == 1
    usage = run_cli("providers", "add", *data)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_show_writes_what_a_terminal_would_act_on_as_escapes(cli: Cli, tmp_path: Path) -> None:
    # Stored text an admin API client chose: a raw CR, the 8-bit CSI (U+009B) and a bidi override.
    code, _, err = cli("providers", "add", "ctl", "--custom-host", "http://gpu.lan:8000/v1", "--model",
                       "mo\u009b2J\u202edel", "--notes", "harmless note\rOVERWRITTEN")
    assert code == 0, err
    code, out, _ = cli("providers", "show", "ctl")
    assert code == 0 and all(line.isprintable() for line in out.split("\n")), out
    assert "harmless note\\rOVERWRITTEN" in out and "mo\\x9b2J\\u202edel" in out
    path = tmp_path / "ctl.json"
    path.write_text('{"provider": "openai", "override_params": {"model": "x\u009b2J\u202ey"}}')
    assert cli("configs", "add", "ctl", "--file", str(path))[0] == 0
    code, out, _ = cli("configs", "show", "ctl")
    assert code == 0 and all(line.isprintable() for line in out.split("\n")), out
    assert orjson.loads(out) == orjson.loads(path.read_text())  # the same JSON, still a config to save again


def test_catalog_changes_made_here_are_in_the_audit_trail(cli: Cli, tmp_path: Path) -> None:
    """Only the admin API audited providers and configs: the CLI's changes were missing from the trail."""
    assert cli(*ADD)[0] == 0
    assert cli("providers", "update", "my-llm", "--notes", "gpu box")[0] == 0
    path = tmp_path / "c.json"
    path.write_text('{"provider": "@my-llm"}')
    assert cli("configs", "add", "c1", "--file", str(path))[0] == 0
    assert cli("configs", "update", "c1", "--file", str(path), "--notes", "n")[0] == 0
    assert cli("configs", "rm", "c1")[0] == 0
    assert cli("providers", "rm", "my-llm")[0] == 0
    events = cli.json("audit", "list")
    assert [(e["actor"], e["action"]) for e in reversed(events)] == [
        ("cli", "provider.create"), ("cli", "provider.update"), ("cli", "config.create"), ("cli", "config.update"),
        ("cli", "config.delete"), ("cli", "provider.delete")]
    assert SECRET not in str(events)  # header values masked, as the API shows them


def test_admin_token_reset_json_is_json_when_the_env_token_is_set(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # The note about SLUICEGATE_ADMIN_TOKEN followed the JSON on stdout: a script's parser failed after the
    # new token, shown this once, was already stored.
    monkeypatch.setenv("SLUICEGATE_ADMIN_TOKEN", "abcdefghijklmnopqrstuvwxyz0123")
    code, out, err = cli("admin-token", "reset", json=True)
    assert code == 0 and orjson.loads(out)["admin_token"].startswith("sgadm_")
    assert "SLUICEGATE_ADMIN_TOKEN is set" in err



@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "m2", "--clear-models"], "--model and --clear-models contradict each other"),
    (["--default-model", "zz", "--clear-default-model"], "--default-model and --clear-default-model contradict"),
    (["--forward-header", "a", "--clear-forward-headers"], "--forward-header and --clear-forward-headers contradict"),
    (["--allow-entry", "127.0.0.1", "--clear-allow-entry"], "--allow-entry and --clear-allow-entry contradict"),
    # A typo left the credential in place, and said "updated".
    (["--remove-header", "Authorisation"], "--remove-header 'Authorisation': @my-llm has no such header (it has: "
                                           "authorization)"),
])
def test_providers_update_refuses_what_it_would_not_do(cli: Cli, argv: list[str], message: str) -> None:
    assert cli(*ADD)[0] == 0
    before = cli.json("providers", "show", "my-llm")
    code, _, err = cli("providers", "update", "my-llm", *argv)
    assert code == 1 and message in err, err
    assert cli.json("providers", "show", "my-llm") == before



def test_vault_status_of_a_store_without_secrets_needs_no_key(cli: Cli) -> None:
    # It said to restore "the key the stored secrets were sealed with" (exit 2) of a fresh data directory.
    code, out, err = cli("vault", "status")
    assert code == 0 and "no master key yet, and no secret stored" in out, err
    assert cli.json("vault", "status") == {"source": None, "keys": []}
