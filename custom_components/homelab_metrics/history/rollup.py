"""Rollups and retention: dirty buckets recomputed from the finer tier, old rows pruned.

Every raw write marks its UTC hour, and the local day that hour belongs to, "dirty". A rollup
recomputes the dirty buckets that are complete (hourly from raw; daily from hourly, weighted by
per-metric sample counts) and clears their marks. So a rollup is idempotent, catches up after any
downtime (the marks wait), and a late sample re-rolls exactly the hour and day it falls into.
One exception: a late sample for an hour that already has an hourly row and starts before the raw
retention cut-off is not rolled in, because that hour's other raw rows may already be pruned and
recomputing it would replace a full hour with a fragment (the same holds for days and hourly rows).

Retention counts back from each server's newest stored sample, and never from a moment later
than the rollup's `now`: a clock reading alone, however far ahead, deletes nothing, and a server
that stops reporting keeps its last 7 days of polls, 90 of hours and 400 of days. Rows are pruned
only once a newer sample has been stored, and the store keeps samples stamped far ahead of the
time that really passed out of the file (see clock.py).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import sqlite3

from .metrics import Tier
from .ranges import HOUR, RETENTION_SECONDS
from .sql import (
    AGG_SELECT,
    AGGREGATE_LINE,
    HOURLY_WEIGHTED,
    RAW_AGG,
    TIERS,
    newest_ts,
    server_ids,
    transaction,
)

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class RollupStats:
    """What one rollup did: buckets (re)computed and rows pruned."""

    hours: int
    days: int
    pruned: int


def _references(db: sqlite3.Connection, now: int) -> dict[str, int]:
    """Each server's retention reference: its newest sample, or `now` if that is earlier."""
    servers = {sid for table in TIERS for sid in server_ids(db, table)}
    return {
        sid: min(now, newest)
        for sid in sorted(servers)
        if (newest := newest_ts(db, sid)) is not None
    }


def rollup(db: sqlite3.Connection, now: int) -> RollupStats:
    """Roll up every complete dirty bucket up to `now` and prune what retention drops."""
    raw_kept, hourly_kept, daily_kept = (RETENTION_SECONDS[tier] for tier in Tier)
    with transaction(db):
        references = _references(db, now)
        # Late samples whose bucket lost part of its source rows to retention: keep the row.
        late = 0
        for sid, reference in references.items():
            late += db.execute(
                "DELETE FROM dirty_hours WHERE server_id = ? AND ts < ? AND EXISTS "
                "(SELECT 1 FROM hourly h WHERE h.server_id = dirty_hours.server_id "
                "AND h.ts = dirty_hours.ts)",
                (sid, reference - raw_kept),
            ).rowcount
            late += db.execute(
                "DELETE FROM dirty_days WHERE server_id = ? AND ts < ? AND EXISTS "
                "(SELECT 1 FROM daily d WHERE d.server_id = dirty_days.server_id "
                "AND d.ts = dirty_days.ts)",
                (sid, reference - hourly_kept),
            ).rowcount
        if late:
            _LOGGER.debug("%s buckets got samples older than retention", late)
        hours = db.execute(
            f"INSERT OR REPLACE INTO hourly (server_id, ts, {AGG_SELECT}) "
            f"SELECT d.server_id, d.ts, {RAW_AGG}, COUNT(*) "
            "FROM dirty_hours d JOIN raw r ON r.server_id = d.server_id "
            "AND r.ts >= d.ts AND r.ts < d.ts + :hour "
            "WHERE d.ts + :hour <= :now GROUP BY d.server_id, d.ts",
            {"hour": HOUR, "now": now},
        ).rowcount
        db.execute(
            f"UPDATE hourly SET line = {AGGREGATE_LINE} WHERE (server_id, ts) IN "
            "(SELECT server_id, ts FROM dirty_hours WHERE ts + :hour <= :now)",
            {"hour": HOUR, "now": now},
        )
        db.execute(
            "DELETE FROM dirty_hours WHERE ts + :hour <= :now",
            {"hour": HOUR, "now": now},
        )
        days = db.execute(
            f"INSERT OR REPLACE INTO daily (server_id, ts, {AGG_SELECT}) "
            f"SELECT d.server_id, d.ts, {HOURLY_WEIGHTED}, SUM(h.samples) "
            "FROM dirty_days d JOIN hourly h ON h.server_id = d.server_id "
            "AND h.ts >= d.ts AND h.ts < d.end_ts "
            "WHERE d.end_ts <= ? GROUP BY d.server_id, d.ts",
            (now,),
        ).rowcount
        db.execute(
            f"UPDATE daily SET line = {AGGREGATE_LINE} WHERE (server_id, ts) IN "
            "(SELECT server_id, ts FROM dirty_days WHERE end_ts <= ?)",
            (now,),
        )
        db.execute("DELETE FROM dirty_days WHERE end_ts <= ?", (now,))
        pruned = 0
        for sid, reference in references.items():
            # Raw rows of an hour not rolled up yet stay, however old.
            pruned += db.execute(
                "DELETE FROM raw WHERE server_id = :sid AND ts < :cut AND NOT EXISTS "
                "(SELECT 1 FROM dirty_hours d WHERE d.server_id = raw.server_id "
                "AND d.ts = raw.ts - raw.ts % :hour)",
                {"sid": sid, "cut": reference - raw_kept, "hour": HOUR},
            ).rowcount
            for table, kept in (("hourly", hourly_kept), ("daily", daily_kept)):
                pruned += db.execute(
                    f"DELETE FROM {table} WHERE server_id = ? AND ts < ?",
                    (sid, reference - kept),
                ).rowcount
    return RollupStats(hours=hours, days=days, pruned=pruned)
