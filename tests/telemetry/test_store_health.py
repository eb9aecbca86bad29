"""The store's health as /metrics and the operator log tell it: a locked database, a deleted one, a full disk.

Each case runs a real gateway on SQLite, creates the fault from the test, sends requests throughout, and
checks what the gateway says (the store_up gauge, drop counters, its log) and what it does (spool, 503).
"""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import time

import httpx
import pytest

from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

from .load import count_rows
from .test_outage import metric, until

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def chat(gateway: GatewayProcess, upstream) -> int:
    return httpx.post(f"{gateway.v1}/chat/completions", json=BODY, timeout=30, headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}).status_code


def test_store_up_reads_0_while_the_database_is_locked(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    database = tmp_path / "data" / "sluicegate.db"
    sent = 0
    try:
        assert chat(gateway, upstream) == 200
        sent += 1
        until(lambda: count_rows(database) == 1, what="the first row")
        assert metric(gateway, "sluicegate_log_store_up") == 1
        lock = sqlite3.connect(database, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock (readers still read: WAL)
        locked_at = time.monotonic()
        samples = []
        while time.monotonic() - locked_at < 12:  # two and more busy timeouts (5 s each)
            assert chat(gateway, upstream) == 200  # served all the same
            sent += 1
            if time.monotonic() - locked_at > 3:  # past the stall bound of the first write
                samples.append(metric(gateway, "sluicegate_log_store_up"))
            time.sleep(0.2)
        lock.execute("ROLLBACK")
        lock.close()
        assert samples and set(samples) == {0.0}, samples
        until(lambda: metric(gateway, "sluicegate_log_store_up") == 1, timeout=40, what="store_up back to 1")
        until(lambda: count_rows(database) == sent, timeout=40, what="every row, spooled ones replayed")
    finally:
        gateway.stop()
    assert count_rows(database) == sent


def admin_create(gateway: GatewayProcess, upstream, slug: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/admin/api/providers", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                      json={"slug": slug, "spec": "openai", "custom_host": upstream.v1}, timeout=30)


def test_a_deleted_database_fails_admin_writes_and_spools_the_log(tmp_path, upstream):
    data = tmp_path / "data"
    gateway = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        assert admin_create(gateway, upstream, "before").status_code == 201
        for name in ("sluicegate.db", "sluicegate.db-wal", "sluicegate.db-shm"):
            (data / name).unlink(missing_ok=True)
        refused = admin_create(gateway, upstream, "after")
        assert refused.status_code == 503, refused.text  # not 201 for a provider that would vanish
        assert "deleted or replaced" in refused.json()["message"]
        assert [chat(gateway, upstream) for _ in range(20)] == [200] * 20  # serving goes on
        until(lambda: metric(gateway, "sluicegate_log_records_spooled_total") == 20, what="20 records spooled")
        assert metric(gateway, "sluicegate_log_store_up") == 0
        assert metric(gateway, "sluicegate_log_records_written_total") == 0
        # Nothing re-creates the file while this process runs: an empty database in its place would pass a
        # probe (and could even get the deleted file's inode number back), then fail every write.
        time.sleep(1.5)  # three polls of the catalog and the readiness probe, and a probe of the log store
        assert not (data / "sluicegate.db").exists()
        assert metric(gateway, "sluicegate_log_store_up") == 0
    finally:
        gateway.stop()
    log = gateway.log()
    assert "was deleted or replaced" in log
    assert gateway.proc is not None and gateway.proc.returncode == 0, log[-2000:]  # shutdown is not a failure
    assert "Traceback" not in log and "cannot start" not in log, log[-4000:]
    assert log.count("the database cannot be written") <= 1, log[-4000:]  # said once, not at every poll
    # A restart makes a new database; the spooled records land in it, exactly once.
    restarted = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        try:
            until(lambda: count_rows(data / "sluicegate.db") == 20, what="the spool replayed")
        except AssertionError:  # what the restarted gateway saw, for whoever reads the failure
            left = sorted(p.name for d in ("spool", "journal") if (data / d).exists() for p in (data / d).iterdir())
            raise AssertionError(f"{count_rows(data / 'sluicegate.db')} rows; left on disk: {left}; gateway log:\n"
                                 f"{restarted.log()[-4000:]}") from None
        assert metric(restarted, "sluicegate_log_records_replayed_total") == 20
    finally:
        restarted.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs of the test's own, unmounted at the end; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(disk) -> None:
    """Write a filler file until the disk refuses (bounded by the mount's size)."""
    # Unbuffered: a buffered file keeps the part of a write that did not fit and raises ENOSPC again when it
    # is closed, which happens or not depending on where the disk's free space ends.
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            for _ in range(64):  # 16 MiB in 256 KiB writes, four times over at most
                handle.write(b"\0" * 256 * 1024)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            return
    raise AssertionError("the disk did not fill up")


def accounted(gateway: GatewayProcess) -> float:
    dropped = sum(metric(gateway, "sluicegate_log_records_dropped_total", reason=reason)
                  for reason in ("spool_failed", "spool_full", "queue_full", "rejected", "invalid"))
    return (metric(gateway, "sluicegate_log_records_written_total")
            + metric(gateway, "sluicegate_log_records_spooled_total") + dropped)


def test_a_full_disk_is_said_loudly_and_every_record_is_accounted_for(small_disk, upstream):
    data = small_disk / "data"
    gateway = GatewayProcess(data, env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    try:
        assert chat(gateway, upstream) == 200
        until(lambda: metric(gateway, "sluicegate_log_records_written_total") == 1, what="the first row")
        fill(small_disk)
        assert [chat(gateway, upstream) for _ in range(100)] == [200] * 100  # serving goes on
        until(lambda: accounted(gateway) == 101, what="every record written, spooled or counted as lost")
        created = admin_create(gateway, upstream, "on-a-full-disk")
        assert created.status_code in (201, 503), created.text  # never a 500
        lost = metric(gateway, "sluicegate_log_records_dropped_total", reason="spool_failed")
        if lost:  # the spool shares the full disk: the loss is counted, flagged and logged
            assert metric(gateway, "sluicegate_log_spool_up") == 0
            assert "request log spool cannot be written" in gateway.log()
        (small_disk / "filler").unlink()  # room again: the spool works, the store comes back
        assert [chat(gateway, upstream) for _ in range(10)] == [200] * 10
        until(lambda: metric(gateway, "sluicegate_log_store_up") == 1
              and metric(gateway, "sluicegate_log_spool_up") == 1, timeout=40, what="store and spool up")
        until(lambda: count_rows(data / "sluicegate.db") == 111 - lost, timeout=40, what="all rows not lost")
        if created.status_code == 201:  # what was acknowledged is stored
            assert admin_create(gateway, upstream, "on-a-full-disk").status_code == 409
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log()
