"""SQLite history of every server: raw polls, hourly and daily aggregates, on one worker thread.

Every raw write also marks its UTC hour and its local day "dirty". A rollup recomputes the dirty
buckets that are complete — hourly from raw, then daily from hourly weighted by sample counts — and
clears their marks, so rollups are idempotent, catch up after any downtime, and take late samples
into account. Queries compute the still-dirty buckets of their window on the fly, so the current
hour and day are never missing from a coarse export.

Durability: WAL with synchronous=NORMAL. A committed write survives the process being killed (it is
in the WAL file); only a power cut can lose the last transactions. Samples arrive once a minute per
server, so that trade buys a lot of write speed for a very small risk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
import concurrent.futures
from dataclasses import dataclass
from datetime import UTC, datetime, time as dtime, timedelta
import logging
from pathlib import Path
import queue
import sqlite3
import threading
from typing import Any
from zoneinfo import ZoneInfo

from ..agents.base import Sample
from .metrics import METRICS, Tier
from .ranges import RETENTION_SECONDS

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION = 1
HOUR = 3600
_KEYS = tuple(m.key for m in METRICS)
_AGG_COLUMNS = tuple(
    f"{k}_{stat}" for k in _KEYS for stat in ("avg", "min", "max", "n")
)

type Row = tuple[Any, ...]


def _create_v1(conn: sqlite3.Connection) -> None:
    """Version 1: raw, hourly, daily and the dirty-bucket marks."""
    raw_cols = ", ".join(f"{k} REAL" for k in _KEYS)
    agg_cols = ", ".join(
        f"{k}_{stat} {'INTEGER' if stat == 'n' else 'REAL'}"
        for k in _KEYS
        for stat in ("avg", "min", "max", "n")
    )
    conn.executescript(
        f"""
        CREATE TABLE IF NOT EXISTS raw (server_id TEXT NOT NULL, ts INTEGER NOT NULL, {raw_cols},
            PRIMARY KEY (server_id, ts)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS hourly (server_id TEXT NOT NULL, ts INTEGER NOT NULL, {agg_cols},
            samples INTEGER NOT NULL, PRIMARY KEY (server_id, ts)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS daily (server_id TEXT NOT NULL, ts INTEGER NOT NULL, {agg_cols},
            samples INTEGER NOT NULL, PRIMARY KEY (server_id, ts)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS dirty_hours (server_id TEXT NOT NULL, ts INTEGER NOT NULL,
            PRIMARY KEY (server_id, ts)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS dirty_days (server_id TEXT NOT NULL, ts INTEGER NOT NULL,
            end_ts INTEGER NOT NULL, PRIMARY KEY (server_id, ts)) WITHOUT ROWID;
        """
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_v1,)
"""MIGRATIONS[n] takes a database from user_version n to n + 1; a new metric is a new step."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RollupStats:
    """What one rollup did."""

    hours: int
    days: int
    pruned: int


class StoreClosedError(RuntimeError):
    """The store was used after it was closed."""


class HistoryStore:
    """The history database; every public method is awaitable and runs on the store's own thread."""

    def __init__(self, path: Path, *, time_zone: str = "UTC") -> None:
        """Prepare (not open) the store for a file; daily buckets follow `time_zone`."""
        self.path = Path(path)
        self.recovered_from: Path | None = None
        self._tz = ZoneInfo(time_zone)
        self._queue: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], concurrent.futures.Future[Any]]
            | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._paused = False
        self._pending: list[tuple[str, Sample]] = []
        self._day_cache: tuple[int, int] = (0, 0)

    # -- thread plumbing -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether async_close has run (or the store never opened)."""
        return self._closed or self._thread is None

    def _run(self) -> None:
        """The worker: the only code that touches the connection."""
        while (job := self._queue.get()) is not None:
            func, args, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(func(*args))
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                future.set_exception(err)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _call[T](self, func: Callable[..., T], *args: Any) -> T:
        """Run func(*args) on the worker and wait for it without blocking the loop."""
        if self._closed or self._thread is None:
            raise StoreClosedError("history store is closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((func, args, future))
        return await asyncio.wrap_future(future)

    async def async_open(self) -> None:
        """Start the worker, open (or recover) the file and bring its schema up to date."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="homelab_metrics_history", daemon=True
        )
        self._thread.start()
        await self._call(self._open)

    async def async_close(self) -> None:
        """Write what waits in memory, close the file and end the worker thread."""
        if self._closed or self._thread is None:
            self._closed = True
            return
        if self._pending:
            pending, self._pending = self._pending, []
            await self._call(self._insert, pending)
        self._closed = True
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((lambda: None, (), done))
        self._queue.put(None)
        await asyncio.wrap_future(done)
        # The worker has nothing left but closing the connection, so this join is short.
        self._thread.join()

    # -- opening, recovery, schema ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            conn.close()
            raise sqlite3.DatabaseError("quick_check failed")
        return conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connect()
            self._migrate(conn)
        except sqlite3.DatabaseError as err:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            _LOGGER.error(
                "History database %s is unreadable (%s); moved to %s",
                self.path,
                err,
                moved,
            )
            self.path.replace(moved)
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    side.replace(moved.with_name(moved.name + suffix))
            self.recovered_from = moved
            conn = self._connect()
            self._migrate(conn)
        self._conn = conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this code"
            )
        for step in range(version, SCHEMA_VERSION):
            with conn:
                conn.execute("BEGIN")
                MIGRATIONS[step](conn)
                conn.execute(f"PRAGMA user_version={step + 1}")

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError("history store is not open")
        return self._conn

    def set_time_zone(self, name: str) -> None:
        """Daily buckets from now on follow this time zone (the worker reads it per call)."""
        self._tz = ZoneInfo(name)
        self._day_cache = (0, 0)

    # -- writing ---------------------------------------------------------------------------------

    def day_bounds(self, ts: int) -> tuple[int, int]:
        """Start and end (epoch seconds) of the local calendar day holding ts; 23 or 25 h on DST days."""
        start, end = self._day_cache
        if start <= ts < end:
            return start, end
        day = datetime.fromtimestamp(ts, self._tz).date()
        start = int(datetime.combine(day, dtime(0), self._tz).timestamp())
        end = int(
            datetime.combine(day + timedelta(days=1), dtime(0), self._tz).timestamp()
        )
        self._day_cache = (start, end)
        return start, end

    def _insert(self, items: Sequence[tuple[str, Sample]]) -> None:
        db = self._db
        raw_sql = (
            f"INSERT OR REPLACE INTO raw (server_id, ts, {', '.join(_KEYS)}) "
            f"VALUES (?, ?, {', '.join('?' for _ in _KEYS)})"
        )
        with db:
            db.execute("BEGIN")
            db.executemany(
                raw_sql,
                [
                    (sid, s.timestamp, *(getattr(s, k) for k in _KEYS))
                    for sid, s in items
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO dirty_hours VALUES (?, ?)",
                {(sid, s.timestamp - s.timestamp % HOUR) for sid, s in items},
            )
            db.executemany(
                "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
                {(sid, *self.day_bounds(s.timestamp)) for sid, s in items},
            )

    async def async_add(self, server_id: str, sample: Sample) -> None:
        """Keep one poll (writing the same timestamp twice keeps one row)."""
        if self._paused and not self.closed:
            self._pending.append((server_id, sample))
            return
        await self._call(self._insert, [(server_id, sample)])

    async def async_add_many(self, server_id: str, samples: Iterable[Sample]) -> None:
        """Keep many polls in one transaction (imports, benchmarks)."""
        await self._call(self._insert, [(server_id, s) for s in samples])

    async def async_pause_writes(self) -> None:
        """Checkpoint the WAL into the main file and hold new samples in memory (for backups)."""
        self._paused = True
        await self._call(
            lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        )

    async def async_resume_writes(self) -> None:
        """Write the held samples and take new ones directly again."""
        pending, self._pending = self._pending, []
        self._paused = False
        if pending:
            await self._call(self._insert, pending)

    # -- rollup and retention --------------------------------------------------------------------

    def _rollup(self, now: int) -> RollupStats:
        db = self._db
        agg = ", ".join(
            f"AVG(r.{k}), MIN(r.{k}), MAX(r.{k}), COUNT(r.{k})" for k in _KEYS
        )
        weighted = ", ".join(
            f"SUM(h.{k}_avg * h.{k}_n) / SUM(h.{k}_n), MIN(h.{k}_min), MAX(h.{k}_max), SUM(h.{k}_n)"
            for k in _KEYS
        )
        with db:
            db.execute("BEGIN")
            hours = db.execute(
                f"INSERT OR REPLACE INTO hourly SELECT d.server_id, d.ts, {agg}, COUNT(*) "
                "FROM dirty_hours d JOIN raw r ON r.server_id = d.server_id "
                "AND r.ts >= d.ts AND r.ts < d.ts + 3600 "
                "WHERE d.ts + 3600 <= ? GROUP BY d.server_id, d.ts",
                (now,),
            ).rowcount
            db.execute("DELETE FROM dirty_hours WHERE ts + 3600 <= ?", (now,))
            days = db.execute(
                f"INSERT OR REPLACE INTO daily SELECT d.server_id, d.ts, {weighted}, SUM(h.samples) "
                "FROM dirty_days d JOIN hourly h ON h.server_id = d.server_id "
                "AND h.ts >= d.ts AND h.ts < d.end_ts "
                "WHERE d.end_ts <= ? GROUP BY d.server_id, d.ts",
                (now,),
            ).rowcount
            db.execute("DELETE FROM dirty_days WHERE end_ts <= ?", (now,))
            pruned = db.execute(
                "DELETE FROM raw WHERE ts < ? AND NOT EXISTS (SELECT 1 FROM dirty_hours d "
                "WHERE d.server_id = raw.server_id AND d.ts = raw.ts - raw.ts % 3600)",
                (now - RETENTION_SECONDS[Tier.RAW],),
            ).rowcount
            pruned += db.execute(
                "DELETE FROM hourly WHERE ts < ?",
                (now - RETENTION_SECONDS[Tier.HOURLY],),
            ).rowcount
            pruned += db.execute(
                "DELETE FROM daily WHERE ts < ?", (now - RETENTION_SECONDS[Tier.DAILY],)
            ).rowcount
        return RollupStats(hours=hours, days=days, pruned=pruned)

    async def async_rollup(self, now: int) -> RollupStats:
        """Roll up every complete dirty bucket and prune what retention no longer keeps."""
        return await self._call(self._rollup, now)

    # -- reading ---------------------------------------------------------------------------------

    def _dirty_buckets(
        self, server_id: str, tier: Tier, start: int, end: int
    ) -> list[Row]:
        """Rows of the window's not-yet-rolled buckets, computed from the finer tier (with counts)."""
        db = self._db
        if tier is Tier.HOURLY:
            agg = ", ".join(
                f"AVG(r.{k}), MIN(r.{k}), MAX(r.{k}), COUNT(r.{k})" for k in _KEYS
            )
            return db.execute(
                f"SELECT d.ts, {agg}, COUNT(*) FROM dirty_hours d JOIN raw r "
                "ON r.server_id = d.server_id AND r.ts >= d.ts AND r.ts < d.ts + 3600 "
                "WHERE d.server_id = ? AND d.ts >= ? AND d.ts < ? GROUP BY d.ts ORDER BY d.ts",
                (server_id, start, end),
            ).fetchall()
        days = db.execute(
            "SELECT ts, end_ts FROM dirty_days WHERE server_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (server_id, start, end),
        ).fetchall()
        rows: list[Row] = []
        for day_start, day_end in days:
            fresh = {
                row[0]: row
                for row in self._dirty_buckets(
                    server_id, Tier.HOURLY, day_start, day_end
                )
            }
            stored = db.execute(
                f"SELECT ts, {', '.join(_AGG_COLUMNS)}, samples FROM hourly "
                "WHERE server_id = ? AND ts >= ? AND ts < ?",
                (server_id, day_start, day_end),
            ).fetchall()
            hours = {row[0]: row for row in stored} | fresh
            if hours:
                rows.append((day_start, *combine(list(hours.values()))))
        return rows

    def _page(
        self, server_id: str, tier: Tier, start: int, end: int, limit: int
    ) -> list[Row]:
        columns = (
            ", ".join(_KEYS)
            if tier is Tier.RAW
            else f"{', '.join(_AGG_COLUMNS)}, samples"
        )
        return self._db.execute(
            f"SELECT ts, {columns} FROM {tier.value} WHERE server_id = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts LIMIT ?",
            (server_id, start, end, limit),
        ).fetchall()

    async def async_query(
        self,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        *,
        batch_size: int = 2000,
    ) -> AsyncIterator[list[Row]]:
        """Rows of one server and tier in [start, end), in `columns_for(tier)` order, batch by batch."""
        computed: list[Row] = []
        if tier is not Tier.RAW:
            computed = await self._call(
                self._dirty_buckets, server_id, tier, start, end
            )
        fresh = {row[0]: row for row in computed}
        cursor = start
        while True:
            stored = await self._call(
                self._page, server_id, tier, cursor, end, batch_size
            )
            full = len(stored) == batch_size
            rows = stored
            if tier is not Tier.RAW:
                upto = stored[-1][0] if full else None
                rows = [_public(row) for row in _merge(stored, fresh, upto=upto)]
            if rows:
                yield rows
            if not full:
                return
            cursor = stored[-1][0] + 1

    async def async_count(
        self, server_id: str, tier: Tier, start: int, end: int
    ) -> int:
        """How many rows async_query would yield."""
        total = 0
        async for batch in self.async_query(server_id, tier, start, end):
            total += len(batch)
        return total

    async def async_latest_ts(self, server_id: str) -> int | None:
        """Timestamp of the newest raw sample of a server, None without any."""
        row = await self._call(
            lambda: self._db.execute(
                "SELECT MAX(ts) FROM raw WHERE server_id = ?", (server_id,)
            ).fetchone()
        )
        return None if row[0] is None else int(row[0])

    async def async_server_ids(self) -> list[str]:
        """Servers that have any history."""
        rows = await self._call(
            lambda: self._db.execute(
                "SELECT server_id FROM raw UNION SELECT server_id FROM hourly "
                "UNION SELECT server_id FROM daily"
            ).fetchall()
        )
        return sorted(row[0] for row in rows)

    async def async_remove_server(self, server_id: str) -> None:
        """Delete every row of a server in every tier."""

        def remove() -> None:
            with self._db as db:
                db.execute("BEGIN")
                for table in ("raw", "hourly", "daily", "dirty_hours", "dirty_days"):
                    db.execute(f"DELETE FROM {table} WHERE server_id = ?", (server_id,))

        await self._call(remove)


def combine(rows: Sequence[Row]) -> Row:
    """Aggregate columns (avg, min, max, n per metric, samples) of several buckets, weighted by n."""
    out: list[Any] = []
    for i in range(len(_KEYS)):
        base = 1 + 4 * i
        parts = [
            (r[base], r[base + 1], r[base + 2], r[base + 3])
            for r in rows
            if r[base + 3]
        ]
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


def _merge(page: list[Row], fresh: dict[int, Row], *, upto: int | None) -> list[Row]:
    """Stored rows with the computed ones replacing or joining them, up to `upto` (None: all left)."""
    merged = {row[0]: row for row in page}
    for ts in [ts for ts in fresh if upto is None or ts <= upto]:
        merged[ts] = fresh.pop(ts)
    return [merged[ts] for ts in sorted(merged)]


def _public(row: Row) -> Row:
    """Drop the per-metric counts: export columns are avg, min, max per metric, then samples."""
    values = [v for i, v in enumerate(row[1:-1]) if i % 4 != 3]
    return (row[0], *values, row[-1])
