"""Reading: pages of stored rows, buckets not rolled up yet computed from the finer tier, counts.

Queries compute the still-dirty buckets of their window, and the bucket holding `now`, on the fly
from the finer tier, so the current hour and day are never missing from a coarse export. Every
function takes the connection it reads, so it can run on any thread that owns one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import operator
import sqlite3
from typing import Any

from .days import LocalDays
from .metrics import Tier
from .ranges import HOUR
from .sql import AGG_COLUMNS, AGG_SELECT, KEYS, RAW_AGG, WIDTH, Row


def fresh_hours(
    db: sqlite3.Connection, server_id: str, start: int, end: int, now: int
) -> list[Row]:
    """Hours in [start, end) not rolled up yet, or holding now, computed from raw."""
    return db.execute(
        "WITH hours(ts) AS (SELECT ts FROM dirty_hours WHERE server_id = :sid "
        "AND ts >= :start AND ts < :end "
        "UNION SELECT :now_hour WHERE :now_hour >= :start AND :now_hour < :end) "
        f"SELECT h.ts, {RAW_AGG}, COUNT(*) FROM hours h JOIN raw r "
        "ON r.server_id = :sid AND r.ts >= h.ts AND r.ts < h.ts + :hour "
        "GROUP BY h.ts ORDER BY h.ts",
        {
            "sid": server_id,
            "start": start,
            "end": end,
            "now_hour": now - now % HOUR,
            "hour": HOUR,
        },
    ).fetchall()


def fresh_days(
    db: sqlite3.Connection,
    days: LocalDays,
    server_id: str,
    start: int,
    end: int,
    now: int,
) -> list[Row]:
    """Days in [start, end) not rolled up yet, or holding now, from hourly rows and raw."""
    wanted = set(
        db.execute(
            "SELECT ts, end_ts FROM dirty_days WHERE server_id = ? AND ts >= ? AND ts < ?",
            (server_id, start, end),
        ).fetchall()
    )
    today = days.of_hour(now - now % HOUR)
    if start <= today[0] < end:
        wanted.add(today)
    rows: list[Row] = []
    for day_start, day_end in sorted(wanted):
        hours = {
            row[0]: row
            for row in db.execute(
                f"SELECT ts, {AGG_SELECT} FROM hourly "
                "WHERE server_id = ? AND ts >= ? AND ts < ?",
                (server_id, day_start, day_end),
            )
        }
        hours.update(
            (row[0], row) for row in fresh_hours(db, server_id, day_start, day_end, now)
        )
        if hours:
            rows.append((day_start, *combine(list(hours.values()))))
    return rows


def fresh(
    db: sqlite3.Connection,
    days: LocalDays,
    server_id: str,
    tier: Tier,
    start: int,
    end: int,
    now: int,
) -> list[Row]:
    """The computed buckets of an aggregate tier's window."""
    if tier is Tier.HOURLY:
        return fresh_hours(db, server_id, start, end, now)
    return fresh_days(db, days, server_id, start, end, now)


_PUBLIC_AGG = tuple(f"{k}_{stat}" for k in KEYS for stat in ("avg", "min", "max"))


def page(
    db: sqlite3.Connection,
    server_id: str,
    tier: Tier,
    start: int,
    end: int,
    limit: int,
) -> list[Row]:
    """Up to `limit` stored rows of [start, end), oldest first, in `columns_for(tier)` order."""
    columns = KEYS if tier is Tier.RAW else _PUBLIC_AGG
    extra = "" if tier is Tier.RAW else ", samples"
    return db.execute(
        f"SELECT ts, {', '.join(columns)}{extra} FROM {tier.value} "
        "WHERE server_id = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?",
        (server_id, start, end, limit),
    ).fetchall()


@dataclass(frozen=True, kw_only=True, slots=True)
class LineFormat:
    """How `lines` writes each stored row of a file: `before`, the timestamp, `middle`, the line, `after`.

    The timestamp is written by SQLite as "YYYY-MM-DD HH:MM:SS" of the epoch seconds plus `offset`
    (the space is the caller's to mend), so a format holds for rows before `until` only, while
    the time zone's offset stays the same.
    """

    before: str
    offset: int
    middle: str
    after: str
    until: int


