"""A failure while the gateway shuts down is reported as that, with its first line only; a failure before
it serves is still "cannot start". Both used to print "cannot start" (a budget save that failed at shutdown,
on a deleted database, did)."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from sqlalchemy.exc import OperationalError

from sluicegate import serve
from sluicegate.settings import Settings

SECRET = "sk-never-printed-0123456789"


class FailingRunner:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def cleanup(self) -> None:
        raise self.error


async def test_a_failed_cleanup_is_a_shutdown_failure_with_its_first_line_only() -> None:
    error = OperationalError("DELETE FROM limit_usage WHERE counter = ?", (SECRET,), Exception("disk I/O error"))
    assert "\n" in str(error) and SECRET in str(error)  # SQLAlchemy puts the statement and parameters below
    with pytest.raises(serve.ShutdownFailed) as failed:
        await serve.stop_serving(FailingRunner(error))  # type: ignore[arg-type]
    assert str(failed.value) == "OperationalError: (builtins.Exception) disk I/O error"
    assert failed.value.__cause__ is error


async def test_a_failure_without_text_is_named_by_its_type() -> None:
    with pytest.raises(serve.ShutdownFailed, match="^RuntimeError$"):
        await serve.stop_serving(FailingRunner(RuntimeError()))  # type: ignore[arg-type]


@pytest.mark.parametrize(("raised", "code", "said"), [
    (serve.ShutdownFailed("OperationalError: disk I/O error"), 1,
     "sluicegate: shutdown did not complete: OperationalError: disk I/O error\n"),
    (ValueError("SLUICEGATE_ALLOWED_HOSTS: not a host name"), 2,
     "sluicegate: cannot start: SLUICEGATE_ALLOWED_HOSTS: not a host name\n"),
    # SQLAlchemy's second line is a link to its documentation: the first says it all
    (sqlalchemy.exc.DatabaseError("SELECT 1", None, Exception("file is not a database")), 2,
     "sluicegate: cannot start: (builtins.Exception) file is not a database\n"),
])
def test_run_tells_a_failed_shutdown_from_a_failed_start(monkeypatch, capsys, raised, code, said) -> None:
    async def serve_forever(settings, *, reuse_port, announce=True, ready=None):
        raise raised

    monkeypatch.setattr(serve, "serve_forever", serve_forever)
    assert serve.run(Settings()) == code
    assert capsys.readouterr().err == said


def test_a_port_already_taken_is_cannot_start_and_nothing_else(tmp_path) -> None:
    """The store, the access snapshot and the request log are set up before the port is bound; when the bind
    fails they are closed before the failure is reported, not left to the garbage collector at exit (whose
    traceback of their generators came before "cannot start")."""
    import socket

    from tests.gateway import GatewayProcess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        gateway = GatewayProcess(tmp_path / "data", port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="gateway exited with 2") as failed:
            gateway.start()
    said = str(failed.value)
    assert "sluicegate: cannot start:" in said and "address already in use" in said
    assert "Traceback" not in said and "asynchronous generator" not in said, said
    # Found before set-up: no first admin token was made, stored and printed ("shown once") for a server that
    # never ran. The next start, on a free port, makes and prints it.
    assert "Admin token" not in said, said
    started = GatewayProcess(tmp_path / "data").start()
    try:
        assert "Admin token (shown once, keep it)" in started.log()
    finally:
        started.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_start_that_fails_after_set_up_prints_no_admin_token(tmp_path, workers: str) -> None:
    """A cache without its Redis failed after the first admin token was made, stored and printed "shown once";
    the next, good start printed none. The token now comes once the server listens."""
    from tests.gateway import GatewayProcess

    failing = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_CACHE_BACKEND": "redis", "SLUICEGATE_REDIS_URL": None,
                                                     "SLUICEGATE_CACHE_REDIS_URL": None},
                             args=("--workers", workers))
    with pytest.raises(RuntimeError, match="gateway exited with 2") as failed:
        failing.start()
    assert "SLUICEGATE_CACHE_BACKEND=redis needs" in str(failed.value) and "Admin token" not in str(failed.value)
    started = GatewayProcess(tmp_path / "data", args=("--workers", workers)).start()
    try:
        assert started.log().count("Admin token (shown once, keep it)") == 1
    finally:
        started.stop()


@pytest.mark.parametrize("damage", ["newer_schema", "unwritable_wal", "journal_is_a_file"])
def test_a_data_dir_the_gateway_cannot_use_is_cannot_start_and_nothing_else(tmp_path, damage: str) -> None:
    """Each failed after the store had opened: an Alembic or StoreUnwritable traceback (exit 1), or the store's
    generator finalised at exit with its traceback above "cannot start"."""
    import sqlite3

    from tests.gateway import GatewayProcess

    data = tmp_path / "data"
    first = GatewayProcess(data)
    first.start()
    first.stop()
    if damage == "newer_schema":
        with sqlite3.connect(data / "sluicegate.db") as db:
            db.execute("UPDATE alembic_version SET version_num = 'fffffffffff0'")
    elif damage == "unwritable_wal":
        (data / "sluicegate.db-wal").unlink(missing_ok=True)
        (data / "sluicegate.db-wal").mkdir()
    else:
        journal = data / "journal"
        for entry in journal.iterdir():
            entry.unlink()
        journal.rmdir()
        journal.write_text("")
    with pytest.raises(RuntimeError, match="gateway exited with 2") as failed:
        GatewayProcess(data).start()
    said = str(failed.value)
    assert "sluicegate: cannot start:" in said
    assert "Traceback" not in said and "asynchronous generator" not in said, said
    if damage == "journal_is_a_file":  # it said "[Errno 17] File exists", as if that were the fault
        assert f"{data / 'journal'} is not a directory" in said and "File exists" not in said, said
