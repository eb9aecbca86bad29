"""The SQLite log writer keeps SQLite's temporary data in memory: a batch's multi-row INSERT needs a statement
journal, which SQLite otherwise spills to a file in the system's temporary directory once it passes 64 KiB
(created, written, unlinked at most commits of a few dozen rows). Kept in memory, a commit makes no file
outside the data directory: less work for the writer's thread, and nothing that needs the system's temporary
directory to be writable."""

from __future__ import annotations

import ctypes
import os
import random
import sqlite3
import sys
from pathlib import Path

import pytest

from .helpers import entry

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify")

IN_CREATE = 0x100
BODY = "x" * 2_000  # a few KB a row, as a logged chat request and answer


class CreatedFiles:
    """Files created in one directory, seen through inotify (SQLite unlinks its temporary files at once)."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self._fd >= 0, os.strerror(ctypes.get_errno())
        assert libc.inotify_add_watch(self._fd, os.fsencode(directory), IN_CREATE) >= 0

    def names(self) -> list[str]:
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return []
        names, offset = [], 0
        while offset < len(data):  # struct inotify_event: wd, mask, cookie, len, then the name
            length = int.from_bytes(data[offset + 12:offset + 16], "little")
            names.append(data[offset + 16:offset + 16 + length].rstrip(b"\0").decode())
            offset += 16 + length
        return names

    def close(self) -> None:
        os.close(self._fd)


@pytest.fixture
def sqlite_temp_directory(tmp_path):
    """Where SQLite makes this process's temporary files while the test runs (a process-wide setting)."""
    directory = tmp_path / "sqlite-tmp"
    directory.mkdir()
    setter = sqlite3.connect(":memory:")
    setter.execute(f"PRAGMA temp_store_directory = '{directory}'")
    created = CreatedFiles(directory)
    yield created
    created.close()
    setter.execute("PRAGMA temp_store_directory = ''")
    setter.close()


def _batch(rows: int):
    return [entry(request_body=BODY, response_body=BODY) for _ in range(rows)]


async def test_a_commit_of_a_full_batch_makes_no_temporary_file(sqlite_log_writer, sqlite_temp_directory):
    for _ in range(3):
        await sqlite_log_writer.write(_batch(200))
    assert sqlite_temp_directory.names() == []


async def test_the_directory_watch_sees_sqlite_s_spilled_statement_journal(tmp_path, sqlite_temp_directory):
    """The check above can fail: rows of that size through a connection with SQLite's defaults spill."""
    conn = sqlite3.connect(tmp_path / "plain.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, key TEXT NOT NULL, body TEXT, n INTEGER)")
    for column in ("key", "body", "n"):
        conn.execute(f"CREATE INDEX t_{column} ON t ({column})")
    # The statement journal keeps the pages that existed before the statement: a few commits in, a batch
    # touches enough of them (in every index) to pass 64 KiB.
    for _ in range(20):
        rows = [(os.urandom(16).hex(), os.urandom(16).hex(), BODY, random.randrange(10**9)) for _ in range(50)]
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES " + ",".join(["(?,?,?,?)"] * len(rows)) + " ON CONFLICT DO NOTHING",
                     [value for row in rows for value in row])
        conn.execute("COMMIT")
    conn.close()
    assert any(name.startswith("etilqs_") for name in sqlite_temp_directory.names())
