"""A bounded local spool for log records while the store is unreachable: JSON lines in segment files.

Files live in ``<data_dir>/spool/`` (0700; files 0600: they hold bodies), one segment at a time per process,
each held under an exclusive ``flock`` while it is written so that another worker never replays a segment
still being written; a segment left by a process that died is unlocked and replayed by whoever comes next.
A segment is deleted only after all its records are committed; records carry their final ids and the store
ignores ids it already has, so a replay interrupted by a crash, redone later, still lands every record
exactly once. The methods block (file I/O): the sink calls them in a thread.

The write-ahead journal (journal.py) writes segments of the same kind (their lines are row drafts) in
``<data_dir>/journal/``; a journal segment left by a dead process is moved here (``adopt``, at start and
whenever the spool looks for segments to replay), and from then on it is a spool segment like any other.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("sluicegate.telemetry")

Entry = tuple[dict[str, Any], list[dict[str, Any]]]  # (request row, attempt rows)
Finish = Callable[[dict[str, Any]], Entry]  # a journaled draft → its entry (rows.RowBuilder.finish)
SEGMENT_MAX_BYTES = 8 * 1024 * 1024  # also bounds the memory a replay needs: one segment is read at a time
SUFFIX = ".jsonl"
# How often to look again at segments another live process held at the last look (a sibling worker writing
# its own, a process still exiting as this one starts): once it lets go, they are this process's to replay.
RELOOK_S = 5.0


@dataclass(frozen=True)
class Appended:
    kept: int
    full: int  # did not fit under the bound
    invalid: int  # could not be written as JSON


@dataclass
class Segment:
    path: Path
    fd: int
    size: int

    def read(self, finish: Finish | None = None) -> tuple[list[Entry], int]:
        """The entries, and how many lines could not be read (a torn last line after a crash). A line is an
        entry (a spooled one) or, in a journal segment, a draft: ``finish`` makes it an entry (without it,
        a draft is a line that cannot be read)."""
        with os.fdopen(os.dup(self.fd), "rb") as handle:
            handle.seek(0)
            lines = handle.read().splitlines()
        entries, bad = [], 0
        for line in lines:
            try:
                value = orjson.loads(line)
                if isinstance(value, dict) and finish is not None:
                    entries.append(finish(value))
                    continue
                row, attempts = value
                entries.append((row, attempts))
            except Exception:  # torn, or not an entry (nor a draft that can be finished): counted, skipped
                bad += 1
        return entries, bad

    def append(self, data: bytes) -> None:
        """One write of whole lines. Raises OSError when the disk refuses (full, read-only): then nothing of
        ``data`` is left in the file, so no torn line either."""
        try:
            written = os.write(self.fd, data)
            if written < len(data):  # a short write is how a full disk answers first
                raise OSError(errno.ENOSPC, "short write to a log segment")
        except OSError:
            os.ftruncate(self.fd, self.size)
            raise
        self.size += len(data)

    def release(self, *, delete: bool) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)  # closing drops the lock


def new_segment(directory: Path) -> Segment:
    """A new, empty segment of this process, locked for as long as it is open: no one else replays it."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}{SUFFIX}"  # names sort by age: replay oldest first
    path = directory / name
    # Locked before it has its name: another worker looking for unowned segments never sees it unlocked
    # (and takes it for a dead process's empty one).
    making = directory / (name + ".new")
    fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(making, path)
    return Segment(path, fd, 0)


