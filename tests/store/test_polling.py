"""The snapshots' reload loop (store/polling.py): one query of the version rows per step for every snapshot,
each snapshot handed its own row's version, and a failure (the store's, or one snapshot's reload) keeping
the others going and logged once per snapshot until it works again."""

from __future__ import annotations

import logging

from sluicegate.store.periodic_reads import periodic_reads
from sluicegate.store.polling import Follower, VersionWatch
from sluicegate.store.state import bump_access_version, bump_catalog_version


class Recorder:
    def __init__(self, state_id: int, name: str, *, fail: bool = False) -> None:
        self.versions: list[int] = []
        self.fail = fail
        self.follower = Follower(state_id, self.follow, logging.getLogger(f"t.{name}"),
                                 failed=lambda exc: f"{name} failed: {exc}", recovered=f"{name} works again")

    async def follow(self, version: int) -> None:
        if self.fail:
            raise RuntimeError("reload broke")
        self.versions.append(version)


class CountedReads:
    """The store's periodic reads, counted."""

    def __init__(self, engine) -> None:
        self.reads = periodic_reads(engine)
        self.calls = 0

    async def versions(self) -> dict[int, int]:
        self.calls += 1
        return await self.reads.versions()


async def test_one_read_gives_every_snapshot_its_own_version(engine) -> None:
    async with engine.begin() as conn:
        await bump_catalog_version(conn)
        await bump_access_version(conn)
        await bump_access_version(conn)
    catalog, access, limits = Recorder(1, "catalog"), Recorder(2, "access"), Recorder(3, "limits")
    reads = CountedReads(engine)
    watch = VersionWatch(reads, 60.0)
    for recorder in (catalog, access, limits):
        watch.add(recorder.follower)
    await watch.step()
    assert (catalog.versions, access.versions, limits.versions) == ([1], [2], [0])
    assert reads.calls == 1  # not one per snapshot


async def test_failures_are_logged_once_per_snapshot_and_never_stop_the_others(engine, monkeypatch,
                                                                                 caplog) -> None:
    good, broken = Recorder(1, "catalog"), Recorder(2, "access", fail=True)
    reads = periodic_reads(engine)
    watch = VersionWatch(reads, 60.0)
    watch.add(broken.follower)
    watch.add(good.follower)
    with caplog.at_level(logging.WARNING, logger="t"):
        for _ in range(3):
            await watch.step()
        assert good.versions == [0, 0, 0]  # the broken reload before it changed nothing for it
        assert caplog.text.count("access failed: reload broke") == 1

        async def down():
            raise ConnectionError("database went away")

        monkeypatch.setattr(reads, "versions", down)
        for _ in range(3):
            await watch.step()
        assert caplog.text.count("catalog failed: database went away") == 1
        assert caplog.text.count("access failed") == 1  # still failing: not logged again
        monkeypatch.undo()
        broken.fail = False
        await watch.step()
    assert good.versions == [0, 0, 0, 0] and broken.versions == [0]
    assert "catalog works again" in caplog.text and "access works again" in caplog.text
