"""Homelab Metrics: homelab servers polled through node_exporter or Glances."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
import logging
from pathlib import Path

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.const import (
    EVENT_CORE_CONFIG_UPDATE,
    EVENT_HOMEASSISTANT_STOP,
    Platform,
)
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.typing import ConfigType
from homeassistant.loader import async_get_integration
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import CONF_AGENT, CONF_SERVER_ID, DB_FILENAME, DOMAIN, AgentKind
from .coordinator import (
    HomelabConfigEntry,
    HomelabCoordinator,
    HomelabData,
    async_create_client,
)
from .history.store import HistoryStore

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.SELECT,
    Platform.SENSOR,
]
CARD_URL = "/homelab_metrics/homelab-metrics-export-card.js"
CARD_FILE = Path(__file__).parent / "frontend" / "homelab-metrics-export-card.js"
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
ROLLUP_MINUTE = 1
"""Rollups run a minute past every hour, when the previous hour (and, after midnight, day) is complete."""


@dataclass(kw_only=True)
class HistoryHolder:
    """The one history store of all servers, opened with the first server and closed with the last."""

    store: HistoryStore | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    unsubscribe: list[CALLBACK_TYPE] = field(default_factory=list)
    catch_up: asyncio.Task[None] | None = None


HISTORY: HassKey[HistoryHolder] = HassKey(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up what all servers share: the history holder, the action, the views and the card."""
    hass.data[HISTORY] = HistoryHolder()
    # Imported here: both modules import this one for async_get_store.
    from .http import async_register_views
    from .services import async_setup_services

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


async def async_get_store(hass: HomeAssistant) -> HistoryStore:
    """The open history store, opening it (and catching up rollups) on first use."""
    holder = hass.data[HISTORY]
    async with holder.lock:
        if holder.store is not None:
            return holder.store
        store = HistoryStore(
            Path(hass.config.path(DB_FILENAME)), time_zone=hass.config.time_zone
        )
        await store.async_open()
        if store.recovered_from is not None:
            ir.async_create_issue(
                hass,
                DOMAIN,
                "database_corrupt",
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="database_corrupt",
                translation_placeholders={"path": str(store.recovered_from)},
            )

        async def _rollup(now: datetime) -> None:
            await _async_rollup(store, now)

        @callback
        def _time_zone_changed(event: Event) -> None:
            store.set_time_zone(hass.config.time_zone)

        async def _close_on_stop(event: Event) -> None:
            # A once-listener is gone after it fired: it must not be unsubscribed again.
            holder.unsubscribe.remove(unsubscribe_stop)
            await _async_close_store(hass)

        unsubscribe_stop = hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, _close_on_stop
        )
        holder.unsubscribe = [
            async_track_time_change(hass, _rollup, minute=ROLLUP_MINUTE, second=0),
            hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, _time_zone_changed),
            unsubscribe_stop,
        ]
        holder.store = store
        # Catch up on everything missed while Home Assistant was down, without delaying setup.
        holder.catch_up = hass.async_create_background_task(
            _async_rollup(store, dt_util.utcnow()), f"{DOMAIN} catch-up rollup"
        )
    return store


async def _async_rollup(store: HistoryStore, now: datetime) -> None:
    """Roll up complete buckets and prune; a failure waits for the next hour."""
    try:
        await store.async_rollup(int(now.timestamp()))
    except Exception:
        _LOGGER.exception("History rollup failed; it will be retried next hour")


async def _async_close_store(hass: HomeAssistant) -> None:
    """Stop the schedules and close the database (its thread ends)."""
    holder = hass.data[HISTORY]
    async with holder.lock:
        if holder.store is None:
            return
        for unsubscribe in holder.unsubscribe:
            unsubscribe()
        holder.unsubscribe = []
        if holder.catch_up is not None and not holder.catch_up.done():
            holder.catch_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holder.catch_up
        holder.catch_up = None
        store, holder.store = holder.store, None
        await store.async_close()


async def async_setup_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> bool:
    """Start polling a server."""
    store = await async_get_store(hass)
    agent = AgentKind(entry.data[CONF_AGENT])
    coordinator = HomelabCoordinator(
        hass, entry, async_create_client(hass, agent, entry.data), store
    )
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = HomelabData(coordinator=coordinator, store=store)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    return True


async def _async_reload(hass: HomeAssistant, entry: HomelabConfigEntry) -> None:
    """Options, reconfigure and reauth all change the entry: start it again with the new settings."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> bool:
    """Stop polling a server; close the history with the last server."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await _async_close_if_unused(hass, entry)
    return unloaded


async def _async_close_if_unused(
    hass: HomeAssistant, leaving: HomelabConfigEntry
) -> None:
    """Close the store when no other server of ours is loaded."""
    if not any(
        other.entry_id != leaving.entry_id
        for other in hass.config_entries.async_loaded_entries(DOMAIN)
    ):
        await _async_close_store(hass)


async def async_remove_entry(hass: HomeAssistant, entry: HomelabConfigEntry) -> None:
    """A deleted server takes its history with it (an unavailable one keeps it)."""
    store = await async_get_store(hass)
    await store.async_remove_server(entry.data[CONF_SERVER_ID])
    await _async_close_if_unused(hass, entry)
