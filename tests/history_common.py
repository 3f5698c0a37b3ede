"""What the history store tests share: time constants, a query that joins its batches, plain-SQL fixtures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import closing
from pathlib import Path
import sqlite3
from typing import Any

from custom_components.homelab_metrics.history.metrics import METRICS, Tier
from custom_components.homelab_metrics.history.schema import line_functions
from custom_components.homelab_metrics.history.sql import AGGREGATE_LINE
from custom_components.homelab_metrics.history.store import HistoryStore

HOUR = 3600
DAY = 86400
YEAR = 365 * DAY
T0 = 1_764_000_000  # 2025-11-24T16:00:00Z, hour-aligned

type Row = tuple[Any, ...]
type Stats = tuple[float, float, float, int]
"""One metric over one bucket: avg, min, max and how many samples had it."""


async def rows(
    store: HistoryStore,
    tier: Tier,
    start: int,
    end: int,
    server: str = "a",
    **kw: Any,
) -> list[Row]:
    """Every row a query yields, batches joined."""
    return [
        r
        async for batch in store.async_query(server, tier, start, end, **kw)
        for r in batch
    ]


def write_buckets(
    path: Path,
    tier: Tier,
    server: str,
    buckets: Iterable[tuple[int, int, Mapping[str, Stats]]],
) -> None:
    """Aggregate rows (start, samples, stats by metric) written with plain SQL, as a rollup leaves them.

    A metric left out of a bucket had no samples in it.
    """
    keys = [m.key for m in METRICS]
    columns = ", ".join(f"{k}_{s}" for k in keys for s in ("avg", "min", "max", "n"))
    marks = ", ".join("?" for _ in range(2 + 4 * len(keys) + 1))
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO {tier.value} (server_id, ts, {columns}, samples) "
            f"VALUES ({marks})",
            [
                (
                    server,
                    ts,
                    *(v for k in keys for v in stats.get(k, (None, None, None, 0))),
                    samples,
                )
                for ts, samples, stats in buckets
            ],
        )
        # Each row's line, as the rollup writes it.
        line_functions(conn, keys)
        conn.execute(
            f"UPDATE {tier.value} SET line = {AGGREGATE_LINE} WHERE server_id = ?",
            (server,),
        )


def mark_days(path: Path, server: str, days: Iterable[tuple[int, int]]) -> None:
    """Mark (start, end) days for the next rollup, as a write into them would."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
            [(server, start, end) for start, end in days],
        )


def table_ts(path: Path) -> dict[str, set[tuple[str, int]]]:
    """(server, ts) of every row of each tier, straight from the file."""
    with closing(sqlite3.connect(path)) as conn:
        return {
            tier.value: set(
                conn.execute(f"SELECT server_id, ts FROM {tier.value}").fetchall()
            )
            for tier in Tier
        }
