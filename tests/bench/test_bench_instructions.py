"""bench/instructions.py's reading of callgrind's dumps (the run itself needs valgrind: not in the suite)."""

from __future__ import annotations

from pathlib import Path

from bench.instructions import thread_totals


def _dump(path: Path, totals: int) -> None:
    path.write_text(f"# callgrind format\nversion: 1\nevents: Ir\nsummary: 0\n\nfn=(1) f\n0 5\n\ntotals: {totals}\n")


def test_each_threads_totals_are_read_and_summed_over_its_dump_parts(tmp_path: Path):
    _dump(tmp_path / "callgrind.4242.1-01", 1_000)
    _dump(tmp_path / "callgrind.4242.2-01", 500)  # a second dump of the same thread
    _dump(tmp_path / "callgrind.4242.1-08", 70)
    _dump(tmp_path / "callgrind.99.1-01", 7)  # another process's dump is not this run's
    (tmp_path / "callgrind.4242").write_text("")  # the empty file callgrind leaves for the process itself

    assert thread_totals(tmp_path, 4242) == {1: 1_500, 8: 70}


def test_a_dump_without_totals_counts_nothing(tmp_path: Path):
    (tmp_path / "callgrind.7.1-03").write_text("# callgrind format\nsummary: 0\n")

    assert thread_totals(tmp_path, 7) == {}
