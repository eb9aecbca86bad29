"""Least-busy against weighted load balancing on two real llama.cpp servers, one made slower.

The slow server runs at nice 4 on CPU 0 beside a busy-loop process at normal priority (a concurrent
background load: on a 2-core machine there is no spare core for "fewer threads" to mean anything), so it
runs several times slower than the fast one, which has CPU 1 (demo/routing_bench.py says why). 16 concurrent
clients stream chat completions through the gateway, once per policy. With least-busy the 95th percentile
of time to first token must be at least 30 % lower than with the weighted draw, and neither server may be
starved (each answers at least 10 % of the requests). demo/routing_bench.py is the longer, documented run
(docs/benchmarks.md).
"""

from __future__ import annotations

import pytest

from demo.routing_bench import PinnedServer, burners, compare

CLIENTS = 16
REQUESTS = 48  # per policy
ROUND_TIMEOUT_S = 400.0


@pytest.fixture(scope="module")
def pinned_pair(llama_build, tmp_path_factory):
    logs = tmp_path_factory.mktemp("least-busy-llama")
    fast = PinnedServer(llama_build["python"], llama_build["gguf"], logs / "fast.log", cpu=1).start()
    try:
        slow = PinnedServer(llama_build["python"], llama_build["gguf"], logs / "slow.log", cpu=0, nice=4).start()
    except BaseException:
        fast.stop()
        raise
    yield fast, slow
    slow.stop()
    fast.stop()


@pytest.mark.alone  # CPU pinning and busy loops: other tests running beside it would change the ratio
@pytest.mark.timeout(2 * ROUND_TIMEOUT_S + 120)  # two rounds on a busy 2-core machine take minutes
async def test_least_busy_cuts_p95_time_to_first_token_by_30_percent_without_starving(gateway, pinned_pair):
    fast, slow = pinned_pair
    with burners(0, 1, limit_s=2 * ROUND_TIMEOUT_S + 60):
        result = await compare(gateway.v1, fast.v1, slow.v1, clients=CLIENTS, requests=REQUESTS, rounds=1,
                               max_tokens=12, timeout_s=ROUND_TIMEOUT_S)
    weighted, least = result["summary"]["weighted"], result["summary"]["least-busy"]
    report = f"weighted {weighted}\nleast-busy {least}"
    print(report)  # the figures, for `pytest -rP` and CI logs
    assert weighted["ok"] == REQUESTS and least["ok"] == REQUESTS, report
    assert least["ttft_p95_s"] <= 0.7 * weighted["ttft_p95_s"], report
    assert set(least["share"]) == {"config.targets[0]", "config.targets[1]"}, report
    assert min(least["share"].values()) >= 0.10, report
    assert least["share"]["config.targets[0]"] > least["share"]["config.targets[1]"], report  # the fast one
