"""Homelab Metrics: homelab servers polled through node_exporter, Glances or a Prometheus server."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType
from homeassistant.loader import async_get_integration

from .const import CONF_AGENT, DOMAIN, AgentKind
from .coordinator import (
    HomelabConfigEntry,
    HomelabCoordinator,
    HomelabData,
    PrometheusCoordinator,
    Server,
    async_create_client,
    async_create_prometheus_client,
    configured_servers,
)
from .fleet import (
    async_forget_servers,
    async_remove_node_device,
    async_watch_new_nodes,
)
from .history_import import HistoryImporter, async_start_imports
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
    """Start polling a server, or a Prometheus server's nodes; they use the history until it unloads."""
    history = get_history(hass)
    await history.async_acquire(entry.entry_id)
    # Also run after a failed setup attempt, so a retrying server does not hold the store.
    entry.async_on_unload(partial(history.async_release, entry.entry_id))
    agent = AgentKind(entry.data[CONF_AGENT])
    coordinator: HomelabCoordinator | PrometheusCoordinator
    importer: HistoryImporter | None = None
    if agent is AgentKind.PROMETHEUS:
        coordinator = PrometheusCoordinator(
            hass, entry, async_create_prometheus_client(hass, entry.data)
        )
        # From the first discovery on: nodes added there are polled in the same refresh.
        async_watch_new_nodes(hass, entry, coordinator)
        await coordinator.async_config_entry_first_refresh()
        # The nodes' devices name it as their via_device: it must exist before them.
        dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id, **coordinator.hub_device_info()
        )
        importer = async_start_imports(hass, entry, coordinator)
    else:
        coordinator = HomelabCoordinator(
            hass, entry, async_create_client(hass, agent, entry.data)
        )
        await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = HomelabData(
        coordinator=coordinator,
        servers={
            server_id: Server(config=config, coordinator=coordinator)
            for server_id, config in configured_servers(entry).items()
        },
        importer=importer,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    return True


async def _async_reload(hass: HomeAssistant, entry: HomelabConfigEntry) -> None:
    """Options, reconfigure and reauth all change the entry: start it again with the new settings."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> bool:
    """Stop polling (the history is released by the entry's unload callback)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> None:
    """A deleted entry takes the history of its servers with it (an unavailable one keeps it)."""
    await async_forget_servers(hass, entry, list(configured_servers(entry)))


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HomelabConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Whether the user may delete this device: only a node the Prometheus server no longer has."""
    return await async_remove_node_device(hass, entry, device)
