"""pick_weighted: deterministic draws, so proportions are exact over a grid of r values."""

from __future__ import annotations

from collections import Counter

import pytest

from sluicegate.routing.weighted import pick_weighted


@pytest.mark.parametrize(
    "weights, r, expected",
    [
        ([1], 0.0, 0),
        ([1], 0.999999, 0),
        ([1, 1], 0.0, 0),
        ([1, 1], 0.49, 0),
        ([1, 1], 0.5, 1),
        ([1, 3], 0.24, 0),
        ([1, 3], 0.25, 1),
        ([0, 1], 0.0, 1),
        ([1, 0], 0.99, 0),
        ([0, 2, 0, 2, 0], 0.0, 1),
        ([0, 2, 0, 2, 0], 0.5, 3),
        ([0.7, 0.3], 0.69, 0),
        ([0.7, 0.3], 0.71, 1),
        ([1, 1, 1], 1 - 1e-17, 2),  # rounds to 1.0 * total: the top edge belongs to the last positive
        ([1, -5, 1], 0.6, 2),  # negative weights are treated like 0
    ],
)
def test_picks(weights, r, expected):
    assert pick_weighted(weights, r) == expected


@pytest.mark.parametrize("weights", [[], [0], [0, 0, 0], [-1, 0]])
def test_nothing_to_pick_is_none(weights):
    assert pick_weighted(weights, 0.3) is None


@pytest.mark.parametrize(
    "weights",
    [[1, 1], [1, 3], [5, 0, 3, 2], [0.1, 0.2, 0.7], [1, 2, 3, 4, 5, 6, 7]],
)
def test_proportions_over_a_grid_match_the_weights(weights):
    steps = 10_000
    counts = Counter(pick_weighted(weights, (k + 0.5) / steps) for k in range(steps))
    total = sum(weights)
    for index, weight in enumerate(weights):
        assert abs(counts[index] - steps * weight / total) <= 1
    assert sum(counts.values()) == steps


def test_zero_weight_is_never_chosen_anywhere_on_the_grid():
    picks = {pick_weighted([3, 0, 1], k / 1000) for k in range(1000)}
    assert picks == {0, 2}
