"""ProtocolLog: aiohttp's server log calls become one line with the peer and the error's kind, nothing else."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod

from sluicegate.server.protocol_log import ProtocolLog

SECRET = "sk-live-SECRET-0f0f"


def test_lines_keep_the_peer_and_the_kind_only(caplog):
    log = ProtocolLog()
    with caplog.at_level(logging.DEBUG, logger="sluicegate.http"):
        log.exception("Error handling request from %s", "127.0.0.1", exc_info=BadHttpMessage(f"b'{SECRET}'"))
        log.exception("Error handling request from %s", "127.0.0.1", exc_info=TypeError(SECRET))
        log.exception("Unhandled exception", exc_info=RuntimeError(SECRET))
        log.exception("Web-handler should return a response instance, got %r", SECRET)
        log.debug("Error handling request from %s", "127.0.0.1", exc_info=BadHttpMethod(SECRET))
        log.warning("Failed to create request handler with custom kwargs %r", {"key": SECRET})
    assert [r.getMessage() for r in caplog.records] == [
        "bad HTTP request from 127.0.0.1 (BadHttpMessage)",
        "HTTP server: Error handling request from 127.0.0.1 (TypeError)",  # said "from from"
        "HTTP server: Unhandled exception (RuntimeError)",
        "HTTP server: Web-handler should return a response instance, got (unknown error)",
        "bad HTTP request from 127.0.0.1 (BadHttpMethod)",
        "HTTP server: Failed to create request handler with custom kwargs",
    ]
    assert all(r.exc_info is None and SECRET not in r.getMessage() for r in caplog.records)
