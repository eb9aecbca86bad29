"""``sluicegate logs tail | show`` and the serve flag, against a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import time

import orjson
import pytest

from sluicegate.cli import build_parser, main
from sluicegate.serve import worker_argv
from sluicegate.settings import Settings
from sluicegate.telemetry.service import store_writer

from .helpers import entry


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLUICEGATE_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def seeded(engine, settings: Settings):
    rows = []
    for i in range(6):
        row, attempts = entry(1_750_000_000_000 + i * 1000)
        row.update(status=500 if i == 5 else 200, trace_id=f"cli-{i}", metadata={"team": f"t{i % 2}"})
        rows.append((row, attempts))
    writer = store_writer(engine)
    await writer.write(rows)
    await writer.close()
    store = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        store += ["--database-url", settings.database_url]
    return [r for r, _ in rows], store


async def run(capsys, *argv: str) -> tuple[int, str, str]:
    import asyncio

    code = await asyncio.to_thread(main, list(argv))  # the command runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


async def test_tail_prints_the_latest_oldest_first(seeded, capsys):
    rows, store = seeded
    code, out, _ = await run(capsys, "logs", "tail", "-n", "3", *store)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["time", "id", "status"]
    assert [line.split()[1] for line in lines[1:]] == [r["id"] for r in rows[3:]]


async def test_tail_writes_what_a_terminal_would_act_on_as_escapes(engine, settings: Settings, capsys):
    # A client chose the model and the user: they recoloured, retitled and cleared the operator's terminal.
    row, attempts = entry(1_750_000_000_000)
    row.update(model="esc\x1b[31mRED\x1b]0;TITLE\x07\rOVER", user="u\x1b[2Jx\u202egnp.exe")
    writer = store_writer(engine)
    await writer.write([(row, attempts)])
    await writer.close()
    store = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        store += ["--database-url", settings.database_url]
    code, out, _ = await run(capsys, "logs", "tail", "-n", "1", *store)
    assert code == 0 and all(line.isprintable() for line in out.split("\n")), out
    assert "esc\\x1b[31mRED\\x1b]0;TITLE\\x07\\rOVER" in out and "u\\x1b[2Jx\\u202egnp.exe" in out


async def test_tail_filters_and_json(seeded, capsys):
    rows, store = seeded
    code, out, _ = await run(capsys, "logs", "tail", "--status", "5xx", "--json", *store)
    assert code == 0 and orjson.loads(out)["trace_id"] == "cli-5"
    code, out, _ = await run(capsys, "logs", "tail", "--metadata", "team=t1", "--json", *store)
    assert code == 0 and out.count('"trace_id"') == 3


async def test_show_one_record_in_full(seeded, capsys):
    rows, store = seeded
    code, out, _ = await run(capsys, "logs", "show", rows[2]["id"], *store)
    record = orjson.loads(out)
    assert code == 0 and record["id"] == rows[2]["id"] and record["request_body"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["logs", "tail", "--status", "teapot"], "'status' takes"),
        (["logs", "tail", "-n", "0"], "-n must be a whole number from 1 to 500"),
        (["logs", "tail", "--metadata", "nokey"], "--metadata takes KEY=VALUE"),
        (["logs", "show", "0000"], "no request log record"),
    ],
)
async def test_refusals_exit_1_with_a_message(seeded, capsys, argv, message):
    _, store = seeded
    code, _, err = await run(capsys, *argv, *store)
    assert code == 1 and message in err


def test_retention_flag_reaches_settings_and_workers():
    args = build_parser().parse_args(["serve", "--log-retention-days", "7"])
    assert args.log_retention_days == 7
    assert worker_argv(Settings(log_retention_days=7))[-2:] == ["--log-retention-days", "7"]
    assert "--log-retention-days" not in worker_argv(Settings())
    argv = worker_argv(Settings(workers=3))  # each worker knows it has siblings (limits_admin refuses then)
    assert argv[argv.index("--workers") + 1] == "3"
    with pytest.raises(SystemExit) as refused:  # argparse refuses it with the setting's own range
        main(["serve", "--log-retention-days", "0"])
    assert refused.value.code == 2


async def test_follow_prints_every_record_written_between_two_polls(engine, settings: Settings, capsys, monkeypatch):
    """Each poll read only the newest -n records: 10 requests between two polls printed the last 2."""
    from sluicegate.cli import logs

    writer = store_writer(engine)
    now_ms = int(time.time() * 1000)
    await writer.write([entry(now_ms - 5000, trace_id="before")])
    polls = 0

    async def poll_then_stop(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 1:  # between the first print and the first poll: ten more, one of them started earlier
            await writer.write([entry(now_ms + i, trace_id=f"follow-{i}") for i in range(9)]
                               + [entry(now_ms - 60_000, trace_id="follow-late")])
        elif polls == 3:
            raise asyncio.CancelledError  # the operator's Ctrl-C

    monkeypatch.setattr(logs.asyncio, "sleep", poll_then_stop)
    store = ["--data-dir", str(settings.data_dir)] + (
        ["--database-url", settings.database_url] if settings.database_url else [])
    with pytest.raises(asyncio.CancelledError):
        await logs.logs_tail(build_parser().parse_args(["logs", "tail", "-f", "-n", "2", "--json", *store]))
    await writer.close()
    printed = [orjson.loads(block)["trace_id"] for block in capsys.readouterr().out.replace("}\n{", "}\0{").split("\0")]
    assert printed == ["before", "follow-late", *(f"follow-{i}" for i in range(9))], printed


async def test_tail_and_show_need_no_data_directory_when_a_database_url_names_the_store(
        seeded, settings: Settings, capsys, monkeypatch, tmp_path):
    # "no gateway data directory found", though the docs give --data-dir and --database-url as alternatives.
    rows, _ = seeded
    url = settings.database_url or f"sqlite:///{settings.sqlite_path}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = await run(capsys, "logs", "tail", "-n", "1", "--json", "--database-url", url)
    assert code == 0 and orjson.loads(out)["id"] == rows[-1]["id"], err
    code, out, err = await run(capsys, "logs", "show", rows[0]["id"], "--database-url", url)
    assert code == 0 and orjson.loads(out)["id"] == rows[0]["id"], err
    assert list(elsewhere.iterdir()) == []  # no data directory made on the way
