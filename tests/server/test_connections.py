"""Client connections are bounded: idle and slow ones are closed after their timeouts, a process holds at
most SLUICEGATE_MAX_CONNECTIONS, and normal requests keep being served meanwhile. Loopback only, a few
dozen sockets at most."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess

HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.5
BODY_TIMEOUT = 1.0
SLACK = 3.0  # a loaded 2-core machine: the assertions below are about seconds, not milliseconds


@pytest.fixture(scope="module")
def bounded_gateway(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("bounded"), env={
        "SLUICEGATE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "SLUICEGATE_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
        "SLUICEGATE_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "SLUICEGATE_MAX_CONNECTIONS": "16",
    }).start()
    yield process
    process.stop()


def _connect(gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    return sock


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the peer closed ``sock`` (reading and dropping whatever it answered first)."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return float("inf")  # still open after ``limit``
    return time.monotonic() - started


def _health_ok(gateway) -> bool:
    # A fresh connection per call, like a new client: it must get in even while the process is full.
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5) as client:
        return client.get(f"{gateway.v1}/health").status_code == 200


def test_silent_connections_are_closed_after_the_header_timeout_and_requests_go_on(bounded_gateway):
    silent = [_connect(bounded_gateway) for _ in range(24)]  # more than the process takes (16)
    try:
        for _ in range(5):
            assert _health_ok(bounded_gateway)
        started = time.monotonic()
        waited = [_closed_after(sock, HEADER_TIMEOUT + SLACK) for sock in silent]
        assert time.monotonic() - started < HEADER_TIMEOUT + SLACK
        assert max(waited) < HEADER_TIMEOUT + SLACK
        assert _health_ok(bounded_gateway)
    finally:
        for sock in silent:
            sock.close()


def test_a_slowloris_sending_its_head_byte_by_byte_is_cut_at_the_header_timeout(bounded_gateway):
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-portkey-provider: openai\r\n"
    loris = [_connect(bounded_gateway) for _ in range(8)]
    started = time.monotonic()
    cut_at: list[float | None] = [None] * len(loris)
    try:
        for byte in range(len(head)):
            for index, sock in enumerate(loris):
                if cut_at[index] is None:
                    try:
                        sock.sendall(head[byte:byte + 1])
                    except OSError:
                        cut_at[index] = time.monotonic() - started
            if all(cut is not None for cut in cut_at) or time.monotonic() - started > HEADER_TIMEOUT + SLACK:
                break
            assert _health_ok(bounded_gateway)  # served while the slow heads trickle in
            time.sleep(0.1)
        for index, sock in enumerate(loris):
            if cut_at[index] is None:
                remaining = HEADER_TIMEOUT + SLACK - (time.monotonic() - started)
                cut_at[index] = time.monotonic() - started + _closed_after(sock, max(remaining, 0.1))
    finally:
        for sock in loris:
            sock.close()
    assert all(HEADER_TIMEOUT * 0.9 <= cut < HEADER_TIMEOUT + SLACK for cut in cut_at), cut_at


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(bounded_gateway):
    sock = _connect(bounded_gateway)
    try:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200") and b'{"status":"healthy"}' in answer
        waited = _closed_after(sock, IDLE_TIMEOUT + SLACK)
    finally:
        sock.close()
    assert IDLE_TIMEOUT * 0.9 <= waited < IDLE_TIMEOUT + SLACK


def _chat(upstream, *, close: bool = False) -> bytes:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    closing = "connection: close\r\n" if close else ""
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-portkey-provider: openai\r\nx-portkey-custom-host: {upstream.v1}\r\n{closing}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def _read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` answers with a Content-Length, read in order off ``sock``."""
    data, answers = b"", []
    sock.settimeout(10)
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None) if sep else None
        if length is not None and len(rest) >= length:
            answers.append(head + sep + rest[:length])
            data = rest[length:]
            continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(answers)} answers"
        data += chunk
    return answers


def test_an_idle_connection_after_a_chat_answer_is_closed_after_the_idle_timeout(bounded_gateway, upstream):
    sock = _connect(bounded_gateway)  # chat requests are served by the native edge (server/native.py)
    try:
        for _ in range(2):  # kept alive between them
            sock.sendall(_chat(upstream))
            assert _read_answers(sock, 1)[0].startswith(b"HTTP/1.1 200")
        waited = _closed_after(sock, IDLE_TIMEOUT + SLACK)
    finally:
        sock.close()
    assert IDLE_TIMEOUT * 0.9 <= waited < IDLE_TIMEOUT + SLACK


