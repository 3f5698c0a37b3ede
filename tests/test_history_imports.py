"""History store: one transaction for a fleet's poll, and a server's past imported raw or hourly."""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import logging
from pathlib import Path
import sqlite3

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.metrics import AGGREGATE_COLUMNS, Tier
from custom_components.homelab_metrics.history.store import HistoryStore

from .history_common import DAY, HOUR, T0, rows, table_ts


@dataclass(frozen=True)
class Stats:
    """A metric over an hour, as a Prometheus import gives it."""

    avg: float
    min: float
    max: float
    count: int


@dataclass(frozen=True)
class Hour:
    """An hour of the past, as a Prometheus import gives it."""

    timestamp: int
    samples: int
    fields: dict[str, Stats] = field(default_factory=dict)


def _statements(store: HistoryStore) -> list[str]:
    """Start recording the SQL statements the store's connection runs (on its thread)."""
    seen: list[str] = []

    def trace(db: sqlite3.Connection) -> None:
        db.set_trace_callback(seen.append)

    # The connection lives on the worker thread only: trace it from there.
    store._worker.post(trace)
    return seen


async def test_a_fleet_poll_is_one_transaction(store: HistoryStore) -> None:
    """Every node's sample of one poll is written in one transaction."""
    await store.async_add("warm", Sample(timestamp=T0 - 60))
    seen = _statements(store)
    await store.async_add_each(
        [(f"node{i}", Sample(timestamp=T0, cpu_percent=float(i))) for i in range(200)]
    )
    assert sum(s.startswith("BEGIN") for s in seen) == 1
    assert sum(s == "COMMIT" for s in seen) == 1
    assert await store.async_count("node199", Tier.RAW, T0, T0 + 1) == 1
    assert (await rows(store, Tier.RAW, T0, T0 + 1, server="node7"))[0][1] == 7.0


