"""History rollups against an independent computation: DST days, catch-up, late samples, retention."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, time as dtime
from pathlib import Path
import random
import sqlite3
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.metrics import (
    AGGREGATE_COLUMNS,
    METRICS,
    Tier,
)
from custom_components.homelab_metrics.history.ranges import RETENTION_SECONDS
from custom_components.homelab_metrics.history.store import HistoryStore

from .history_common import DAY, HOUR, T0, Row, mark_days, rows, write_buckets

KEYS = [m.key for m in METRICS]
RAW_RETENTION = RETENTION_SECONDS[Tier.RAW]
HOURLY_RETENTION = RETENTION_SECONDS[Tier.HOURLY]
DAILY_RETENTION = RETENTION_SECONDS[Tier.DAILY]


def table(path: Path, name: str) -> list[Row]:
    """A whole table straight from the file, for comparing what rollups stored."""
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {name} ORDER BY server_id, ts").fetchall()


def random_samples(rng: random.Random, start: int, end: int) -> list[Sample]:
    """Polls every 60 s with gaps of up to three hours, each metric missing now and then."""
    out = []
    ts = start
    while ts < end:
        if rng.random() < 0.02:
            ts += rng.randint(60, 3 * HOUR)
            continue
        values = {
            k: (None if rng.random() < 0.15 else round(rng.uniform(0, 100), 3))
            for k in KEYS
        }
        # A metric the agent never reports for a whole stretch (no temperature sensor).
        if (ts // (5 * HOUR)) % 4 == 0:
            values["temperature_celsius"] = None
        out.append(Sample(timestamp=ts, **values))
        ts += 60
    return out


def hour_of(ts: int) -> int:
    """UTC hour start, computed without the store."""
    return ts - ts % HOUR


def day_of_in(tz: ZoneInfo) -> Callable[[int], int]:
    """Local midnight of the day holding the sample's UTC hour, computed without the store."""

    def day_of(ts: int) -> int:
        date = datetime.fromtimestamp(hour_of(ts), tz).date()
        return int(datetime.combine(date, dtime(0), tz).timestamp())

    return day_of


def expected_buckets(
    samples: list[Sample], bucket_of: Callable[[int], int]
) -> dict[int, Row]:
    """Plain-Python aggregation over the samples: each metric over the samples that have it."""
    groups: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[bucket_of(s.timestamp)].append(s)
    out = {}
    for start, group in groups.items():
        values: list[Any] = []
        for k in KEYS:
            present = [getattr(s, k) for s in group if getattr(s, k) is not None]
            values += (
                [sum(present) / len(present), min(present), max(present)]
                if present
                else [None] * 3
            )
        out[start] = (start, *values, len(group))
    return out


def assert_rows_match(actual: list[Row], expected: dict[int, Row]) -> None:
    """Same buckets, same values (floating sums within rounding), same sample counts."""
    assert [r[0] for r in actual] == sorted(expected)
    for row in actual:
        want = expected[row[0]]
        assert len(row) == len(want) == len(AGGREGATE_COLUMNS)
        assert isinstance(row[-1], int)
        for got, exp in zip(row, want, strict=True):
            assert got == (
                None if exp is None else pytest.approx(exp, rel=1e-9, abs=1e-9)
            )


@pytest.mark.parametrize(
    ("zone", "first_day"),
    [
        ("Europe/Berlin", (2025, 3, 27)),  # spring forward on 30 March: 23 hours
        ("America/New_York", (2025, 10, 30)),  # fall back on 2 November: 25 hours
        ("Asia/Kolkata", (2025, 6, 1)),  # +05:30: local midnight is not a UTC hour
    ],
)
async def test_rollup_matches_independent_computation(
    tmp_path: Path, zone: str, first_day: tuple[int, int, int]
) -> None:
    """Hourly (UTC) and daily (local) buckets of several servers equal a plain recomputation."""
    tz = ZoneInfo(zone)
    store = HistoryStore(tmp_path / "h.db", time_zone=zone)
    await store.async_open()
    rng = random.Random(zone)
    start = int(datetime(*first_day, tzinfo=tz).timestamp())
    end = start + 6 * DAY
    data = {server: random_samples(rng, start, end) for server in ("a", "b", "c")}
    for server, samples in data.items():
        await store.async_add_many(server, samples)
    now = end + 2 * HOUR
    stats = await store.async_rollup(now)
    assert stats.hours == sum(
        len({hour_of(s.timestamp) for s in samples}) for samples in data.values()
    )

    for server, samples in data.items():
        hourly = await rows(store, Tier.HOURLY, start - DAY, now, server, now=now)
        assert_rows_match(hourly, expected_buckets(samples, hour_of))
        daily = await rows(store, Tier.DAILY, start - DAY, now, server, now=now)
        assert_rows_match(daily, expected_buckets(samples, day_of_in(tz)))
        # Every daily bucket starts at a local midnight.
        assert all(datetime.fromtimestamp(r[0], tz).time() == dtime(0) for r in daily)

    # Idempotent: a second rollup changes no stored row.
    before = {name: table(store.path, name) for name in ("hourly", "daily")}
    again = await store.async_rollup(now)
    assert (again.hours, again.days) == (0, 0)
    assert {name: table(store.path, name) for name in ("hourly", "daily")} == before
    await store.async_close()


