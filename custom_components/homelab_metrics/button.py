"""The "Export metrics" button: a download link in a notification, for the selected range and format."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from homeassistant.components import persistent_notification
from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.translation import async_get_translations

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
        choice = self.coordinator.config_entry.runtime_data.export_choice
        plan = prepare_export(
            self.hass,
            self.coordinator.server_id,
            range_=choice.range,
            fmt=choice.format,
        )
        text = await _async_texts(self.hass)
        message = text("common.export_notification_message").format(
            range=text(f"entity.select.export_range.state.{plan.range_label}"),
            format=text(f"entity.select.export_format.state.{plan.fmt}"),
        )
        persistent_notification.async_create(
            self.hass,
            f"{_download_link(signed_path(self.hass, plan), plan.filename)}\n\n{message}",
            title=text("common.export_notification_title").format(
                server=plan.server_name
            ),
            notification_id=f"{DOMAIN}_{self.coordinator.server_id}_export",
        )


def _download_link(path: str, filename: str) -> str:
    """A link to a relative path that downloads when clicked in Home Assistant's frontend.

    The frontend routes a click on a link to its own origin inside the app (as it would a
    dashboard's path) unless the link has a target; a markdown link has none, so the link is
    written in HTML, which the notification's markdown keeps (href and target are allowed).
    The browser then requests the path from the address in use and saves the file.
    """
    return f'<a href="{escape(path)}" target="_blank">{escape(filename)}</a>'


async def _async_texts(hass: HomeAssistant) -> Callable[[str], str]:
    """The integration's own strings in Home Assistant's language, English where it has none.

    A notification is not rendered by the frontend from a key, so the text is looked up here.
    The notification's own words live under "common" (texts that are neither entities nor
    errors); the range and format are named as the export selects name their options.
    """
    language = hass.config.language
    strings = {
        **await async_get_translations(hass, language, "common", [DOMAIN]),
        **await async_get_translations(hass, language, "entity", [DOMAIN]),
    }
    return lambda key: strings[f"component.{DOMAIN}.{key}"]
