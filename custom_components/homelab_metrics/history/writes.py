"""Writing: raw samples with the marks that make their hour and day roll up, removal, backup holds.

Every function runs on the worker thread with its connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import logging
import sqlite3
from typing import Protocol

from ..agents.base import Sample
from . import text
from .days import LocalDays
from .metrics import Tier
from .ranges import HOUR
from .sql import AGG_SELECT, KEYS, MARKS, TIERS, transaction

_LOGGER = logging.getLogger(__name__)

WAL_AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default; turned off while a backup copies the file."""

_INSERT_RAW = (
    f"INSERT OR REPLACE INTO raw (server_id, ts, {', '.join(KEYS)}, line) "
    f"VALUES (?, ?, {', '.join('?' for _ in KEYS)}, ?)"
)
_RAW_LINE = text.tier_writer(Tier.RAW)

type Item = tuple[str, Sample]
"""A sample and the server it belongs to."""

_INSERT_HOURLY = (
    f"INSERT OR REPLACE INTO hourly (server_id, ts, {AGG_SELECT}, line) "
    f"VALUES (?, ?, {', '.join('?' for _ in AGG_SELECT.split(', '))}, ?)"
)
_AGGREGATE_LINE = text.tier_writer(Tier.HOURLY)


class Stats(Protocol):
    """One metric over one hour: average, extremes and how many samples had it."""

    @property
    def avg(self) -> float:
        """Average of the samples."""

    @property
    def min(self) -> float:
        """Smallest sample."""

    @property
    def max(self) -> float:
        """Largest sample."""

    @property
    def count(self) -> int:
        """Samples that had the metric."""


class Hour(Protocol):
    """One UTC hour of a server's past, aggregated elsewhere (a Prometheus import's buckets)."""

    @property
    def timestamp(self) -> int:
        """Start of the hour."""

    @property
    def samples(self) -> int:
        """Samples the hour stands for."""

    @property
    def fields(self) -> Mapping[str, Stats]:
        """By Sample field name; fields the history does not keep are ignored."""


def insert(db: sqlite3.Connection, days: LocalDays, items: Sequence[Item]) -> None:
    """Store samples (a timestamp stored again keeps the newer values) and mark their buckets."""
    hours = {(sid, s.timestamp - s.timestamp % HOUR) for sid, s in items}
    rows = []
    for sid, sample in items:
        values = [getattr(sample, key) for key in KEYS]
        rows.append((sid, sample.timestamp, *values, _RAW_LINE(*values)))
    with transaction(db):
        db.executemany(_INSERT_RAW, rows)
        db.executemany("INSERT OR IGNORE INTO dirty_hours VALUES (?, ?)", hours)
        db.executemany(
            "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
            {(sid, *days.of_hour(hour)) for sid, hour in hours},
        )


def insert_hours(
    db: sqlite3.Connection, days: LocalDays, server_id: str, hours: Sequence[Hour]
) -> None:
    """Store aggregated hours as they are (an hour stored again is replaced) and mark their days.

    Their hours are not marked: there are no raw rows to recompute them from. A raw sample
    written into such an hour later would make the rollup recompute it from raw alone, so they
    are meant for the past before a server's raw rows.
    """
    rows = []
    for hour in hours:
        if hour.timestamp % HOUR or hour.samples < 1:
            raise ValueError(f"not an hour with samples: {hour.timestamp}")
        values: list[float | int | None] = []
        shown: list[float | int | None] = []
        for key in KEYS:
            stats = hour.fields.get(key)
            if stats is None or stats.count < 1:
                values += (None, None, None, 0)
                shown += (None, None, None)
            else:
                values += (stats.avg, stats.min, stats.max, stats.count)
                shown += (stats.avg, stats.min, stats.max)
        line = _AGGREGATE_LINE(*shown, hour.samples)
        rows.append((server_id, hour.timestamp, *values, hour.samples, line))
    with transaction(db):
        db.executemany(_INSERT_HOURLY, rows)
        db.executemany(
            "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
            {(server_id, *days.of_hour(hour.timestamp)) for hour in hours},
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
