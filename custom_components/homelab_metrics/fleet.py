"""The nodes of a Prometheus server's entry: naming them, adding new ones, removing gone ones.

A Prometheus server's entry keeps in its options the nodes the user chose (by `instance`, each
with the server id and name it was added with) and those the user left out. A node the server
starts scraping later is neither: with "add new nodes automatically" (the default) it is added
at the next discovery, as core integrations add the devices a hub reports later; without it, a
repair issue offers it. A chosen node the server no longer scrapes turns unavailable and can be
deleted from its device page; its history goes with it, as with any deleted server.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util, slugify

from .agents.prometheus import Node
from .const import (
    CONF_ADD_NEW,
    CONF_AGENT,
    CONF_IGNORED,
    CONF_IMPORT,
    CONF_IMPORT_UNTIL,
    CONF_NODES,
    CONF_SERVER_ID,
    DOMAIN,
    AgentKind,
)
from .coordinator import PrometheusCoordinator, configured_servers
from .history_import import async_forget_imports
from .history_manager import get_history

_LOGGER = logging.getLogger(__name__)

ISSUE_NEW_NODES = "new_nodes"
"""Repair issue (one per entry) offering the nodes a server started scraping."""
MAX_LISTED = 20
"""Nodes named in the repair issue's text; the fix flow lists them all."""


def node_name(node: Node) -> str:
    """How a node is called when it is added: its host name, else its instance."""
    return node.nodename or node.instance


def node_label(node: Node) -> str:
    """A node in a list to choose from: host name, instance and job; ⚠ when its scrape fails."""
    text = f"{node_name(node)} ({node.instance} · {node.job})"
    return text if node.up else f"⚠ {text}"


def taken_server_ids(hass: HomeAssistant) -> set[str]:
    """Every server id in use, in every entry of the integration."""
    return {
        server_id
        for entry in hass.config_entries.async_entries(DOMAIN)
        for server_id in configured_servers(entry)
    }


def unique_server_id(name: str, taken: set[str]) -> str:
    """A slug of the name that is not taken (and is then taken); it never changes afterwards."""
    base = slugify(name) or "server"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def added_nodes(
    hass: HomeAssistant,
    nodes: Iterable[Node],
    *,
    import_history: bool,
    taken: set[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The options entry of each node being added: its new server id, its name, its import."""
    taken = taken_server_ids(hass) if taken is None else taken
    now = int(dt_util.utcnow().timestamp())
    added: dict[str, dict[str, Any]] = {}
    for node in sorted(nodes, key=lambda n: n.instance):
        name = node_name(node)
        added[node.instance] = {
            CONF_SERVER_ID: unique_server_id(name, taken),
            "name": name,
        }
        if import_history:
            added[node.instance][CONF_IMPORT_UNTIL] = now
    return added


def new_nodes(entry: ConfigEntry, nodes: Iterable[Node]) -> list[Node]:
    """Nodes neither chosen nor left out by the user: the server started scraping them since."""
    known = set(entry.options.get(CONF_NODES, {})) | set(
        entry.options.get(CONF_IGNORED, [])
    )
    return [node for node in nodes if node.instance not in known]


def with_nodes(
    options: Mapping[str, Any],
    added: Mapping[str, dict[str, Any]],
    left_out: Collection[str] = (),
) -> dict[str, Any]:
    """Options with nodes added and others left out (they are offered no more)."""
    nodes = {**options.get(CONF_NODES, {}), **added}
    ignored = (set(options.get(CONF_IGNORED, [])) | set(left_out)) - set(nodes)
    return {**options, CONF_NODES: nodes, CONF_IGNORED: sorted(ignored)}


@callback
def async_watch_new_nodes(
    hass: HomeAssistant, entry: ConfigEntry, coordinator: PrometheusCoordinator
) -> None:
    """Add or offer the nodes each discovery finds new (registered before the first refresh).

    A node added at setup's discovery is polled in that same refresh; one added later makes the
    entry reload (its update listener), which gives it a device and entities.
    """

    @callback
    def _discovered() -> None:
        found = new_nodes(entry, coordinator.nodes.values())
        issue_id = f"{ISSUE_NEW_NODES}_{entry.entry_id}"
        if not found:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
            return
        if entry.options.get(CONF_ADD_NEW, True):
            added = added_nodes(
                hass, found, import_history=entry.options.get(CONF_IMPORT, False)
            )
            _LOGGER.info(
                "%s scrapes %s new node(s), added: %s",
                entry.title,
                len(added),
                ", ".join(node["name"] for node in added.values()),
            )
            # The update listener reloads the entry with the new nodes' devices.
            hass.config_entries.async_update_entry(
                entry, options=with_nodes(entry.options, added)
            )
            return
        names = sorted(node_name(node) for node in found)
        shown = ", ".join(names[:MAX_LISTED])
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_NEW_NODES,
            translation_placeholders={
                "server": entry.title,
                "count": str(len(names)),
                "nodes": shown if len(names) <= MAX_LISTED else f"{shown}, …",
            },
            data={"entry_id": entry.entry_id},
        )

    entry.async_on_unload(coordinator.async_add_discovery_listener(_discovered))


async def async_forget_servers(
    hass: HomeAssistant, entry: ConfigEntry, server_ids: Collection[str]
) -> None:
    """Delete the history and import progress of servers that are removed."""
    history = get_history(hass)
    for server_id in server_ids:
        await history.async_remove_server(server_id)
    await async_forget_imports(hass, server_ids)


async def async_remove_node_device(
    hass: HomeAssistant, entry: ConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Remove a node the Prometheus server no longer scrapes: its device, options and history.

    Refused for a server polled through its own agent (delete its entry), for the Prometheus
    server's own device, and for a node the server still answers for (leave it out in the
    entry's options instead, or it would simply come back).
    """
    if entry.data.get(CONF_AGENT) != AgentKind.PROMETHEUS:
        return False
    servers = configured_servers(entry)
    ids = {identifier for domain, identifier in device.identifiers if domain == DOMAIN}
    gone = [servers[i] for i in ids if i in servers]
    if not gone:
        return False
    runtime = getattr(entry, "runtime_data", None)
    if runtime is not None and any(
        config.instance in (runtime.coordinator.data or {}) for config in gone
    ):
        return False
    await async_forget_servers(hass, entry, [config.server_id for config in gone])
    instances = {config.instance for config in gone}
    options = dict(entry.options)
    options[CONF_NODES] = {
        instance: node
        for instance, node in options.get(CONF_NODES, {}).items()
        if instance not in instances
    }
    hass.config_entries.async_update_entry(entry, options=options)
    return True
