"""The least-busy choice, as a table: power of two choices, ties, stale data, weights, failures."""

from __future__ import annotations

from collections import Counter
from itertools import cycle, pairwise

import pytest

from sluicegate.routing.least_busy import Load, choose_least_busy, score
from sluicegate.routing.load import BoardPolicy, LoadBoard
from sluicegate.routing.server_load import ServerLoad, parse_server_load


def draws(*values: float):
    """An rng that returns these values in turn (then repeats them)."""
    it = cycle(values)
    return lambda: next(it)


IDLE = Load()
BUSY = Load(in_flight=5, latency_ms=100.0, ttft_ms=20.0)
FAST = Load(in_flight=0, latency_ms=100.0, ttft_ms=20.0)
SLOW_IDLE = Load(in_flight=0, latency_ms=1000.0, ttft_ms=400.0)
FAST_QUEUED = Load(in_flight=2, latency_ms=100.0, ttft_ms=20.0)

CASES = [
    # name, weights, loads, rng draws, expected index, expected reason
    ("single candidate", [1], [BUSY], [0.3], 0, "only candidate"),
    ("only one positive weight", [0, 1, 0], [IDLE, BUSY, IDLE], [0.9], 1, "only candidate"),
    ("the idle one of two", [1, 1], [BUSY, FAST], [0.1, 0.1], 1, "lower score"),
    ("order of the draw does not matter", [1, 1], [FAST, BUSY], [0.9, 0.1], 0, "lower score"),
    ("a slow idle target loses to a fast one with a short queue", [1, 1], [SLOW_IDLE, FAST_QUEUED],
     [0.1, 0.1], 1, "lower score"),
    ("a slow target wins once the fast queue is long", [1, 1],
     [SLOW_IDLE, Load(in_flight=15, latency_ms=100.0, ttft_ms=20.0)], [0.1, 0.1], 0, "lower score"),
    ("tie broken by the draw: low", [1, 1], [IDLE, IDLE], [0.1, 0.1, 0.2], 0, "tie"),
    ("tie broken by the draw: high", [1, 1], [IDLE, IDLE], [0.1, 0.1, 0.7], 1, "tie"),
    ("tie in the sampled pair, the third is never seen", [1, 1, 1], [IDLE, IDLE, BUSY], [0.0, 0.0, 0.9],
     1, "tie"),
    ("P2C compares only the two drawn: the idle third is not among them", [1, 1, 1],
     [BUSY, Load(in_flight=3, latency_ms=100.0, ttft_ms=20.0), IDLE], [0.0, 0.0], 1, "lower score"),
    ("server-reported queue beats our in-flight count", [1, 1],
     [Load(in_flight=1, latency_ms=100.0, server_queue=9), Load(in_flight=3, latency_ms=100.0)],
     [0.1, 0.1], 1, "lower score"),
    ("a full KV cache weighs", [1, 1],
     [Load(in_flight=1, latency_ms=100.0, cache_usage=0.99), Load(in_flight=2, latency_ms=100.0, cache_usage=0.1)],
     [0.1, 0.1], 1, "lower score"),
    ("a fast-failing target does not look idle", [1, 1],
     [Load(in_flight=0, latency_ms=100.0, failures=3, error_rate=0.6), Load(in_flight=8, latency_ms=100.0)],
     [0.1, 0.1], 1, "lower score"),
    ("one fast failure outweighs a queue of eight", [1, 1],
     [Load(in_flight=0, latency_ms=2.0, ttft_ms=2.0, failures=1, error_rate=0.3),
      Load(in_flight=8, latency_ms=50.0, ttft_ms=50.0)], [0.1, 0.1], 1, "lower score"),
    ("an unmeasured target is assumed typical, not free", [1, 1],
     [Load(in_flight=2), Load(in_flight=1, latency_ms=500.0, ttft_ms=50.0)], [0.1, 0.1], 1, "lower score"),
    ("no positive weight: nothing to choose", [0, 0], [IDLE, IDLE], [0.5], None, None),
    ("fresh slow figures: the fast target wins with a queue of 25", [1, 1],
     [Load(latency_ms=300.0), Load(in_flight=25, latency_ms=5.0)], [0.1, 0.1], 1, "lower score"),
    ("stale slow figures count less: the same queue now loses", [1, 1],
     [Load(latency_ms=300.0, evidence=0.25), Load(in_flight=25, latency_ms=5.0)], [0.1, 0.1], 0, "lower score"),
    ("equally stale targets keep their order", [1, 1],
     [Load(latency_ms=300.0, evidence=0.1), Load(latency_ms=5.0, evidence=0.1)], [0.1, 0.1], 1, "lower score"),
    ("dropped figures: scored like a new target, a tie with the fresh one", [1, 1],
     [Load(), Load(latency_ms=5.0, ttft_ms=5.0)], [0.1, 0.1, 0.2], 0, "tie"),
]


