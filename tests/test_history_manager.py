"""The history manager: who opens and closes the store, scheduled rollups, repairs, clock jumps, shutdown."""

from __future__ import annotations

import asyncio
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
import itertools
import logging
from pathlib import Path
import sqlite3
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.homelab_metrics.agents.base import CannotConnect, Sample
from custom_components.homelab_metrics.const import DB_FILENAME, DOMAIN
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import SCHEMA_VERSION, HistoryStore
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import FULL_SAMPLE, NOW, async_next_poll, make_entry
from .history_common import table_ts


async def _rows(store, tier: Tier, start: int, end: int, now: int = 0) -> list[tuple]:
    return [
        row
        async for batch in store.async_query("nas", tier, start, end)
        for row in batch
    ]


async def test_scheduled_rollup(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Polls during an hour become one hourly row a minute after the hour ends."""
    freezer.move_to(datetime.fromtimestamp(NOW, UTC))
    samples = itertools.count(NOW, 60)

    async def fetch() -> object:
        return replace(FULL_SAMPLE, timestamp=next(samples), cpu_percent=10.0)

    mock_client.async_fetch.side_effect = fetch
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = get_history(hass).store
    for _ in range(59):
        await mock_entry.runtime_data.coordinator.async_refresh()
    assert len(await _rows(store, Tier.RAW, NOW, NOW + 3600, NOW + 3599)) == 60

    # Nothing is rolled up before the hour is complete and the schedule fires.
    freezer.move_to(datetime.fromtimestamp(NOW + 3600 + 61, UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    hourly = await _rows(store, Tier.HOURLY, NOW, NOW + 3600, NOW + 7200)
    assert len(hourly) == 1
    assert hourly[0][0] == NOW
    assert hourly[0][1] == pytest.approx(10.0)
    assert hourly[0][-1] == 60


async def test_catch_up_on_start(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Raw rows left from before a restart are rolled up when the history opens."""
    freezer.move_to(datetime.fromtimestamp(NOW + 3 * 86400, UTC))
    path = Path(hass.config.path(DB_FILENAME))
    store = HistoryStore(path, time_zone="UTC")
    await store.async_open()
    for ts in range(NOW, NOW + 2 * 3600, 300):
        await store.async_add("nas", replace(FULL_SAMPLE, timestamp=ts))
    await store.async_close()

    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = get_history(hass).store
    hourly = await _rows(store, Tier.HOURLY, NOW, NOW + 2 * 3600, NOW + 3 * 86400)
    assert [row[0] for row in hourly] == [NOW, NOW + 3600]
    assert [row[-1] for row in hourly] == [12, 12]


async def test_corrupt_database_raises_repair(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """A damaged file is moved aside, a repair issue says where, and polling goes on."""
    Path(hass.config.path(DB_FILENAME)).write_bytes(b"this is not a database" * 100)
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "database_corrupt")
    assert issue is not None
    assert issue.translation_key == "database_corrupt"
    moved = Path(issue.translation_placeholders["path"])
    assert moved.exists()
    assert moved.read_bytes().startswith(b"this is not a database")
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    store = get_history(hass).store
    assert await store.async_latest_ts("nas") == FULL_SAMPLE.timestamp


async def test_stop_closes_history(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Stopping Home Assistant closes the database and ends its thread."""
    store = get_history(hass).store
    await hass.async_stop()
    assert store.closed


@pytest.fixture
def frozen_now(freezer: FrozenDateTimeFactory) -> None:
    """Time stands half a minute after NOW from before any token is issued."""
    freezer.move_to(datetime.fromtimestamp(NOW + 30, UTC))


async def test_database_from_a_newer_version_is_left_alone(
    frozen_now: None,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A newer version's file is not touched: polling and sensors go on without recording, a repair says why."""
    path = Path(hass.config.path(DB_FILENAME))
    store = HistoryStore(path)
    await store.async_open()
    await store.async_add("nas", replace(FULL_SAMPLE, timestamp=NOW - 3600))
    await store.async_close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    before = path.read_bytes()

    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert mock_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "database_too_new")
    assert issue is not None
    assert issue.translation_key == "database_too_new"
    assert issue.translation_placeholders == {
        "path": str(path),
        "found": str(SCHEMA_VERSION + 1),
        "supported": str(SCHEMA_VERSION),
    }
    assert get_history(hass).store is None
    mock_client.async_fetch.return_value = replace(
        FULL_SAMPLE, timestamp=NOW + 90, cpu_percent=55.0
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_usage").state == "55.0"
    client = await hass_client()
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export?range=24h&format=csv"
    )
    assert response.status == HTTPStatus.SERVICE_UNAVAILABLE

    # Neither unloading nor deleting the server touches the file.
    await hass.config_entries.async_remove(mock_entry.entry_id)
    await hass.async_block_till_done()
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.glob(f"{DB_FILENAME}*")] == [DB_FILENAME]
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        assert conn.execute("SELECT server_id, ts FROM raw").fetchall() == [
            ("nas", NOW - 3600)
        ]


async def test_repair_goes_once_the_file_opens_again(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """After the newer version's file is moved away, the next setup opens a new one and drops the issue."""
    path = Path(hass.config.path(DB_FILENAME))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, "database_too_new")
    # A second server comes up while the file is refused: it is not tried again.
    second = make_entry(server_id="b", host="10.0.0.2")
    second.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second.entry_id)
    assert get_history(hass).store is None
    await hass.config_entries.async_unload(second.entry_id)

    assert await hass.config_entries.async_unload(mock_entry.entry_id)
    path.rename(path.with_name("moved-away.db"))
    assert await hass.config_entries.async_setup(mock_entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, "database_too_new") is None
    store = get_history(hass).store
    assert store is not None
    assert await store.async_latest_ts("nas") == FULL_SAMPLE.timestamp


