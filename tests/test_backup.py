"""Backup platform: the history holds its writes while Home Assistant copies the file."""

from __future__ import annotations

from dataclasses import replace
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics import backup
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import FULL_SAMPLE, NOW, async_next_poll


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
