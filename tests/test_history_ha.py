"""The history inside Home Assistant: scheduled rollups, repairs, backups, shutdown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
import itertools
from pathlib import Path
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.homelab_metrics import backup
from custom_components.homelab_metrics.const import DB_FILENAME, DOMAIN
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import FULL_SAMPLE, NOW, async_next_poll


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
    from custom_components.homelab_metrics.history.store import HistoryStore

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


async def test_backup_hooks_queue_samples(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """During a backup, samples wait in memory and land afterwards; nothing is lost."""
    store = get_history(hass).store
    await backup.async_pre_backup(hass)
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, timestamp=NOW + 60)
    await async_next_poll(hass, freezer)
    assert await store.async_latest_ts("nas") == NOW
    await backup.async_post_backup(hass)
    assert await store.async_latest_ts("nas") == NOW + 60


async def test_backup_hooks_without_store(hass: HomeAssistant) -> None:
    """A backup before any server is set up has nothing to pause."""
    await backup.async_pre_backup(hass)
    await backup.async_post_backup(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await backup.async_pre_backup(hass)
    await backup.async_post_backup(hass)


async def test_stop_closes_history(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Stopping Home Assistant closes the database and ends its thread."""
    store = get_history(hass).store
    await hass.async_stop()
    assert store.closed
