"""bench/gateway_log.py reads sluicegate's request-log counters from /metrics; the report says them."""

from __future__ import annotations

from bench import gateway_log, report

EXPOSITION = """# HELP sluicegate_log_queue_depth Records waiting in the log queue
# TYPE sluicegate_log_queue_depth gauge
sluicegate_log_queue_depth 12.0
sluicegate_log_records_written_total 71507.0
sluicegate_log_records_written_created 1.7e9
sluicegate_log_records_dropped_total{reason="queue_full"} 3.0
sluicegate_log_records_dropped_total{reason="spool_full"} 4.0
sluicegate_log_paced_requests_total 3500.0
sluicegate_log_paced_seconds_total 2.5
sluicegate_requests_total{model="m",provider="openai",status="200"} 9.0
"""


def test_the_counters_are_read_and_drops_summed_over_their_reasons():
    assert gateway_log.parse(EXPOSITION) == {"written": 71507.0, "dropped": 7.0, "paced": 3500.0,
                                             "queue_depth": 12.0}


def test_counters_a_gateway_does_not_expose_read_zero():
    assert gateway_log.parse("# nothing here\nprocess_cpu_seconds_total 3.0\n") == {
        "written": 0.0, "dropped": 0.0, "paced": 0.0, "queue_depth": 0.0}


def test_the_report_says_what_the_log_did_under_the_throughput_rounds():
    results = {"hops": {"direct": {"status": "ok"}, "sluicegate": {"status": "ok"}},
               "scenarios": {"latency_c1": {}, "throughput": {
                   "direct": {"rps": 10_000.0},
                   "sluicegate": {"rps": 3_000.0, "log": gateway_log.parse(EXPOSITION)}}}}
    text = report.http_table(results)
    assert "71,507 records written, 7 dropped, 3,500 requests paced" in text
    assert "12 still queued" in text
    results["scenarios"]["throughput"]["sluicegate"].pop("log")
    assert "records written" not in report.http_table(results)  # a run without the counters says nothing


def test_the_report_gives_each_hops_cpu_per_request_and_says_how_it_is_counted():
    results = {"hops": {"direct": {"status": "ok"}, "sluicegate": {"status": "ok"}},
               "scenarios": {"latency_c1": {"sluicegate": {"cpu_us": 612.6}}, "throughput": {
                   "direct": {"rps": 10_000.0}, "sluicegate": {"rps": 3_000.0, "cpu_us": 271.4}}}}
    text = report.http_table(results)
    assert "| CPU µs/req (c=50) | CPU µs/req (c=1) |" in text
    assert "| sluicegate | 3,000 | 0.300 | 271 | 613 |" in text
    assert "| direct | 10,000 | 1.000 | — | — |" in text  # no process of its own: the upstream is not counted
    assert "wrk and the upstream are not counted" in text
