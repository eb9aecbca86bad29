"""The $regex engine: RE2, linear in the subject for every pattern, so no pattern is refused for its shape;
what RE2 cannot compile (backreferences, lookaround) is refused when the config is parsed, with RE2's reason."""

from __future__ import annotations

import pytest

from sluicegate.config.conditions import Regex, compile_regex, regex_problem


@pytest.mark.parametrize(
    "pattern",
    [
        "^gpt-4(o|-turbo)?$",
        "(a)+(b+)",
        "[(a+)]+",  # a character class, not a group
        "\\(a+\\)+",  # escaped parentheses
        "(a{2})+",
        "(\\d+)?",
        "^/v1/(chat/)?completions$",
        "claude-3-5-.*",
        "(?i)^GPT",  # inline flags, the only way to write one in a JSON config
        "(?P<family>gpt|claude)-\\d",
        "(?<family>gpt|claude)-\\d",  # JavaScript's named group
        "",
        # Exponential for a backtracking engine, linear for RE2: accepted now (tests/routing/test_from_config.py
        # runs them against the subjects that used to hang).
        "(a+)+",
        "(a*)*",
        "^(a|a)*$",
        "(a|aa)*",
        "(\\w|\\d)+$",
        "^(\\w+\\s?)*$",
        "(.*a){12}",
    ],
)
def test_ordinary_and_formerly_risky_patterns_are_accepted(pattern):
    assert regex_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern, reason",
    [
        ("(a)\\1", "invalid escape sequence: \\1"),  # a backreference: it is what forces backtracking
        ("(?=a)", "invalid perl operator: (?="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        ("a++", "bad repetition operator: ++"),
        ("a{1001}", "invalid repetition size: {1001}"),
        ("gpt-(", "missing ): gpt-("),
        ("\ud800", "it contains a lone surrogate"),
    ],
)
def test_what_re2_cannot_compile_is_refused_with_its_reason(pattern, reason):
    assert regex_problem(pattern) == f"Invalid $regex pattern: {reason}"


def test_a_pattern_that_compiles_too_large_is_refused_and_a_match_bounded_by_its_work():
    assert regex_problem("a{1000}") is None
    assert regex_problem("((a|b)*a(a|b){30}){30}c") == (
        "$regex pattern is too complex: 2885 instructions once compiled, more than 1100 "
        "(large repeat counts multiply a pattern)")
    # 504 instructions: a subject past 1,000,000 / 504 bytes costs ~0.1 s a match at 16 KiB, so never matches.
    repeated = compile_regex(r"(\w+\s?){50}")
    assert repeated.search("word " * 50)
    assert not repeated.search("word " * 400)


def test_long_patterns_are_refused():
    assert regex_problem("a" * 256) is None
    assert regex_problem("a" * 257) == "$regex pattern is longer than 256 characters"


@pytest.mark.parametrize(
    "pattern, subject, expected",
    [
        ("^caf\\u00e9$", "café", True),  # JavaScript's \uXXXX, which RE2 spells \x{XXXX}
        ("[\\u0041-\\u0043]", "B", True),
        ("\\\\u0041", "\\u0041", True),  # an escaped backslash, then a literal "u0041"
        ("\\\\u0041", "A", False),
        ("(?i)^gpt", "GPT-4o", True),
        ("^gpt$", "gpt\n", False),  # $ is the end of the text, as in JavaScript (Python's re allows a final \n)
        ("\\d", "٣", False),  # \d is ASCII, as in JavaScript
        ("^.$", "é", True),  # one character, not one byte
        ("a", "\ud800a", True),  # a lone surrogate in the subject (valid JSON) does not raise
    ],
)
def test_matching_follows_javascript_for_common_patterns(pattern, subject, expected):
    assert compile_regex(pattern).search(subject) is expected


def test_a_compiled_pattern_compares_and_prints_as_its_text():
    # Cache keys digest the config tree's repr: it must not show an object address.
    assert compile_regex("^a") == Regex("^a", None)
    assert repr(compile_regex("^a")) == "Regex(pattern='^a')"
