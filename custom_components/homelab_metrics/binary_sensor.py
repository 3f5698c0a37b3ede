"""Binary sensors: whether the server's agent answered the last poll, and whether it needs a reboot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .agents.base import Sample
from .coordinator import HomelabConfigEntry
from .entity import Candidates, HomelabEntity, async_add_as_they_appear

PARALLEL_UPDATES = 0

ONLINE = BinarySensorEntityDescription(
    key="online",
    translation_key="online",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
)


@dataclass(frozen=True, kw_only=True)
class HomelabBinarySensorDescription(BinarySensorEntityDescription):
    """A yes/no the agent reports; created once a sample gives it (None: the agent does not say)."""

    value_fn: Callable[[Sample], bool | None]


BINARY_SENSORS: tuple[HomelabBinarySensorDescription, ...] = (
    # No device class, as core's system_bridge "Pending reboot": neither "problem" nor
    # "update" (an update available) says what it means; the name does, with On/Off.
    HomelabBinarySensorDescription(
        key="reboot_required",
        translation_key="reboot_required",
        value_fn=lambda s: s.reboot_required,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomelabConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the connectivity sensor, and the others once the agent reports them."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([HomelabOnlineSensor(coordinator, ONLINE)])

    def candidates(sample: Sample) -> Candidates:
        for description in BINARY_SENSORS:
            if description.value_fn(sample) is not None:
                yield (
                    description.key,
                    partial(HomelabBinarySensor, coordinator, description),
                )

    async_add_as_they_appear(entry, async_add_entities, candidates)


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


class HomelabBinarySensor(HomelabEntity, BinarySensorEntity):
    """A yes/no from the latest sample; unavailable while the agent is down or stops saying."""

    entity_description: HomelabBinarySensorDescription

    @property
    def available(self) -> bool:
        """Unavailable rather than a guessed "off"."""
        return super().available and self.is_on is not None

    @property
    def is_on(self) -> bool | None:
        """The value from the latest sample."""
        return self.entity_description.value_fn(self.coordinator.data)