@pytest.mark.parametrize(("name", "weights", "loads", "rng", "index", "reason"), CASES, ids=[c[0] for c in CASES])
def test_choice_table(name, weights, loads, rng, index, reason):
    choice = choose_least_busy(weights, loads, draws(*rng))
    if index is None:
        assert choice is None
        return
    assert (choice.index, choice.reason) == (index, reason)
    assert choice.index in choice.compared
    assert len(set(choice.compared)) == len(choice.compared)  # two distinct candidates


def test_weights_are_the_prior_of_the_draw():
    # Equal loads everywhere: the choice is the weighted draw (and the weighted tie-break), so weight 3 is
    # chosen about 3 times as often.
    import random

    rng = random.Random(7).random
    counts = Counter(choose_least_busy([3, 1], [IDLE, IDLE], rng).index for _ in range(4000))
    assert 0.70 < counts[0] / 4000 < 0.80
    uneven = Counter(choose_least_busy([1, 3], [IDLE, IDLE], rng).index for _ in range(4000))
    assert 0.70 < uneven[1] / 4000 < 0.80
    three = Counter()
    for _ in range(6000):
        choice = choose_least_busy([4, 1, 1], [IDLE, IDLE, IDLE], rng)
        three.update(choice.compared)
    # Weight 4 is in nearly every pair; the weight-1 targets still get compared (never starved).
    assert three[0] > 5000 and three[1] > 1500 and three[2] > 1500


def test_zero_weight_is_never_drawn():
    import random

    rng = random.Random(3).random
    seen = Counter()
    for _ in range(500):
        seen.update(choose_least_busy([1, 0, 1], [IDLE, IDLE, IDLE], rng).compared)
    assert seen[1] == 0


def test_score_grows_with_queue_latency_and_failures():
    base = score(Load(in_flight=1, latency_ms=100, ttft_ms=10), 0, 0)
    assert score(Load(in_flight=2, latency_ms=100, ttft_ms=10), 0, 0) > base
    assert score(Load(in_flight=1, latency_ms=200, ttft_ms=10), 0, 0) > base
    assert score(Load(in_flight=1, latency_ms=100, ttft_ms=10, failures=1), 0, 0) >= 4 * base
    # A failing target that used to be very fast is judged at least at the typical speed.
    assert score(Load(latency_ms=1, ttft_ms=1, failures=1), 100, 10) > score(Load(latency_ms=100, ttft_ms=10), 0, 0)
    assert score(Load(in_flight=1, latency_ms=100, ttft_ms=10, error_rate=0.5), 0, 0) >= 6 * base


# -- the board: stale data, ejection, probes ----------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stale_server_report_falls_back_to_in_flight():
    clock = Clock()
    board = LoadBoard(clock, BoardPolicy(stale_s=5.0))
    board.started("a", "http://127.0.0.1:1/v1")
    board.reported("a", ServerLoad(running=1, waiting=7, cache_usage=0.5))
    assert board.load("a") .server_queue == 8 and board.load("a").cache_usage == 0.5
    clock.now += 5.0
    assert board.load("a").server_queue == 8  # at the edge: still fresh
    clock.now += 0.01
    stale = board.load("a")
    assert (stale.server_queue, stale.cache_usage, stale.in_flight) == (None, None, 1)


def test_in_flight_is_exact_and_timings_skip_failures():
    board = LoadBoard(Clock())
    for _ in range(3):
        board.started("a", "u")
    board.finished("a", ok=True, ttft_ms=10, latency_ms=100)
    board.finished("a", ok=False, ttft_ms=1, latency_ms=1)
    load = board.load("a")
    assert load.in_flight == 1 and load.ttft_ms == 10 and load.latency_ms == 100
    assert load.failures == 1 and load.error_rate == pytest.approx(0.3)
    board.finished("a", ok=True, ttft_ms=20, latency_ms=200)
    load = board.load("a")
    assert load.in_flight == 0 and load.failures == 0 and load.ttft_ms == pytest.approx(13.0)
    board.finished("a", ok=True, ttft_ms=None, latency_ms=None)
    assert board.load("a").in_flight == 0  # never below zero
    board.started("a", "u")
    board.finished("a", ok=False, ttft_ms=None, latency_ms=None)
    board.started("a", "u")
    board.finished("a", ok=None, ttft_ms=None, latency_ms=None)  # the client left: no verdict
    load = board.load("a")
    assert load.in_flight == 0 and load.failures == 1


