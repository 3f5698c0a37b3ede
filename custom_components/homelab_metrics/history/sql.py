"""The SQL that the metric list expands to, and the one way every write runs in a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
import sqlite3
from typing import Any

from .metrics import METRICS
from .schema import STATS, aggregate_line

type Row = tuple[Any, ...]

KEYS = tuple(m.key for m in METRICS)
"""Raw columns, one per metric, in METRICS order."""

WIDTH = len(STATS)
"""Stored columns per metric in the aggregate tiers: avg, min, max, n."""

AGG_COLUMNS = tuple(f"{k}_{stat}" for k in KEYS for stat in STATS)
AGG_SELECT = ", ".join((*AGG_COLUMNS, "samples"))
"""Every stored aggregate column after the timestamp, in table order."""

AGGREGATE_LINE = aggregate_line(KEYS)
"""The line (text.py) of an aggregate row, from its columns (schema.line_functions gives SQL it)."""

RAW_AGG = ", ".join(f"AVG(r.{k}), MIN(r.{k}), MAX(r.{k}), COUNT(r.{k})" for k in KEYS)
"""AGG_COLUMNS (without samples) computed from raw rows `r`."""

HOURLY_WEIGHTED = ", ".join(
    f"SUM(h.{k}_avg * h.{k}_n) / SUM(h.{k}_n), MIN(h.{k}_min), MAX(h.{k}_max), "
    f"SUM(h.{k}_n)"
    for k in KEYS
)
"""AGG_COLUMNS (without samples) computed from hourly rows `h`, each average weighted by its n."""

TIERS = ("raw", "hourly", "daily")
MARKS = ("dirty_hours", "dirty_days")


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        # Also after a failed COMMIT: a transaction left open would block every later write.
        if db.in_transaction:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def server_ids(db: sqlite3.Connection, table: str) -> Iterator[str]:
    """Distinct server ids of a table by index seeks, not a scan of every row."""
    row = db.execute(
        f"SELECT server_id FROM {table} ORDER BY server_id LIMIT 1"
    ).fetchone()
    while row is not None:
        yield row[0]
        row = db.execute(
            f"SELECT server_id FROM {table} WHERE server_id > ? "
            "ORDER BY server_id LIMIT 1",
            (row[0],),
        ).fetchone()


def newest_ts(db: sqlite3.Connection, server_id: str) -> int | None:
    """Newest raw sample of a server; without raw rows, its newest bucket start; else None."""
    for table in TIERS:
        row = db.execute(
            f"SELECT MAX(ts) FROM {table} WHERE server_id = ?", (server_id,)
        ).fetchone()
        if row[0] is not None:
            return int(row[0])
    return None
