"""sluicegate's benchmark harness: gateways side by side, interleaved, on 127.0.0.1 only.

Run it with `make bench` (full), `make bench-quick` (about a minute) or `python -m bench --smoke`.
See docs/benchmarks.md for the method and the figures.
"""
