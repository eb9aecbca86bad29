"""The Node suite skips only when node/npm are missing, and says so."""

from __future__ import annotations

import pytest

from tests.node.install import cache_root, ensure, home_for


def test_missing_npm_is_reported_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no node, no npm
    found = ensure()
    assert not found.ok and found.reason.startswith("node/npm not found on PATH")


def test_cache_is_outside_the_clone_and_per_pin(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SLUICEGATE_NODE_SDK_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    assert home_for({"portkey-ai": "3.1.0", "openai": "6.8.1"}) == tmp_path / "openai@6.8.1-portkey-ai@3.1.0"
