"""The history of every server in one SQLite file: the public API, each call run on a thread of the store.

The jobs live beside this module: `opening` (open, recover, schema), `writes` (samples and their
rollup marks, removal, backup holds), `rollup` (rollups and retention), `days` (local days of the
time zone), `text` (each row's values as exports write them, stored with the row), on the writer's
`worker` thread; `queries` (pages, buckets computed on the fly, counts, stored rows as an export's
text) and export chunks, on the `reader` thread and its read-only connection; and `clock`, which
holds back polls stamped far ahead of the time that really passed. Reads and
writes run side by side (WAL), so neither waits behind the other.

Clock jumps: retention counts back from each server's newest stored sample, never from later than
the rollup's time, and a poll stamped far ahead of the real time since the previous one is not
stored until the clock comes back or keeps that time for an hour. So neither a rollup nor a poll
on a clock that jumped, ahead or back, deletes history while Home Assistant runs. What spans a
restart is only the wall clock: the first poll after a start is believed (see clock.py).

Durability: WAL with synchronous=NORMAL. A write is committed before its call returns, and a
committed transaction is in the WAL file, so it survives the process being killed; only a power cut
or OS crash can lose the last transactions (never corrupt the file). Samples arrive once a minute per
server, so that trade buys a lot of write speed for a very small risk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
import logging
from pathlib import Path
import sqlite3
import time
from zoneinfo import ZoneInfo

from ..agents.base import Sample
from . import queries, writes
from .clock import ClockGuard, boottime
from .days import LocalDays
from .metrics import Tier
from .opening import open_database
from .reader import FileReader, Formatter, WindowReader, open_reader
from .rollup import RollupStats, rollup
from .schema import SCHEMA_VERSION
from .sql import Row, newest_ts
from .worker import StoreClosedError, Worker

__all__ = [
    "SCHEMA_VERSION",
    "HistoryStore",
    "RollupStats",
    "StoreClosedError",
]

_LOGGER = logging.getLogger(__name__)

THREAD_NAME = "homelab_metrics_history"
READER_THREAD_NAME = f"{THREAD_NAME}_reader"

HOLD_SECONDS = 30 * 60
HOLD_SAMPLES = 10_000
"""A backup holds samples in memory for this long or this many at most; then writing resumes."""


class HistoryStore:
    """The history database; every public coroutine runs its work on the store's own thread."""

    def __init__(
        self,
        path: Path,
        *,
        time_zone: str = "UTC",
        guard: ClockGuard | None = None,
        monotonic: Callable[[], float] = boottime,
    ) -> None:
        """Prepare (not open) the store for a file; daily buckets follow `time_zone`.

        `guard` judges poll timestamps (pass one to keep its memory across reopening the store);
        `monotonic` measures real time, in seconds.
        """
        self.path = Path(path)
        self._guard = guard or ClockGuard(monotonic)
        self._monotonic = monotonic
        self.recovered_from: Path | None = None
        """Where a corrupt file was moved by async_open, for a repair issue; None if it was fine."""
        # Read and replaced by worker jobs only (after open), so each job sees one time zone.
        self._days = LocalDays(ZoneInfo(time_zone))
        # What set_time_zone asked for last; _days follows in job order.
        self._requested_tz = self._days.tz
        self._worker = Worker(THREAD_NAME)
        self._reader = Worker(READER_THREAD_NAME)
        self._paused = False
        self._paused_at = 0.0
        self._pending: list[writes.Item] = []

    @property
    def closed(self) -> bool:
        """Whether the store cannot be used: closed, or never opened."""
        return self._worker.closed

    async def async_open(self) -> None:
        """Start the worker, open (or recover) the file and bring its schema up to date."""
        if self._worker.started and not self._worker.closed:
            return
        self.recovered_from = await self._worker.async_start(
            lambda: open_database(self.path)
        )
        try:
            await self._reader.async_start(lambda: (open_reader(self.path), None))
        except BaseException:
            await self._worker.async_close()
            raise

    async def async_close(self) -> None:
        """Write what waits in memory, close the file and end the worker thread (idempotent)."""
        pending, self._pending = self._pending, []
        try:
            await self._reader.async_close()
        finally:
            await self._worker.async_close(lambda db: self._write_held(db, pending))

    def _write_held(self, db: sqlite3.Connection, pending: list[writes.Item]) -> None:
        if not pending:
            return
        try:
            writes.insert(db, self._days, pending)
        except sqlite3.Error as err:
            _LOGGER.error(
                "Could not write %s held samples while closing: %s", len(pending), err
            )

    # -- time zone -------------------------------------------------------------------------------

    @property
    def time_zone(self) -> str:
        """The time zone daily buckets follow."""
        return self._requested_tz.key

    def set_time_zone(self, name: str) -> None:
        """Make daily buckets follow another time zone (from the next rollup on).

        Days still waiting for a rollup are marked again in the new zone; daily rows already
        stored keep the bounds they were made with.
        """
        tz = ZoneInfo(name)
        self._requested_tz = tz
        if self.closed:
            self._days = LocalDays(tz)
            return
        # The worker applies it between two jobs, so no job sees half a change.
        self._worker.post(lambda db: self._apply_time_zone(db, tz))

    def _apply_time_zone(self, db: sqlite3.Connection, tz: ZoneInfo) -> None:
        if tz == self._days.tz:
            return
        self._days = LocalDays(tz)
        writes.remark_days(db, self._days)

    # -- writing ---------------------------------------------------------------------------------

    async def async_add(self, server_id: str, sample: Sample) -> None:
        """Keep one poll, stamped now; returns once it is committed (or held).

        Writing the same timestamp twice keeps one row, with the newer values. A poll is held in
        memory while writes are paused, or while its stamp is far ahead of the real time since
        the server's previous poll (see clock.py).
        """
        await self.async_add_each([(server_id, sample)])

    async def async_add_each(self, polls: Iterable[tuple[str, Sample]]) -> None:
        """Keep one poll of each of many servers (a Prometheus server's nodes) in one transaction.

        Each is judged and held as `async_add` judges and holds it, server by server.
        """
        if self.closed:
            raise StoreClosedError("history store is not open")
        await self._async_write(
            [
                (server_id, admitted)
                for server_id, sample in polls
                for admitted in self._guard.admit(server_id, sample)
            ]
        )

    async def async_add_many(self, server_id: str, samples: Iterable[Sample]) -> None:
        """Keep many samples of one server in one transaction, as they are (benchmarks, tests).

        Their timestamps are not judged against the clock: they are meant to be history.
        """
        await self._async_write([(server_id, s) for s in samples])

    async def async_import_raw(self, server_id: str, samples: Sequence[Sample]) -> None:
        """Keep a server's past samples in one transaction, committed when this returns.

        As `async_add_many`, but never held in memory during a backup: writes then reach only
        the WAL, which the copied file does not need, and an importer that records its progress
        after this call must never be ahead of what is in the file.
        """
        items = [(server_id, s) for s in samples]
        if items:
            await self._worker.async_run(
                lambda db: writes.insert(db, self._days, items)
            )

    async def async_import_hourly(
        self, server_id: str, hours: Sequence[writes.Hour]
    ) -> None:
        """Keep hours of a server's past aggregated elsewhere, in one transaction; their days roll up.

        An hour stored again is replaced, so an import done twice leaves the same rows. Meant for
        the hours before the server's raw rows (see `writes.insert_hours`); committed when this
        returns, as `async_import_raw`.
        """
        if hours:
            await self._worker.async_run(
                lambda db: writes.insert_hours(db, self._days, server_id, hours)
            )

    async def _async_write(self, items: list[writes.Item]) -> None:
        """Write samples in one transaction, or hold them while a backup copies the file."""
        if self._paused and not self.closed:
            self._pending.extend(items)
            held_for = self._monotonic() - self._paused_at
            if len(self._pending) < HOLD_SAMPLES and held_for < HOLD_SECONDS:
                return
            # The backup's end hook never came (or is very late): memory must not grow for ever.
            _LOGGER.warning(
                "A backup has held history writes for %.0f minutes (%s samples) without "
                "ending; writing again, so that backup may not hold a consistent history file",
                held_for / 60,
                len(self._pending),
            )
            await self.async_resume_writes()
            return
        if items:
            await self._worker.async_run(
                lambda db: writes.insert(db, self._days, items)
            )

    async def async_remove_server(self, server_id: str) -> None:
        """Delete every row of a server in every tier, and its polls held back."""
        self._guard.forget(server_id)
        self._pending = [item for item in self._pending if item[0] != server_id]
        await self._worker.async_run(lambda db: writes.remove_server(db, server_id))

    async def async_pause_writes(self) -> None:
        """Checkpoint the WAL into the main file and leave that file alone until resumed.

        For backups: samples are held in memory meanwhile, and any other write only reaches the
        WAL, because automatic checkpoints are off until async_resume_writes, or until the hold
        reaches HOLD_SECONDS or HOLD_SAMPLES (a backup whose end never comes).
        """
        self._paused = True
        self._paused_at = self._monotonic()
        try:
            await self._worker.async_run(writes.hold_main_file)
        except BaseException:
            self._paused = False
            raise

    async def async_resume_writes(self) -> None:
        """Write the held samples and take new ones directly again."""
        was_paused, self._paused = self._paused, False
        pending, self._pending = self._pending, []
        if was_paused or pending:
            await self._worker.async_run(lambda db: self._release(db, pending))

    def _release(self, db: sqlite3.Connection, pending: list[writes.Item]) -> None:
        writes.release_main_file(db)
        if pending:
            writes.insert(db, self._days, pending)

    # -- rollup ----------------------------------------------------------------------------------

    async def async_rollup(self, now: int) -> RollupStats:
        """Roll up every complete dirty bucket up to `now` and prune what retention drops."""
        return await self._worker.async_run(lambda db: rollup(db, now))

    # -- reading ---------------------------------------------------------------------------------

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
        async for rows in self.async_read(
            server_id, tier, start, end, _same, batch_size=batch_size, now=now
        ):
            yield rows

    async def async_read[T](
        self,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        read: Callable[[list[Row]], T],
        *,
        batch_size: int = 2000,
        now: int | None = None,
    ) -> AsyncIterator[T]:
        """`read` of each batch async_query would yield, run on the reader thread."""
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        window = self._window(server_id, tier, start, end, now)
        while not window.done:
            result = await self._reader.async_run(
                lambda db: _read_batch(db, window, batch_size, read)
            )
            if result is not None:
                yield result

    async def async_export(
        self,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        formatter: Formatter,
        *,
        now: int | None = None,
    ) -> AsyncIterator[bytes]:
        """A file of the rows async_query would yield, in chunks formatted on the reader thread.

        The reader formats the next chunk while the caller sends the one it was handed.
        """
        moment = int(time.time()) if now is None else now
        file = FileReader(self._days, server_id, tier, start, end, moment, formatter)
        pending = self._reader.start(file.chunk)
        try:
            while True:
                chunk = await pending
                if file.done:
                    yield chunk
                    return
                pending = self._reader.start(file.chunk)
                yield chunk
        finally:
            # A caller that stops early: a chunk not started yet is not formatted at all.
            pending.cancel()

    def _window(
        self,
        server_id: str,
        tier: Tier,
        start: int,
        end: int,
        now: int | None,
    ) -> WindowReader:
        moment = int(time.time()) if now is None else now
        return WindowReader(
            self._days,
            server_id,
            tier,
            start,
            end,
            moment,
        )

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
        days = self._days
        return await self._reader.async_run(
            lambda db: queries.count(db, days, server_id, tier, start, end, moment)
        )

    async def async_latest_ts(self, server_id: str) -> int | None:
        """Newest raw sample of a server; without raw rows, its newest bucket start; else None."""
        return await self._reader.async_run(lambda db: newest_ts(db, server_id))


def _same(rows: list[Row]) -> list[Row]:
    return rows


def _read_batch[T](
    db: sqlite3.Connection,
    window: WindowReader,
    size: int,
    read: Callable[[list[Row]], T],
) -> T | None:
    """`read` of the window's next batch; None when it has no rows left."""
    rows = window.batch(db, size)
    return read(rows) if rows else None
