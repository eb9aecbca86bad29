"""What start-up says about the listen address: nothing on loopback; beyond it, a loud warning only when /v1
takes requests without an API key (SLUICEGATE_AUTH=off), a note otherwise. It used to say "the /v1 API has
no access control yet" whatever the mode, though beyond loopback a key is required by default."""

from __future__ import annotations

import pytest

from sluicegate.serve import exposure_warning
from sluicegate.settings import Settings

HOSTS = ("gw.example.test", "*.corp.example.test")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_says_nothing(host: str) -> None:
    for mode in ("auto", "required", "off"):
        assert exposure_warning(Settings(host=host, auth_mode=mode)) is None


@pytest.mark.parametrize("mode", ["auto", "required"])
def test_beyond_loopback_with_keys_required_is_a_note(mode: str) -> None:
    said = exposure_warning(Settings(host="0.0.0.0", auth_mode=mode, allowed_hosts=HOSTS))
    assert said is not None
    assert "WARNING" not in said and "without an API key" not in said and "no access" not in said
    assert said.startswith("NOTE: sluicegate listens on 0.0.0.0, beyond loopback; /v1 requires a gateway API key")
    assert "SLUICEGATE_ALLOWED_HOSTS (gw.example.test, *.corp.example.test)" in said


def test_beyond_loopback_without_keys_warns_loudly() -> None:
    said = exposure_warning(Settings(host="0.0.0.0", port=8787, auth_mode="off"))
    assert said is not None
    lines = said.splitlines()
    assert lines and all(line.startswith("WARNING: ") for line in lines)
    text = " ".join(line.removeprefix("WARNING: ") for line in lines)
    assert "listens on 0.0.0.0, beyond loopback, with SLUICEGATE_AUTH=off" in text
    assert "anyone who can reach port 8787" in text and "every credential stored in the vault" in text
    assert "SLUICEGATE_ALLOWED_HOSTS (none listed)" in text
