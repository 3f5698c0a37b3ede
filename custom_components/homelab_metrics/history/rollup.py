"""Rollups and retention: dirty buckets recomputed from the finer tier, old rows pruned.

Every raw write marks its UTC hour, and the local day that hour belongs to, "dirty". A rollup
recomputes the dirty buckets that are complete (hourly from raw; daily from hourly, weighted by
per-metric sample counts) and clears their marks. So a rollup is idempotent, catches up after any
downtime (the marks wait), and a late sample re-rolls exactly the hour and day it falls into.
One exception: a late sample for an hour that already has an hourly row and starts before the raw
retention cut-off is not rolled in, because that hour's other raw rows may already be pruned and
recomputing it would replace a full hour with a fragment (the same holds for days and hourly rows).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import sqlite3

from .metrics import Tier
from .ranges import HOUR, RETENTION_SECONDS
from .sql import AGG_SELECT, HOURLY_WEIGHTED, RAW_AGG, server_ids, transaction

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class RollupStats:
    """What one rollup did: buckets (re)computed and rows pruned."""

    hours: int
    days: int
    pruned: int


def rollup(db: sqlite3.Connection, now: int) -> RollupStats:
    """Roll up every complete dirty bucket up to `now` and prune what retention drops."""
    raw_cut = now - RETENTION_SECONDS[Tier.RAW]
    hourly_cut = now - RETENTION_SECONDS[Tier.HOURLY]
    daily_cut = now - RETENTION_SECONDS[Tier.DAILY]
    with transaction(db):
        # Late samples whose bucket lost part of its source rows to retention: keep the row.
        late = db.execute(
            "DELETE FROM dirty_hours WHERE ts < ? AND EXISTS (SELECT 1 FROM hourly h "
            "WHERE h.server_id = dirty_hours.server_id AND h.ts = dirty_hours.ts)",
            (raw_cut,),
        ).rowcount
        late += db.execute(
            "DELETE FROM dirty_days WHERE ts < ? AND EXISTS (SELECT 1 FROM daily d "
            "WHERE d.server_id = dirty_days.server_id AND d.ts = dirty_days.ts)",
            (hourly_cut,),
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
        db.execute("DELETE FROM dirty_days WHERE end_ts <= ?", (now,))
        pruned = 0
        for server_id in list(server_ids(db, "raw")):
            # Raw rows of an hour not rolled up yet stay, however old.
            pruned += db.execute(
                "DELETE FROM raw WHERE server_id = :sid AND ts < :cut AND NOT EXISTS "
                "(SELECT 1 FROM dirty_hours d WHERE d.server_id = raw.server_id "
                "AND d.ts = raw.ts - raw.ts % :hour)",
                {"sid": server_id, "cut": raw_cut, "hour": HOUR},
            ).rowcount
        for table, cut in (("hourly", hourly_cut), ("daily", daily_cut)):
            for server_id in list(server_ids(db, table)):
                pruned += db.execute(
                    f"DELETE FROM {table} WHERE server_id = ? AND ts < ?",
                    (server_id, cut),
                ).rowcount
    return RollupStats(hours=hours, days=days, pruned=pruned)
