"""Clock jumps: retention never deletes on one clock reading, and samples stamped far ahead wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.clock import ClockGuard
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import HistoryStore

from .history_common import DAY, HOUR, T0, YEAR, rows, table_ts, write_buckets


class RealTime:
    """A stand-in for the clock that wall-clock jumps do not move; tests advance it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def real_time() -> RealTime:
    """Real time as the store measures it, under the test's control."""
    return RealTime()


@pytest.fixture
async def timed_store(
    tmp_path: Path, real_time: RealTime
) -> AsyncIterator[HistoryStore]:
    """An open store that measures real time on `real_time`."""
    store = HistoryStore(tmp_path / "h.db", monotonic=real_time)
    await store.async_open()
    yield store
    await store.async_close()


async def fill(store: HistoryStore, server: str = "a", end: int = T0) -> None:
    """Every tier filled up to its retention, newest sample at `end`, and rolled up.

    Raw polls every 10 minutes for 7 days, the newest one as a poll just taken; plain-SQL hours
    for 90 days and days for 400.
    """
    raw_start = end - 7 * DAY + 600
    await store.async_add_many(
        server,
        [
            Sample(timestamp=ts, cpu_percent=float(ts % 97))
            for ts in range(raw_start, end, 600)
        ],
    )
    await store.async_add(server, Sample(timestamp=end, cpu_percent=float(end % 97)))
    stats = {"cpu_percent": (1.0, 1.0, 1.0, 60)}
    first_hour = end - 90 * DAY + HOUR
    await asyncio.to_thread(
        write_buckets,
        store.path,
        Tier.HOURLY,
        server,
        [(ts, 60, stats) for ts in range(first_hour, raw_start - HOUR, HOUR)],
    )
    first_day = end - 400 * DAY + DAY - (end - 400 * DAY) % DAY
    write_buckets(
        store.path,
        Tier.DAILY,
        server,
        [(ts, 1440, stats) for ts in range(first_day, first_hour - DAY, DAY)],
    )
    await store.async_rollup(end + 60)


def assert_kept(before: dict[str, set[tuple[str, int]]], path: Path) -> None:
    """Every row of `before` is still stored, tier by tier."""
    after = table_ts(path)
    for tier, kept in before.items():
        lost = kept - after[tier]
        assert not lost, f"{len(lost)} {tier} rows lost, first {min(lost)}"


async def test_two_year_jump_forward_and_back_loses_nothing(
    store: HistoryStore,
) -> None:
    """While running, the clock jumps 2 years ahead and back, then 2 years behind and back."""
    await fill(store)
    before = table_ts(store.path)
    assert {tier: len(kept) for tier, kept in before.items()} == {
        "raw": 7 * 24 * 6,
        "hourly": 90 * 24 - 1,
        "daily": 400 - 90 + 6,
    }

    # Forward: a rollup on that clock rolls up what it thinks complete, deleting nothing ...
    ahead = await store.async_rollup(T0 + 2 * YEAR + HOUR)
    assert (ahead.hours, ahead.pruned) == (1, 0)
    assert_kept(before, store.path)
    # ... and a poll stamped 2 years ahead of the time that really passed is not stored.
    await store.async_add("a", Sample(timestamp=T0 + 2 * YEAR, cpu_percent=5.0))
    assert await store.async_latest_ts("a") == T0
    await store.async_rollup(T0 + 2 * YEAR + 2 * HOUR)
    assert_kept(before, store.path)

    # Back: polls are stored again, rollups go on, and nothing was lost on the way.
    await store.async_add("a", Sample(timestamp=T0 + 120, cpu_percent=5.0))
    again = await store.async_rollup(T0 + 2 * HOUR)
    assert (again.hours, again.pruned) == (1, 0)
    assert_kept(before, store.path)
    assert await store.async_latest_ts("a") == T0 + 120

    # Behind: a rollup 2 years in the past deletes nothing either; a poll stamped then is
    # history older than any retention, gone with the next rollup on the right clock.
    behind = await store.async_rollup(T0 - 2 * YEAR)
    assert (behind.hours, behind.days, behind.pruned) == (0, 0, 0)
    await store.async_add("a", Sample(timestamp=T0 - 2 * YEAR, cpu_percent=5.0))
    await store.async_add("a", Sample(timestamp=T0 + 180, cpu_percent=5.0))
    await store.async_rollup(T0 + 3 * HOUR)
    assert_kept(before, store.path)
    assert await rows(store, Tier.RAW, 0, T0 - YEAR) == []
    assert await store.async_latest_ts("a") == T0 + 180


