"""Sensors: what the server's agent reports in each poll."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfDataRate,
    UnitOfInformation,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import StateType

from .agents.base import Sample
from .coordinator import HomelabConfigEntry
from .entity import HomelabEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HomelabSensorDescription(SensorEntityDescription):
    """A sensor read from a Sample."""

    value_fn: Callable[[Sample], StateType | datetime]
    always_exists: bool = False
    """Rates need two polls, so their first value is missing even on agents that have them."""


def _percent(key: str, *, disabled: bool = False) -> HomelabSensorDescription:
    return HomelabSensorDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_registry_enabled_default=not disabled,
        value_fn=lambda sample: getattr(sample, key),
        always_exists=key == "cpu_percent",
    )


def _bytes(key: str, *, disabled: bool = False) -> HomelabSensorDescription:
    return HomelabSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=not disabled,
        value_fn=lambda sample: getattr(sample, key),
    )


def _load(key: str) -> HomelabSensorDescription:
    return HomelabSensorDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda sample: getattr(sample, key),
    )


def _rate(key: str) -> HomelabSensorDescription:
    return HomelabSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.BYTES_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda sample: getattr(sample, key),
        always_exists=True,
    )


def _boot_time(sample: Sample) -> datetime | None:
    """When the server booted; None when the agent's figure fits no datetime.

    Value functions run in setup and in every coordinator update: one that raised would leave
    the platform without sensors, or the listeners after it with stale states.
    """
    if sample.boot_time is None:
        return None
    try:
        return datetime.fromtimestamp(sample.boot_time, UTC)
    except (OverflowError, OSError, ValueError):
        return None


SENSORS: tuple[HomelabSensorDescription, ...] = (
    _percent("cpu_percent"),
    _percent("memory_percent"),
    _bytes("memory_used_bytes"),
    _bytes("memory_total_bytes", disabled=True),
    _percent("disk_percent"),
    _bytes("disk_used_bytes"),
    _bytes("disk_total_bytes", disabled=True),
    _load("load_1m"),
    _load("load_5m"),
    _load("load_15m"),
    _rate("network_rx_bytes_per_second"),
    _rate("network_tx_bytes_per_second"),
    HomelabSensorDescription(
        key="temperature_celsius",
        translation_key="temperature_celsius",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda sample: sample.temperature_celsius,
    ),
    HomelabSensorDescription(
        key="boot_time",
        translation_key="boot_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_boot_time,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomelabConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Create the sensors this server's agent gives values for."""
    coordinator = entry.runtime_data.coordinator
    first = coordinator.data
    async_add_entities(
        HomelabSensor(coordinator, description)
        for description in SENSORS
        if description.always_exists or description.value_fn(first) is not None
    )


class HomelabSensor(HomelabEntity, SensorEntity):
    """A number (or time) the agent reported in the last poll."""

    entity_description: HomelabSensorDescription

    @property
    def available(self) -> bool:
        """Unavailable while the agent is down or does not give this value, never 0."""
        return super().available and self.native_value is not None

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the latest sample."""
        return self.entity_description.value_fn(self.coordinator.data)