def lines(
    db: sqlite3.Connection,
    server_id: str,
    tier: Tier,
    start: int,
    end: int,
    limit: int,
    fmt: LineFormat,
) -> tuple[bytes, int, int]:
    """Up to `limit` stored rows of [start, end) as one text, oldest first; its rows; the last ts.

    SQLite writes the rows itself, the Python thread waits without the GIL, and no Python object
    is made per row. group_concat joins the rows in the order the ordered subquery yields them.
    """
    text, rows, last = db.execute(
        "SELECT CAST(group_concat(:before || datetime(ts + :offset, 'unixepoch') "
        "|| :middle || line || :after, '') AS BLOB), COUNT(*), MAX(ts) "
        f"FROM (SELECT ts, line FROM {tier.value} "
        "WHERE server_id = :sid AND ts >= :start AND ts < :end ORDER BY ts LIMIT :limit)",
        {
            "before": fmt.before,
            "offset": fmt.offset,
            "middle": fmt.middle,
            "after": fmt.after,
            "sid": server_id,
            "start": start,
            "end": end,
            "limit": limit,
        },
    ).fetchone()
    return text or b"", rows, last


def bounds(
    db: sqlite3.Connection, server_id: str, tier: Tier, start: int, end: int
) -> tuple[int, int] | None:
    """The first and last stored timestamp of [start, end), or None without a row."""
    first, last = db.execute(
        f"SELECT MIN(ts), MAX(ts) FROM {tier.value} "
        "WHERE server_id = ? AND ts >= ? AND ts < ?",
        (server_id, start, end),
    ).fetchone()
    return None if first is None else (first, last)


def count(
    db: sqlite3.Connection,
    days: LocalDays,
    server_id: str,
    tier: Tier,
    start: int,
    end: int,
    now: int,
) -> int:
    """Stored rows of the window, plus computed buckets that are not stored."""
    stored = int(
        db.execute(
            f"SELECT COUNT(*) FROM {tier.value} "
            "WHERE server_id = ? AND ts >= ? AND ts < ?",
            (server_id, start, end),
        ).fetchone()[0]
    )
    if tier is Tier.RAW:
        return stored
    extra = 0
    for row in fresh(db, days, server_id, tier, start, end, now):
        if not db.execute(
            f"SELECT 1 FROM {tier.value} WHERE server_id = ? AND ts = ?",
            (server_id, row[0]),
        ).fetchone():
            extra += 1
    return stored + extra


def combine(rows: Sequence[Row]) -> Row:
    """Aggregate columns (avg, min, max, n per metric, then samples) of buckets, weighted by n."""
    out: list[Any] = []
    for i in range(len(KEYS)):
        base = 1 + WIDTH * i
        parts = [r[base : base + WIDTH] for r in rows if r[base + 3]]
        n = sum(p[3] for p in parts)
        if n:
            out += [
                sum(p[0] * p[3] for p in parts) / n,
                min(p[1] for p in parts),
                max(p[2] for p in parts),
                n,
            ]
        else:
            out += [None, None, None, 0]
    out.append(sum(r[-1] for r in rows))
    return tuple(out)


def merge(
    stored: list[Row], computed: dict[int, Row], *, upto: int | None
) -> list[Row]:
    """Stored rows with computed ones replacing or joining them, up to `upto` (None: all left).

    The computed rows merged are taken out of `computed`.
    """
    due = [ts for ts in computed if upto is None or ts <= upto]
    if not due:
        return stored
    merged = {row[0]: row for row in stored}
    for ts in due:
        merged[ts] = computed.pop(ts)
    return [merged[ts] for ts in sorted(merged)]


public: Callable[[Row], Row] = operator.itemgetter(
    0,
    *(1 + i for i in range(len(AGG_COLUMNS)) if i % WIDTH != WIDTH - 1),
    1 + len(AGG_COLUMNS),
)
"""Drop the per-metric counts: export columns are avg, min, max per metric, then samples."""
