"""Ids of requests and log rows (ids.py): their shape is stored, indexed and parsed back."""

from __future__ import annotations

import re

from sluicegate.ids import created_ms_of, time_sorted_id


def test_an_id_is_32_hex_digits_that_start_with_its_time_and_sort_by_it():
    first, second = time_sorted_id(1_700_000_000_000), time_sorted_id(1_700_000_000_001)
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first[:12] == f"{1_700_000_000_000:012x}"
    assert first < second and created_ms_of(second) == 1_700_000_000_001
    assert time_sorted_id(0)[:12] == "0" * 12  # leading zeros kept: every id is the same width


def test_ids_of_the_same_millisecond_differ_in_their_random_part():
    ids = {time_sorted_id(1_700_000_000_000) for _ in range(1000)}
    assert len(ids) == 1000 and {i[:12] for i in ids} == {f"{1_700_000_000_000:012x}"}


def test_an_id_without_a_time_gets_now():
    import time

    before = time.time_ns() // 1_000_000
    assert before <= created_ms_of(time_sorted_id()) <= time.time_ns() // 1_000_000
