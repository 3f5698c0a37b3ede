"""Export range and format of a server's "Export metrics" button; remembered across restarts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .coordinator import ExportChoice, HomelabConfigEntry, Server
from .entity import HomelabEntity
from .export.choices import ExportFormat, ExportRange

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HomelabSelectDescription(SelectEntityDescription):
    """A select that shows and sets one part of the server's ExportChoice."""

    current_fn: Callable[[ExportChoice], str]
    select_fn: Callable[[ExportChoice, str], None]
    """Sets an option that is one of `options`."""


def _set_range(choice: ExportChoice, option: str) -> None:
    choice.range = ExportRange(option)


def _set_format(choice: ExportChoice, option: str) -> None:
    choice.format = ExportFormat(option)


SELECTS: tuple[HomelabSelectDescription, ...] = (
    HomelabSelectDescription(
        key="export_range",
        translation_key="export_range",
        entity_category=EntityCategory.CONFIG,
        options=[r.value for r in ExportRange],
        current_fn=lambda choice: choice.range.value,
        select_fn=_set_range,
    ),
    HomelabSelectDescription(
        key="export_format",
        translation_key="export_format",
        entity_category=EntityCategory.CONFIG,
        options=[f.value for f in ExportFormat],
        current_fn=lambda choice: choice.format.value,
        select_fn=_set_format,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomelabConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Create the export selects of each server."""
    async_add_entities(
        HomelabExportSelect(server, description)
        for server in entry.runtime_data.servers.values()
        for description in SELECTS
    )


class HomelabExportSelect(HomelabEntity, SelectEntity, RestoreEntity):
    """Choice used by the server's export button."""

    entity_description: HomelabSelectDescription

    def __init__(self, server: Server, description: HomelabSelectDescription) -> None:
        """Bind the select to the server's shared choice."""
        super().__init__(server, description)
        self._choice: ExportChoice = server.export_choice

    @property
    def available(self) -> bool:
        """A setting, usable while the server is down (its history is not)."""
        return True

    @property
    def current_option(self) -> str:
        """The chosen option."""
        return self.entity_description.current_fn(self._choice)

    async def async_added_to_hass(self) -> None:
        """Take back the option chosen before the restart."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        if last is not None and last.state in self.options:
            self.entity_description.select_fn(self._choice, last.state)

    async def async_select_option(self, option: str) -> None:
        """Remember the new choice (Home Assistant has checked it is one of the options)."""
        self.entity_description.select_fn(self._choice, option)
        self.async_write_ha_state()
