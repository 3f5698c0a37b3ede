"""History store mechanics: queries and batches, schema and migrations, recovery, backups, safety."""

from __future__ import annotations

import asyncio
from contextlib import closing
from datetime import datetime, time as dtime
import hashlib
import logging
from pathlib import Path
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history import schema, text
from custom_components.homelab_metrics.history.metrics import (
    AGGREGATE_COLUMNS,
    METRICS,
    RAW_COLUMNS,
    Tier,
)
from custom_components.homelab_metrics.history.sql import AGG_SELECT
from custom_components.homelab_metrics.history.store import (
    SCHEMA_VERSION,
    THREAD_NAME,
    HistoryStore,
    StoreClosedError,
)

from .history_common import DAY, HOUR, T0, mark_days, rows, table_ts, write_buckets


def worker_alive() -> bool:
    """Whether a store worker thread is running in this process."""
    return any(t.name.startswith(THREAD_NAME) for t in threading.enumerate())


async def test_raw_rows_shape_duplicates_and_batches(store: HistoryStore) -> None:
    """The same timestamp twice keeps one row (the newer values); batches split the rows."""
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=2.0, load_1m=0.5))
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i, cpu_percent=float(i)) for i in range(1, 25)]
    )
    await store.async_add("b", Sample(timestamp=T0 + 5, cpu_percent=9.0))
    batches = [
        b async for b in store.async_query("a", Tier.RAW, T0, T0 + 100, batch_size=10)
    ]
    assert [len(b) for b in batches] == [10, 10, 5]
    first = batches[0][0]
    assert len(first) == len(RAW_COLUMNS)
    as_dict = dict(zip(RAW_COLUMNS, first, strict=True))
    assert as_dict["timestamp"] == T0
    assert as_dict["cpu_percent"] == 2.0
    assert as_dict["load_1m"] == 0.5
    assert as_dict["memory_percent"] is None
    flat = [r[0] for b in batches for r in b]
    assert flat == sorted(flat) == list(range(T0, T0 + 25))
    # [start, end): end excluded, start included.
    assert [r[0] for r in await rows(store, Tier.RAW, T0 + 3, T0 + 6)] == [
        T0 + 3,
        T0 + 4,
        T0 + 5,
    ]
    assert await store.async_count("a", Tier.RAW, T0, T0 + 100) == 25
    assert await store.async_count("b", Tier.RAW, T0, T0 + 100) == 1


async def test_aggregate_batches_merge_stored_and_computed_rows(
    store: HistoryStore,
) -> None:
    """Stored and on-the-fly hours come out in order, once each, whatever the batch size."""
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=1.0)
            for ts in range(T0, T0 + 10 * HOUR, 600)
        ],
    )
    now = T0 + 10 * HOUR - 1
    await store.async_rollup(T0 + 6 * HOUR)
    # Re-dirties hour 2, which is stored already: the query must not show it twice.
    await store.async_add("a", Sample(timestamp=T0 + 2 * HOUR + 1, cpu_percent=1.0))
    for size in (1, 2, 3, 7, 100):
        batches = [
            b
            async for b in store.async_query(
                "a", Tier.HOURLY, T0, T0 + 10 * HOUR, batch_size=size, now=now
            )
        ]
        assert all(1 <= len(b) <= size for b in batches)
        got = [r for b in batches for r in b]
        assert [r[0] for r in got] == [T0 + h * HOUR for h in range(10)]
        assert all(len(r) == len(AGGREGATE_COLUMNS) for r in got)
        assert got[2][-1] == 7
        assert [r[-1] for r in got if r[0] != T0 + 2 * HOUR] == [6] * 9
        count = await store.async_count("a", Tier.HOURLY, T0, T0 + 10 * HOUR, now=now)
        assert count == len(got)


