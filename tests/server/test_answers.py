"""Exception → answer has one owner (server/middleware.answer_for): the client's answer and the request
log's record of it say the same thing."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from sluicegate.errors import SEND_STALLED, BadRequest, InternalError
from sluicegate.server.middleware import answer_for
from sluicegate.telemetry.record import RequestRecord


def recorded(exc: BaseException) -> tuple[int, str | None, str | None]:
    record = RequestRecord.begin("POST", "/v1/x", "proxy", log_bodies=True)
    record.failed(exc, answer_for(exc))
    return record.status, record.error_type, record.error_message


@pytest.mark.parametrize(("exc", "status", "kind", "message"), [
    (BadRequest("Invalid JSON body"), 400, "bad_request", "Invalid JSON body"),
    (web.HTTPMethodNotAllowed("TRACE", ["GET", "POST"]), 405, "method_not_allowed",
     "Method TRACE is not allowed here"),
    (web.HTTPNotFound(), 404, "not_found", "Not Found"),
    (KeyError("boom"), 500, "internal_error", "Something went wrong (KeyError)"),
])
def test_the_log_records_what_the_client_is_answered(exc, status, kind, message):
    answer = answer_for(exc)
    assert answer is not None and answer.status == status
    assert recorded(exc) == (status, kind, message)
    if status == 500:
        assert isinstance(answer, InternalError) and answer.body() == {"status": "failure", "message": "Something went wrong"}
    else:
        assert answer.message == message


def test_a_client_that_left_gets_no_answer_and_is_logged_as_499():
    assert answer_for(asyncio.CancelledError()) is None
    assert recorded(asyncio.CancelledError())[:2] == (499, "client_closed_request")


def test_a_client_that_stopped_reading_is_logged_as_one_that_left_with_the_reason():
    assert answer_for(asyncio.CancelledError(SEND_STALLED)) is None
    assert recorded(asyncio.CancelledError(SEND_STALLED)) == (499, "client_closed_request", SEND_STALLED)
    assert recorded(asyncio.CancelledError())[2] == "the client closed the connection before the response was complete"
