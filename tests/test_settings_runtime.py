"""The runtime settings of replicas: SLUICEGATE_DRAIN_DELAY (zero allowed) and SLUICEGATE_RELOAD_INTERVAL
(positive), their defaults, and a refusal naming the variable for anything else."""

from __future__ import annotations

import pytest

from sluicegate.app import reload_interval
from sluicegate.settings import Settings, settings_from_env


def test_defaults_and_values() -> None:
    assert Settings().drain_delay_s == 0.0 and Settings().reload_interval_s is None
    assert settings_from_env({"SLUICEGATE_DRAIN_DELAY": "0"}).drain_delay_s == 0.0
    assert settings_from_env({"SLUICEGATE_DRAIN_DELAY": "7.5"}).drain_delay_s == 7.5
    assert settings_from_env({"SLUICEGATE_RELOAD_INTERVAL": "2"}).reload_interval_s == 2.0


def test_the_reload_interval_defaults_by_store() -> None:
    assert reload_interval(Settings()) == 0.5  # SQLite: no notifications, a short poll
    assert reload_interval(Settings(database_url="postgresql://u@127.0.0.1/db")) == 5.0  # notified
    assert reload_interval(Settings(database_url="postgresql://u@127.0.0.1/db", reload_interval_s=1.0)) == 1.0


@pytest.mark.parametrize(("variable", "raw", "expected"), [
    ("SLUICEGATE_DRAIN_DELAY", "-1", "a number of seconds, 0 or more"),
    ("SLUICEGATE_DRAIN_DELAY", "inf", "a number of seconds, 0 or more"),
    ("SLUICEGATE_DRAIN_DELAY", "nan", "a number of seconds, 0 or more"),
    ("SLUICEGATE_DRAIN_DELAY", "soon", "a number of seconds, 0 or more"),
    ("SLUICEGATE_RELOAD_INTERVAL", "0", "a positive number"),
    ("SLUICEGATE_RELOAD_INTERVAL", "-0.5", "a positive number"),
    ("SLUICEGATE_RELOAD_INTERVAL", "often", "a positive number"),
])
def test_nonsense_is_refused_naming_the_variable(variable: str, raw: str, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        settings_from_env({variable: raw})
    assert str(caught.value) == f"{variable} must be {expected}, not {raw!r}"


@pytest.mark.parametrize(("raw", "expected"), [("on", True), ("OFF", False), (" off ", False), ("true", True),
                                               ("0", False)])
def test_the_log_journal_is_on_unless_switched_off(raw: str, expected: bool) -> None:
    assert Settings().log_journal is True
    assert settings_from_env({"SLUICEGATE_LOG_JOURNAL": raw}).log_journal is expected


@pytest.mark.parametrize("raw", ["of", "disabled", "2", "nope"])
def test_a_log_journal_switch_that_is_neither_on_nor_off_is_refused(raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        settings_from_env({"SLUICEGATE_LOG_JOURNAL": raw})
    assert str(caught.value) == f"SLUICEGATE_LOG_JOURNAL must be on or off, not {raw!r}"
