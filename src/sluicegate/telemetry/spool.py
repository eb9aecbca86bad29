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

A line is checked as it is read back: one that is not an entry the writer can store (torn, not JSON, or a row
without a column the store requires) is counted and skipped, alone; a column the store allows NULL in, and
that the line lacks (written by a version of the gateway older than the column), is NULL, as it is in the
rows stored before that column existed. A file here that cannot be opened (a directory of that name, a file
this process may not write) is skipped, said once, and looked at again with the segments other processes hold.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Table

from ..store.request_logs import request_attempts, request_logs

log = logging.getLogger("sluicegate.telemetry")

Entry = tuple[dict[str, Any], list[dict[str, Any]]]  # (request row, attempt rows)
Finish = Callable[[dict[str, Any]], Entry]  # a journaled draft → its entry (rows.RowBuilder.finish)
SEGMENT_MAX_BYTES = 8 * 1024 * 1024  # also bounds the memory a replay needs: one segment is read at a time
SUFFIX = ".jsonl"
# How often to look again at segments another live process held at the last look (a sibling worker writing
# its own, a process still exiting as this one starts): once it lets go, they are this process's to replay.
RELOOK_S = 5.0
# Another name for an adopted journal segment whose own is taken in the spool: at most this many are tried.
RENAME_TRIES = 100


class Columns:
    """A table's columns as the writer binds them (every one, by name): which a line must hold, which it may
    lack (NULL then)."""

    def __init__(self, table: Table) -> None:
        # str(): SQLAlchemy's names are a str subclass, which orjson refuses as a key (a row is JSON again)
        self.names = frozenset(str(column.name) for column in table.c)
        self.required = frozenset(str(column.name) for column in table.c if not column.nullable)
        self.nullable = tuple(sorted(self.names - self.required))

    def complete(self, row: Any, what: str) -> str | None:
        """Make ``row`` one the writer can bind (in place: a lacking nullable column is NULL); None when it
        is one, else why it cannot be."""
        if not isinstance(row, dict):
            return f"{what} is not an object"
        if self.names <= row.keys():  # the common case: every column there
            return None
        for name in self.nullable:
            row.setdefault(name, None)
        missing = sorted(self.required - row.keys())
        return f"{what} lacks {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}" if missing else None


ROWS, ATTEMPTS = Columns(request_logs), Columns(request_attempts)


def checked(row: Any, attempts: Any) -> str | None:
    """Why (row, attempts) is not an entry the writer can store; None when it is one (completed in place)."""
    why = ROWS.complete(row, "the row")
    if why is not None:
        return why
    if not isinstance(attempts, list):
        return "the attempts are not a list"
    for attempt in attempts:
        why = ATTEMPTS.complete(attempt, "an attempt")
        if why is not None:
            return why
    return None


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
    refused: str | None = None  # set by ``read``: why the first line it could not read was refused

    def read(self, finish: Finish | None = None) -> tuple[list[Entry], int]:
        """The entries, and how many lines could not be read (a torn last line after a crash; a line that is
        not an entry the writer can store). A line is an entry (a spooled one) or, in a journal segment, a
        draft: ``finish`` makes it an entry (without it, a draft is a line that cannot be read)."""
        with os.fdopen(os.dup(self.fd), "rb") as handle:
            handle.seek(0)
            lines = handle.read().splitlines()
        entries: list[Entry] = []
        bad, self.refused = 0, None
        for number, line in enumerate(lines, 1):
            try:
                entry, why = _entry(orjson.loads(line), finish)
            except Exception as exc:  # torn, not JSON, or a draft that cannot be finished
                entry, why = None, f"{type(exc).__name__}: {str(exc)[:100]}"
            if entry is None:  # counted, skipped: alone
                bad += 1
                if self.refused is None:
                    self.refused = f"line {number}: {why}"
                continue
            entries.append(entry)
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
        """Close the segment (which drops its lock), deleting it first when asked: while it is still locked,
        so that no other worker takes it meanwhile. Raises OSError when it cannot be deleted (a read-only
        directory); it is closed all the same. Once released, releasing it again does nothing."""
        if self.fd < 0:
            return
        try:
            if delete:
                self.path.unlink(missing_ok=True)
        finally:
            fd, self.fd = self.fd, -1
            os.close(fd)


def _entry(value: Any, finish: Finish | None) -> tuple[Entry | None, str | None]:
    """A line's value as an entry the writer can store, or (None, why not)."""
    if isinstance(value, dict) and finish is not None:  # a journaled draft
        draft_row = value.get("row")
        if isinstance(draft_row, dict):  # a nullable column the draft lacks is NULL (finish reads some)
            ROWS.complete(draft_row, "the row")  # the columns finish makes are not there yet: checked below
        row, attempts = finish(value)
    elif isinstance(value, list) and len(value) == 2:
        row, attempts = value
    else:
        return None, "not a [row, attempts] pair" + ("" if finish is None else " nor a draft")
    why = checked(row, attempts)
    return (None, why) if why is not None else ((row, attempts), None)


