"""History store: rollups against an independent computation, DST, retention, safety."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.metrics import (
    AGGREGATE_COLUMNS,
    METRICS,
    RAW_COLUMNS,
    Tier,
)
from custom_components.homelab_metrics.history.store import (
    SCHEMA_VERSION,
    HistoryStore,
    StoreClosedError,
)

HOUR = 3600
DAY = 86400
T0 = 1_764_000_000  # 2025-11-24T16:00:00Z, hour-aligned
KEYS = [m.key for m in METRICS]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    s = HistoryStore(tmp_path / "h.db")
    await s.async_open()
    yield s
    await s.async_close()


async def rows(
    store: HistoryStore, tier: Tier, start: int, end: int, server: str = "a", **kw: int
) -> list[tuple]:
    return [
        r
        async for batch in store.async_query(server, tier, start, end, **kw)
        for r in batch
    ]


def random_samples(rng: random.Random, start: int, end: int) -> list[Sample]:
    """Polls every 60 s with gaps, each metric missing now and then."""
    out = []
    ts = start
    while ts < end:
        if rng.random() < 0.1:
            ts += rng.randint(60, 3 * HOUR)  # a gap (agent down)
            continue
        values = {
            k: (None if rng.random() < 0.15 else round(rng.uniform(0, 100), 3))
            for k in KEYS
        }
        out.append(Sample(timestamp=ts, **values))
        ts += 60
    return out


def expected_buckets(samples: list[Sample], bucket_of) -> dict[int, tuple]:
    """Independent aggregation: plain Python over the samples."""
    groups: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[bucket_of(s.timestamp)].append(s)
    out = {}
    for start, group in groups.items():
        values: list = []
        for k in KEYS:
            present = [getattr(s, k) for s in group if getattr(s, k) is not None]
            values += (
                [sum(present) / len(present), min(present), max(present)]
                if present
                else [None] * 3
            )
        out[start] = (start, *values, len(group))
    return out


def assert_rows_match(actual: list[tuple], expected: dict[int, tuple]) -> None:
    assert [r[0] for r in actual] == sorted(expected)
    for row in actual:
        want = expected[row[0]]
        assert len(row) == len(want) == len(AGGREGATE_COLUMNS)
        for got, exp in zip(row, want, strict=True):
            assert got == (
                None if exp is None else pytest.approx(exp, rel=1e-9, abs=1e-9)
            )


async def test_rollup_matches_independent_computation(tmp_path: Path) -> None:
    """Hourly (UTC) and daily (local, DST included) buckets equal a plain recomputation."""
    tz = ZoneInfo("Europe/Berlin")
    store = HistoryStore(tmp_path / "h.db", time_zone="Europe/Berlin")
    await store.async_open()
    rng = random.Random(7)
    # 2025-03-27 .. 2025-04-02 spans the spring DST change (30 March, 23 hours).
    start = int(datetime(2025, 3, 27, tzinfo=tz).timestamp())
    end = start + 6 * DAY
    data = {server: random_samples(rng, start, end) for server in ("a", "b")}
    for server, samples in data.items():
        await store.async_add_many(server, samples)
    now = end + 2 * HOUR
    stats = await store.async_rollup(now)
    assert stats.hours > 0 and stats.days > 0

    def day_of(ts: int) -> int:
        local = datetime.fromtimestamp(ts, tz).replace(hour=0, minute=0, second=0)
        return int(local.replace(tzinfo=tz).timestamp())

    for server, samples in data.items():
        hourly = await rows(store, Tier.HOURLY, start, now, server)
        assert_rows_match(hourly, expected_buckets(samples, lambda ts: ts - ts % HOUR))
        daily = await rows(store, Tier.DAILY, start, now, server)
        assert_rows_match(daily, expected_buckets(samples, day_of))
    spring = int(datetime(2025, 3, 30, tzinfo=tz).timestamp())
    assert int(datetime(2025, 3, 31, tzinfo=tz).timestamp()) - spring == 23 * HOUR
    assert store.day_bounds(spring + 5 * HOUR) == (spring, spring + 23 * HOUR)

    # Idempotent: again, nothing changes.
    before = await rows(store, Tier.DAILY, start, now)
    await store.async_rollup(now)
    assert await rows(store, Tier.DAILY, start, now) == before
    await store.async_close()


async def test_autumn_day_has_25_hours(tmp_path: Path) -> None:
    """New York's 2 November 2025 is one bucket of 25 hourly buckets."""
    tz = ZoneInfo("America/New_York")
    store = HistoryStore(tmp_path / "h.db", time_zone="America/New_York")
    await store.async_open()
    day = int(datetime(2025, 11, 2, tzinfo=tz).timestamp())
    nxt = int(datetime(2025, 11, 3, tzinfo=tz).timestamp())
    assert nxt - day == 25 * HOUR
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=1.0)
            for ts in range(day - HOUR, nxt + HOUR, 600)
        ],
    )
    await store.async_rollup(nxt + 2 * HOUR)
    daily = await rows(store, Tier.DAILY, day, nxt)
    assert [(r[0], r[-1]) for r in daily] == [(day, 25 * 6)]
    assert len(await rows(store, Tier.HOURLY, day, nxt)) == 25
    await store.async_close()