@pytest.mark.parametrize(
    ("zone", "date", "hours"),
    [
        ("Europe/Berlin", (2025, 3, 30), 23),
        ("Europe/Berlin", (2025, 10, 26), 25),
        ("America/New_York", (2025, 3, 9), 23),
        ("America/New_York", (2025, 11, 2), 25),
    ],
)
async def test_dst_day_lengths(
    tmp_path: Path, zone: str, date: tuple[int, int, int], hours: int
) -> None:
    """A DST day is one daily bucket of 23 or 25 hours, starting at local midnight."""
    tz = ZoneInfo(zone)
    store = HistoryStore(tmp_path / "h.db", time_zone=zone)
    await store.async_open()
    day = int(datetime(*date, tzinfo=tz).timestamp())
    polls = [
        Sample(timestamp=ts, cpu_percent=float(ts % 7))
        for ts in range(day - 3 * HOUR, day + 28 * HOUR, 600)
    ]
    await store.async_add_many("a", polls)
    now = day + 30 * HOUR
    await store.async_rollup(now)
    daily = await rows(store, Tier.DAILY, day - DAY, now, now=now)
    starts = [r[0] for r in daily]
    assert day in starts
    this_day = daily[starts.index(day)]
    assert this_day[-1] == hours * 6
    assert starts[starts.index(day) + 1] == day + hours * HOUR
    assert len(await rows(store, Tier.HOURLY, day, day + hours * HOUR)) == hours
    await store.async_close()


async def test_catch_up_after_a_week_down(store: HistoryStore) -> None:
    """Nothing rolled up for a week: one rollup makes every missed hour and day."""
    rng = random.Random(3)
    samples = random_samples(rng, T0, T0 + 7 * DAY)
    await store.async_add_many("a", samples)
    now = T0 + 7 * DAY + HOUR
    stats = await store.async_rollup(now)
    hours = {hour_of(s.timestamp) for s in samples}
    days = {day_of_in(ZoneInfo("UTC"))(s.timestamp) for s in samples}
    complete_days = {d for d in days if d + DAY <= now}
    assert len(complete_days) == len(days) - 1  # the running day waits
    assert (stats.hours, stats.days) == (len(hours), len(complete_days))
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM dirty_hours").fetchone()[0] == 0
    # Raw rows more than 7 days older than the newest sample were pruned only now, after their
    # hours were rolled.
    newest = samples[-1].timestamp
    assert stats.pruned == sum(
        1 for s in samples if s.timestamp < newest - RAW_RETENTION
    )
    assert_rows_match(
        await rows(store, Tier.HOURLY, T0, now, now=now),
        expected_buckets(samples, hour_of),
    )
    again = await store.async_rollup(now)
    assert (again.hours, again.days, again.pruned) == (0, 0, 0)


async def test_only_complete_buckets_are_stored(store: HistoryStore) -> None:
    """The running hour and day stay out of the tables; queries compute them."""
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i * 60, cpu_percent=10.0) for i in range(90)]
    )
    now = T0 + HOUR + 1800
    await store.async_rollup(now)
    assert [r[1] for r in table(store.path, "hourly")] == [T0]
    assert table(store.path, "daily") == []
    hourly = await rows(store, Tier.HOURLY, T0, T0 + 2 * HOUR, now=now)
    assert [(r[0], r[1], r[-1]) for r in hourly] == [
        (T0, 10.0, 60),
        (T0 + HOUR, 10.0, 30),
    ]
    daily = await rows(store, Tier.DAILY, T0 - DAY, T0 + DAY, now=now)
    assert [(r[0], r[-1]) for r in daily] == [(T0 - T0 % DAY, 90)]


