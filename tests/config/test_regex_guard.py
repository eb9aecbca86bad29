"""The $regex guard: patterns that can backtrack exponentially are refused when the config is parsed."""

from __future__ import annotations

import pytest

from sluicegate.config.conditions import regex_problem

NESTED = "$regex pattern nests quantifiers (like '(a+)+'), which can take exponential time"


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+", "(a*)*", "(a|b+)*", "((ab)+c)+", "(?:a+)+$", "(a+){2,}", "(a{2,})+", "^(\\w+\\s?)*$", "(.*a){12}"],
)
def test_nested_quantifiers_are_refused(pattern):
    assert regex_problem(pattern) == NESTED


@pytest.mark.parametrize(
    "pattern",
    [
        "^gpt-4(o|-turbo)?$",
        "(a)+(b+)",
        "[(a+)]+",  # a character class, not a group
        "\\(a+\\)+",  # escaped parentheses
        "(a{2})+",  # a bounded inner repeat
        "(\\d+)?",  # an optional group repeats at most once
        "^/v1/(chat/)?completions$",
        "claude-3-5-.*",
        "",
    ],
)
def test_ordinary_patterns_are_accepted(pattern):
    assert regex_problem(pattern) is None


def test_long_and_broken_patterns_are_refused():
    assert regex_problem("a" * 256) is None
    assert regex_problem("a" * 257) == "$regex pattern is longer than 256 characters"
    assert regex_problem("gpt-(").startswith("Invalid $regex pattern: ")
    assert regex_problem("a{99999999999}") == "Invalid $regex pattern: the repetition number is too large"
