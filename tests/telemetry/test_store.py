"""Writer, queries and retention against the real store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from sluicegate.store.request_logs import request_attempts, request_logs
from sluicegate.telemetry import params, query
from sluicegate.telemetry.retention import DAY_MS, Retention
from sluicegate.telemetry.service import store_writer
from sluicegate.telemetry.sink import RejectedBatch

from .helpers import entry

BASE = 1_749_996_000_000  # on an hour boundary: buckets are predictable
HOUR = 3_600_000


@pytest.fixture
async def writer(engine):
    writer = store_writer(engine)
    yield writer
    await writer.close()


async def count(engine, table=request_logs) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(table))


async def test_write_is_idempotent_and_keeps_attempts(engine, writer):
    batch = [entry() for _ in range(300)]  # several multi-row chunks of different sizes on SQLite
    await writer.write(batch)
    await writer.write(batch[:20])  # a replay of rows already stored
    assert await count(engine) == 300 and await count(engine, request_attempts) == 300
    async with engine.connect() as conn:
        stored = {r.id: r for r in await conn.execute(select(request_logs))}
    for row, _ in batch:  # every column lands in its own place, whatever the chunk
        assert dict(stored[row["id"]]._mapping) == row
    await writer.write([])  # the probe: just answers


async def test_a_bad_row_is_refused_alone(engine, writer):
    batch = [entry() for _ in range(9)]
    batch[4][0]["latency_ms"] = None  # NOT NULL
    with pytest.raises(RejectedBatch) as refused:
        await writer.write(batch)
    assert refused.value.count == 1 and await count(engine) == 8


@pytest.fixture
async def seeded(engine, writer):
    """30 requests over three hours: providers a/b, users u0..u2, statuses 200 or 500 every fifth."""
    entries = []
    for i in range(30):
        row, attempts = entry(BASE + (i // 10) * HOUR + i * 1000)
        row.update(provider="a" if i % 2 else "b", user=f"u{i % 3}", metadata={"team": f"t{i % 2}", "_user": f"u{i % 3}"},
                   status=500 if i % 5 == 0 else 200, latency_ms=float(i + 1), prompt_tokens=i, completion_tokens=1,
                   total_tokens=i + 1, cost=0.5, trace_id=f"trace-{i}",
                   error_type="upstream_error" if i % 5 == 0 else None,
                   cache_status=("HIT", "MISS", "DISABLED")[i % 3])
        entries.append((row, attempts))
    await writer.write(entries)
    return [row for row, _ in entries]


async def test_pages_walk_every_row_once_newest_first(engine, seeded):
    seen, cursor = [], None
    while True:
        page = params.Page(params.LogFilter(), 7, cursor)
        result = await query.list_logs(engine, page)
        seen += [r["id"] for r in result["data"]]
        if result["next_cursor"] is None:
            break
        cursor = params.decode_cursor(result["next_cursor"])
    expected = [r["id"] for r in sorted(seeded, key=lambda r: (r["created_ms"], r["id"]), reverse=True)]
    assert seen == expected
    first = (await query.list_logs(engine, params.Page(params.LogFilter(), 1, None)))["data"][0]
    assert first["attempts"][0]["target_path"] == "config" and "request_body" not in first
    assert first["usage"] == {"prompt_tokens": 29, "completion_tokens": 1, "total_tokens": 30, "estimated": False}


@pytest.mark.parametrize(
    ("query_params", "expected"),
    [
        ({"provider": "a"}, lambda r: r["provider"] == "a"),
        ({"user": "u1,u2"}, lambda r: r["user"] in ("u1", "u2")),
        ({"status": "5xx"}, lambda r: r["status"] >= 500),
        ({"status": "200"}, lambda r: r["status"] == 200),
        ({"status": "error"}, lambda r: r["status"] >= 400),
        ({"status": "success"}, lambda r: r["status"] < 400),
        # A list is a union: these returned nothing ("error" or "success" was ANDed with the codes), and the
        # last of "error" and "success" won.
        ({"status": "500,success"}, lambda r: r["status"] == 500 or r["status"] < 400),
        ({"status": "4xx,success"}, lambda r: r["status"] < 500),
        ({"status": "200,error"}, lambda r: r["status"] == 200 or r["status"] >= 400),
        ({"status": "success,error"}, lambda r: True),
        ({"status": "error,success,500"}, lambda r: True),
        ({"metadata.team": "t1"}, lambda r: r["metadata"]["team"] == "t1"),
        ({"trace_id": "trace-7"}, lambda r: r["trace_id"] == "trace-7"),
        ({"from": str((BASE + HOUR) / 1000), "to": str((BASE + 2 * HOUR) / 1000)},
         lambda r: BASE + HOUR <= r["created_ms"] < BASE + 2 * HOUR),
        ({"provider": "b", "metadata.team": "t0", "status": "500"},
         lambda r: r["provider"] == "b" and r["metadata"]["team"] == "t0" and r["status"] == 500),
    ],
)
async def test_filters(engine, seeded, query_params, expected):
    page = params.parse_page({**query_params, "limit": "500"})
    got = {r["id"] for r in (await query.list_logs(engine, page))["data"]}
    assert got == {r["id"] for r in seeded if expected(r)} and got


async def test_one_record_in_full(engine, seeded):
    record = await query.get_log(engine, seeded[3]["id"])
    assert record["request_body"] and record["response_body"] and record["attempts"]
    assert await query.get_log(engine, "nope") is None


async def test_an_id_no_record_can_have_is_unknown_not_a_store_error(engine, seeded):
    # GET /admin/api/logs/%00 was a 500 on PostgreSQL, which refuses a NUL in a text parameter.
    for record_id in ("\x00", "a\x00b", seeded[3]["id"] + "\x00", "a" * 10_000):
        assert await query.get_log(engine, record_id) is None


@pytest.mark.parametrize("group_by", ["none", "provider", "user", "metadata.team", "status", "cache_status"])
async def test_analytics_totals_equal_the_sum_of_the_logs(engine, seeded, group_by):
    q = params.parse_analytics({"from": str(BASE / 1000), "to": str((BASE + 3 * HOUR) / 1000),
                                "interval": "1h", "group_by": group_by})
    result = await query.analytics(engine, q)
    totals = result["totals"]
    assert totals["requests"] == 30 and totals["errors"] == 6 and totals["error_rate"] == 0.2
    assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in seeded)
    assert totals["total_tokens"] == sum(r["total_tokens"] for r in seeded)
    assert totals["cost"] == pytest.approx(15.0)
    assert totals["latency_ms"] == {"p50": 15.0, "p95": 29.0, "p99": 30.0}
    assert (totals["cache_hits"], totals["cache_misses"], totals["cache_hit_rate"]) == (10, 10, 0.5)
    assert totals["tokens_saved"] == sum(r["total_tokens"] for r in seeded if r["cache_status"] == "HIT")
    assert totals["cost_saved"] == pytest.approx(5.0)
    assert {d["bucket_ms"] for d in result["data"]} == {BASE, BASE + HOUR, BASE + 2 * HOUR}
    assert sum(d["requests"] for d in result["data"]) == 30


async def test_analytics_grouped_by_provider(engine, seeded):
    q = params.parse_analytics({"from": str(BASE / 1000), "to": str((BASE + HOUR) / 1000), "group_by": "provider"})
    data = (await query.analytics(engine, q))["data"]
    assert [(d["group"], d["requests"]) for d in data] == [("a", 5), ("b", 5)]
    b = data[1]
    assert b["errors"] == 1 and b["latency_ms"]["p50"] == 5.0  # i = 0, 2, 4, 6, 8: latencies 1, 3, 5, 7, 9


async def test_retention_prunes_old_rows_and_their_attempts(engine, writer):
    now = time.time()
    old = [entry(int((now - 10 * DAY_MS / 1000) * 1000)) for _ in range(7)]
    fresh = [entry(int(now * 1000)) for _ in range(3)]
    await writer.write(old + fresh)
    retention = Retention(engine, days=7, clock=lambda: now)
    assert await retention.prune_once() == 7
    assert await count(engine) == 3 and await count(engine, request_attempts) == 3
    assert await retention.prune_once() == 0


async def test_an_unencodable_row_is_refused_alone_not_taken_for_an_outage(engine, writer):
    # Rows are made storable when built; a row that slips past that must still not fail its batch.
    batch = [entry() for _ in range(9)]
    batch[2][0]["trace_id"] = "poison-\udcff"
    batch[6][0]["metadata"] = {"k": "\ud800"}
    with pytest.raises(RejectedBatch) as refused:
        await writer.write(batch)
    assert refused.value.count == 2 and await count(engine) == 7


async def test_a_number_the_store_cannot_hold_is_refused_alone_not_taken_for_an_outage(engine, writer):
    # Past 64 bits neither SQLite nor PostgreSQL stores an integer (the driver refuses to bind it): the row is
    # refused alone. Taken for an outage, it failed every replay of the spool, and logging stopped.
    batch = [entry() for _ in range(9)]
    batch[3][0]["prompt_tokens"] = 2**63
    batch[5][0]["request_bytes"] = 2**64 - 1
    with pytest.raises(RejectedBatch) as refused:
        await writer.write(batch)
    assert refused.value.count == 2 and await count(engine) == 7
    await writer.write([])  # the probe: the store answers


async def test_a_row_without_a_column_is_refused_alone_not_taken_for_an_outage(engine, writer):
    # Rows are completed when spooled lines are read back (spool.py); one that slips past that (a line of
    # another shape) made the writer raise KeyError, taken for an outage: the log stalled.
    batch = [entry() for _ in range(9)]
    del batch[1][0]["user"]
    del batch[4][1][0]["routing"]
    batch[7] = ("not a row", [])
    with pytest.raises(RejectedBatch) as refused:
        await writer.write(batch)
    assert refused.value.count == 3 and await count(engine) == 6
    await writer.write([])  # the probe: the store answers


async def test_analytics_over_the_whole_range_is_one_bucket_per_group(engine, seeded):
    q = params.parse_analytics({"from": str(BASE / 1000), "to": str((BASE + 3 * HOUR) / 1000),
                                "interval": "all", "group_by": "provider"})
    result = await query.analytics(engine, q)
    assert [(d["bucket_ms"], d["group"]) for d in result["data"]] == [(BASE, "a"), (BASE, "b")]
    assert sum(d["requests"] for d in result["data"]) == 30 and result["interval_ms"] == 3 * HOUR


@pytest.mark.parametrize("group_by", ["none", "provider"])
async def test_analytics_percentiles_from_the_histogram(engine, seeded, group_by, monkeypatch):
    """Past EXACT_MAX records the percentiles come from latency bins: whole milliseconds here (1 ms bins
    below 100 ms), so they must equal the exact ones."""
    monkeypatch.setattr(query, "EXACT_MAX", 0)
    q = params.parse_analytics({"from": str(BASE / 1000), "to": str((BASE + 3 * HOUR) / 1000),
                                "interval": "1h", "group_by": group_by})
    result = await query.analytics(engine, q)
    assert result["totals"]["latency_ms"] == {"p50": 15.0, "p95": 29.0, "p99": 30.0}
    monkeypatch.setattr(query, "EXACT_MAX", 10**9)
    exact = await query.analytics(engine, q)
    assert [d["latency_ms"] for d in result["data"]] == [d["latency_ms"] for d in exact["data"]]


def test_a_binned_percentile_is_the_largest_latency_of_the_bin_holding_the_rank():
    # bins: 100 ms (2 ms wide) holds 3 requests, largest 101.5; 120 ms holds 1, largest 120.9
    bins = {100: [3, 101.5], 120: [1, 120.9]}
    assert query._ranks(bins) == {50: 101.5, 95: 120.9, 99: 120.9}


def test_a_multirow_insert_made_by_string_is_the_one_sqlalchemy_compiles():
    from sqlalchemy.dialects.sqlite import aiosqlite

    from sluicegate.telemetry.writer import PARAMS_PER_STATEMENT, Insert

    for table, key in ((request_logs, ["id"]), (request_attempts, ["request_id", "position"])):
        insert = Insert(aiosqlite.dialect(), table, key)
        for rows in (2, 3, 32, 256):
            assert insert.multirow(rows) == insert._compile(rows)[0]
        assert insert.chunk_max * len(insert.columns) <= PARAMS_PER_STATEMENT <= 32_766  # SQLite's own limit