def test_timings_are_per_request_costs_not_queueing():
    board = LoadBoard(Clock())
    assert [board.started("a", "u") for _ in range(4)] == [1, 2, 3, 4]
    board.finished("a", ok=True, ttft_ms=400, latency_ms=800, sharing=4)  # waited behind three others
    load = board.load("a")
    assert (load.ttft_ms, load.latency_ms, load.in_flight) == (100, 200, 3)


def test_consecutive_failures_eject_then_one_try_after_the_pause():
    clock = Clock()
    board = LoadBoard(clock, BoardPolicy(eject_after=3, eject_s=2.0))
    for _ in range(3):
        board.started("a", "u")
        assert board.healthy("a")
        board.finished("a", ok=False, ttft_ms=None, latency_ms=None)
    assert not board.healthy("a")
    clock.now += 1.99
    assert not board.healthy("a")
    clock.now += 0.01
    assert board.healthy("a")
    board.started("a", "u")
    board.finished("a", ok=False, ttft_ms=None, latency_ms=None)  # the retry failed: twice as long out
    clock.now += 3.99
    assert not board.healthy("a")
    clock.now += 0.01
    assert board.healthy("a")
    board.started("a", "u")
    board.finished("a", ok=True, ttft_ms=5, latency_ms=5)
    assert board.healthy("a") and board.load("a").failures == 0


@pytest.mark.parametrize(("unhealthy_after", "healthy_after", "probes", "expected"), [
    (1, 1, [False], [False]),
    (1, 1, [False, True], [False, True]),
    (2, 1, [False, False, True], [True, False, True]),
    (1, 2, [False, True, True], [False, False, True]),
    (1, 1, [True, True], [True, True]),
    (2, 2, [False, True, False, False, True, True], [True, True, True, False, False, True]),
])
def test_probe_thresholds(unhealthy_after, healthy_after, probes, expected):
    board = LoadBoard(Clock(), BoardPolicy(unhealthy_after=unhealthy_after, healthy_after=healthy_after))
    board.started("a", "u")
    seen = []
    for passed in probes:
        board.probed("a", passed, None if passed else "connection refused")
        seen.append(board.healthy("a"))
    assert seen == expected


def test_a_passing_probe_after_an_outage_clears_the_failure_run():
    clock = Clock()
    board = LoadBoard(clock, BoardPolicy(eject_after=2, eject_s=60.0))
    board.started("a", "u")
    board.finished("a", ok=False, ttft_ms=None, latency_ms=None)
    board.started("a", "u")
    board.finished("a", ok=False, ttft_ms=None, latency_ms=None)
    board.probed("a", False, "refused")
    assert not board.healthy("a")
    board.probed("a", True)
    assert board.healthy("a") and board.load("a").failures == 0


def test_board_memory_is_bounded():
    board = LoadBoard(Clock(), max_keys=3)
    for key in "abcde":
        board.started(key, "u")
    assert len(board) == 3 and {v.key for v in board.views()} == {"c", "d", "e"}


# -- latency evidence ages -------------------------------------------------------------------------------

HALF_LIFE = BoardPolicy().half_life_s
FORGOTTEN_WITHIN = 4 * HALF_LIFE  # no sample for this long: scored like a new target


def sample(board: LoadBoard, key: str, clock: Clock, latency_ms: float, *, takes_time: bool = True) -> None:
    """One request to ``key`` that took ``latency_ms`` (the clock moves on by that much unless told not to)."""
    board.started(key, "u")
    if takes_time:
        clock.now += latency_ms / 1000.0
    board.finished(key, ok=True, ttft_ms=latency_ms, latency_ms=latency_ms)


def paced(board: LoadBoard, clock: Clock, latency: dict[str, float], seconds: float, gap_s: float = 0.1,
          seed: int = 1) -> list[tuple[float, str]]:
    """Requests one after another (light load: nothing else in flight) for ``seconds``: (time sent, target)."""
    import random

    rng = random.Random(seed).random
    keys = list(latency)
    sent = []
    end = clock.now + seconds
    while clock.now < end:
        choice = choose_least_busy([1] * len(keys), [board.load(k) for k in keys], rng)
        key = keys[choice.index]
        sent.append((clock.now, key))
        sample(board, key, clock, latency[key])
        clock.now += gap_s
    return sent