async def test_current_hour_and_day_are_computed(store: HistoryStore) -> None:
    """The hour and day holding `now` come from finer rows even when a stored row exists."""
    day = T0 - T0 % DAY
    now = T0 + 1800
    await store.async_add_many(
        "a", [Sample(timestamp=ts, cpu_percent=5.0) for ts in range(day, now, 300)]
    )
    await store.async_rollup(now)
    # A rollup run with a clock ahead stored the running hour and day too early.
    await store.async_rollup(day + DAY)
    await store.async_add("a", Sample(timestamp=now, cpu_percent=35.0))
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM dirty_hours")
        conn.execute("DELETE FROM dirty_days")
    expected_samples = (now - day) // 300 + 1
    expected_avg = (5.0 * (expected_samples - 1) + 35.0) / expected_samples
    daily = await rows(store, Tier.DAILY, day - DAY, day + DAY, now=now)
    assert [(r[0], r[-1]) for r in daily] == [(day, expected_samples)]
    assert daily[0][1] == pytest.approx(expected_avg)
    assert daily[0][3] == 35.0
    hourly = await rows(store, Tier.HOURLY, T0, T0 + HOUR, now=now)
    assert (hourly[0][-1], hourly[0][3]) == (7, 35.0)
    assert await store.async_count("a", Tier.DAILY, day - DAY, day + DAY, now=now) == 1
    # Seen from a later clock the stored rows are final and shown as they are.
    later = await rows(store, Tier.HOURLY, T0, T0 + HOUR, now=now + DAY)
    assert later[0][-1] == 6


async def test_window_without_rows_and_bad_batch_size(store: HistoryStore) -> None:
    """Nothing stored: no batch at all, count 0; a batch size below 1 is refused."""
    assert await rows(store, Tier.DAILY, T0, T0 + DAY, now=T0) == []
    assert await store.async_count("a", Tier.HOURLY, T0, T0 + DAY, now=T0) == 0
    with pytest.raises(ValueError, match="batch_size"):
        await rows(store, Tier.RAW, T0, T0 + 1, batch_size=0)


def servers(path: Path) -> set[str]:
    """Servers with any stored row, straight from the file."""
    return {server for kept in table_ts(path).values() for server, _ in kept}


async def test_remove_server_and_latest(store: HistoryStore) -> None:
    """Removing a server empties every tier of it and leaves the others alone."""
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_add("b", Sample(timestamp=T0 + 60, cpu_percent=1.0))
    await store.async_add("c", Sample(timestamp=T0 + 30 * 60, cpu_percent=1.0))
    await store.async_rollup(T0 + 2 * DAY)
    assert servers(store.path) == {"a", "b", "c"}
    await store.async_remove_server("a")
    assert servers(store.path) == {"b", "c"}
    assert await store.async_latest_ts("a") is None
    assert await store.async_latest_ts("b") == T0 + 60
    with sqlite3.connect(store.path) as conn:
        for name in ("raw", "hourly", "daily", "dirty_hours", "dirty_days"):
            found = conn.execute(f"SELECT COUNT(*) FROM {name} WHERE server_id = 'a'")
            assert found.fetchone()[0] == 0
    # Without raw rows, a server's newest bucket start is the answer.
    write_buckets(store.path, Tier.HOURLY, "d", [(T0 - DAY, 60, {})])
    write_buckets(store.path, Tier.DAILY, "d", [(T0 - T0 % DAY - DAY, 60, {})])
    assert await store.async_latest_ts("d") == T0 - DAY
    await store.async_remove_server("d")
    assert servers(store.path) == {"b", "c"}


async def test_stored_hours_read_back(store: HistoryStore) -> None:
    """A stored hour reads back with its values, a metric without samples as None."""
    write_buckets(
        store.path, Tier.HOURLY, "a", [(T0, 60, {"cpu_percent": (2.0, 1.0, 3.0, 59)})]
    )
    (row,) = await rows(store, Tier.HOURLY, T0, T0 + HOUR, now=T0 + DAY)
    assert row[:4] == (T0, 2.0, 1.0, 3.0)
    assert row[4:-1] == (None,) * (len(AGGREGATE_COLUMNS) - 5)
    assert row[-1] == 60