async def test_only_complete_buckets_and_late_samples(store: HistoryStore) -> None:
    """The current hour is not stored yet but shows in queries; a late sample re-rolls its hour."""
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i * 60, cpu_percent=10.0) for i in range(90)]
    )
    await store.async_rollup(T0 + HOUR + 1800)
    hourly = await rows(store, Tier.HOURLY, T0, T0 + 2 * HOUR)
    assert [(r[0], r[1], r[-1]) for r in hourly] == [
        (T0, 10.0, 60),
        (T0 + HOUR, 10.0, 30),
    ]
    # Stored only the first hour (the second is computed on the fly).
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT ts FROM hourly").fetchall() == [(T0,)]
    # A late sample for the first hour: rolled again.
    await store.async_add("a", Sample(timestamp=T0 + 30, cpu_percent=70.0))
    assert (await rows(store, Tier.HOURLY, T0, T0 + HOUR))[0][1] == pytest.approx(
        (600 + 70) / 61
    )
    await store.async_rollup(T0 + 2 * HOUR + 60)
    hourly = await rows(store, Tier.HOURLY, T0, T0 + 2 * HOUR)
    assert hourly[0][1] == pytest.approx((60 * 10 + 70) / 61)
    assert hourly[0][-1] == 61


async def test_daily_includes_today(store: HistoryStore) -> None:
    """A daily export always holds today, computed from hourly rows and unrolled raw rows."""
    day = T0 - T0 % DAY
    await store.async_add_many(
        "a",
        [Sample(timestamp=ts, cpu_percent=5.0) for ts in range(day, T0 + 1800, 300)],
    )
    await store.async_rollup(
        T0 + 1800
    )  # hours before T0 rolled; T0's hour and the day not
    daily = await rows(store, Tier.DAILY, day - DAY, day + DAY)
    assert len(daily) == 1
    assert daily[0][0] == day
    assert daily[0][-1] == (T0 + 1800 - day) // 300
    assert daily[0][1] == pytest.approx(5.0)


async def test_catch_up_after_a_week_down(store: HistoryStore) -> None:
    """Nothing rolled for a week: one rollup makes every hour and day."""
    samples = [Sample(timestamp=ts, load_1m=1.0) for ts in range(T0, T0 + 7 * DAY, 600)]
    await store.async_add_many("a", samples)
    stats = await store.async_rollup(T0 + 7 * DAY + HOUR)
    assert stats.hours == 7 * 24
    assert len(await rows(store, Tier.HOURLY, T0, T0 + 7 * DAY)) == 7 * 24
    assert (
        len(await rows(store, Tier.DAILY, T0 - DAY, T0 + 7 * DAY)) == 8
    )  # UTC days partly covered
    again = await store.async_rollup(T0 + 7 * DAY + HOUR)
    assert (again.hours, again.days) == (0, 0)


async def test_retention(store: HistoryStore) -> None:
    """Raw 7 days, hourly 90 days, daily 400 days; raw of un-rolled hours is kept."""
    old = T0 - 500 * DAY
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=1.0)
            for ts in range(old, old + 2 * DAY, HOUR)
        ],
    )
    now = old + 3 * DAY
    await store.async_rollup(now)
    assert len(await rows(store, Tier.RAW, old, now)) == 48
    await store.async_rollup(
        old + 7 * DAY + HOUR
    )  # raw older than 7 days: the first hour goes
    raw = await rows(store, Tier.RAW, old, now)
    assert raw[0][0] == old + HOUR
    await store.async_rollup(old + 90 * DAY + HOUR)
    assert await rows(store, Tier.RAW, old, now) == []
    assert (await rows(store, Tier.HOURLY, old, now))[0][0] == old + HOUR
    await store.async_rollup(old + 400 * DAY + 1)
    assert len(await rows(store, Tier.DAILY, old - DAY, now)) == 2
    await store.async_rollup(old + 402 * DAY)
    assert await rows(store, Tier.DAILY, old - DAY, now) == []

    # Raw rows whose hour was never rolled survive past 7 days.
    late = T0 - 30 * DAY
    await store.async_add("a", Sample(timestamp=late, cpu_percent=3.0))
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM dirty_days")  # only the hour mark is left
    await store.async_close()
    reopened = HistoryStore(store.path)
    await reopened.async_open()
    await reopened._call(reopened._db.execute, "PRAGMA user_version")  # alive
    assert len(await rows(reopened, Tier.RAW, late, late + 1)) == 1
    await reopened.async_close()