def test_pipelined_requests_of_both_edges_are_answered_in_order_on_one_connection(bounded_gateway, upstream):
    health = b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    sock = _connect(bounded_gateway)
    try:
        sock.sendall(_chat(upstream) + health + _chat(upstream) + health + _chat(upstream, close=True))
        answers = _read_answers(sock, 5)
        closed = _closed_after(sock, SLACK)
    finally:
        sock.close()
    assert [answer.split(b" ", 2)[1] for answer in answers] == [b"200"] * 5
    assert [b'"healthy"' in answer for answer in answers] == [False, True, False, True, False]
    assert all(b'"chat.completion"' in answers[i] for i in (0, 2, 4))
    assert closed < SLACK  # the last asked for it


def test_a_body_that_trickles_in_gets_408_after_the_body_timeout(bounded_gateway, upstream):
    sock = _connect(bounded_gateway)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-portkey-provider: openai\r\nx-portkey-custom-host: {upstream.v1}\r\n"
            f"content-length: 1000\r\n\r\n").encode()
    answered = threading.Event()
    try:
        sock.sendall(head)
        started = time.monotonic()

        def trickle() -> None:
            for _ in range(40):
                if answered.is_set():
                    return
                try:
                    sock.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.2)

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        sock.settimeout(BODY_TIMEOUT + SLACK)
        answer = sock.recv(65536)
        answered.set()
        elapsed = time.monotonic() - started
        thread.join(10)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'{"status":"failure","message":"Request body was not received within 1 seconds"}' in answer
    assert BODY_TIMEOUT * 0.9 <= elapsed < BODY_TIMEOUT + SLACK
    assert upstream.received == []


def test_a_full_process_refuses_new_connections_with_503_while_every_one_is_busy(tmp_path, upstream):
    process = GatewayProcess(tmp_path, env={"SLUICEGATE_MAX_CONNECTIONS": "3"}).start()
    upstream.push(*[Reply(delay=3.0) for _ in range(3)])
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    results: list[int] = []

    def slow() -> None:
        response = httpx.post(f"{process.v1}/chat/completions", headers=headers, timeout=30,
                              json={"messages": [{"role": "user", "content": "slow"}]})
        results.append(response.status_code)

    threads = [threading.Thread(target=slow) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(upstream.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(upstream.received) == 3  # three requests in flight: the process is full
        refused = httpx.get(f"{process.v1}/health", timeout=5)
        assert refused.status_code == 503
        assert refused.json() == {"status": "failure",
                                  "message": "The gateway is at its connection limit; try again shortly"}
        for thread in threads:
            thread.join(30)
        assert results == [200, 200, 200]
        assert _health_ok(process)  # room again
    finally:
        process.stop()


def _stream_request(upstream, extra: str = "") -> bytes:
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    return (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"x-portkey-provider: openai\r\nx-portkey-custom-host: {upstream.v1}\r\n{extra}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def _read_chunked_answer(sock: socket.socket, data: bytes) -> tuple[bytes, bytes]:
    """(one chunked answer, as sent; what follows it) off ``sock``, ``data`` already read."""
    sock.settimeout(10)
    while b"\r\n0\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before the stream's last chunk"
        data += chunk
    end = data.index(b"\r\n0\r\n\r\n") + len(b"\r\n0\r\n\r\n")
    return data[:end], data[end:]


def _comparable(answer: bytes) -> bytes:
    """An answer without what differs between two runs of one request: its date and trace id."""
    return b"\r\n".join(line for line in answer.split(b"\r\n")
                        if not line.lower().startswith((b"date:", b"x-portkey-trace-id:")))


def test_a_stream_reads_the_same_from_either_edge_and_the_connection_goes_on(bounded_gateway, upstream):
    """The native edge relays a stream (server/native.py); a request with a repeated header goes to aiohttp's
    server instead. The two answers are the same bytes, chunk framing included, and a request pipelined
    after a native stream is answered on the same connection."""
    events = [{"choices": [{"index": 0, "delta": {"content": f"part {n}"}}]} for n in range(3)]
    answers = []
    for extra in ("", "x-twice: 1\r\nx-twice: 2\r\n"):
        upstream.push(Reply(stream=[*events, "[DONE]"], chunk_interval=0.01), Reply())
        sock = _connect(bounded_gateway)
        try:
            sock.sendall(_stream_request(upstream, extra) + _chat(upstream, close=True))
            streamed, rest = _read_chunked_answer(sock, b"")
            sock.settimeout(10)
            while not rest.endswith(b"}") or b"\r\n\r\n" not in rest:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        finally:
            sock.close()
        assert streamed.startswith(b"HTTP/1.1 200 OK\r\n"), streamed[:200]
        assert b"\r\nTransfer-Encoding: chunked\r\n" in streamed and b"part 2" in streamed
        assert b"data: [DONE]" in streamed
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and b'"chat.completion"' in rest, rest[:300]
        answers.append(streamed)
    native, aiohttps = answers
    assert _comparable(native) == _comparable(aiohttps)
