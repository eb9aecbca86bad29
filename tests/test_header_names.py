"""One matching rule for forward-header names, whatever spelling the SDKs made the user write."""

from __future__ import annotations

import pytest

from sluicegate.header_names import expand, forms, prefixed_stand_in


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("x-my-custom-header", "x-my-custom-header"),  # as written
        ("X-My-Custom-Header", "x-my-custom-header"),  # any case
        ("x_my_custom_header", "x-my-custom-header"),  # Python SDK: snake_case
        ("xMyCustomHeader", "x-my-custom-header"),  # Node SDK: camelCase
        ("XMyCustomHeader", "x-my-custom-header"),  # PascalCase
        ("xOrgID", "x-org-id"),  # an acronym at the end
        ("HTTPReferer", "http-referer"),  # an acronym at the start
        ("Authorization", "authorization"),
        ("X-MyHeader", "x-myheader"),  # as written still matches when the name mixes styles ...
        ("X-MyHeader", "x-my-header"),  # ... and so does its kebab reading
    ],
)
def test_a_listed_name_matches_every_spelling(name: str, matches: str) -> None:
    assert matches in forms(name)


def test_expand_keeps_order_without_duplicates() -> None:
    assert expand(["Authorization", "xApiKey", "x-api-key", "x_org_id"]) == (
        "authorization", "xapikey", "x-api-key", "x-org-id")


def test_the_gateways_own_headers_never_stand_in() -> None:
    assert prefixed_stand_in("x-api-key") == "x-portkey-x-api-key"
    assert prefixed_stand_in("api-key") is None and prefixed_stand_in("provider") is None
