"""When /v1 requires an API key (``SLUICEGATE_AUTH``): pure, decided from the mode, the listen address and
whether any key exists. ``auto`` never runs open by accident: beyond loopback, or once a key exists (even
a revoked one), a key is required."""

from __future__ import annotations

import ipaddress

REQUIRED, OFF, AUTO = "required", "off", "auto"


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or a wildcard: assume the network can reach it


def key_required(mode: str, host: str, has_keys: bool) -> bool:
    return Requirement.of(mode, host).required(has_keys)


class Requirement:
    """The rule for one process, decided once at start (the listen address is parsed here, not per
    request): ``required(has_keys)`` is then two comparisons."""

    __slots__ = ("always", "when_keys")

    def __init__(self, always: bool, when_keys: bool) -> None:
        self.always = always
        self.when_keys = when_keys

    @classmethod
    def of(cls, mode: str, host: str) -> Requirement:
        if mode == OFF:
            return cls(False, False)
        return cls(mode == REQUIRED or not is_loopback(host), True)

    def required(self, has_keys: bool) -> bool:
        return self.always or (self.when_keys and has_keys)


def startup_notice(mode: str, host: str, has_keys: bool) -> str:
    """The line printed at start-up: loud when /v1 is open to anyone who reaches the port."""
    if mode == OFF:
        return ("WARNING: SLUICEGATE_AUTH=off: /v1 accepts requests without an API key; anyone who reaches "
                f"{host} can use every stored credential")
    if not key_required(mode, host, has_keys):
        return ("NOTE: no API key exists and the gateway listens on loopback only, so /v1 is open for local "
                "development. Create a key (sluicegate keys create) or set SLUICEGATE_AUTH=required to "
                "require one.")
    return ("/v1 requires a gateway API key (x-portkey-api-key, or Authorization: Bearer sg-…); "
            "create one with: sluicegate keys create --name NAME")
