"""Writing: raw samples with the marks that make their hour and day roll up, removal, backup holds.

Every function runs on the worker thread with its connection.
"""

from __future__ import annotations

from collections.abc import Sequence
import logging
import sqlite3

from ..agents.base import Sample
from .days import LocalDays
from .ranges import HOUR
from .sql import KEYS, MARKS, TIERS, transaction

_LOGGER = logging.getLogger(__name__)

WAL_AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default; turned off while a backup copies the file."""

_INSERT_RAW = (
    f"INSERT OR REPLACE INTO raw (server_id, ts, {', '.join(KEYS)}) "
    f"VALUES (?, ?, {', '.join('?' for _ in KEYS)})"
)

type Item = tuple[str, Sample]
"""A sample and the server it belongs to."""


def insert(db: sqlite3.Connection, days: LocalDays, items: Sequence[Item]) -> None:
    """Store samples (a timestamp stored again keeps the newer values) and mark their buckets."""
    hours = {(sid, s.timestamp - s.timestamp % HOUR) for sid, s in items}
    with transaction(db):
        db.executemany(
            _INSERT_RAW,
            [(sid, s.timestamp, *(getattr(s, k) for k in KEYS)) for sid, s in items],
        )
        db.executemany("INSERT OR IGNORE INTO dirty_hours VALUES (?, ?)", hours)
        db.executemany(
            "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
            {(sid, *days.of_hour(hour)) for sid, hour in hours},
        )


def remark_days(db: sqlite3.Connection, days: LocalDays) -> None:
    """Move the marks of days still waiting for a rollup to the days of `days`' time zone."""
    with transaction(db):
        marks = db.execute("SELECT server_id, ts, end_ts FROM dirty_days").fetchall()
        db.execute("DELETE FROM dirty_days")
        db.executemany(
            "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
            {
                (server_id, *days.of_hour(hour))
                for server_id, start, end in marks
                for hour in range(start + (-start) % HOUR, end, HOUR)
            },
        )


def remove_server(db: sqlite3.Connection, server_id: str) -> None:
    """Delete every row and mark of a server."""
    with transaction(db):
        for table in (*TIERS, *MARKS):
            db.execute(f"DELETE FROM {table} WHERE server_id = ?", (server_id,))


def hold_main_file(db: sqlite3.Connection) -> None:
    """Checkpoint the WAL into the main file, then keep later writes in the WAL only."""
    db.execute("PRAGMA wal_autocheckpoint=0")
    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    if busy:
        _LOGGER.warning("History checkpoint before backup could not finish")


def release_main_file(db: sqlite3.Connection) -> None:
    """Let SQLite checkpoint the WAL into the main file again."""
    db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