async def test_corrupt_file_moved_aside(tmp_path: Path) -> None:
    """A file that is not a database is renamed, and a fresh one works."""
    path = tmp_path / "h.db"
    path.write_bytes(b"garbage" * 1000)
    store = HistoryStore(path)
    await store.async_open()
    moved = store.recovered_from
    assert moved is not None
    assert moved.parent == tmp_path
    assert moved.name.startswith("h.db.corrupt-")
    stamp = moved.name.removeprefix("h.db.corrupt-")
    assert len(stamp) == 15 and stamp[8] == "T"
    assert moved.read_bytes().startswith(b"garbage")
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    assert await store.async_latest_ts("a") == T0
    await store.async_close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_damaged_pages_fail_quick_check_and_are_moved(tmp_path: Path) -> None:
    """A database whose pages are overwritten fails quick_check and is set aside."""
    path = tmp_path / "h.db"
    store = HistoryStore(path)
    await store.async_open()
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i, cpu_percent=float(i)) for i in range(5000)]
    )
    await store.async_close()
    data = bytearray(path.read_bytes())
    assert len(data) > 8 * 4096
    # Keep the header page, scribble over the b-tree pages behind it.
    for offset in range(4096 + 100, len(data) - 4096, 4096):
        data[offset : offset + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    damaged = HistoryStore(path)
    await damaged.async_open()
    assert damaged.recovered_from is not None
    assert await damaged.async_latest_ts("a") is None
    await damaged.async_close()


async def test_unopenable_path_is_an_error_not_corruption(tmp_path: Path) -> None:
    """A path SQLite cannot open is reported; nothing is renamed and no thread is left."""
    folder = tmp_path / "h.db"
    folder.mkdir()
    store = HistoryStore(folder)
    with pytest.raises(sqlite3.OperationalError):
        await store.async_open()
    assert store.recovered_from is None
    assert folder.is_dir()
    assert store.closed
    assert not worker_alive()


async def test_migration_from_empty_file(tmp_path: Path) -> None:
    """An empty file (version 0) gets the schema of every metric."""
    path = tmp_path / "h.db"
    sqlite3.connect(path).close()
    store = HistoryStore(path)
    await store.async_open()
    assert store.recovered_from is None
    await store.async_close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(raw)")]
        assert columns == ["server_id", "ts", *(m.key for m in METRICS), "line"]
        hourly = {row[1] for row in conn.execute("PRAGMA table_info(hourly)")}
        assert {f"{m.key}_{s}" for m in METRICS for s in schema.STATS} <= hourly
        assert "line" in hourly


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("uncheckpointed", [False, True])
async def test_newer_version_file_is_left_untouched(
    tmp_path: Path, uncheckpointed: bool
) -> None:
    """A file written by a newer version is refused as it is: not renamed, not changed by a byte.

    Also when the newer version left its last transactions in the WAL (it was killed).
    """
    written = tmp_path / "written"
    written.mkdir()
    store = HistoryStore(written / "h.db")
    await store.async_open()
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_close()
    copy = tmp_path / "copy"
    copy.mkdir()
    with closing(sqlite3.connect(written / "h.db", isolation_level=None)) as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        conn.execute("INSERT INTO raw (server_id, ts) VALUES ('newer', 1)")
        if uncheckpointed:
            for path in written.iterdir():
                if not path.name.endswith("-shm"):
                    (copy / path.name).write_bytes(path.read_bytes())
    if not uncheckpointed:
        (copy / "h.db").write_bytes((written / "h.db").read_bytes())
    assert ("h.db-wal" in _files(copy)) is uncheckpointed
    before = _files(copy)

    newer = HistoryStore(copy / "h.db")
    with pytest.raises(schema.SchemaTooNewError) as refused:
        await newer.async_open()
    assert (refused.value.found, refused.value.supported) == (
        SCHEMA_VERSION + 1,
        SCHEMA_VERSION,
    )
    assert newer.recovered_from is None
    assert newer.closed
    assert not worker_alive()
    assert _files(copy) == before


def test_migration_step_adds_a_metric_and_keeps_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-1 file with rows gets its lines, then an added metric: old rows read it as missing."""
    conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    assert schema.migrate(conn) == 0
    conn.execute("INSERT INTO raw (server_id, ts, cpu_percent) VALUES ('a', 1, 5.0)")
    conn.execute(
        f"INSERT INTO hourly (server_id, ts, {AGG_SELECT}) VALUES ('a', 0, "
        f"{', '.join(['2.5', '1', '4', '3', *['NULL', 'NULL', 'NULL', '0'] * 6])}, 3)"
    )
    keys = [m.key for m in METRICS]
    monkeypatch.setattr(
        schema,
        "MIGRATIONS",
        [
            schema.MIGRATIONS[0],
            schema._add_lines_v2,
            schema.add_metric("fan_rpm", [*keys, "fan_rpm"]),
        ],
    )
    assert schema.migrate(conn) == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    sep = text.SEPARATORS
    assert conn.execute("SELECT cpu_percent, fan_rpm, line FROM raw").fetchall() == [
        (5.0, None, "5.000" + sep[:7])
    ]
    # avg, min, max of cpu, nothing for the other metrics and fan_rpm, then samples.
    assert conn.execute("SELECT line FROM hourly").fetchone()[0] == (
        "2.500" + sep[0] + "1.000" + sep[1] + "4.000" + sep[2:24] + "3"
    )
    for name in ("hourly", "daily"):
        cols = {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({name})")}
        assert cols["fan_rpm_avg"] == "REAL"
        assert cols["fan_rpm_n"] == "INTEGER"
    assert schema.migrate(conn) == 3  # nothing left to do

    # A failing step leaves the version where it was.
    def broken(c: sqlite3.Connection) -> None:
        c.execute("ALTER TABLE raw ADD COLUMN half_done REAL")
        raise sqlite3.OperationalError("step failed")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError, match="step failed"):
        schema.migrate(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert "half_done" not in {row[1] for row in conn.execute("PRAGMA table_info(raw)")}
    conn.close()


def test_missing_metric_column_is_a_code_error(tmp_path: Path) -> None:
    """Tables without a column of METRICS mean a missing migration step, said plainly."""
    conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    conn.execute("CREATE TABLE raw (server_id TEXT, ts INTEGER, cpu_percent REAL)")
    with pytest.raises(RuntimeError, match="migration"):
        schema.check_columns(conn)
    conn.close()


async def test_failing_write_reaches_only_its_caller(
    store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A DatabaseError fails that one call, is logged once, and the worker goes on."""
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "CREATE TRIGGER reject BEFORE INSERT ON raw WHEN NEW.cpu_percent < 0 "
            "BEGIN SELECT RAISE(ABORT, 'negative cpu'); END"
        )
    caplog.set_level(logging.INFO)
    for ts in (T0, T0 + 60):
        with pytest.raises(sqlite3.DatabaseError, match="negative cpu"):
            await store.async_add("a", Sample(timestamp=ts, cpu_percent=-1.0))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    await store.async_add("a", Sample(timestamp=T0 + 120, cpu_percent=1.0))
    assert "works again" in caplog.text
    assert [r[0] for r in await rows(store, Tier.RAW, T0, T0 + HOUR)] == [T0 + 120]
    with sqlite3.connect(store.path) as conn:
        # The failed transactions left no marks behind either.
        assert conn.execute("SELECT COUNT(*) FROM dirty_hours").fetchone()[0] == 1


