"""Diagnostics of an entry: settings with credentials removed, the last samples, the poll state."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
)
from homeassistant.core import HomeAssistant

from .const import CONF_IGNORED, CONF_NODES
from .coordinator import HomelabConfigEntry, HomelabCoordinator

TO_REDACT = {
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_HOST,
    CONF_TOKEN,
    CONF_URL,
    "unique_id",
    "configuration_url",
    "title",
    "hostname",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HomelabConfigEntry
) -> dict[str, Any]:
    """What support needs to see, without secrets, host names or process lists."""
    coordinator = entry.runtime_data.coordinator
    common = {
        "last_update_success": coordinator.last_update_success,
        "last_exception": repr(coordinator.last_exception)
        if coordinator.last_exception
        else None,
    }
    if isinstance(coordinator, HomelabCoordinator):
        return {
            "entry": async_redact_data(entry.as_dict(), TO_REDACT),
            **common,
            "agent": async_redact_data(asdict(coordinator.client.info), TO_REDACT),
            "sample": asdict(coordinator.data) if coordinator.data else None,
        }
    # A Prometheus server: its nodes by server id, without the instances and host names
    # (the options hold them as keys, which redaction would not reach).
    entry_dict = entry.as_dict()
    options = dict(entry_dict["options"])
    options[CONF_NODES] = len(options.get(CONF_NODES, {}))
    options[CONF_IGNORED] = len(options.get(CONF_IGNORED, []))
    entry_dict["options"] = options
    nodes: dict[str, Any] = {}
    for server_id, server in entry.runtime_data.servers.items():
        node = coordinator.nodes.get(server.config.instance or "")
        sample = server.sample
        nodes[server_id] = {
            "online": server.online,
            "scrape_interval": node.scrape_interval if node else None,
            "os": node.os if node else None,
            "node_exporter": node.version if node else None,
            "sample": asdict(sample) if sample else None,
        }
    return {
        "entry": async_redact_data(entry_dict, TO_REDACT),
        **common,
        "server_version": coordinator.server_info.version
        if coordinator.server_info
        else None,
        "scraped_nodes": len(coordinator.nodes),
        "rate_window": coordinator.rate_window,
        "nodes": nodes,
    }
