"""What sluicegate's request log did during a run, read from its /metrics: a gateway that serves requests
faster than it logs them would look fast for a few seconds and lose records, so every throughput figure
of sluicegate comes with its log's counters (written, dropped, paced)."""

from __future__ import annotations

from urllib.parse import urlsplit

from bench.ready import send_once
from bench.targets import Endpoint

COUNTERS = {
    "sluicegate_log_records_written_total": "written",
    "sluicegate_log_records_dropped_total": "dropped",  # summed over its reasons
    "sluicegate_log_paced_requests_total": "paced",
    "sluicegate_log_queue_depth": "queue_depth",
}


def parse(text: str) -> dict[str, float]:
    """The log's counters from a Prometheus text exposition (absent ones read 0)."""
    found = dict.fromkeys(COUNTERS.values(), 0.0)
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name, _, rest = line.partition(" ")
        key = COUNTERS.get(name.partition("{")[0])
        if key is not None:
            found[key] += float(rest.split()[0])
    return found


def counters(endpoint: Endpoint, timeout_s: float = 5.0) -> dict[str, float] | None:
    """The counters of the sluicegate behind ``endpoint``; None when its /metrics cannot be read."""
    parts = urlsplit(endpoint.url)
    metrics = Endpoint(f"{parts.scheme}://{parts.netloc}/metrics", {}, b"")
    try:
        status, body = send_once(metrics, timeout_s, method="GET")
    except OSError:
        return None
    return parse(body.decode()) if status == 200 else None