def private_directory(directory: Path) -> None:
    """``directory`` made (mode 700) unless it is there; something else in its place is refused by name,
    where mkdir's "[Errno 17] File exists" read as if the directory's existing were the fault."""
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} is not a directory, and the request log keeps its files there: "
                                 "move it away (or remove it) and start again")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


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
    None. ``flock`` locks belong to the open file: this holds against our own process's segments too.
    Raises OSError when the file cannot be opened read-write (a directory of that name, a file this process
    may not write) or locked.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:  # another worker replayed it meanwhile
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not path.exists():  # replayed (or adopted) and gone between the listing and our lock
            os.close(fd)
            return None
        return Segment(path, fd, os.fstat(fd).st_size)
    except BlockingIOError:  # a live worker is writing or replaying it
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise


def _file_size(path: Path) -> int:
    """What a segment file holds on disk; 0 for what is no file (a directory of that name, a dangling link)."""
    try:
        status = path.stat()
    except OSError:
        return 0
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


def _move(segment: Segment, directory: Path) -> None:
    """Give ``segment`` a name in ``directory``, its own or, when a file there has it, a free one (never
    replacing that file), then drop its old name. It is locked meanwhile: no one replays it half moved."""
    source = segment.path
    stem = source.name[: -len(SUFFIX)]
    for tries in range(RENAME_TRIES):
        target = directory / (source.name if not tries else f"{stem}.{tries}{SUFFIX}")
        try:
            os.link(source, target)
        except FileExistsError:
            if os.path.samestat(os.lstat(target), os.fstat(segment.fd)):  # linked by a process that died
                break                                                        # before it dropped the old name
            continue
        except OSError:  # a file system without hard links: renamed, when nothing has the name
            if os.path.lexists(target):
                continue
            os.rename(source, target)
            return
        break
    else:
        raise FileExistsError(errno.EEXIST, "no free name in the spool", str(source))
    try:
        source.unlink()
    except OSError:
        target.unlink(missing_ok=True)  # one name only, the old one: else it would be replayed twice
        raise


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
        # Files that could not be opened (or read) for replay: when to try each again (said once each).
        self._unusable: dict[Path, float] = {}
        self._kept: set[Path] = set()  # replayed, but they could not be deleted: not replayed again here

    def open(self) -> None:
        private_directory(self.directory)
        sizes = [_file_size(p) for p in self.directory.glob("*" + SUFFIX)]
        self.bytes = sum(sizes)
        self._pending = bool(sizes)  # left by an earlier run or a worker that died: replay them
        if self._adopt():
            self._relook_at = self._clock() + self._relook_s

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
        if self._unusable:  # forget the files that are gone
            self._unusable = {path: at for path, at in self._unusable.items() if os.path.lexists(path)}
        held = self._adopt()
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            if path in self._kept:
                continue
            segment = self._unowned(path)
            if segment is not None:
                return segment
            # Not replayed meanwhile: a live process holds it, or it cannot be opened now. Either way, look again.
            held = held or path.exists()
        self._pending = False
        self._relook_at = self._clock() + self._relook_s if held else None
        return None

    def skip(self, segment: Segment, why: str) -> None:
        """A segment taken that cannot be replayed now (its file cannot be read): released, said once, and
        looked at again with the segments other processes hold; the others are replayed meanwhile."""
        segment.release(delete=False)
        self._unusable_now(segment.path, why)

    def _unowned(self, path: Path) -> Segment | None:
        """``unowned_segment``, but a file that cannot be opened (a directory of that name, a file this process
        may not write) is skipped, said once, and tried again only once a look is due."""
        retry_at = self._unusable.get(path)
        if retry_at is not None and self._clock() < retry_at:
            return None
        try:
            segment = unowned_segment(path)
        except OSError as exc:
            self._unusable_now(path, exc.strerror or type(exc).__name__)
            return None
        self._unusable.pop(path, None)
        return segment

    def _unusable_now(self, path: Path, why: str) -> None:
        if path not in self._unusable:
            log.error("request log spool: %s cannot be replayed (%s); skipped, and tried again every %g s",
                      path, why, self._relook_s)
        self._unusable[path] = self._clock() + self._relook_s

    def _adopt(self) -> bool:
        """Move the segments dead processes left in the adopted directories (the journal) into the spool;
        True when one was left that could not be (to look at again)."""
        left = False
        for directory in self._adopts:
            for path in sorted(directory.glob("*" + SUFFIX)):
                segment = self._unowned(path)
                if segment is None:
                    left = left or path in self._unusable
                    continue
                if not segment.size:
                    try:
                        segment.release(delete=True)  # nothing in it was left uncommitted
                    except OSError:  # a read-only directory: an empty file, left where it is
                        pass
                    continue
                try:
                    _move(segment, self.directory)
                except OSError as exc:  # left where it is, for the next look
                    self._unusable_now(path, f"it cannot be moved to the spool: {exc.strerror or type(exc).__name__}")
                    left = True
                else:
                    self.bytes += segment.size
                    self._pending = True
                segment.release(delete=False)
        return left

    def replayed(self, segment: Segment) -> None:
        """Its records are committed: the segment goes. One that cannot be deleted (a read-only directory) is
        said once and not replayed again by this process (a later one would: the store skips the ids it has)."""
        try:
            segment.release(delete=True)
        except OSError as exc:
            log.error("request log spool segment %s is replayed but cannot be deleted (%s)", segment.path,
                      exc.strerror or type(exc).__name__)
            self._kept.add(segment.path)
            return
        self.bytes = max(0, self.bytes - segment.size)

    def close(self) -> None:
        self._close_current()
