"""Which client headers a target receives: the precedence documented in docs/configuration.md."""

from __future__ import annotations

import pytest

from sluicegate.config.model import Target
from sluicegate.prepare import forward_names

REQUEST = ("authorization", "x-api-key")
OWN = ("x-org-id",)
CATALOG = ("x-trace",)


@pytest.mark.parametrize(
    ("target", "requested", "own_credential", "expected"),
    [
        # no config: the request's list, else the catalog provider's
        (Target(json_path="config"), REQUEST, False, REQUEST),
        (Target(json_path="config"), None, True, CATALOG),
        (Target(json_path="config"), (), True, ()),  # an explicit empty list is a choice
        # a config target with its own list: only that list
        (Target(json_path="t0", provider="openai", forward_headers=OWN), REQUEST, False, OWN),
        (Target(json_path="t0", provider="@llm", forward_headers=OWN), REQUEST, True, OWN),
        # no list, own credential (commercial fallback, catalog provider): nothing from the client
        (Target(json_path="t1", provider="openai", api_key="sk"), REQUEST, True, ()),
        (Target(json_path="t1", provider="@llm"), REQUEST, True, CATALOG),
        # no list, no credential: the request's list (Portkey's behaviour)
        (Target(json_path="t2", provider="openai", custom_host="http://127.0.0.1:8000/v1"), REQUEST, False, REQUEST),
        (Target(json_path="t2", provider="openai"), None, False, ()),
    ],
)
def test_forward_names(target, requested, own_credential, expected) -> None:
    catalog = CATALOG if (target.provider or "@").startswith("@") else ()
    assert forward_names(target, requested, catalog, own_credential=own_credential) == expected
