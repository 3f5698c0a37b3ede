"""Connectivity: whether the server's agent answered the last poll."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import HomelabConfigEntry
from .entity import HomelabEntity

PARALLEL_UPDATES = 0

ONLINE = BinarySensorEntityDescription(
    key="online",
    translation_key="online",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomelabConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the server's connectivity sensor."""
    async_add_entities([HomelabOnlineSensor(entry.runtime_data.coordinator, ONLINE)])


class HomelabOnlineSensor(HomelabEntity, BinarySensorEntity):
    """On while the agent answers; stays available so that "off" can be seen and automated on."""

    @property
    def available(self) -> bool:
        """Always available: being unreachable is this sensor's "off"."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether the last poll succeeded."""
        return self.coordinator.last_update_success
