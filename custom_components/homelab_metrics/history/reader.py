"""Reading on a thread of its own: a read-only connection, and windows read a step at a time.

The store's writer thread owns the one connection that writes; every read (exports, counts, the
newest sample) runs on the reader thread, on a read-only connection of its own. In WAL mode the
two run side by side, so a poll's write never waits behind an export and an export never waits
behind a rollup. Each reader call ends its statements before it returns, so no read transaction
stays open while a slow client takes its time and the WAL can still be checkpointed.

Rows are read in steps of STEP rows, with the GIL let go between steps: the reader thread runs
Python (building rows), and a thread that never lets go of the GIL makes the event loop and the
writer wait up to the interpreter's switch interval each time they want it. Exports read no rows
at all: SQLite writes each stored row's `line` (text.py) behind its timestamp, many rows to one
text, while the thread waits without the GIL; only the buckets computed on the fly are Python's.
"""

from __future__ import annotations

from pathlib import Path
import sqlite3
import time
from typing import Protocol

from . import queries
from .days import LocalDays
from .metrics import Tier
from .queries import LineFormat
from .sql import Row

STEP = 250
"""Rows read between two chances for other threads to take the GIL (about 1 ms)."""

LINES_STEP = 500
"""Stored rows an export asks SQLite for at a time (up to about 300 kB of text)."""

CHUNK_BYTES = 256 * 1024
"""An export's bytes are handed to the event loop in chunks of about this size."""


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the history file (opened and brought up to date by the writer)."""
    conn = sqlite3.connect(
        f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None
    )
    # A checkpoint that truncates the WAL (before a backup) holds readers off for a moment.
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Formatter(Protocol):
    """What turns rows into a file's bytes: the export writers."""

    def start(self) -> bytes:
        """Bytes before the first row."""
        ...

    def line_format(self, start: int, end: int) -> LineFormat:
        """How SQL writes stored rows from `start` on (its `until` at most `end`)."""
        ...

    def write_lines(self, text: bytes, rows: int) -> bytes:
        """Bytes of rows SQL wrote as `line_format` said."""
        ...

    def write(self, rows: list[Row]) -> bytes:
        """Bytes of some rows of values (buckets computed on the fly)."""
        ...

    def finish(self) -> bytes:
        """Bytes after the last row."""
        ...


class _Window:
    """One server, tier and window, read from `start` on; `now` tells which buckets are computed."""

    def __init__(
        self,
        days: LocalDays,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        now: int,
    ) -> None:
        """Nothing is read until the first call."""
        self._days = days
        self._server_id = server_id
        self._tier = tier
        self._start = start
        self._end = end
        self._now = now

    def _computed(self, db: sqlite3.Connection) -> dict[int, Row]:
        """The window's aggregate buckets computed from the finer tier, by start, as stored rows read.

        Those not rolled up yet, and the one holding `now`.
        """
        if self._tier is Tier.RAW:
            return {}
        rows = queries.fresh(
            db,
            self._days,
            self._server_id,
            self._tier,
            self._start,
            self._end,
            self._now,
        )
        return {row[0]: queries.public(row) for row in rows}


class WindowReader(_Window):
    """The rows of one server, tier and window, oldest first, each call going on where the last stopped.

    Aggregate buckets not rolled up yet, and the one holding `now`, are computed from the finer
    tier by the first call, and take the place of stored ones.
    """

    _fresh: dict[int, Row] | None = None
    _read_all = False
    _held: tuple[Row, ...] = ()
    """Rows read and not handed out yet."""

    @property
    def done(self) -> bool:
        """Whether every row has been handed out."""
        return self._read_all and not self._held

    def batch(self, db: sqlite3.Connection, size: int) -> list[Row]:
        """The next `size` rows (fewer at the end)."""
        while not self._read_all and len(self._held) < size:
            self._held += tuple(self._step(db))
        rows, self._held = self._held[:size], self._held[size:]
        return list(rows)

    def _step(self, db: sqlite3.Connection) -> list[Row]:
        """Up to STEP stored rows, computed buckets in their place; then other threads may run."""
        if self._fresh is None:
            self._fresh = self._computed(db)
        rows = queries.page(
            db,
            self._server_id,
            self._tier,
            self._start,
            self._end,
            STEP,
        )
        full = len(rows) == STEP
        if full:
            self._start = rows[-1][0] + 1
        else:
            self._read_all = True
        if self._fresh:
            rows = queries.merge(rows, self._fresh, upto=rows[-1][0] if full else None)
        if full:
            # Give the GIL to a thread that waits for it (the event loop, the writer). After the
            # last step the job ends and lets go of it anyway; sleep(0) costs about 0.1 ms here.
            time.sleep(0)
        return rows


class FileReader(_Window):
    """An export of one server, tier and window: the file's bytes, a chunk per call.

    Stored rows come from SQL as text (`queries.lines`), in runs that end where the time zone's
    offset changes and where a computed bucket takes a stored row's place. Only the stretch of
    the window that holds rows is read, so a window of centuries costs what its rows cost.
    """

    def __init__(
        self,
        days: LocalDays,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        now: int,
        formatter: Formatter,
    ) -> None:
        """Nothing is read until the first call."""
        super().__init__(days, server_id, tier, start, end, now)
        self._formatter = formatter
        self._due: list[tuple[int, Row]] | None = None
        """Computed buckets not written yet, the next one last."""
        self._format: LineFormat | None = None
        self._started = False
        self.done = False

    def chunk(self, db: sqlite3.Connection) -> bytes:
        """The next CHUNK_BYTES or so of the file: its start on the first call, its end on the last."""
        parts = []
        if not self._started:
            self._started = True
            parts.append(self._formatter.start())
        size = 0
        while not self.done and size < CHUNK_BYTES:
            part = self._step(db)
            parts.append(part)
            size += len(part)
        if self.done:
            parts.append(self._formatter.finish())
        return b"".join(parts)

    def _step(self, db: sqlite3.Connection) -> bytes:
        """Up to LINES_STEP stored rows, or the stored rows up to a computed bucket and it."""
        formatter = self._formatter
        if self._due is None:
            self._begin(db)
        if self._start >= self._end:
            self.done = True
            return b""
        if self._format is None or self._start >= self._format.until:
            self._format = formatter.line_format(self._start, self._end)
        due = self._due[-1][0] if self._due else self._end
        stop = min(self._format.until, due, self._end)
        text, rows, last = queries.lines(
            db,
            self._server_id,
            self._tier,
            self._start,
            stop,
            LINES_STEP,
            self._format,
        )
        part = formatter.write_lines(text, rows) if rows else b""
        if rows == LINES_STEP:
            self._start = last + 1
            return part
        self._start = stop
        if stop == due and self._due:
            # The computed bucket takes the place of a stored row of the same start.
            part += formatter.write([self._due.pop()[1]])
            self._start = due + 1
        self.done = self._start >= self._end and not self._due
        return part

    def _begin(self, db: sqlite3.Connection) -> None:
        """Compute the buckets to compute, and narrow the window to the first and last row."""
        computed = self._computed(db)
        self._due = sorted(computed.items(), reverse=True)
        found = [*computed]
        if stored := queries.bounds(
            db, self._server_id, self._tier, self._start, self._end
        ):
            found += stored
        if found:
            self._start, self._end = min(found), max(found) + 1
        else:
            self._start = self._end
