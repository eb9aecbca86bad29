"""Catalog providers are one more entry point: their stored custom host passes the same guard.

An admin registers providers through the admin API of a running gateway (0.0.0.0, no allow-list, in a
network namespace with traps on the target addresses), then clients call them as ``@slug``:

* a provider's allow entry reaches the guard at once (``Guard.set_extra_allows``), for that provider
  and, like TRUSTED_CUSTOM_HOSTS, for every caller; deleting the provider takes it away again;
* the hard blocks stay: metadata is refused when saved, and when an allow entry let it be saved it is
  refused on every request; a stored name that resolves to a private or metadata address is refused at
  connection time.
"""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from tests.ssrf import entry as E
from tests.ssrf.cases import Case, accepted, check, refused
from tests.ssrf.harness import run_scenario

pytestmark = pytest.mark.netns

TOKEN = "ssrf-e2e-admin-token-0123456789"
NAMES = MappingProxyType({
    "gpu-box.example": ["192.168.77.7"],
    "innocent.example.com": ["10.0.0.1"],
    "evil.corp.example": ["169.254.169.254"],
})
ADDRESSES = ("10.0.0.1", "10.0.0.5", "192.168.77.7", "169.254.169.254")

PROVIDERS = MappingProxyType({  # slug → (custom_host, allow_entry, expected status when saved)
    "gpu": ("http://gpu-box.example:8000/v1", "gpu-box.example", 201),
    "literal": ("http://10.0.0.5:8000/v1", "10.0.0.5:8000", 201),
    "sneaky": ("http://innocent.example.com:8000/v1", None, 201),  # the name alone looks public
    "wild": ("http://evil.corp.example/v1", "*.corp.example", 201),
    "meta": ("http://169.254.169.254/latest", None, 400),
    "meta-allowed": ("http://169.254.169.254/latest", "169.254.169.254", 201),  # saved, never served
})


def admin(request_id: str, method: str, path: str, body: dict | None = None) -> dict:
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    return {"id": request_id, "method": method, "path": f"/admin/api{path}", "headers": headers,
            "body": json.dumps(body) if body is not None else None}


SETUP = tuple(
    admin(f"save:{slug}", "POST", "/providers",
          {"slug": slug, "custom_host": host, **({"allow_entry": allow} if allow else {})})
    for slug, (host, allow, _) in PROVIDERS.items()
)
CASES: tuple[Case, ...] = (
    accepted(E.catalog("gpu"), PROVIDERS["gpu"][0], "192.168.77.7"),
    accepted(E.catalog("literal"), PROVIDERS["literal"][0], "10.0.0.5"),
    # a provider's allow entry is an operator allow entry: the header may use that host too
    accepted(E.HEADER_CHAT, "http://10.0.0.5:8000/v1", "10.0.0.5", tag="allowed-by-catalog"),
    refused(E.catalog("sneaky"), PROVIDERS["sneaky"][0],
            "innocent.example.com resolves to 10.0.0.1, a private address", stage="connect"),
    refused(E.catalog("wild"), PROVIDERS["wild"][0],
            "evil.corp.example resolves to 169.254.169.254, a cloud metadata endpoint, which is always "
            "blocked", stage="connect"),
    refused(E.catalog("meta-allowed"), PROVIDERS["meta-allowed"][0],
            "169.254.169.254 is a cloud metadata endpoint and is always blocked"),
)
AFTER_DELETE = refused(E.HEADER_CHAT, "http://10.0.0.5:8000/v1", "10.0.0.5 is a private address",
                       tag="after-delete")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    requests = [*SETUP, *(case.request for case in CASES),
                admin("delete:literal", "DELETE", "/providers/literal"), AFTER_DELETE.request]
    plan = {
        "gateway": {"listen": "0.0.0.0", "env": {"TRUSTED_CUSTOM_HOSTS": None,
                                                 "SLUICEGATE_ALLOWED_UPSTREAMS": None,
                                                 "SLUICEGATE_ADMIN_TOKEN": TOKEN}},
        "trap_ports": [80, 8000],
        "requests": requests,
    }
    return run_scenario(plan, tmp_path_factory.mktemp("catalog"), addresses=ADDRESSES, names=NAMES)


@pytest.mark.parametrize("slug", list(PROVIDERS))
def test_providers_saved_or_refused(report, slug: str):
    result = report["cases"][f"save:{slug}"]
    assert result["status"] == PROVIDERS[slug][2], result
    assert result["hits"] == []
    if result["status"] == 400:
        assert "custom_host" in result["body"]["message"], result["body"]
        assert "always blocked" in result["body"]["message"], result["body"]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_catalog_provider_requests(report, case: Case):
    check(case, report["cases"][case.id])


def test_deleting_the_provider_takes_its_allow_entry_away(report):
    assert report["cases"]["delete:literal"]["status"] == 200
    check(AFTER_DELETE, report["cases"][AFTER_DELETE.id])
    assert report["stray_hits"] == []
