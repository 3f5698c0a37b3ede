"""SQLite history of every server: raw polls, hourly and daily aggregates, on one worker thread.

Rollups. Every raw write marks its UTC hour, and the local day that hour belongs to, "dirty". A
rollup recomputes the dirty buckets that are complete (hourly from raw; daily from hourly, weighted
by per-metric sample counts) and clears their marks. So a rollup is idempotent, catches up after any
downtime (the marks wait), and a late sample re-rolls exactly the hour and day it falls into.
One exception: a late sample for an hour that already has an hourly row and starts before the raw
retention cut-off is not rolled in, because that hour's other raw rows may already be pruned and
recomputing it would replace a full hour with a fragment (the same holds for days and hourly rows).

Days. A daily bucket is a calendar day in the store's time zone (23 or 25 hours on DST days). It
holds the hourly buckets that start within it; in zones with a half-hour offset the hour that
straddles midnight belongs to the day it starts in. A time-zone change re-marks the days still
waiting for a rollup in the new zone; daily rows already stored keep the bounds they were made with.

Queries compute the still-dirty buckets of their window, and the bucket holding `now`, on the fly
from the finer tier, so the current hour and day are never missing from a coarse export.

Durability: WAL with synchronous=NORMAL. A write is committed before its call returns, and a
committed transaction is in the WAL file, so it survives the process being killed; only a power cut
or OS crash can lose the last transactions (never corrupt the file). Samples arrive once a minute per
server, so that trade buys a lot of write speed for a very small risk.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, time as dtime, timedelta
import functools
import logging
import operator
from pathlib import Path
import queue
import sqlite3
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

from ..agents.base import Sample
from .metrics import METRICS, Tier
from .ranges import RETENTION_SECONDS
from .schema import SCHEMA_VERSION, STATS, SchemaTooNewError, check_columns, migrate

__all__ = [
    "DAILY_RETENTION",
    "HOURLY_RETENTION",
    "RAW_RETENTION",
    "SCHEMA_VERSION",
    "HistoryStore",
    "HourlyBucket",
    "MetricAggregate",
    "RollupStats",
    "StoreClosedError",
]

_LOGGER = logging.getLogger(__name__)

HOUR = 3600

RAW_RETENTION = RETENTION_SECONDS[Tier.RAW]
"""Raw rows older than this (seconds before the rollup's `now`) are pruned, once rolled up."""
HOURLY_RETENTION = RETENTION_SECONDS[Tier.HOURLY]
"""Hourly rows whose bucket starts earlier than this before `now` are pruned."""
DAILY_RETENTION = RETENTION_SECONDS[Tier.DAILY]
"""Daily rows whose bucket starts earlier than this before `now` are pruned."""

WAL_AUTOCHECKPOINT_PAGES = 1000
"""SQLite's default; turned off while a backup copies the file."""

_KEYS = tuple(m.key for m in METRICS)
_AGG_COLUMNS = tuple(f"{k}_{stat}" for k in _KEYS for stat in STATS)
_AGG_SELECT = ", ".join((*_AGG_COLUMNS, "samples"))
_RAW_AGG = ", ".join(f"AVG(r.{k}), MIN(r.{k}), MAX(r.{k}), COUNT(r.{k})" for k in _KEYS)
_HOURLY_WEIGHTED = ", ".join(
    f"SUM(h.{k}_avg * h.{k}_n) / SUM(h.{k}_n), MIN(h.{k}_min), MAX(h.{k}_max), "
    f"SUM(h.{k}_n)"
    for k in _KEYS
)
_WIDTH = len(STATS)

type Row = tuple[Any, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class RollupStats:
    """What one rollup did: buckets (re)computed and rows pruned."""

    hours: int
    days: int
    pruned: int


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricAggregate:
    """One metric over one bucket: average, extremes and how many samples had it."""

    avg: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HourlyBucket:
    """A pre-aggregated UTC hour, for importing history older than any raw data."""

    timestamp: int
    """Start of the UTC hour, epoch seconds (a multiple of 3600)."""
    samples: int
    """Raw samples the hour stood for."""
    metrics: Mapping[str, MetricAggregate]
    """By metric key; a metric left out had no samples that hour."""


class StoreClosedError(RuntimeError):
    """The store was used before it was opened or after it was closed."""


class _QuickCheckError(sqlite3.DatabaseError):
    """PRAGMA quick_check found damage."""


def _is_corruption(err: sqlite3.DatabaseError) -> bool:
    """Damage we recover from by starting afresh; locks and permissions are not that."""
    if isinstance(err, _QuickCheckError | SchemaTooNewError):
        return True
    code = getattr(err, "sqlite_errorcode", None)
    # SQLITE_CORRUPT and SQLITE_NOTADB, whatever the extended code.
    return code is not None and code & 0xFF in (11, 26)


def _quick_check(conn: sqlite3.Connection) -> None:
    """Raise _QuickCheckError unless SQLite finds the file sound."""
    if (result := conn.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
        raise _QuickCheckError(f"quick_check: {result}")


def _settle(
    future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    """Hand the worker's outcome to the waiting coroutine (runs on the event loop)."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


type _Job = tuple[
    Callable[[], Any], asyncio.AbstractEventLoop | None, asyncio.Future[Any] | None
]


class HistoryStore:
    """The history database; every public coroutine runs its work on the store's own thread."""

    def __init__(self, path: Path, *, time_zone: str = "UTC") -> None:
        """Prepare (not open) the store for a file; daily buckets follow `time_zone`."""
        self.path = Path(path)
        self.recovered_from: Path | None = None
        """Where a corrupt file was moved by async_open, for a repair issue; None if it was fine."""
        self._tz = ZoneInfo(time_zone)
        # What set_time_zone asked for last; the worker's _tz follows in queue order.
        self._requested_tz = self._tz
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._paused = False
        self._pending: list[tuple[str, Sample]] = []
        self._failing = False
        # Worker-only cache: consecutive samples fall in the same day.
        self._day_cache: tuple[int, int] = (0, 0)

    # -- thread plumbing -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the store cannot be used: closed, or never opened."""
        return self._closed or self._thread is None

    def _run(self) -> None:
        """The worker: the only code that touches the connection."""
        while (job := self._queue.get()) is not None:
            func, loop, future = job
            # Reading the flag from this thread is a benign race: at worst we do a cancelled job.
            if future is not None and future.cancelled():
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = func()
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                error = err
                self._note_failure(err, caller=loop is not None)
            else:
                if self._failing:
                    _LOGGER.info("History database works again")
                    self._failing = False
            if loop is not None and future is not None:
                try:
                    loop.call_soon_threadsafe(_settle, future, result, error)
                except RuntimeError:
                    _LOGGER.debug("Event loop closed before a history result arrived")
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _note_failure(self, err: BaseException, *, caller: bool) -> None:
        """Log a database failure once per run of failures; the caller gets the exception too."""
        if not caller:
            _LOGGER.error("History database task failed: %s", err)
        elif isinstance(err, sqlite3.DatabaseError) and not self._failing:
            _LOGGER.warning("History database error: %s", err)
            self._failing = True

    async def _call[T](self, func: Callable[..., T], *args: Any) -> T:
        """Run func(*args) on the worker and wait for it without blocking the loop."""
        if self.closed:
            raise StoreClosedError("history store is not open")
        return await self._submit(functools.partial(func, *args))

    async def _submit[T](self, func: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((func, loop, future))
        return await future

    async def async_open(self) -> None:
        """Start the worker, open (or recover) the file and bring its schema up to date."""
        if self._closed:
            raise StoreClosedError("a closed history store cannot be opened again")
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name="homelab_metrics_history", daemon=True
        )
        self._thread.start()
        try:
            await self._submit(self._open)
        except BaseException:
            await self.async_close()
            raise

    async def async_close(self) -> None:
        """Write what waits in memory, close the file and end the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        pending, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # Jobs queued before these still run first; the worker ends right after the shutdown.
        self._queue.put((functools.partial(self._shutdown, pending), loop, done))
        self._queue.put(None)
        # Shielded: a cancelled caller must not make the worker skip closing the file.
        await asyncio.shield(done)
        self._thread.join()

    def _shutdown(self, pending: list[tuple[str, Sample]]) -> None:
        if self._conn is None:
            return
        try:
            if pending:
                self._insert(pending)
        except sqlite3.Error as err:
            _LOGGER.error(
                "Could not write %s held samples while closing: %s", len(pending), err
            )
        finally:
            self._conn.close()
            self._conn = None

    # -- opening, recovery, schema ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            # A big catch-up rollup can grow the WAL a lot; give the space back afterwards.
            conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
            _quick_check(conn)
            migrate(conn)
            check_columns(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as err:
            if not _is_corruption(err):
                raise
            self.recovered_from = self._move_aside(err)
            self._conn = self._connect()

    def _move_aside(self, err: sqlite3.DatabaseError) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        moved = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        _LOGGER.error(
            "History database %s is unreadable (%s); moved to %s and started afresh",
            self.path,
            err,
            moved,
        )
        self.path.replace(moved)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.replace(moved.with_name(moved.name + suffix))
        return moved

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError("history store is not open")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
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

    # -- time zone -------------------------------------------------------------------------------

    def set_time_zone(self, name: str) -> None:
        """Make daily buckets follow another time zone (from the next rollup on)."""
        tz = ZoneInfo(name)
        self._requested_tz = tz
        if self.closed:
            self._tz = tz
            self._day_cache = (0, 0)
            return
        # The worker applies it between two jobs, so no job sees half a change.
        self._queue.put((functools.partial(self._apply_time_zone, tz), None, None))

    def _apply_time_zone(self, tz: ZoneInfo) -> None:
        if tz == self._tz:
            return
        self._tz = tz
        self._day_cache = (0, 0)
        with self._transaction() as db:
            marks = db.execute(
                "SELECT server_id, ts, end_ts FROM dirty_days"
            ).fetchall()
            db.execute("DELETE FROM dirty_days")
            db.executemany(
                "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
                {
                    (server_id, *self._day_of_hour(hour))
                    for server_id, start, end in marks
                    for hour in range(start + (-start) % HOUR, end, HOUR)
                },
            )

    @property
    def time_zone(self) -> str:
        """The time zone daily buckets follow."""
        return self._requested_tz.key

    def day_bounds(self, ts: int) -> tuple[int, int]:
        """Start and end of the local calendar day holding ts; 23 or 25 hours on DST days."""
        return _local_day(ts, self._requested_tz)

    def _day_of_hour(self, hour: int) -> tuple[int, int]:
        """The daily bucket an hourly bucket belongs to: its start, and the end of its last hour."""
        start, end = self._day_cache
        if start <= hour < end:
            return start, end
        start, midnight = _local_day(hour, self._tz)
        # The first whole-hour boundary at or after the next local midnight.
        end = midnight + (-midnight) % HOUR
        self._day_cache = (start, end)
        return start, end

    # -- writing ---------------------------------------------------------------------------------

    def _insert(self, items: Sequence[tuple[str, Sample]]) -> None:
        raw_sql = (
            f"INSERT OR REPLACE INTO raw (server_id, ts, {', '.join(_KEYS)}) "
            f"VALUES (?, ?, {', '.join('?' for _ in _KEYS)})"
        )
        hours = {(sid, s.timestamp - s.timestamp % HOUR) for sid, s in items}
        with self._transaction() as db:
            db.executemany(
                raw_sql,
                [
                    (sid, s.timestamp, *(getattr(s, k) for k in _KEYS))
                    for sid, s in items
                ],
            )
            db.executemany("INSERT OR IGNORE INTO dirty_hours VALUES (?, ?)", hours)
            db.executemany(
                "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
                {(sid, *self._day_of_hour(hour)) for sid, hour in hours},
            )

    async def async_add(self, server_id: str, sample: Sample) -> None:
        """Keep one poll; returns once it is committed (or held, while writes are paused).

        Writing the same timestamp twice keeps one row, with the newer values.
        """
        if self._paused and not self.closed:
            self._pending.append((server_id, sample))
            return
        await self._call(self._insert, [(server_id, sample)])

    async def async_add_many(self, server_id: str, samples: Iterable[Sample]) -> None:
        """Keep many polls of one server in one transaction (imports, benchmarks)."""
        items = [(server_id, s) for s in samples]
        if self._paused and not self.closed:
            self._pending.extend(items)
            return
        if items:
            await self._call(self._insert, items)

    def _import_hourly(self, server_id: str, buckets: list[HourlyBucket]) -> None:
        columns = f"server_id, ts, {_AGG_SELECT}"
        sql = (
            f"INSERT OR REPLACE INTO hourly ({columns}) "
            f"VALUES ({', '.join('?' for _ in columns.split(', '))})"
        )
        rows = []
        for bucket in buckets:
            if bucket.timestamp % HOUR:
                raise ValueError(f"{bucket.timestamp} is not the start of a UTC hour")
            values: list[Any] = []
            for key in _KEYS:
                agg = bucket.metrics.get(key)
                values += (
                    [agg.avg, agg.min, agg.max, agg.count]
                    if agg is not None and agg.count
                    else [None, None, None, 0]
                )
            rows.append((server_id, bucket.timestamp, *values, bucket.samples))
        with self._transaction() as db:
            db.executemany(sql, rows)
            db.executemany(
                "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
                {(server_id, *self._day_of_hour(b.timestamp)) for b in buckets},
            )

    async def async_import_hourly(
        self, server_id: str, buckets: Iterable[HourlyBucket]
    ) -> None:
        """Store pre-aggregated hours as they are; the next rollup makes their days.

        Meant for history older than any raw row: a raw sample written later into such an hour
        makes the rollup recompute the hour from raw alone.
        """
        await self._call(self._import_hourly, server_id, list(buckets))

    async def async_pause_writes(self) -> None:
        """Checkpoint the WAL into the main file and leave that file alone until resumed.

        For backups: samples are held in memory meanwhile, and any other write only reaches the
        WAL, because automatic checkpoints are off until async_resume_writes.
        """
        self._paused = True
        try:
            await self._call(self._hold)
        except BaseException:
            self._paused = False
            raise

    def _hold(self) -> None:
        db = self._db
        db.execute("PRAGMA wal_autocheckpoint=0")
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            _LOGGER.warning("History checkpoint before backup could not finish")

    async def async_resume_writes(self) -> None:
        """Write the held samples and take new ones directly again."""
        was_paused, self._paused = self._paused, False
        pending, self._pending = self._pending, []
        if was_paused or pending:
            await self._call(self._release, pending)

    def _release(self, pending: list[tuple[str, Sample]]) -> None:
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        if pending:
            self._insert(pending)

    # -- rollup and retention --------------------------------------------------------------------

    def _server_ids(self, table: str) -> Iterator[str]:
        """Distinct server ids of a table by index seeks, not a scan of every row."""
        db = self._db
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

    def _rollup(self, now: int) -> RollupStats:
        raw_cut = now - RAW_RETENTION
        hourly_cut = now - HOURLY_RETENTION
        daily_cut = now - DAILY_RETENTION
        with self._transaction() as db:
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
                f"INSERT OR REPLACE INTO hourly (server_id, ts, {_AGG_SELECT}) "
                f"SELECT d.server_id, d.ts, {_RAW_AGG}, COUNT(*) "
                "FROM dirty_hours d JOIN raw r ON r.server_id = d.server_id "
                "AND r.ts >= d.ts AND r.ts < d.ts + 3600 "
                "WHERE d.ts + 3600 <= ? GROUP BY d.server_id, d.ts",
                (now,),
            ).rowcount
            db.execute("DELETE FROM dirty_hours WHERE ts + 3600 <= ?", (now,))
            days = db.execute(
                f"INSERT OR REPLACE INTO daily (server_id, ts, {_AGG_SELECT}) "
                f"SELECT d.server_id, d.ts, {_HOURLY_WEIGHTED}, SUM(h.samples) "
                "FROM dirty_days d JOIN hourly h ON h.server_id = d.server_id "
                "AND h.ts >= d.ts AND h.ts < d.end_ts "
                "WHERE d.end_ts <= ? GROUP BY d.server_id, d.ts",
                (now,),
            ).rowcount
            db.execute("DELETE FROM dirty_days WHERE end_ts <= ?", (now,))
            pruned = 0
            for server_id in list(self._server_ids("raw")):
                # Raw rows of an hour not rolled up yet stay, however old.
                pruned += db.execute(
                    "DELETE FROM raw WHERE server_id = ? AND ts < ? AND NOT EXISTS "
                    "(SELECT 1 FROM dirty_hours d WHERE d.server_id = raw.server_id "
                    "AND d.ts = raw.ts - raw.ts % 3600)",
                    (server_id, raw_cut),
                ).rowcount
            for table, cut in (("hourly", hourly_cut), ("daily", daily_cut)):
                for server_id in list(self._server_ids(table)):
                    pruned += db.execute(
                        f"DELETE FROM {table} WHERE server_id = ? AND ts < ?",
                        (server_id, cut),
                    ).rowcount
        return RollupStats(hours=hours, days=days, pruned=pruned)

    async def async_rollup(self, now: int) -> RollupStats:
        """Roll up every complete dirty bucket up to `now` and prune what retention drops."""
        return await self._call(self._rollup, now)

    # -- reading ---------------------------------------------------------------------------------

    def _fresh_hours(self, server_id: str, start: int, end: int, now: int) -> list[Row]:
        """Hours in [start, end) not rolled up yet, or holding now, computed from raw."""
        now_hour = now - now % HOUR
        return self._db.execute(
            "WITH hours(ts) AS (SELECT ts FROM dirty_hours WHERE server_id = :sid "
            "AND ts >= :start AND ts < :end "
            "UNION SELECT :now_hour WHERE :now_hour >= :start AND :now_hour < :end) "
            f"SELECT h.ts, {_RAW_AGG}, COUNT(*) FROM hours h JOIN raw r "
            "ON r.server_id = :sid AND r.ts >= h.ts AND r.ts < h.ts + 3600 "
            "GROUP BY h.ts ORDER BY h.ts",
            {"sid": server_id, "start": start, "end": end, "now_hour": now_hour},
        ).fetchall()

    def _fresh_days(self, server_id: str, start: int, end: int, now: int) -> list[Row]:
        """Days in [start, end) not rolled up yet, or holding now, from hourly rows and raw."""
        db = self._db
        days = set(
            db.execute(
                "SELECT ts, end_ts FROM dirty_days WHERE server_id = ? AND ts >= ? AND ts < ?",
                (server_id, start, end),
            ).fetchall()
        )
        today = self._day_of_hour(now - now % HOUR)
        if start <= today[0] < end:
            days.add(today)
        rows: list[Row] = []
        for day_start, day_end in sorted(days):
            hours = {
                row[0]: row
                for row in db.execute(
                    f"SELECT ts, {_AGG_SELECT} FROM hourly "
                    "WHERE server_id = ? AND ts >= ? AND ts < ?",
                    (server_id, day_start, day_end),
                )
            }
            hours.update(
                (row[0], row)
                for row in self._fresh_hours(server_id, day_start, day_end, now)
            )
            if hours:
                rows.append((day_start, *combine(list(hours.values()))))
        return rows

    def _fresh(
        self, server_id: str, tier: Tier, start: int, end: int, now: int
    ) -> list[Row]:
        if tier is Tier.HOURLY:
            return self._fresh_hours(server_id, start, end, now)
        return self._fresh_days(server_id, start, end, now)

    def _page(
        self, server_id: str, tier: Tier, start: int, end: int, limit: int
    ) -> list[Row]:
        columns = ", ".join(_KEYS) if tier is Tier.RAW else _AGG_SELECT
        return self._db.execute(
            f"SELECT ts, {columns} FROM {tier.value} "
            "WHERE server_id = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?",
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
        now: int | None = None,
    ) -> AsyncIterator[list[Row]]:
        """Rows of one server and tier in [start, end), oldest first, in batches.

        Rows follow `columns_for(tier)`: timestamp (bucket start for aggregates), values (float or
        None), then the sample count for aggregates. Stored rows are read one batch at a time;
        aggregate buckets not rolled up yet, and the one holding `now` (default: the clock), are
        computed from the finer tier.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        fresh: dict[int, Row] = {}
        if tier is not Tier.RAW:
            moment = int(time.time()) if now is None else now
            computed = await self._call(
                self._fresh, server_id, tier, start, end, moment
            )
            fresh = {row[0]: row for row in computed}
        cursor = start
        while True:
            page = await self._call(
                self._page, server_id, tier, cursor, end, batch_size
            )
            full = len(page) == batch_size
            rows = page
            if tier is not Tier.RAW:
                rows = [
                    _public(row)
                    for row in _merge(page, fresh, upto=page[-1][0] if full else None)
                ]
            for first in range(0, len(rows), batch_size):
                yield rows[first : first + batch_size]
            if not full:
                return
            cursor = page[-1][0] + 1

    def _count(self, server_id: str, tier: Tier, start: int, end: int, now: int) -> int:
        db = self._db
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
        for row in self._fresh(server_id, tier, start, end, now):
            if not db.execute(
                f"SELECT 1 FROM {tier.value} WHERE server_id = ? AND ts = ?",
                (server_id, row[0]),
            ).fetchone():
                extra += 1
        return stored + extra

    async def async_count(
        self,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        now: int | None = None,
    ) -> int:
        """How many rows async_query would yield for the same arguments."""
        moment = int(time.time()) if now is None else now
        return await self._call(self._count, server_id, tier, start, end, moment)

    def _latest_ts(self, server_id: str) -> int | None:
        for table in ("raw", "hourly", "daily"):
            row = self._db.execute(
                f"SELECT MAX(ts) FROM {table} WHERE server_id = ?",
                (server_id,),
            ).fetchone()
            if row[0] is not None:
                return int(row[0])
        return None

    async def async_latest_ts(self, server_id: str) -> int | None:
        """Newest raw sample of a server; without raw rows, its newest bucket start; else None."""
        return await self._call(self._latest_ts, server_id)

    def _all_server_ids(self) -> list[str]:
        found: set[str] = set()
        for table in ("raw", "hourly", "daily"):
            found.update(self._server_ids(table))
        return sorted(found)

    async def async_server_ids(self) -> list[str]:
        """Servers that have any history, sorted."""
        return await self._call(self._all_server_ids)

    def _remove(self, server_id: str) -> None:
        with self._transaction() as db:
            for table in ("raw", "hourly", "daily", "dirty_hours", "dirty_days"):
                db.execute(
                    f"DELETE FROM {table} WHERE server_id = ?",
                    (server_id,),
                )

    async def async_remove_server(self, server_id: str) -> None:
        """Delete every row of a server in every tier."""
        await self._call(self._remove, server_id)


def _local_day(ts: int, tz: ZoneInfo) -> tuple[int, int]:
    """Start and end (epoch seconds) of the calendar day in tz holding ts."""
    day = datetime.fromtimestamp(ts, tz).date()
    start = datetime.combine(day, dtime(0), tz)
    end = datetime.combine(day + timedelta(days=1), dtime(0), tz)
    return int(start.timestamp()), int(end.timestamp())


def combine(rows: Sequence[Row]) -> Row:
    """Aggregate columns (avg, min, max, n per metric, then samples) of buckets, weighted by n."""
    out: list[Any] = []
    for i in range(len(_KEYS)):
        base = 1 + _WIDTH * i
        parts = [r[base : base + _WIDTH] for r in rows if r[base + 3]]
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
    """Stored rows with computed ones replacing or joining them, up to `upto` (None: all left)."""
    merged = {row[0]: row for row in page}
    for ts in [ts for ts in fresh if upto is None or ts <= upto]:
        merged[ts] = fresh.pop(ts)
    return [merged[ts] for ts in sorted(merged)]


_public: Callable[[Row], Row] = operator.itemgetter(
    0,
    *(1 + i for i in range(len(_AGG_COLUMNS)) if i % _WIDTH != _WIDTH - 1),
    1 + len(_AGG_COLUMNS),
)
"""Drop the per-metric counts: export columns are avg, min, max per metric, then samples."""