async def test_a_fleet_poll_is_judged_server_by_server(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A node stamped far ahead of the real time since its previous poll waits; the others do not."""
    real = [0.0]
    store = HistoryStore(tmp_path / "h.db", monotonic=lambda: real[0])
    await store.async_open()
    try:
        await store.async_add_each(
            [("a", Sample(timestamp=T0)), ("b", Sample(timestamp=T0))]
        )
        real[0] = 60.0
        with caplog.at_level(logging.WARNING):
            await store.async_add_each(
                [
                    ("a", Sample(timestamp=T0 + 60)),
                    ("b", Sample(timestamp=T0 + 365 * DAY)),
                ]
            )
        assert await store.async_latest_ts("a") == T0 + 60
        assert await store.async_latest_ts("b") == T0
        assert "stamped 365 d ahead" in caplog.text
    finally:
        await store.async_close()


async def test_a_fleet_poll_waits_during_a_backup(store: HistoryStore) -> None:
    """Like a single poll, a fleet's poll is held while a backup copies the file."""
    await store.async_add_each([("a", Sample(timestamp=T0))])
    await store.async_pause_writes()
    await store.async_add_each([("a", Sample(timestamp=T0 + 60))])
    assert await store.async_latest_ts("a") == T0
    await store.async_resume_writes()
    assert await store.async_latest_ts("a") == T0 + 60


async def test_imported_hours_read_back_as_given(store: HistoryStore) -> None:
    """An hour's avg, min, max and count come back as they were; unknown fields are ignored."""
    await store.async_import_hourly(
        "a",
        [
            Hour(
                T0 - 2 * HOUR,
                60,
                {
                    "cpu_percent": Stats(20.0, 5.0, 80.0, 60),
                    "load_1m": Stats(1.0, 0.5, 2.0, 58),
                    "load_5m": Stats(9.0, 9.0, 9.0, 60),
                },
            ),
            Hour(T0 - HOUR, 3, {"memory_percent": Stats(40.0, 39.0, 41.0, 3)}),
        ],
    )
    got = [
        dict(zip(AGGREGATE_COLUMNS, row, strict=True))
        for row in await rows(store, Tier.HOURLY, T0 - 3 * HOUR, T0, now=T0)
    ]
    assert [(r["timestamp"], r["samples"]) for r in got] == [
        (T0 - 2 * HOUR, 60),
        (T0 - HOUR, 3),
    ]
    assert (got[0]["cpu_avg"], got[0]["cpu_min"], got[0]["cpu_max"]) == (
        20.0,
        5.0,
        80.0,
    )
    assert got[0]["load_1m_max"] == 2.0
    assert got[0]["memory_avg"] is None and got[1]["cpu_avg"] is None
    assert got[1]["memory_max"] == 41.0


async def test_an_import_done_twice_leaves_the_same_rows(store: HistoryStore) -> None:
    """Hours and raw samples are keyed by time: importing a chunk again adds no row."""
    hours = [
        Hour(T0 - 30 * DAY + h * HOUR, 60, {"cpu_percent": Stats(h, h, h, 60)})
        for h in range(48)
    ]
    samples = [
        Sample(timestamp=T0 - HOUR + 60 * i, cpu_percent=float(i)) for i in range(60)
    ]
    for _ in range(2):
        await store.async_import_hourly("a", hours)
        await store.async_import_raw("a", samples)
        await store.async_rollup(T0 + 60)
    assert await store.async_count("a", Tier.RAW, 0, T0 + DAY) == 60
    # 48 imported hours and the one the raw samples rolled up into.
    assert await store.async_count("a", Tier.HOURLY, 0, T0 + DAY, now=T0 + 60) == 49
    first = table_ts(store.path)
    await store.async_import_hourly("a", hours)
    await store.async_rollup(T0 + 60)
    assert table_ts(store.path) == first


async def test_imported_hours_roll_up_into_days_weighted_by_counts(
    store: HistoryStore,
) -> None:
    """The next rollup makes the imported hours' days, each average weighted by its count."""
    day = T0 - T0 % DAY - 20 * DAY
    await store.async_import_hourly(
        "a",
        [
            Hour(day, 60, {"cpu_percent": Stats(10.0, 1.0, 30.0, 60)}),
            Hour(day + HOUR, 20, {"cpu_percent": Stats(50.0, 40.0, 90.0, 20)}),
            Hour(day + 23 * HOUR, 60, {"load_1m": Stats(2.0, 1.0, 3.0, 60)}),
        ],
    )
    # The newest sample sets retention's reference: 20 days of hours are within it.
    await store.async_import_raw("a", [Sample(timestamp=T0 - 60, cpu_percent=1.0)])
    stats = await store.async_rollup(T0)
    assert stats.days >= 1
    (row,) = await rows(store, Tier.DAILY, day, day + DAY, now=T0)
    got = dict(zip(AGGREGATE_COLUMNS, row, strict=True))
    assert got["cpu_avg"] == pytest.approx((10 * 60 + 50 * 20) / 80)
    assert (got["cpu_min"], got["cpu_max"]) == (1.0, 90.0)
    assert got["load_1m_avg"] == 2.0
    assert got["samples"] == 140


async def test_imported_hours_are_not_recomputed_from_raw(store: HistoryStore) -> None:
    """A rollup leaves an imported hour as it was: there are no raw rows to recompute it from."""
    hour = T0 - 10 * DAY
    await store.async_import_hourly(
        "a", [Hour(hour, 60, {"cpu_percent": Stats(10.0, 1.0, 30.0, 60)})]
    )
    await store.async_import_raw("a", [Sample(timestamp=T0 - 60, cpu_percent=1.0)])
    await store.async_rollup(T0)
    (row,) = await rows(store, Tier.HOURLY, hour, hour + HOUR, now=T0)
    assert row[1:4] == (10.0, 1.0, 30.0) and row[-1] == 60


@pytest.mark.parametrize(
    "hour",
    [Hour(T0 + 1, 1, {}), Hour(T0, 0, {})],
    ids=["not the start of an hour", "no samples"],
)
async def test_a_bad_hour_is_refused_whole(store: HistoryStore, hour: Hour) -> None:
    """Nothing of a chunk holding a bad hour is written."""
    good = Hour(T0 - HOUR, 1, {"cpu_percent": Stats(1.0, 1.0, 1.0, 1)})
    with pytest.raises(ValueError, match="not an hour"):
        await store.async_import_hourly("a", [good, hour])
    assert table_ts(store.path)["hourly"] == set()


async def test_imports_are_committed_during_a_backup_without_touching_the_file(
    store: HistoryStore,
) -> None:
    """An import is in the history when its call returns, even during a backup (WAL only)."""
    await store.async_add("a", Sample(timestamp=T0))
    await store.async_pause_writes()
    before = hashlib.sha256(store.path.read_bytes()).hexdigest()
    await store.async_import_raw("a", [Sample(timestamp=T0 - 60, cpu_percent=5.0)])
    await store.async_import_hourly(
        "a", [Hour(T0 - 20 * DAY, 1, {"cpu_percent": Stats(1.0, 1.0, 1.0, 1)})]
    )
    assert await store.async_count("a", Tier.RAW, 0, T0 + 1) == 2
    assert await store.async_count("a", Tier.HOURLY, 0, T0 - 19 * DAY, now=T0) == 1
    assert hashlib.sha256(store.path.read_bytes()).hexdigest() == before
    await store.async_resume_writes()


async def test_empty_imports_write_nothing(store: HistoryStore) -> None:
    """An empty chunk (a node down for its whole span) is no transaction at all."""
    seen = _statements(store)
    await store.async_import_raw("a", [])
    await store.async_import_hourly("a", [])
    await store.async_add_each([])
    await store.async_latest_ts("a")
    assert not any(s.startswith("BEGIN") for s in seen)
