"""The forward-header rule is one rule: the header form, a Gateway Config and a catalog provider refuse the
same names (a config used to accept host, proxy-authorization and content-length)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sluicegate.catalog.entries import validate_forward_headers
from sluicegate.errors import BadRequest
from sluicegate.header_names import UNFORWARDABLE, may_forward
from sluicegate.header_names import fold as fold_header_name
from sluicegate.server.headers import parse_request_headers
from tests.config.helpers import errors_of, parse

REFUSED = sorted(UNFORWARDABLE) + ["x-portkey-provider", "X_Portkey_Config"]


def _header_form(name: str) -> None:
    parse_request_headers(CIMultiDictProxy(CIMultiDict({"x-portkey-forward-headers": name})))


@pytest.mark.parametrize("name", REFUSED)
def test_every_surface_refuses_the_same_names(name: str) -> None:
    assert not may_forward(fold_header_name(name))
    with pytest.raises(BadRequest):
        _header_form(name)
    with pytest.raises(BadRequest):
        validate_forward_headers([name])
    assert any("forward_headers must not contain" in error for error in errors_of({
        "provider": "openai", "forward_headers": [name]}))


@pytest.mark.parametrize("name", ["authorization", "X-Api-Key", "x_custom_token"])
def test_every_surface_accepts_the_same_names(name: str) -> None:
    folded = fold_header_name(name)
    assert may_forward(folded)
    _header_form(name)
    assert validate_forward_headers([name]) == (folded,)
    assert parse({"provider": "openai", "forward_headers": [name]}).forward_headers == (folded,)