async def test_late_samples_reroll_their_hour_and_day(store: HistoryStore) -> None:
    """A sample arriving after its hour was rolled up changes that hour and day at the next rollup."""
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i * 60, cpu_percent=10.0) for i in range(60)]
    )
    day_end = T0 - T0 % DAY + DAY
    await store.async_rollup(day_end + HOUR)
    await store.async_add("a", Sample(timestamp=T0 + 30, cpu_percent=70.0))
    # Before the rollup, queries already compute the changed hour and day.
    expected_avg = (60 * 10 + 70) / 61
    hourly = await rows(store, Tier.HOURLY, T0, T0 + HOUR, now=day_end + HOUR)
    assert (hourly[0][1], hourly[0][3], hourly[0][-1]) == (
        pytest.approx(expected_avg),
        70.0,
        61,
    )
    stats = await store.async_rollup(day_end + 2 * HOUR)
    assert (stats.hours, stats.days) == (1, 1)
    stored = table(store.path, "hourly")
    assert stored[0][2] == pytest.approx(expected_avg)
    daily = await rows(store, Tier.DAILY, T0 - DAY, day_end, now=day_end + 2 * HOUR)
    assert (daily[0][1], daily[0][-1]) == (pytest.approx(expected_avg), 61)


async def test_late_sample_older_than_raw_retention_keeps_the_hour(
    store: HistoryStore,
) -> None:
    """An hour whose raw rows are pruned is not replaced by one late sample."""
    await store.async_add_many(
        "a", [Sample(timestamp=T0 + i * 60, cpu_percent=10.0) for i in range(60)]
    )
    now = T0 + 8 * DAY
    await store.async_add("a", Sample(timestamp=now, cpu_percent=10.0))
    await store.async_rollup(now)
    assert await rows(store, Tier.RAW, T0, T0 + HOUR) == []
    before = [row for row in table(store.path, "hourly") if row[1] == T0]
    await store.async_add("a", Sample(timestamp=T0 + 30, cpu_percent=99.0))
    await store.async_rollup(now + HOUR)
    assert [row for row in table(store.path, "hourly") if row[1] == T0] == before
    # The stray row is pruned like any other old raw row.
    assert await rows(store, Tier.RAW, T0, T0 + HOUR) == []


async def test_retention_boundaries(store: HistoryStore) -> None:
    """Raw 7 days, hourly 90 days, daily 400 days, each to the second before the rollup's time.

    That is the newest sample's time, or the rollup's own when the newest is stamped later.
    """
    now = T0 + 1000 * DAY
    raw_cut, hourly_cut, daily_cut = (
        now - RAW_RETENTION,
        now - HOURLY_RETENTION,
        now - DAILY_RETENTION,
    )
    assert (raw_cut, hourly_cut, daily_cut) == (
        now - 7 * DAY,
        now - 90 * DAY,
        now - 400 * DAY,
    )
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=1.0)
            for ts in (raw_cut - 1, raw_cut, now + HOUR)
        ],
    )
    one = {"cpu_percent": (1.0, 1.0, 1.0, 1)}
    write_buckets(
        store.path,
        Tier.HOURLY,
        "a",
        [(ts, 1, one) for ts in (hourly_cut - HOUR, hourly_cut)],
    )
    write_buckets(
        store.path,
        Tier.DAILY,
        "a",
        [(ts, 1, one) for ts in (daily_cut - DAY, daily_cut)],
    )
    await store.async_rollup(now)
    assert [r[0] for r in await rows(store, Tier.RAW, 0, now)] == [raw_cut]
    # The hours that raw rows just made are recent; the imported old ones meet the cut.
    old_hours = [r[1] for r in table(store.path, "hourly") if r[1] < raw_cut - DAY]
    assert old_hours == [hourly_cut]
    assert daily_cut in [r[1] for r in table(store.path, "daily")]
    assert daily_cut - DAY not in [r[1] for r in table(store.path, "daily")]


async def test_unrolled_raw_rows_are_kept(store: HistoryStore) -> None:
    """Raw rows older than 7 days survive while their hour is not rolled up."""
    old = T0 - 30 * DAY
    await store.async_add_many(
        "a", [Sample(timestamp=old + i * 60, cpu_percent=2.0) for i in range(60)]
    )
    # A rollup whose clock is still inside that hour rolls nothing but prunes.
    await store.async_rollup(old + 1800)
    with sqlite3.connect(store.path) as conn:
        # Simulates a clock that jumped: the hour is complete only by a later rollup.
        assert conn.execute("SELECT COUNT(*) FROM dirty_hours").fetchone()[0] == 1
    assert len(await rows(store, Tier.RAW, old, old + HOUR)) == 60
    await store.async_add("a", Sample(timestamp=T0, cpu_percent=2.0))
    await store.async_rollup(T0)
    # Rolled first, then pruned: the hour survives in the hourly tier.
    assert await rows(store, Tier.RAW, old, old + HOUR) == []
    hourly = await rows(store, Tier.HOURLY, old, old + HOUR, now=T0)
    assert [(r[0], r[1], r[-1]) for r in hourly] == [(old, 2.0, 60)]


