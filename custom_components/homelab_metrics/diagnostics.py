"""Diagnostics of a server: settings with credentials removed, the last sample, the poll state."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .coordinator import HomelabConfigEntry

TO_REDACT = {
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_HOST,
    "unique_id",
    "configuration_url",
    "title",
    "hostname",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HomelabConfigEntry
) -> dict[str, Any]:
    """What support needs to see, without secrets or process lists."""
    coordinator = entry.runtime_data.coordinator
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "last_update_success": coordinator.last_update_success,
        "last_exception": repr(coordinator.last_exception)
        if coordinator.last_exception
        else None,
        "agent": async_redact_data(asdict(coordinator.client.info), TO_REDACT),
        "sample": asdict(coordinator.data) if coordinator.data else None,
    }