def unowned_segment(path: Path) -> Segment | None:
    """The segment at ``path``, locked, if no live process holds it (its writer died, or closed it); else
    None. ``flock`` locks belong to the open file: this holds against our own process's segments too."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:  # another worker replayed it meanwhile
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # a live worker is writing or replaying it
        os.close(fd)
        return None
    if not path.exists():  # replayed (or adopted) and gone between the listing and our lock
        os.close(fd)
        return None
    return Segment(path, fd, os.fstat(fd).st_size)


class Spool:
    def __init__(self, directory: Path, max_bytes: int, adopts: tuple[Path, ...] = (),
                 clock: Callable[[], float] = time.monotonic, relook_s: float = RELOOK_S) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._adopts = adopts  # directories of segments (the journal's) replayed once their writer is dead
        self._clock, self._relook_s = clock, relook_s
        self.bytes = 0  # in segments not yet replayed (this process's view)
        self._current: Segment | None = None
        self._pending = False
        self._relook_at: float | None = None  # when to look again at segments others held; None: none did

    def open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        sizes = [p.stat().st_size for p in self.directory.glob("*" + SUFFIX)]
        self.bytes = sum(sizes)
        self._pending = bool(sizes)  # left by an earlier run or a worker that died: replay them
        self._adopt()

    @property
    def pending(self) -> bool:
        """Segments may be waiting for this process: its own, a dead one's, or held elsewhere and due a look."""
        return self._pending or (self._relook_at is not None and self._clock() >= self._relook_at)

    def relook_in(self) -> float | None:
        """Seconds until segments another process held are due a look (0: now); None when none were held."""
        return None if self._relook_at is None else max(0.0, self._relook_at - self._clock())

    def append(self, entries: list[Entry]) -> Appended:
        """Write what fits under the bound; the rest is the caller's to count as dropped. Raises OSError
        when the disk refuses the write (full, read-only): then nothing of this call is left in the file."""
        lines, size, invalid = [], 0, 0
        for row, attempts in entries:
            try:
                line = orjson.dumps([row, attempts]) + b"\n"
            except TypeError:  # not JSON (rows are made storable first; this guards the file all the same)
                invalid += 1
                continue
            if self.bytes + size + len(line) > self.max_bytes:
                break
            size += len(line)
            lines.append(line)
        if lines:
            self._write(b"".join(lines))
        return Appended(len(lines), len(entries) - len(lines) - invalid, invalid)

    def _write(self, data: bytes) -> None:
        segment = self._segment()
        segment.append(data)  # raises with nothing written: the bytes figure stays true
        self.bytes += len(data)
        self._pending = True
        if segment.size >= SEGMENT_MAX_BYTES:
            self._close_current()

    def _segment(self) -> Segment:
        if self._current is not None and not self._current.path.exists():  # deleted under us (rm -r data)
            log.error("request log spool segment %s was deleted; its records are lost", self._current.path)
            self.bytes = max(0, self.bytes - self._current.size)
            self._close_current()
        if self._current is None:
            self._current = new_segment(self.directory)
        return self._current

    def _close_current(self) -> None:
        if self._current is not None:
            self._current.release(delete=False)
            self._current = None

    def take(self) -> Segment | None:
        """The oldest segment ready to replay, locked until released; None when there is none.

        Closes our own current segment first: what this process spooled so far is replayable too.
        """
        self._close_current()
        self._adopt()
        held = False
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            segment = unowned_segment(path)
            if segment is not None:
                return segment
            held = held or path.exists()  # not replayed meanwhile: a live process holds it
        self._pending = False
        self._relook_at = self._clock() + self._relook_s if held else None
        return None

    def _adopt(self) -> None:
        """Move the segments dead processes left in the adopted directories (the journal) into the spool."""
        for directory in self._adopts:
            for path in sorted(directory.glob("*" + SUFFIX)):
                segment = unowned_segment(path)
                if segment is None:
                    continue
                if not segment.size:
                    segment.release(delete=True)  # nothing in it was left uncommitted
                    continue
                try:
                    os.rename(path, self.directory / path.name)  # same file system: the data dir
                except OSError as exc:  # left where it is, for the next look
                    log.error("request log journal segment %s cannot be moved to the spool (%s)", path,
                              exc.strerror or type(exc).__name__)
                else:
                    self.bytes += segment.size
                    self._pending = True
                segment.release(delete=False)

    def replayed(self, segment: Segment) -> None:
        segment.release(delete=True)
        self.bytes = max(0, self.bytes - segment.size)

    def close(self) -> None:
        self._close_current()
