"""Budget usage of the in-memory counters is saved when it moved, not every interval (limits/registry.py),
and always at shutdown; what was saved is what a restart restores (for a subject that exists: the default
workspace here; a deleted subject's is dropped, tests/test_limits_orphans.py)."""

from __future__ import annotations

from sluicegate.limits.memory import MemoryCounters
from sluicegate.limits.registry import LimitRegistry
from sluicegate.limits.store import LimitRepository


async def test_usage_is_written_when_it_moved_and_at_shutdown(engine) -> None:
    repository = LimitRepository(engine)
    saves: list[dict] = []
    real = repository.save_usage

    async def counted(usage):
        saves.append(dict(usage))
        await real(usage)

    repository.save_usage = counted  # type: ignore[method-assign]
    memory = MemoryCounters()
    registry = LimitRegistry(repository, memory)
    await registry.start()
    try:
        await registry.flush()
        assert saves == []  # nothing defined, nothing moved: no write transaction
        memory.restore({"workspace:ws-default:cost": (7, 2.5, None)})
        await registry.flush()
        await registry.flush()
        assert saves == [{"workspace:ws-default:cost": (7, 2.5, None)}]  # once, not once per flush
    finally:
        await registry.stop()
    assert len(saves) == 2  # shutdown saves whatever the store holds meanwhile
    restarted = MemoryCounters()
    again = LimitRegistry(LimitRepository(engine), restarted)
    await again.start()
    await again.stop()
    assert restarted.budgets() == {"workspace:ws-default:cost": (7, 2.5, None)}
