"""ConnectionGuard in process, with fake transports: who is evicted at the cap, when a head timer fires."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.server.connections import REFUSAL, ConnectionGuard, ConnectionLimits
from sluicegate.write_batch import WriteBatch
from tests.fakes.client_socket import ClientTransport


class FakeHandler(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.made = False

    def connection_made(self, transport) -> None:
        self.made = True

    def data_received(self, data: bytes) -> None:
        self.received += data


def _open(guard: ConnectionGuard):
    handlers: list[FakeHandler] = []

    def make() -> FakeHandler:
        handlers.append(FakeHandler())
        return handlers[-1]

    protocol = guard.protocol_factory(make)()
    transport = ClientTransport()
    protocol.connection_made(transport)
    return protocol, transport, handlers


async def test_at_the_cap_the_longest_waiting_connection_makes_room():
    guard = ConnectionGuard(ConnectionLimits(max_connections=2, header_timeout_s=60))
    first, first_transport, _ = _open(guard)
    second, second_transport, _ = _open(guard)
    first.request_started(None)  # busy: never evicted
    third, third_transport, handlers = _open(guard)
    assert second_transport.closed and not first_transport.closed
    assert handlers and handlers[0].made and third_transport.written == b""


async def test_a_connection_still_writing_its_answer_is_not_evicted():
    guard = ConnectionGuard(ConnectionLimits(max_connections=2, header_timeout_s=60))
    first, first_transport, _ = _open(guard)
    second, second_transport, _ = _open(guard)
    first_transport.buffered = 4096
    _open(guard)
    assert not first_transport.closed and second_transport.closed


async def test_a_connection_whose_answer_waits_in_the_turns_write_batch_is_not_evicted():
    writes = WriteBatch()
    guard = ConnectionGuard(ConnectionLimits(max_connections=2, header_timeout_s=60), writes)
    first, first_transport, _ = _open(guard)
    second, second_transport, _ = _open(guard)
    writes.write(asyncio.get_running_loop(), first_transport, b"HTTP/1.1 200 OK\r\n\r\n")  # answered, not yet sent
    _open(guard)
    assert not first_transport.closed and second_transport.closed
    await asyncio.sleep(0)
    assert first_transport.written == b"HTTP/1.1 200 OK\r\n\r\n"


async def test_when_every_connection_is_busy_the_new_one_gets_503_and_never_reaches_aiohttp():
    guard = ConnectionGuard(ConnectionLimits(max_connections=1, header_timeout_s=60))
    busy, _, _ = _open(guard)
    busy.request_started(None)
    refused, transport, handlers = _open(guard)
    assert transport.written == REFUSAL and transport.closed and handlers == []
    refused.data_received(b"GET / HTTP/1.1\r\n\r\n")  # ignored
    busy.request_finished()
    _, later, later_handlers = _open(guard)
    assert later_handlers and not later.closed  # the busy one became idle: it made room


@pytest.mark.parametrize("busy", [False, True])
async def test_the_head_timer_closes_only_a_connection_without_a_running_request(busy):
    guard = ConnectionGuard(ConnectionLimits(max_connections=10, header_timeout_s=0.05))
    protocol, transport, handlers = _open(guard)
    protocol.data_received(b"GET /v1/hea")
    if busy:
        protocol.request_started(None)
    await asyncio.sleep(0.2)
    assert transport.closed is not busy
    assert handlers[0].received == b"GET /v1/hea"


async def test_cancel_requests_cancels_the_running_tasks_only():
    guard = ConnectionGuard(ConnectionLimits(max_connections=10, header_timeout_s=60))
    running, _, _ = _open(guard)
    _open(guard)  # idle: nothing to cancel
    task = asyncio.create_task(asyncio.sleep(60))
    running.request_started(task)
    assert guard.cancel_requests() == 1
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_head_after_a_request_gets_its_whole_time_from_a_timer_armed_earlier():
    """The head timer is armed once, not per request: when it fires for a head that started later, it
    waits out that head's own remaining time before it closes anything."""
    guard = ConnectionGuard(ConnectionLimits(max_connections=10, header_timeout_s=0.5))
    protocol, transport, _ = _open(guard)  # the timer is armed now, for the first head
    protocol.data_received(b"GET /v1/health HTTP/1.1\r\n\r\n")
    protocol.request_started(None)
    protocol.request_finished()
    await asyncio.sleep(0.25)
    protocol.data_received(b"GET /v1/hea")  # the next head: it may take until 0.75 s
    await asyncio.sleep(0.3)  # 0.55 s: the timer armed for the first head has fired
    assert not transport.closed
    await asyncio.sleep(0.6)
    assert transport.closed
