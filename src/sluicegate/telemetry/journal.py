"""The request log's write-ahead journal: a record's rows are on local disk before its client has the answer.

The sink commits records every 20–100 ms, so a process killed in between (``kill -9``, the OOM killer) used
to lose what it had answered since. With the journal, the request path appends each record's rows' draft
(rows.py: every column but those read from the answer, and where to read those; scrubbed and storable) as
one JSON line to a segment of this process, with one ``os.write``, before the last bytes of the answer go
out; the rows are finished from it off the request path, live or at replay. The sink settles a record once
it is committed (or spooled, or counted as dropped); a segment whose records are all settled is emptied
(the one being written) or deleted (an older one, rotated at ``ROTATE_BYTES``).

Segments are the spool's (spool.py: JSON lines, named by age, locked by ``flock`` while their process
lives); one that a dead process left is adopted by the spool and replayed like a spool segment, where a
torn line counts as ``spool_corrupt`` and each draft is finished into its rows (Segment.read). Rows carry
their final ids (drafted with them) and inserts skip ids already stored, so a record both committed and
left in a journal is stored once.

No fsync: the page cache outlives the process, so ``kill -9`` and OOM kills lose nothing; a power cut or a
kernel crash can lose the last seconds (as SQLite's ``synchronous=NORMAL`` can). The methods are called on
the event loop: one ``write`` to the page cache costs a few µs, an ``ftruncate`` or a new segment a few
tens, and those come at most once per batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .spool import Segment, new_segment, private_directory

log = logging.getLogger("sluicegate.telemetry")

# A segment this large that still holds unsettled records is closed and a new one begun: under steady load
# some record is always in flight, so the one being written would never be emptied.
ROTATE_BYTES = 4 * 1024 * 1024
# How often the request log repeats a warning that keeps coming (here: a disk that refuses writes now and
# then, so the journal fails and recovers by turns; the sink's dropped records), with the count so far.
WARN_EVERY_S = 10.0


@dataclass(eq=False)
class JournalSegment:
    """A segment and how many of the records appended to it are settled."""

    segment: Segment
    appended: int = 0
    settled: int = 0

    @property
    def done(self) -> bool:
        return self.settled >= self.appended


class Journal:
    def __init__(self, directory: Path, rotate_bytes: int = ROTATE_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._rotate_bytes = rotate_bytes
        self._clock = clock
        self._warned_at = -WARN_EVERY_S
        self._current: JournalSegment | None = None
        self._older: list[JournalSegment] = []  # rotated, until their last records are settled
        self.failed = 0  # records not journaled (still logged, unless the process dies before the commit)
        self.error: str | None = None  # why the last append failed; None once one succeeds

    def open(self) -> None:
        private_directory(self.directory)
        os.chmod(self.directory, 0o700)  # it holds bodies, as the spool does

    def append(self, line: bytes | None) -> JournalSegment | None:
        """Journal one record's rows' draft, as its JSON line (storable.storable_draft; None: it could not be
        JSON); the segment to settle it on, or None when it could not be written (counted, and said at most
        every WARN_EVERY_S: the request is served all the same)."""
        return self.append_many([line])[0]

    def append_many(self, lines: list[bytes | None]) -> list[JournalSegment | None]:
        """``append`` for several records at once, with one write: what to settle each on (None: not written)."""
        whole = [line for line in lines if line is not None]
        if len(whole) < len(lines):
            self._failed("not JSON", len(lines) - len(whole))
        if not whole:
            return [None] * len(lines)
        try:
            current = self._segment()
            current.segment.append(whole[0] if len(whole) == 1 else b"".join(whole))
        except OSError as exc:  # disk full, read-only data dir: nothing of this write is in the file
            self._failed(exc.strerror or type(exc).__name__, len(whole))
            return [None] * len(lines)
        current.appended += len(whole)
        self.error = None
        return [current if line is not None else None for line in lines]

    def settle(self, segments: Iterable[JournalSegment | None]) -> None:
        """These records are committed (or spooled, or given up on): their lines are no longer needed."""
        for segment in segments:
            if segment is not None:
                segment.settled += 1
        current = self._current
        if current is not None and current.done and current.segment.size:
            try:
                os.ftruncate(current.segment.fd, 0)  # O_APPEND: the next line starts the file again
            except OSError:  # leave it: its lines are all stored, a replay would skip them
                pass
            else:
                current.segment.size = current.appended = current.settled = 0
        if self._older:
            for older in [s for s in self._older if s.done]:
                self._older.remove(older)
                _release(older)

    def close(self) -> None:
        """At exit, after the sink drained: segments with unsettled records (a bug) are left to be replayed."""
        segments, self._older, self._current = [*self._older, *([self._current] if self._current else [])], [], None
        for journal_segment in segments:
            _release(journal_segment)

    def _segment(self) -> JournalSegment:
        current = self._current
        if current is not None and current.segment.size >= self._rotate_bytes:
            self._older.append(current)
            current = self._current = None
        if current is None:
            current = self._current = JournalSegment(new_segment(self.directory))
        return current

    def _failed(self, why: str, records: int = 1) -> None:
        self.error = why
        self.failed += records
        now = self._clock()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.error("request log journal cannot be written (%s; %d records not journaled since start); records "
                      "answered meanwhile are lost if the process dies before they are committed", why, self.failed)


def _release(journal_segment: JournalSegment) -> None:
    """Close a segment, deleted when its records are all settled. One that cannot be deleted (a read-only
    directory) is left: its records are stored, and the replay of it at the next start skips their ids."""
    try:
        journal_segment.segment.release(delete=journal_segment.done)
    except OSError:
        pass
