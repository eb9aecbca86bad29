"""The loop turn's write batch (write_batch.py): what is written in a turn goes out once the turn's callbacks
have run, in order, each transport's bytes whole; closed or broken transports do not hold the others back."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.write_batch import WriteBatch


class Recorder:
    """Transports writing into one shared log, so that the order across transports shows."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, bytes]] = []  # (transport, call, bytes)


class FakeTransport:
    def __init__(self, name: str, recorder: Recorder, *, broken: bool = False) -> None:
        self.name, self.recorder, self.broken = name, recorder, broken
        self.closing = False

    def write(self, data: bytes) -> None:
        if self.broken:
            raise RuntimeError("the socket went away")
        self.recorder.log.append((self.name, "write", data))

    def writelines(self, pieces: tuple[bytes, ...]) -> None:
        self.recorder.log.append((self.name, "writelines", b"|".join(pieces)))

    def is_closing(self) -> bool:
        return self.closing


async def test_a_turns_writes_go_out_together_after_its_callbacks_in_order() -> None:
    loop = asyncio.get_running_loop()
    batch, recorder = WriteBatch(), Recorder()
    a, b = FakeTransport("a", recorder), FakeTransport("b", recorder)
    seen_during_turn: list[int] = []

    def first() -> None:
        batch.write(loop, a, b"answer 1")
        batch.write(loop, b, (b"head", b"body"))

    def second() -> None:
        batch.write(loop, a, b"answer 2")
        seen_during_turn.append(len(recorder.log))  # nothing sent while the turn's callbacks run

    loop.call_soon(first)
    loop.call_soon(second)
    await asyncio.sleep(0)  # the two callbacks run in this turn
    await asyncio.sleep(0)  # the flush they queued runs after them
    assert seen_during_turn == [0]
    assert recorder.log == [("a", "write", b"answer 1"), ("b", "writelines", b"head|body"),
                            ("a", "write", b"answer 2")]
    assert not batch.holds(a)


async def test_flush_sends_at_once_and_the_queued_flush_finds_nothing_left() -> None:
    loop = asyncio.get_running_loop()
    batch, recorder = WriteBatch(), Recorder()
    a = FakeTransport("a", recorder)
    batch.write(loop, a, b"one")
    assert batch.holds(a) and recorder.log == []
    batch.flush()  # what a caller does before it writes or closes directly
    assert recorder.log == [("a", "write", b"one")] and not batch.holds(a)
    batch.write(loop, a, b"two")  # a write after the direct flush queues a flush of its own
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert recorder.log == [("a", "write", b"one"), ("a", "write", b"two")]


async def test_a_closed_or_broken_transport_loses_only_its_own_bytes() -> None:
    loop = asyncio.get_running_loop()
    batch, recorder = WriteBatch(), Recorder()
    gone, broken, fine = (FakeTransport("gone", recorder), FakeTransport("broken", recorder, broken=True),
                          FakeTransport("fine", recorder))
    batch.write(loop, gone, b"x")
    batch.write(loop, broken, b"y")
    batch.write(loop, fine, b"z")
    gone.closing = True  # the client left before the turn ended
    batch.flush()
    assert recorder.log == [("fine", "write", b"z")]


def test_a_flush_queued_on_a_loop_that_stopped_does_not_strand_later_writes() -> None:
    batch, recorder = WriteBatch(), Recorder()
    a = FakeTransport("a", recorder)
    first = asyncio.new_event_loop()
    batch.write(first, a, b"never flushed there")  # its loop closes before the flush runs
    first.close()

    async def later() -> None:
        batch.write(asyncio.get_running_loop(), a, b"next")
        await asyncio.sleep(0)

    second = asyncio.new_event_loop()
    try:
        second.run_until_complete(later())
    finally:
        second.close()
    assert recorder.log == [("a", "write", b"never flushed there"), ("a", "write", b"next")]


class CountingLoop(asyncio.SelectorEventLoop):
    """A loop that counts the callbacks it is given, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled: list[str] = []

    def call_soon(self, callback, *args, context=None):  # type: ignore[no-untyped-def,override]
        self.scheduled.append(getattr(callback, "__name__", ""))
        return super().call_soon(callback, *args, context=context)


@pytest.mark.parametrize("writes", [1, 50])
def test_one_flush_a_turn_however_many_writes(writes: int) -> None:
    batch, recorder = WriteBatch(), Recorder()

    async def turn() -> None:
        loop = asyncio.get_running_loop()
        for index in range(writes):
            batch.write(loop, FakeTransport(f"t{index}", recorder), b"%d" % index)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    loop = CountingLoop()
    try:
        loop.run_until_complete(turn())
    finally:
        loop.close()
    assert loop.scheduled.count("flush") == 1
    assert [data for _, _, data in recorder.log] == [b"%d" % index for index in range(writes)]


async def test_every_flush_runs_the_step_before_sending_even_with_nothing_to_send() -> None:
    loop = asyncio.get_running_loop()
    batch, recorder = WriteBatch(), Recorder()
    batch.before_send = lambda: recorder.log.append(("-", "before", b""))
    batch.write(loop, FakeTransport("a", recorder), b"one")
    await asyncio.sleep(0)
    batch.flush()  # a direct flush with nothing batched: the step still runs (an answer follows it)
    assert recorder.log == [("-", "before", b""), ("a", "write", b"one"), ("-", "before", b"")]
