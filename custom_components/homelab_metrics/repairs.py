"""Repairs: the fix flow that adds the nodes a Prometheus server started scraping."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import voluptuous as vol

from .config_flow import nodes_selector
from .const import CONF_IMPORT, CONF_NODES, DOMAIN
from .coordinator import PrometheusCoordinator
from .fleet import ISSUE_NEW_NODES, added_nodes, new_nodes, node_label, with_nodes


class NewNodesFlow(RepairsFlow):
    """Choose which of a Prometheus server's new nodes become servers; the rest are left out."""

    def __init__(self, entry_id: str) -> None:
        """For the entry of the issue."""
        self._entry_id = entry_id

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """The flow starts with the issue's data, not the user's: go to the form."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> data_entry_flow.FlowResult:
        """Show the new nodes, all ticked, and add those still ticked."""
        entry: ConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        runtime = getattr(entry, "runtime_data", None)
        if (
            entry is None
            or runtime is None
            or not isinstance(runtime.coordinator, PrometheusCoordinator)
        ):
            return self.async_abort(reason="entry_gone")
        found = new_nodes(entry, runtime.coordinator.nodes.values())
        if user_input is not None:
            wanted = set(user_input[CONF_NODES])
            added = added_nodes(
                self.hass,
                (node for node in found if node.instance in wanted),
                import_history=bool(user_input[CONF_IMPORT]),
            )
            left_out = [node.instance for node in found if node.instance not in wanted]
            ir.async_delete_issue(
                self.hass, DOMAIN, f"{ISSUE_NEW_NODES}_{self._entry_id}"
            )
            # The entry's update listener reloads it with the new nodes.
            self.hass.config_entries.async_update_entry(
                entry, options=with_nodes(entry.options, added, left_out)
            )
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(
            DOMAIN, f"{ISSUE_NEW_NODES}_{self._entry_id}"
        )
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_NODES, default=[node.instance for node in found]
                    ): nodes_selector(
                        {node.instance: node_label(node) for node in found}
                    ),
                    vol.Required(
                        CONF_IMPORT, default=entry.options.get(CONF_IMPORT, True)
                    ): bool,
                }
            ),
            description_placeholders=dict(issue.translation_placeholders or {})
            if issue is not None
            else {"server": entry.title, "nodes": "", "count": str(len(found))},
        )


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """The fix flow of an issue this integration raised."""
    if issue_id.startswith(f"{ISSUE_NEW_NODES}_") and data is not None:
        return NewNodesFlow(str(data["entry_id"]))
    raise ValueError(f"no fix flow for {issue_id}")
