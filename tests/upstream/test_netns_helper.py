"""The netns helper really yields a namespace with nothing but loopback (no interface, no route out)."""

from __future__ import annotations

import pytest

from tests import netns

pytestmark = pytest.mark.netns


@pytest.fixture
def namespace():
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with netns.isolated_netns("sg-selftest") as name:
        yield name


def test_only_loopback_exists_and_is_up(namespace):
    links = netns.run_in_netns(namespace, ["ip", "-o", "link", "show"], check=True).stdout.splitlines()
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0]
    routes = netns.run_in_netns(namespace, ["ip", "route", "show"], check=True).stdout
    assert routes.strip() == ""  # no default route: nothing can leave, even if a guard were broken