async def test_rollup_on_a_clock_ahead_after_a_restart_deletes_nothing(
    tmp_path: Path,
) -> None:
    """Started with the clock 2 years ahead, the catch-up rollup deletes nothing on its word alone."""
    store = HistoryStore(tmp_path / "h.db")
    await store.async_open()
    await fill(store)
    await store.async_close()
    before = table_ts(store.path)

    restarted = HistoryStore(tmp_path / "h.db")
    await restarted.async_open()
    stats = await restarted.async_rollup(T0 + 2 * YEAR)
    assert stats.pruned == 0
    assert_kept(before, restarted.path)
    await restarted.async_close()


async def test_a_server_that_stops_reporting_keeps_its_history(
    timed_store: HistoryStore, real_time: RealTime
) -> None:
    """Retention counts back from each server's newest sample, not from the rollup's clock."""
    store = timed_store
    await fill(store, "quiet", end=T0 - 30 * DAY)
    await fill(store, "live", end=T0)
    before = table_ts(store.path)
    real_time.now += HOUR
    await store.async_add("live", Sample(timestamp=T0 + HOUR, cpu_percent=1.0))
    await store.async_rollup(T0 + HOUR + 60)
    after = table_ts(store.path)
    for tier in Tier:
        quiet = {row for row in before[tier.value] if row[0] == "quiet"}
        assert quiet <= after[tier.value]
    # The live server's oldest raw rows fell out of its 7 days; the hour they made stays.
    assert ("live", T0 - 7 * DAY + 600) not in after["raw"]
    assert ("live", T0 - 7 * DAY) in after["hourly"]


async def polls(
    store: HistoryStore,
    real_time: RealTime,
    stamps: range,
    server: str = "a",
) -> None:
    """One poll a minute of real time, stamped as given."""
    for ts in stamps:
        real_time.now += 60
        await store.async_add(server, Sample(timestamp=ts, cpu_percent=1.0))


async def raw_ts(store: HistoryStore, server: str = "a") -> list[int]:
    return [r[0] for r in await rows(store, Tier.RAW, 0, 2**40, server)]


