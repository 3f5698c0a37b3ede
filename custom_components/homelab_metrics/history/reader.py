"""Reading on a thread of its own: a read-only connection, and windows read a step at a time.

The store's writer thread owns the one connection that writes; every read (exports, counts, the
newest sample) runs on the reader thread, on a read-only connection of its own. In WAL mode the
two run side by side, so a poll's write never waits behind an export and an export never waits
behind a rollup. Each reader call ends its statements before it returns, so no read transaction
stays open while a slow client takes its time and the WAL can still be checkpointed.

Rows are read and formatted in steps of STEP rows, with the GIL let go between steps: the reader
thread runs Python (building rows, formatting them), and a thread that never lets go of the GIL
makes the event loop and the writer wait up to the interpreter's switch interval each time they
want it.
"""

from __future__ import annotations

from pathlib import Path
import sqlite3
import time
from typing import Protocol

from . import queries
from .days import LocalDays
from .metrics import Tier
from .sql import Row

STEP = 250
"""Rows read and formatted between two chances for other threads to take the GIL (about 1 ms)."""

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

    def write(self, rows: list[Row]) -> bytes:
        """Bytes of some rows."""
        ...

    def finish(self) -> bytes:
        """Bytes after the last row."""
        ...


class WindowReader:
    """The rows of one server, tier and window, oldest first, each call going on where the last stopped.

    Aggregate buckets not rolled up yet, and the one holding `now`, are computed from the finer
    tier by the first call, and take the place of stored ones.
    """

    def __init__(
        self,
        days: LocalDays,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        now: int,
        *,
        infinite_missing: bool = False,
    ) -> None:
        """Nothing is read until the first call; missing values as None, or infinity (exports)."""
        self._days = days
        self._server_id = server_id
        self._tier = tier
        self._start = start
        self._end = end
        self._now = now
        self._infinite_missing = infinite_missing
        self._fresh: dict[int, Row] | None = None
        self._read_all = False
        self._held: list[Row] = []

    @property
    def done(self) -> bool:
        """Whether every row has been handed out."""
        return self._read_all and not self._held

    def batch(self, db: sqlite3.Connection, size: int) -> list[Row]:
        """The next `size` rows (fewer at the end)."""
        while not self._read_all and len(self._held) < size:
            self._held += self._step(db)
        rows, self._held = self._held[:size], self._held[size:]
        return rows

    def chunk(self, db: sqlite3.Connection, formatter: Formatter, first: bool) -> bytes:
        """The next CHUNK_BYTES or so of a file: its start on the first call, its end on the last."""
        parts = [formatter.start()] if first else []
        size = 0
        while not self._read_all and size < CHUNK_BYTES:
            if rows := self._step(db):
                parts.append(part := formatter.write(rows))
                size += len(part)
        if self._read_all:
            parts.append(formatter.finish())
        return b"".join(parts)

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
            infinite_missing=self._infinite_missing,
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

    def _computed(self, db: sqlite3.Connection) -> dict[int, Row]:
        """The window's buckets computed from the finer tier, by start, as stored rows read."""
        if self._tier is Tier.RAW:
            return {}
        computed = queries.fresh(
            db,
            self._days,
            self._server_id,
            self._tier,
            self._start,
            self._end,
            self._now,
        )
        rows = (queries.public(row) for row in computed)
        if self._infinite_missing:
            rows = (tuple(_INFINITY if v is None else v for v in row) for row in rows)
        return {row[0]: row for row in rows}


_INFINITY = float("inf")
