"""The process limits (docs/security.md, "Limits"): defaults, environment variables, refusal of nonsense."""

from __future__ import annotations

import pytest

from sluicegate.settings import Settings, settings_from_env

LIMITS = {
    "SLUICEGATE_MAX_UPSTREAM_BODY_BYTES": ("max_upstream_body_bytes", "1048576", 1048576, 128 * 1024 * 1024),
    "SLUICEGATE_MAX_CONNECTIONS": ("max_connections", "50", 50, 1000),
    "SLUICEGATE_IDLE_TIMEOUT": ("idle_timeout_s", "5", 5.0, 75.0),
    "SLUICEGATE_HEADER_TIMEOUT": ("header_timeout_s", "2.5", 2.5, 10.0),
    "SLUICEGATE_BODY_TIMEOUT": ("body_timeout_s", "30", 30.0, 120.0),
    "SLUICEGATE_SEND_TIMEOUT": ("send_timeout_s", "5", 5.0, 30.0),
    "SLUICEGATE_DRAIN_TIMEOUT": ("drain_timeout_s", "3", 3.0, 25.0),
    # The request log's bounds: 0 would drop every record (a queue or batch of none), a spool of no bytes.
    "SLUICEGATE_LOG_QUEUE_MAX": ("log_queue_max", "500", 500, 20000),
    "SLUICEGATE_LOG_BATCH_MAX": ("log_batch_max", "50", 50, 1000),
    "SLUICEGATE_LOG_SPOOL_MAX_BYTES": ("log_spool_max_bytes", "1048576", 1048576, 256 * 1024 * 1024),
    "SLUICEGATE_LOG_RETENTION_DAYS": ("log_retention_days", "7", 7, None),  # None: records are kept
}
INTEGERS = ("SLUICEGATE_MAX_UPSTREAM_BODY_BYTES", "SLUICEGATE_MAX_CONNECTIONS", "SLUICEGATE_LOG_QUEUE_MAX",
            "SLUICEGATE_LOG_BATCH_MAX", "SLUICEGATE_LOG_SPOOL_MAX_BYTES", "SLUICEGATE_LOG_RETENTION_DAYS")


@pytest.mark.parametrize("variable", list(LIMITS))
def test_each_limit_has_its_default_and_its_variable(variable):
    name, raw, value, default = LIMITS[variable]
    assert getattr(Settings(), name) == default
    assert getattr(settings_from_env({variable: raw}), name) == value


@pytest.mark.parametrize("variable", list(LIMITS))
@pytest.mark.parametrize("raw", ["0", "-1", "lots", "inf"])
def test_a_limit_must_be_a_positive_number(variable, raw):
    if raw == "inf" and variable in INTEGERS:
        raw = "1e3"  # not an integer either
    with pytest.raises(ValueError) as caught:
        settings_from_env({variable: raw})
    kind = ("a whole number from 1 to 36500" if variable == "SLUICEGATE_LOG_RETENTION_DAYS"
            else "a positive whole number" if variable in INTEGERS else "a positive number")
    assert str(caught.value) == f"{variable} must be {kind}, not {raw!r}"