def test_evidence_halves_every_half_life_and_is_dropped_after_four():
    clock = Clock()
    board = LoadBoard(clock)
    assert board.load("a").evidence == 1.0 and board.load("a").latency_ms is None  # unknown
    sample(board, "a", clock, 300.0)
    assert board.load("a").evidence == 1.0 and board.load("a").latency_ms == 300.0
    clock.now += HALF_LIFE
    assert board.load("a").evidence == pytest.approx(0.5) and board.load("a").latency_ms == 300.0
    clock.now += 2 * HALF_LIFE
    assert board.load("a").evidence == pytest.approx(0.125)
    clock.now += HALF_LIFE - 0.01
    assert board.load("a").latency_ms == 300.0
    clock.now += 0.01
    dropped = board.load("a")
    assert (dropped.latency_ms, dropped.ttft_ms, dropped.evidence) == (None, None, 1.0)  # like a new target


def test_a_sample_after_silence_mostly_replaces_the_old_figure():
    clock = Clock()
    board = LoadBoard(clock)
    sample(board, "a", clock, 1000.0, takes_time=False)
    sample(board, "a", clock, 10.0, takes_time=False)  # at the same instant: the plain EWMA (alpha 0.3)
    assert board.load("a").latency_ms == pytest.approx(703.0)
    clock.now += HALF_LIFE
    sample(board, "a", clock, 10.0, takes_time=False)  # half the weight left on the old figure: 1 - 0.7 * 0.5
    assert board.load("a").latency_ms == pytest.approx(703.0 + 0.65 * (10.0 - 703.0))
    clock.now += FORGOTTEN_WITHIN
    sample(board, "a", clock, 20.0, takes_time=False)
    assert board.load("a").latency_ms == 20.0  # the old figure was dropped


def test_failures_and_shared_counts_do_not_refresh_or_age_latency():
    clock = Clock()
    board = LoadBoard(clock)
    sample(board, "a", clock, 300.0)
    board.shared("a", 4)
    clock.now += HALF_LIFE
    board.started("a", "u")
    board.finished("a", ok=False, ttft_ms=1.0, latency_ms=1.0)  # a failure is no latency sample
    board.started("a", "u")
    board.finished("a", ok=None, ttft_ms=None, latency_ms=None)
    board.shared("a", 4)
    load = board.load("a")
    assert load.latency_ms == 300.0 and load.evidence == pytest.approx(0.5)
    assert load.in_flight == 4 and load.failures == 1  # the others' count and the failure run stand as they were


def test_a_target_that_answered_slowly_once_gets_traffic_again_within_the_bound():
    # The tester's scenario: two equally fast targets, one answers slowly once, then both are fast again.
    # Without ageing the slow figure never changed (nothing went there) and every request went to b.
    clock = Clock()
    board = LoadBoard(clock)
    sample(board, "a", clock, 5.0)
    sample(board, "b", clock, 5.0)
    sample(board, "a", clock, 1000.0)
    slow_at = clock.now
    sent = paced(board, clock, {"a": 5.0, "b": 5.0}, seconds=20)
    to_a = [at for at, key in sent if key == "a"]
    assert to_a, "a was never tried again"
    assert to_a[0] - slow_at <= FORGOTTEN_WITHIN + 0.5, to_a[0] - slow_at
    # Once measured afresh it is as fast as b again and takes its share (ties are drawn).
    later = [key for at, key in sent if at > to_a[0]]
    assert 0.35 < later.count("a") / len(later) < 0.65, later.count("a") / len(later)


def test_a_target_that_stays_slow_keeps_being_avoided():
    clock = Clock()
    board = LoadBoard(clock)
    sample(board, "a", clock, 1000.0)
    sample(board, "b", clock, 5.0)
    sent = paced(board, clock, {"a": 1000.0, "b": 5.0}, seconds=60)
    to_a = [at for at, key in sent if key == "a"]
    # Re-measured about once per forgetting period (each try is a slow request), never more.
    assert 1 <= len(to_a) <= 60 / FORGOTTEN_WITHIN + 1, len(to_a)
    assert all(later - earlier >= FORGOTTEN_WITHIN for earlier, later in pairwise(to_a))
    assert len(sent) - len(to_a) > 400


