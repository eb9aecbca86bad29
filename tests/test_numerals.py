"""Numbers a client writes as text: plain ASCII numerals, where int() and float() read far more."""

from __future__ import annotations

import pytest

from sluicegate import numerals
from sluicegate.errors import BadRequest
from sluicegate.server.headers import parse_timeout

NOT_NUMBERS = ["", " ", "1_000", "\u0661\u0662", "\uff11", "\u00b2", "nan", "inf", "-inf", "1e999", "0x10", "1 2",
               "++1", "1e", ".", "1" * 41]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_what_python_reads_as_a_number_and_a_client_did_not_write_as_one(text):
    assert numerals.decimal(text) is None
    assert numerals.integer(text) is None


@pytest.mark.parametrize(("text", "value"), [("12", 12.0), (" 12 ", 12.0), ("-3", -3.0), ("+0.5", 0.5), (".5", 0.5),
                                             ("5.", 5.0), ("1e3", 1000.0), ("2.5E-1", 0.25)])
def test_plain_decimals(text, value):
    assert numerals.decimal(text) == value


@pytest.mark.parametrize(("text", "value"), [("12", 12), ("-3", -3), ("+7", 7), ("007", 7)])
def test_plain_integers(text, value):
    assert numerals.integer(text) == value
    assert numerals.integer(text + ".0") is None


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", "\uff11\uff10\uff10"])
def test_the_request_timeout_header_takes_plain_numerals_only(text):
    with pytest.raises(BadRequest, match="Invalid x-portkey-request-timeout header"):
        parse_timeout(text)
    assert parse_timeout("1000") == 1000