async def test_prune_keeps_raw_of_an_unrolled_hour_past_retention(
    store: HistoryStore,
) -> None:
    """Retention never deletes raw rows of an hour still marked for rollup."""
    late = T0 - 30 * DAY
    await store.async_add("a", Sample(timestamp=late, cpu_percent=3.0))
    # The rollup's clock is inside that hour, yet far past the raw retention of older rows.
    await store.async_add("a", Sample(timestamp=late - 10 * DAY, cpu_percent=3.0))
    await store.async_rollup(late + 60)
    remaining = [r[0] for r in await rows(store, Tier.RAW, 0, T0)]
    assert remaining == [late]


async def test_stored_hours_make_days_weighted_by_counts(
    tmp_path: Path,
) -> None:
    """Hours without raw rows roll up into local days, each metric weighted by its own count."""
    tz = ZoneInfo("Europe/Berlin")
    store = HistoryStore(tmp_path / "h.db", time_zone="Europe/Berlin")
    await store.async_open()
    day = int(datetime(2025, 3, 30, tzinfo=tz).timestamp())
    buckets = []
    for i, hour in enumerate(range(day, day + 23 * HOUR, HOUR)):
        stats = {"cpu_percent": (i, i - 1, i + 1, 60)}
        if i % 2:
            stats["load_1m"] = (i, i, i, i)
        buckets.append((hour, 60, stats))
    write_buckets(store.path, Tier.HOURLY, "a", buckets)
    mark_days(store.path, "a", [(day, day + 23 * HOUR)])
    stats = await store.async_rollup(day + DAY)
    assert stats.days == 1
    (row,) = await rows(store, Tier.DAILY, day, day + 1, now=day + DAY)
    cpu = (row[1], row[2], row[3])
    assert cpu == (pytest.approx(sum(range(23)) / 23), -1, 23)
    odd = [i for i in range(23) if i % 2]
    load = row[1 + 3 * KEYS.index("load_1m") : 4 + 3 * KEYS.index("load_1m")]
    assert load == (
        pytest.approx(sum(i * i for i in odd) / sum(odd)),
        min(odd),
        max(odd),
    )
    assert row[-1] == 23 * 60
    await store.async_close()


async def test_time_zone_change_remarks_pending_days(store: HistoryStore) -> None:
    """Days waiting for a rollup follow the new time zone."""
    await store.async_add_many(
        "a", [Sample(timestamp=ts, cpu_percent=1.0) for ts in range(T0, T0 + DAY, 600)]
    )
    store.set_time_zone("Asia/Tokyo")
    assert store.time_zone == "Asia/Tokyo"
    now = T0 + 3 * DAY
    await store.async_rollup(now)
    tokyo = ZoneInfo("Asia/Tokyo")
    daily = await rows(store, Tier.DAILY, T0 - DAY, now, now=now)
    assert [r[0] for r in daily] == sorted(
        {day_of_in(tokyo)(ts) for ts in range(T0, T0 + DAY, 600)}
    )
    assert all(datetime.fromtimestamp(r[0], tokyo).hour == 0 for r in daily)
    assert sum(r[-1] for r in daily) == DAY // 600


async def test_half_hour_zone_waits_for_the_straddling_hour(tmp_path: Path) -> None:
    """In +05:30 a day is rolled only once the UTC hour across its midnight has ended."""
    tz = ZoneInfo("Asia/Kolkata")
    store = HistoryStore(tmp_path / "h.db", time_zone="Asia/Kolkata")
    await store.async_open()
    day = int(datetime(2025, 6, 2, tzinfo=tz).timestamp())
    assert day % HOUR == 1800
    polls = [
        Sample(timestamp=ts, cpu_percent=1.0)
        for ts in range(day + 1800, day + DAY + HOUR, 60)
    ]
    await store.async_add_many("a", polls)
    # Local midnight has passed, but the hour that began 30 minutes earlier runs on.
    early = await store.async_rollup(day + DAY + 600)
    assert early.days == 0
    late = await store.async_rollup(day + DAY + 2 * HOUR)
    assert late.days >= 1
    expected = expected_buckets(polls, day_of_in(tz))
    daily = await rows(store, Tier.DAILY, day, day + 1, now=day + DAY + 2 * HOUR)
    assert daily[0][-1] == expected[day][-1]
    await store.async_close()