async def test_duplicates_and_batches(store: HistoryStore) -> None:
    """The same timestamp twice keeps one row (the newer values); batches split the rows."""
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=2.0))
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i, cpu_percent=float(i)) for i in range(1, 25)]
    )
    batches = [
        b async for b in store.async_query("a", Tier.RAW, T0, T0 + 100, batch_size=10)
    ]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0][:2] == (T0, 2.0)
    assert len(batches[0][0]) == len(RAW_COLUMNS)
    assert await store.async_count("a", Tier.RAW, T0, T0 + 100) == 25
    hourly_batches = [
        b
        async for b in store.async_query("a", Tier.HOURLY, T0, T0 + HOUR, batch_size=1)
    ]
    assert sum(len(b) for b in hourly_batches) == 1


async def test_hourly_batches_merge_computed_rows(store: HistoryStore) -> None:
    """Stored and on-the-fly hours come out in order and once each, whatever the batch size."""
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=1.0)
            for ts in range(T0, T0 + 10 * HOUR, 600)
        ],
    )
    await store.async_rollup(T0 + 6 * HOUR)
    await store.async_add(
        "a", Sample(timestamp=T0 + 2 * HOUR + 1, cpu_percent=1.0)
    )  # re-dirties hour 2
    for size in (1, 2, 3, 100):
        got = await rows(store, Tier.HOURLY, T0, T0 + 10 * HOUR, batch_size=size)
        assert [r[0] for r in got] == [T0 + h * HOUR for h in range(10)]
        assert got[2][-1] == 7


async def test_remove_server_and_ids(store: HistoryStore) -> None:
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_add("b", Sample(timestamp=T0, cpu_percent=1.0))
    await store.async_rollup(T0 + 2 * DAY)
    assert await store.async_server_ids() == ["a", "b"]
    await store.async_remove_server("a")
    assert await store.async_server_ids() == ["b"]
    assert await store.async_latest_ts("a") is None
    assert await store.async_latest_ts("b") == T0


async def test_corrupt_file_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"garbage" * 1000)
    store = HistoryStore(path)
    await store.async_open()
    assert store.recovered_from is not None
    assert store.recovered_from.name.startswith("h.db.corrupt-")
    assert store.recovered_from.read_bytes().startswith(b"garbage")
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=1.0))
    assert await store.async_latest_ts("a") == T0
    await store.async_close()


async def test_migration_from_empty_and_newer(tmp_path: Path) -> None:
    """An empty file (version 0) gets the schema; one from a newer version is set aside, not misread."""
    path = tmp_path / "h.db"
    sqlite3.connect(path).close()
    store = HistoryStore(path)
    await store.async_open()
    assert store.recovered_from is None
    await store.async_close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    newer = HistoryStore(path)
    await newer.async_open()
    assert newer.recovered_from is not None
    await newer.async_close()


async def test_pause_resume_and_close(store: HistoryStore) -> None:
    """Samples during a backup wait in memory; closing writes them; the thread ends."""
    await store.async_add("a", Sample(timestamp=T0))
    await store.async_pause_writes()
    assert (
        not Path(f"{store.path}-wal").exists()
        or Path(f"{store.path}-wal").stat().st_size == 0
    )
    await store.async_add("a", Sample(timestamp=T0 + 60))
    assert await store.async_latest_ts("a") == T0
    await store.async_resume_writes()
    assert await store.async_latest_ts("a") == T0 + 60
    await store.async_pause_writes()
    await store.async_add("a", Sample(timestamp=T0 + 120))
    await store.async_close()
    assert store.closed
    assert not any(t.name == "homelab_metrics_history" for t in threading.enumerate())
    with pytest.raises(StoreClosedError):
        await store.async_add("a", Sample(timestamp=T0 + 180))
    await store.async_close()  # idempotent
    reopened = HistoryStore(store.path)
    await reopened.async_open()
    assert await reopened.async_latest_ts("a") == T0 + 120
    await reopened.async_close()


async def test_time_zone_change(store: HistoryStore) -> None:
    store.set_time_zone("Asia/Tokyo")
    start, end = store.day_bounds(T0)
    assert end - start == DAY
    assert datetime.fromtimestamp(start, ZoneInfo("Asia/Tokyo")).hour == 0


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
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        acknowledged.append(int(line))
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    acknowledged += [int(line) for line in writer.stdout.read().split()]
    assert len(acknowledged) >= 300
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {
            ts for (ts,) in conn.execute("SELECT ts FROM raw WHERE server_id = 'crash'")
        }
    assert set(acknowledged) <= stored
