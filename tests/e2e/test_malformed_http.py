"""Malformed HTTP requests are refused without leaking what they carried into the operator's log or the answer.

aiohttp logs each parse error with a traceback whose message quotes the offending raw line, header values
and all: an inline config's api_key, an Authorization value; and its plain-text 400 quoted the same line
back. The gateway logs one line per bad request instead, naming the kind of error and never a byte of the
request, and answers in its JSON envelope with the parser's reason alone. Raw sockets send what no client
would.
"""

from __future__ import annotations

import time

import orjson
import pytest

from tests.gateway import GatewayProcess
from tests.rawhttp import exchange

SECRET = "sk-live-SECRET-4b1d9e"
CONFIG = '{"provider":"openai","api_key":"' + SECRET + '"}'
START = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"

MALFORMED = {
    "newline in a header value": START + b"x-portkey-config: " + CONFIG[:30].encode() + b"\n"
                                 + CONFIG[30:].encode() + b"\r\nContent-Length: 0\r\n\r\n",
    "bare LF continuation": START + b"authorization: Bearer x\n " + SECRET.encode() + b"\r\n\r\n",
    "folded header": START + b"authorization: Bearer\r\n " + SECRET.encode() + b"\r\n\r\n",
    "header without a colon": START + b"authorization Bearer " + SECRET.encode() + b"\r\n\r\n",
    "space in a header name": START + b"x-api key: " + SECRET.encode() + b"\r\n\r\n",
    "NUL in a header value": START + b"authorization: Bearer " + SECRET.encode() + b"\x00x\r\n\r\n",
    "CR in a header value": START + b"authorization: Bearer \r" + SECRET.encode() + b"\r\n\r\n",
    "header line too long": START + b"authorization: Bearer " + SECRET.encode() + b"x" * 17000 + b"\r\n\r\n",
    "invalid content length": START + b"content-length: " + SECRET.encode() + b"\r\n\r\n",
    "two content lengths": START + b"content-length: 1\r\ncontent-length: 2\r\nx-key: " + SECRET.encode()
                           + b"\r\n\r\nab",
    "bad chunk size": START + b"transfer-encoding: chunked\r\n\r\n" + SECRET.encode() + b"\r\n\r\n",
    "bad HTTP version": f"GET /v1/models?key={SECRET} HTTP/7.3\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "bad method": f"G{SECRET}(): /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "control byte in the target": f"GET /v1/models?key={SECRET}\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
    "non-ASCII header name": START + "x-k\u00e9y: ".encode() + SECRET.encode() + b"\r\n\r\n",
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("malformed")).start()
    yield process
    process.stop()


def test_malformed_requests_leave_one_line_each_and_no_secret(gw):
    before = len(gw.log().splitlines())
    for name, raw in MALFORMED.items():
        response = exchange(gw.port, raw)
        assert 400 <= response.status < 500 or response.status == 0, (name, response.head)
        assert "Traceback" not in response.body.decode("latin-1"), name
    assert exchange(gw.port, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status == 200
    time.sleep(0.5)  # the log lines are written by the server's own loop; give them a moment
    new = gw.log().splitlines()[before:]
    text = "\n".join(new)
    assert SECRET not in text
    assert SECRET[:12] not in text
    assert "Traceback" not in text
    bad = [line for line in new if "bad HTTP request" in line]
    assert len(bad) == len(new), new  # nothing else was logged: one line per bad request at most
    assert 1 <= len(bad) <= len(MALFORMED), new


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_are_refused_in_the_envelope_without_their_bytes(gw, name):
    response = exchange(gw.port, MALFORMED[name])
    if response.status == 0:  # closed without an answer: nothing to read, nothing leaked
        return
    text = response.body.decode("latin-1")
    assert SECRET[:12] not in text and SECRET[:12] not in response.head, (name, text)
    assert response.status == 400, (name, response.head)
    assert "content-type: application/json" in response.head.lower(), (name, response.head)
    message = orjson.loads(response.body)["message"]
    assert message.startswith("malformed HTTP request: "), (name, message)


def test_an_answer_refusing_a_head_names_the_parsers_reason(gw):
    response = exchange(gw.port, MALFORMED["two content lengths"])
    assert response.json() == {"status": "failure", "message": "malformed HTTP request: Duplicate Content-Length"}


@pytest.mark.parametrize(("raw", "message"), [
    (b"GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n", "Missing Host header in request."),
    (b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.2\r\nConnection: close\r\n\r\n",
     "Duplicate Host header found."),
])
def test_a_refusal_names_the_header_the_parser_named(gw, raw, message):
    """"Missing  header in request." said nothing: the name the parser gives is its own word, kept."""
    assert exchange(gw.port, raw).json() == {"status": "failure", "message": f"malformed HTTP request: {message}"}