async def test_pause_holds_samples_and_leaves_the_main_file_alone(
    store: HistoryStore,
) -> None:
    """During a backup the main file does not change, even under heavy writes; nothing is lost."""
    await store.async_add("a", Sample(timestamp=T0))
    hours = [T0 - h * HOUR for h in range(1, 40_000)]
    stats = {"cpu_percent": (1.0, 1.0, 1.0, 1)}
    for server in ("b", "c"):
        await asyncio.to_thread(
            write_buckets,
            store.path,
            Tier.HOURLY,
            server,
            [(ts, 1, stats) for ts in hours],
        )
    mark_days(store.path, "b", {(ts - ts % DAY, ts - ts % DAY + DAY) for ts in hours})
    await store.async_pause_writes()
    wal = Path(f"{store.path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    snapshot = hashlib.sha256(store.path.read_bytes()).hexdigest()
    await store.async_add("a", Sample(timestamp=T0 + 60))
    await store.async_add_many("a", [Sample(timestamp=T0 + 90)])
    assert await store.async_latest_ts("a") == T0
    # Far more than the 1000 pages after which SQLite would checkpoint on its own.
    await store.async_rollup(T0 - HOUR)
    await store.async_remove_server("c")
    assert wal.stat().st_size > 1000 * 4096
    assert hashlib.sha256(store.path.read_bytes()).hexdigest() == snapshot
    await store.async_resume_writes()
    assert await store.async_latest_ts("a") == T0 + 90
    kept = [ts for ts in hours if ts >= T0 - HOUR - 90 * DAY]
    assert await store.async_count("b", Tier.HOURLY, 0, T0, now=T0) == len(kept)
    await store.async_resume_writes()  # not paused: nothing to do


async def test_a_backup_that_never_ends_holds_samples_only_so_many(
    store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the cap on held samples, writes go on (checkpoints too), logged once; the late end hook is harmless."""

    async def autocheckpoint() -> int:
        return await store._worker.async_run(
            lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        )

    await store.async_add("a", Sample(timestamp=T0))
    await store.async_pause_writes()
    assert await autocheckpoint() == 0
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i, cpu_percent=1.0) for i in range(1, 20_001)]
    )
    assert await store.async_latest_ts("a") == T0 + 20_000
    await store.async_add("b", Sample(timestamp=T0 + 20_060))
    assert await store.async_latest_ts("b") == T0 + 20_060
    # SQLite checkpoints the WAL into the main file on its own again.
    assert await autocheckpoint() == 1000
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("custom_components")
    ]
    assert len(warnings) == 1
    assert "backup" in warnings[0].getMessage()
    await store.async_resume_writes()
    assert await store.async_count("a", Tier.RAW, T0, T0 + DAY) == 20_001
    # The next backup holds samples again.
    await store.async_pause_writes()
    await store.async_add("b", Sample(timestamp=T0 + 20_120))
    assert await store.async_latest_ts("b") == T0 + 20_060
    await store.async_resume_writes()
    assert await store.async_latest_ts("b") == T0 + 20_120


async def test_a_backup_that_never_ends_holds_samples_only_so_long(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Half an hour after the backup began, the next poll is written with the held ones."""
    real_time = [0.0]
    store = HistoryStore(tmp_path / "h.db", monotonic=lambda: real_time[0])
    await store.async_open()
    await store.async_pause_writes()
    for minute in range(31):
        real_time[0] = minute * 60.0
        await store.async_add("a", Sample(timestamp=T0 + minute * 60))
    assert [r[0] for r in await rows(store, Tier.RAW, T0, T0 + HOUR)] == [
        T0 + minute * 60 for minute in range(31)
    ]
    assert "held history writes for 30 minutes (31 samples)" in caplog.text
    await store.async_resume_writes()
    await store.async_close()


async def test_close_writes_held_samples_and_ends_the_thread(tmp_path: Path) -> None:
    """Closing joins the worker, flushes held samples, and is idempotent."""
    assert not worker_alive()
    store = HistoryStore(tmp_path / "h.db")
    assert store.closed
    with pytest.raises(StoreClosedError):
        await store.async_add("a", Sample(timestamp=T0))
    await store.async_open()
    await store.async_open()  # already open: nothing happens
    assert worker_alive()
    assert not store.closed
    await store.async_pause_writes()
    await store.async_add("a", Sample(timestamp=T0 + 120))
    await store.async_close()
    assert store.closed
    assert not worker_alive()
    with pytest.raises(StoreClosedError):
        await store.async_add("a", Sample(timestamp=T0 + 180))
    with pytest.raises(StoreClosedError):
        await store.async_open()
    await store.async_close()  # idempotent
    reopened = HistoryStore(store.path)
    await reopened.async_open()
    assert await reopened.async_latest_ts("a") == T0 + 120
    await reopened.async_close()
    assert not worker_alive()


async def test_close_waits_for_queued_work(store: HistoryStore) -> None:
    """Writes already handed to the worker finish before the file closes."""
    writes = [
        store.async_add_many(
            "a", [Sample(timestamp=T0 + i * 100 + j) for j in range(100)]
        )
        for i in range(20)
    ]
    tasks = [asyncio.ensure_future(w) for w in writes]
    await asyncio.sleep(0)
    await store.async_close()
    await asyncio.gather(*tasks)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM raw").fetchone()[0] == 2000


async def test_a_call_cancelled_before_its_turn_does_not_run(
    store: HistoryStore,
) -> None:
    """Calls queue in order on the one thread; one whose caller gave up before its turn is skipped."""
    gate = threading.Event()
    blocker = asyncio.ensure_future(store._worker.async_run(lambda db: gate.wait(10)))
    await asyncio.sleep(0)
    writes = [
        asyncio.ensure_future(store.async_add("a", Sample(timestamp=T0 + i)))
        for i in range(3)
    ]
    await asyncio.sleep(0)
    writes[1].cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await blocker
    await writes[0]
    await writes[2]
    assert writes[1].cancelled()
    assert [r[0] for r in await rows(store, Tier.RAW, T0, T0 + 3)] == [T0, T0 + 2]


async def test_cancelled_close_still_closes(tmp_path: Path) -> None:
    """A close whose caller is cancelled still writes held samples and ends the worker."""
    store = HistoryStore(tmp_path / "h.db")
    await store.async_open()
    await store.async_pause_writes()
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    closing = asyncio.ensure_future(store.async_close())
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    for _ in range(1000):
        if not worker_alive():
            break
        await asyncio.sleep(0.01)
    assert not worker_alive()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT ts FROM raw").fetchall() == [(T0,)]


async def test_time_zone_is_applied_in_order(store: HistoryStore) -> None:
    """A time-zone change applies to the writes after it."""
    store.set_time_zone("Pacific/Auckland")
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    auckland = ZoneInfo("Pacific/Auckland")
    midnight = datetime.combine(datetime.fromtimestamp(T0, auckland).date(), dtime(0))
    start = int(midnight.replace(tzinfo=auckland).timestamp())
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT ts, end_ts FROM dirty_days").fetchall() == [
            (start, start + DAY)
        ]
    with pytest.raises(Exception, match="No time zone"):
        store.set_time_zone("Not/AZone")
    assert store.time_zone == "Pacific/Auckland"


def test_crash_safety(tmp_path: Path) -> None:
    """SIGKILL mid-stream: the file is intact and every acknowledged sample is there."""
    path = tmp_path / "crash.db"
    writer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("history_crash_writer.py")),
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    acknowledged = []
    assert writer.stdout is not None
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < 500 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            acknowledged.append(int(line))
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    acknowledged += [int(line) for line in writer.stdout.read().split()]
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 500
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {
            ts for (ts,) in conn.execute("SELECT ts FROM raw WHERE server_id = 'crash'")
        }
    assert set(acknowledged) <= stored


async def test_time_zone_set_before_opening(tmp_path: Path) -> None:
    """A zone set on a closed store is the one its first writes use; setting it again changes nothing."""
    store = HistoryStore(tmp_path / "h.db")
    store.set_time_zone("Asia/Tokyo")
    await store.async_open()
    store.set_time_zone("Asia/Tokyo")
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_close()
    tokyo = ZoneInfo("Asia/Tokyo")
    midnight = datetime.combine(datetime.fromtimestamp(T0, tokyo).date(), dtime(0))
    with closing(sqlite3.connect(store.path)) as conn:
        assert conn.execute("SELECT ts FROM dirty_days").fetchall() == [
            (int(midnight.replace(tzinfo=tokyo).timestamp()),)
        ]


async def test_a_failing_job_nobody_waits_for_is_logged(
    store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A background job's failure is logged and the next call works; after closing, calls are refused."""
    store._worker.post(lambda db: db.execute("SELECT * FROM no_such_table"))
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    assert "History database task failed: no such table: no_such_table" in caplog.text
    await store.async_close()
    with pytest.raises(StoreClosedError):
        store._worker.post(lambda db: None)
    with pytest.raises(StoreClosedError):
        await store.async_rollup(T0)