async def test_clock_jump_through_home_assistant_loses_nothing(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Home Assistant's clock jumps 2 years ahead and back: every stored row stays, rollups go on."""
    path = Path(hass.config.path(DB_FILENAME))
    store = HistoryStore(path)
    await store.async_open()
    await store.async_add_many(
        "nas",
        [replace(FULL_SAMPLE, timestamp=ts) for ts in range(NOW - 6 * 86400, NOW, 600)],
    )
    await store.async_rollup(NOW)
    await store.async_close()
    before = table_ts(path)
    assert all(before.values())

    async def poll_now() -> Sample:
        return replace(FULL_SAMPLE, timestamp=int(dt_util.utcnow().timestamp()))

    mock_client.async_fetch.side_effect = poll_now
    freezer.move_to(datetime.fromtimestamp(NOW + 30, UTC))
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = get_history(hass).store
    coordinator = mock_entry.runtime_data.coordinator

    # Two years ahead: the hourly rollup runs on that clock, polls go on and show.
    freezer.move_to(datetime.fromtimestamp(NOW + 2 * 365 * 86400 + 3600 + 61, UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert await store.async_latest_ts("nas") == NOW + 30
    assert before["raw"] <= table_ts(path)["raw"]
    # Back to the right time: polls are recorded again and the hour they fill is rolled up.
    freezer.move_to(datetime.fromtimestamp(NOW + 120, UTC))
    await coordinator.async_refresh()
    assert await store.async_latest_ts("nas") == NOW + 120
    freezer.move_to(datetime.fromtimestamp(NOW + 3600 + 61, UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    after = table_ts(path)
    for tier, kept in before.items():
        assert kept <= after[tier]
    assert ("nas", NOW) in after["hourly"]


async def test_two_servers_share_one_store(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """The history closes only when the last server unloads."""
    first = make_entry(server_id="a", host="10.0.0.1")
    second = make_entry(server_id="b", host="10.0.0.2")
    first.add_to_hass(hass)
    second.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = get_history(hass).store
    assert get_history(hass).store is store
    await hass.config_entries.async_unload(first.entry_id)
    assert not store.closed
    await hass.config_entries.async_unload(second.entry_id)
    assert store.closed


async def test_store_stays_open_for_a_server_still_setting_up(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """Unloading one server while another is in its first refresh keeps the history open for it."""
    first = make_entry(server_id="a", host="10.0.0.1")
    first.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert first.state is ConfigEntryState.LOADED

    answer = asyncio.Event()

    async def slow_fetch() -> Sample:
        await answer.wait()
        return FULL_SAMPLE

    mock_client.async_fetch.side_effect = slow_fetch
    second = make_entry(server_id="b", host="10.0.0.2")
    second.add_to_hass(hass)
    setup = hass.async_create_task(hass.config_entries.async_setup(second.entry_id))
    await asyncio.sleep(0)
    assert second.state is ConfigEntryState.SETUP_IN_PROGRESS
    assert await hass.config_entries.async_unload(first.entry_id)
    answer.set()
    assert await setup
    assert second.state is ConfigEntryState.LOADED
    store = get_history(hass).store
    assert store is not None
    assert not store.closed
    assert await store.async_latest_ts("b") == FULL_SAMPLE.timestamp


async def test_failed_setup_releases_the_history(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """A server waiting for a setup retry does not keep the history open."""
    mock_client.async_fetch.side_effect = CannotConnect("refused")
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert mock_entry.state is ConfigEntryState.SETUP_RETRY
    assert get_history(hass).store is None


async def test_remove_entry_deletes_history(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Deleting a server removes its rows; others keep theirs, and the unused store is closed."""
    store = get_history(hass).store
    await store.async_add("other", FULL_SAMPLE)
    assert await store.async_latest_ts("nas") == FULL_SAMPLE.timestamp
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert store.closed
    assert get_history(hass).store is None
    reopened = HistoryStore(Path(hass.config.path(DB_FILENAME)))
    await reopened.async_open()
    try:
        assert await reopened.async_latest_ts("nas") is None
        assert await reopened.async_latest_ts("other") == FULL_SAMPLE.timestamp
    finally:
        await reopened.async_close()


async def test_database_that_cannot_be_opened_does_not_stop_polling(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unopenable file: sensors work, a repair says why, no traceback; a reload after the fix opens it."""
    path = Path(hass.config.path(DB_FILENAME))
    path.mkdir()
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert mock_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    assert get_history(hass).store is None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "database_unavailable")
    assert issue is not None
    assert issue.translation_placeholders["path"] == str(path)
    assert "unable to open database file" in issue.translation_placeholders["error"]
    assert not [r for r in caplog.records if r.exc_info]

    path.rmdir()
    assert await hass.config_entries.async_reload(mock_entry.entry_id)
    await hass.async_block_till_done()
    assert get_history(hass).store is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, "database_unavailable") is None


async def test_failed_rollup_waits_for_the_next_hour(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rollup that fails is logged in one line and runs again at the next hour."""
    store = get_history(hass).store
    calls: list[int] = []
    original = store.async_rollup

    async def flaky(now: int) -> object:
        calls.append(now)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return await original(now)

    store.async_rollup = flaky  # type: ignore[method-assign]
    for hour in (1, 2):
        freezer.move_to(datetime.fromtimestamp(NOW + hour * 3600 + 61, UTC))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert len(calls) == 2
    assert "History rollup failed (disk I/O error)" in caplog.text
    assert not [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]
    store.async_rollup = original  # type: ignore[method-assign]