def test_a_target_that_failed_once_gets_traffic_again_within_the_bound():
    # One 502, then silence: its failure run and rate changed only when a request went there, so it was
    # scored ~30 times worse for ever, and at light load with two targets never picked again.
    clock = Clock()
    board = LoadBoard(clock)
    sample(board, "a", clock, 5.0)
    sample(board, "b", clock, 5.0)
    board.started("a", "u")
    board.finished("a", ok=False, ttft_ms=None, latency_ms=None)
    failed_at = clock.now
    assert board.load("a").failures == 1 and board.load("a").error_rate > 0
    sent = paced(board, clock, {"a": 5.0, "b": 5.0}, seconds=20)
    to_a = [at for at, key in sent if key == "a"]
    assert to_a, "a was never tried again"
    assert to_a[0] - failed_at <= FORGOTTEN_WITHIN + 0.5, to_a[0] - failed_at
    # Its success cleared the run; as fast as b, it takes its share again (ties are drawn).
    later = [key for at, key in sent if at > to_a[0]]
    assert 0.35 < later.count("a") / len(later) < 0.65, later.count("a") / len(later)


def test_a_stale_slow_target_takes_a_burst_sooner():
    # Under load the ageing shows before the figures are dropped: a queue at the fast target that did not
    # outweigh a fresh slow figure outweighs it once half of its weight is gone.
    clock = Clock()
    board = LoadBoard(clock)
    sample(board, "a", clock, 300.0, takes_time=False)
    sample(board, "b", clock, 5.0, takes_time=False)
    for _ in range(60):
        board.started("b", "u")
    fresh = choose_least_busy([1, 1], [board.load("a"), board.load("b")], draws(0.1, 0.1))
    assert fresh.index == 1
    clock.now += 2 * HALF_LIFE
    sample(board, "b", clock, 5.0, takes_time=False)  # b keeps answering (fresh); a was left alone
    board.started("b", "u")
    stale = choose_least_busy([1, 1], [board.load("a"), board.load("b")], draws(0.1, 0.1))
    assert stale.index == 0, stale


# -- what servers report ------------------------------------------------------------------------------

LLAMA = """# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
llamacpp:requests_deferred 5
llamacpp:kv_cache_usage_ratio 0.25
"""
VLLM = """vllm:num_requests_running{model_name="m",engine="0"} 3.0
vllm:num_requests_waiting{model_name="m",engine="0"} 4.0
vllm:num_requests_waiting{model_name="n",engine="1"} 1.0
vllm:gpu_cache_usage_perc{model_name="m"} 0.75
"""


@pytest.mark.parametrize(("text", "expected"), [
    (LLAMA, ServerLoad(running=2, waiting=5, cache_usage=0.25)),
    (VLLM, ServerLoad(running=3, waiting=5, cache_usage=0.75)),
    ('vllm:kv_cache_usage_perc{a="b c"} 0.5\n', ServerLoad(cache_usage=0.5)),
    ("tgi_queue_size 7\ntgi_batch_current_size 3\n", ServerLoad(waiting=7)),
    ("tgi_queue_size 7 1700000000000\n", ServerLoad(waiting=7)),
    ("vllm:gpu_cache_usage_perc 1.7\n", ServerLoad(cache_usage=1.0)),
    ("", None),
    ("<html>not metrics</html>", None),
    ("process_cpu_seconds_total 12\n", None),
    ("llamacpp:requests_deferred NaN\nllamacpp:requests_deferred -3\n", None),
    ("tgi_queue_size{broken 7\n", None),
    ("tgi_queue_size\n", None),
])
def test_server_reports(text, expected):
    assert parse_server_load(text) == expected


def test_queue_adds_running_and_waiting():
    assert ServerLoad(running=2, waiting=5).queue == 7
    assert ServerLoad(waiting=5).queue == 5
    assert ServerLoad(cache_usage=0.3).queue is None


@pytest.mark.parametrize(("interval", "timeout", "stale"), [(0.5, 2.0, 2.5), (2.0, 1.0, 6.0), (0.2, 0.1, 1.0)])
def test_a_report_stays_fresh_while_a_slow_scrape_may_still_refresh_it(interval, timeout, stale):
    # Three intervals only: with a 0.5 s interval and a 2 s probe timeout, one slow scrape on a loaded machine
    # let a report lapse, and a server that said it had 41 queued got every request (in CI).
    from sluicegate.app import _load_board
    from sluicegate.settings import Settings

    board = _load_board(Settings(probe_interval_s=interval, probe_timeout_s=timeout))
    assert board.policy.stale_s == stale
