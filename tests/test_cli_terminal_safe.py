"""What the CLI prints cannot drive the operator's terminal: stored text (a model, a user, a provider's notes,
a saved config) and the arguments quoted back in errors have every character a terminal acts on written as
an escape, and JSON output stays the same JSON."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.cli.support import fail, terminal_safe_json

HOSTILE = [
    "mo\u009b2Jdel",  # C1 CSI: an escape sequence without ESC (orjson leaves it raw)
    "evil\u202eexe.txt\u2066",  # bidi overrides and isolates
    "esc\x1b[31mRED\x07",  # C0: orjson escapes these itself
    "note\rOVERWRITTEN",
    "tag\U000e0041s",  # an invisible tag character beyond the BMP: a surrogate pair
    "plain ascii, é, 日本語",  # printable: left alone
]


@pytest.mark.parametrize("text", HOSTILE)
def test_json_output_is_printable_and_the_same_json(text):
    shown = terminal_safe_json(orjson.dumps({"model": text, "n": [1, 2]}, option=orjson.OPT_INDENT_2).decode())
    assert all(line.isprintable() for line in shown.split("\n")), shown
    assert orjson.loads(shown) == {"model": text, "n": [1, 2]}


def test_stored_json_text_keeps_its_meaning_with_its_line_ends():
    stored = '{\r\n  "provider": "openai",\r  "notes": "a\u009bb\u202e"\n}'  # CRLF, a bare CR, C1 and bidi
    shown = terminal_safe_json(stored)
    assert all(line.isprintable() for line in shown.split("\n")), shown
    assert orjson.loads(shown) == orjson.loads(stored)


def test_plain_json_is_printed_as_is():
    text = orjson.dumps({"a": "b é"}, option=orjson.OPT_INDENT_2).decode()
    assert terminal_safe_json(text) is text


def test_an_error_quoting_what_was_asked_is_escaped(capsys):
    assert fail("API key \x1b]0;title\x07 not found", 1) == 1
    err = capsys.readouterr().err
    assert err.isprintable() or all(line.isprintable() for line in err.splitlines()), err
    assert "\\x1b]0;title\\x07" in err


def test_a_store_that_cannot_be_written_exits_2_without_pointing_at_a_log(capsys):
    """It was exit 1, "refused", and sent the operator to a gateway log that a CLI command does not have."""
    import argparse

    from sluicegate.cli.support import run
    from sluicegate.store.engine import StoreUnwritable

    async def command(args):
        raise StoreUnwritable("the database cannot be written (attempt to write a readonly database); see the "
                              "gateway's log")

    assert run(command, argparse.Namespace()) == 2
    err = capsys.readouterr().err
    assert err == "sluicegate: error: the database cannot be written (attempt to write a readonly database)\n"
