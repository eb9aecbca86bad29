"""Least-busy's probe settings (docs/routing.md): defaults, environment variables, refusal of nonsense."""

from __future__ import annotations

import pytest

from sluicegate.settings import Settings, settings_from_env

PROBES = {
    "SLUICEGATE_PROBE_INTERVAL": ("probe_interval_s", "0.5", 0.5, 2.0),
    "SLUICEGATE_PROBE_TIMEOUT": ("probe_timeout_s", "0.25", 0.25, 1.0),
    "SLUICEGATE_PROBE_UNHEALTHY_THRESHOLD": ("probe_unhealthy_threshold", "3", 3, 1),
    "SLUICEGATE_PROBE_HEALTHY_THRESHOLD": ("probe_healthy_threshold", "2", 2, 1),
    "SLUICEGATE_LEAST_BUSY_EJECT_AFTER": ("least_busy_eject_after", "5", 5, 3),
}


@pytest.mark.parametrize("variable", list(PROBES))
def test_each_setting_has_its_default_and_its_variable(variable):
    name, raw, value, default = PROBES[variable]
    assert getattr(Settings(), name) == default
    assert getattr(settings_from_env({variable: raw}), name) == value


def test_a_zero_interval_turns_probes_off():
    assert settings_from_env({"SLUICEGATE_PROBE_INTERVAL": "0"}).probe_interval_s == 0.0


@pytest.mark.parametrize(("variable", "raw", "message"), [
    ("SLUICEGATE_PROBE_INTERVAL", "-1", "SLUICEGATE_PROBE_INTERVAL must be a number of seconds, 0 or more, not '-1'"),
    ("SLUICEGATE_PROBE_INTERVAL", "often", "SLUICEGATE_PROBE_INTERVAL must be a number of seconds, 0 or more"),
    ("SLUICEGATE_PROBE_INTERVAL", "inf", "SLUICEGATE_PROBE_INTERVAL must be a number of seconds, 0 or more"),
    ("SLUICEGATE_PROBE_INTERVAL", "nan", "SLUICEGATE_PROBE_INTERVAL must be a number of seconds, 0 or more"),
    ("SLUICEGATE_PROBE_TIMEOUT", "0", "SLUICEGATE_PROBE_TIMEOUT must be a positive number, not '0'"),
    ("SLUICEGATE_PROBE_TIMEOUT", "-0.5", "SLUICEGATE_PROBE_TIMEOUT must be a positive number"),
    ("SLUICEGATE_PROBE_UNHEALTHY_THRESHOLD", "0", "SLUICEGATE_PROBE_UNHEALTHY_THRESHOLD must be a positive whole number"),
    ("SLUICEGATE_PROBE_HEALTHY_THRESHOLD", "1.5", "SLUICEGATE_PROBE_HEALTHY_THRESHOLD must be a positive whole number"),
    ("SLUICEGATE_LEAST_BUSY_EJECT_AFTER", "none", "SLUICEGATE_LEAST_BUSY_EJECT_AFTER must be a positive whole number"),
])
def test_nonsense_is_refused_naming_the_variable(variable, raw, message):
    with pytest.raises(ValueError) as info:
        settings_from_env({variable: raw})
    assert str(info.value).startswith(message)
