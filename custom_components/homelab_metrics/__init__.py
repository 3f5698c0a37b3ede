"""Homelab Metrics: homelab servers polled through node_exporter or Glances."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType
from homeassistant.loader import async_get_integration

from .const import CONF_AGENT, CONF_SERVER_ID, DOMAIN, AgentKind
from .coordinator import (
    HomelabConfigEntry,
    HomelabCoordinator,
    HomelabData,
    async_create_client,
)
from .history_manager import HISTORY, HistoryManager, get_history
from .http import async_register_views
from .services import async_setup_services

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.SELECT,
    Platform.SENSOR,
]
CARD_URL = "/homelab_metrics/homelab-metrics-export-card.js"
CARD_FILE = Path(__file__).parent / "frontend" / "homelab-metrics-export-card.js"
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up what all servers share: the history, the action, the views and the card."""
    hass.data[HISTORY] = HistoryManager(hass)
    async_setup_services(hass)
    async_register_views(hass)
    await hass.http.async_register_static_paths(
        [StaticPathConfig(CARD_URL, str(CARD_FILE), cache_headers=True)]
    )
    if "frontend" in hass.config.components:
        version = (await async_get_integration(hass, DOMAIN)).version
        # The version in the query makes browsers fetch the card again after an upgrade.
        add_extra_js_url(hass, f"{CARD_URL}?v={version}")
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> bool:
    """Start polling a server; it uses the history from here until it unloads."""
    history = get_history(hass)
    await history.async_acquire(entry.entry_id)
    # Also run after a failed setup attempt, so a retrying server does not hold the store.
    entry.async_on_unload(partial(history.async_release, entry.entry_id))
    coordinator = HomelabCoordinator(
        hass,
        entry,
        async_create_client(hass, AgentKind(entry.data[CONF_AGENT]), entry.data),
    )
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = HomelabData(coordinator=coordinator)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    return True


async def _async_reload(hass: HomeAssistant, entry: HomelabConfigEntry) -> None:
    """Options, reconfigure and reauth all change the entry: start it again with the new settings."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> bool:
    """Stop polling a server (the history is released by the entry's unload callback)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> None:
    """A deleted server takes its history with it (an unavailable one keeps it)."""
    await get_history(hass).async_remove_server(entry.data[CONF_SERVER_ID])