async def test_a_clock_set_forward_for_good_loses_no_poll(
    timed_store: HistoryStore,
    real_time: RealTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A clock corrected a day forward (and staying there) is believed after an hour; held polls land."""
    store = timed_store
    await polls(store, real_time, range(T0, T0 + 600, 60))
    jumped = range(T0 + DAY + 600, T0 + DAY + 600 + 59 * 60, 60)
    await polls(store, real_time, jumped)
    assert await raw_ts(store) == list(range(T0, T0 + 600, 60))
    await polls(store, real_time, range(jumped.stop, jumped.stop + 120, 60))
    assert await raw_ts(store) == [
        *range(T0, T0 + 600, 60),
        *range(jumped.start, jumped.stop + 120, 60),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert "24 h ahead" in warnings[0]
    assert "taken as the right time, 61 held polls recorded" in warnings[1]
    # From then on the new time is the reference.
    await polls(store, real_time, range(jumped.stop + 120, jumped.stop + 240, 60))
    assert (await raw_ts(store))[-1] == jumped.stop + 180


async def test_polls_ahead_are_dropped_when_the_clock_comes_back(
    timed_store: HistoryStore,
    real_time: RealTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Held polls of a jump that ends within the hour are not recorded; one warning per server."""
    store = timed_store
    await polls(store, real_time, range(T0, T0 + 120, 60))
    await polls(store, real_time, range(T0 + 2 * YEAR, T0 + 2 * YEAR + 600, 60))
    # Ten minutes of real time later the clock is back, then jumps again, and back again.
    await polls(store, real_time, range(T0 + 720, T0 + 840, 60))
    await polls(store, real_time, range(T0 + YEAR, T0 + YEAR + 300, 60))
    await polls(store, real_time, range(T0 + 1140, T0 + 1200, 60))
    assert await raw_ts(store) == [T0, T0 + 60, T0 + 720, T0 + 780, T0 + 1140]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "730 d ahead" in warnings[0].getMessage()
    assert "10 polls stamped ahead were not recorded" in caplog.text


async def test_a_second_jump_while_held_starts_the_hour_again(
    timed_store: HistoryStore, real_time: RealTime
) -> None:
    """Only a clock that keeps the same time for an hour is believed; another jump resets the wait."""
    store = timed_store
    await polls(store, real_time, range(T0, T0 + 60, 60))
    await polls(store, real_time, range(T0 + DAY, T0 + DAY + 40 * 60, 60))
    await polls(store, real_time, range(T0 + 2 * DAY, T0 + 2 * DAY + 40 * 60, 60))
    assert await raw_ts(store) == [T0]
    await polls(
        store, real_time, range(T0 + 2 * DAY + 40 * 60, T0 + 2 * DAY + 61 * 60, 60)
    )
    assert await raw_ts(store) == [T0, *range(T0 + 2 * DAY, T0 + 2 * DAY + 61 * 60, 60)]


async def test_small_steps_and_other_servers_are_not_held(
    timed_store: HistoryStore, real_time: RealTime
) -> None:
    """A poll up to ten minutes ahead is stored; each server is judged on its own polls."""
    store = timed_store
    await polls(store, real_time, range(T0, T0 + 60, 60))
    await polls(store, real_time, range(T0 + 660, T0 + 720, 60))
    await polls(store, real_time, range(T0 + DAY, T0 + DAY + 60, 60), server="b")
    await polls(store, real_time, range(T0 + DAY + 60, T0 + DAY + 120, 60), server="b")
    assert await raw_ts(store) == [T0, T0 + 660]
    assert await raw_ts(store, "b") == [T0 + DAY, T0 + DAY + 60]


async def test_a_clock_wrong_at_start_is_believed(
    tmp_path: Path, real_time: RealTime
) -> None:
    """The limit: without a poll of this run to compare with, the first stamp is taken as it is.

    A guard handed to the next store (the history manager keeps one) keeps its memory.
    """
    guard = ClockGuard(real_time)
    store = HistoryStore(tmp_path / "h.db", guard=guard)
    await store.async_open()
    await polls(store, real_time, range(T0, T0 + 60, 60))
    await store.async_close()
    reopened = HistoryStore(tmp_path / "h.db", guard=guard)
    await reopened.async_open()
    await polls(reopened, real_time, range(T0 + YEAR, T0 + YEAR + 60, 60))
    assert await raw_ts(reopened) == [T0]
    await reopened.async_close()

    restarted = HistoryStore(tmp_path / "h.db", monotonic=real_time)
    await restarted.async_open()
    await polls(restarted, real_time, range(T0 + YEAR, T0 + YEAR + 60, 60))
    assert await raw_ts(restarted) == [T0, T0 + YEAR]
    await restarted.async_close()


async def test_removing_a_server_drops_its_held_polls(
    timed_store: HistoryStore, real_time: RealTime
) -> None:
    """Polls held for a clock jump or a backup do not bring a removed server back."""
    store = timed_store
    await polls(store, real_time, range(T0, T0 + 60, 60))
    await polls(store, real_time, range(T0 + DAY, T0 + DAY + 30 * 60, 60))
    await store.async_pause_writes()
    await polls(store, real_time, range(T0 + 120, T0 + 180, 60), server="b")
    await store.async_remove_server("a")
    await store.async_remove_server("b")
    await polls(store, real_time, range(T0 + DAY + 30 * 60, T0 + DAY + 70 * 60, 60))
    await store.async_resume_writes()
    # A server added again under the same id starts afresh: its first poll is its reference.
    assert await raw_ts(store) == list(
        range(T0 + DAY + 30 * 60, T0 + DAY + 70 * 60, 60)
    )
    assert await raw_ts(store, "b") == []
