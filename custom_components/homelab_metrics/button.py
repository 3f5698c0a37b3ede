"""The "Export metrics" button: a download link in a notification, for the selected range and format."""

from __future__ import annotations

from homeassistant.components import persistent_notification
from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import DOMAIN
from .coordinator import HomelabConfigEntry
from .entity import HomelabEntity
from .export_request import prepare_export, signed_path

PARALLEL_UPDATES = 1

EXPORT = ButtonEntityDescription(key="export", translation_key="export")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomelabConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Create the export button of a server."""
    async_add_entities([HomelabExportButton(entry.runtime_data.coordinator, EXPORT)])


class HomelabExportButton(HomelabEntity, ButtonEntity):
    """Prepares an export and posts its signed link as a persistent notification."""

    @property
    def available(self) -> bool:
        """The history can be exported while the server is down."""
        return True

    async def async_press(self) -> None:
        """Export with the server's selected range and format."""
        entry = self.coordinator.config_entry
        choice = entry.runtime_data.export_choice
        plan = prepare_export(
            self.hass,
            self.coordinator.server_id,
            range_=choice.range,
            fmt=choice.format,
        )
        url = signed_path(self.hass, plan)
        persistent_notification.async_create(
            self.hass,
            f"[{plan.filename}]({url})\n\n"
            f"{plan.server_name}: {plan.range_label}, {plan.fmt.upper()}. The link works for one hour.",
            title=f"{plan.server_name}: metrics export",
            notification_id=f"{DOMAIN}_{self.coordinator.server_id}_export",
        )
