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
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .agents.base import Sample
from .coordinator import HomelabConfigEntry
from .entity import HomelabEntity

PARALLEL_UPDATES = 0

type SensorValue = float | int | datetime | None


@dataclass(frozen=True, kw_only=True)
class HomelabSensorDescription(SensorEntityDescription):
    """A sensor read from a Sample.

    value_fn must not raise: it runs in setup and in every coordinator update.
    """

    value_fn: Callable[[Sample], SensorValue]
    exists_fn: Callable[[Sample], bool] | None = None
    """Whether the server has this metric; when None, once a sample gives it a value."""


def _exists(description: HomelabSensorDescription, sample: Sample) -> bool:
    """Whether a sensor for this description belongs to the server that sent the sample."""
    if description.exists_fn is not None:
        return description.exists_fn(sample)
    return description.value_fn(sample) is not None


def _rate(_: Sample) -> bool:
    """A rate: every agent has it, but only from the second poll, so it exists from the first.

    node_exporter's CPU figure and both agents' network figures come from counter deltas between
    our polls; Glances answers zeros for CPU until it has measured once.
    """
    return True


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
    HomelabSensorDescription(
        key="cpu_percent",
        translation_key="cpu_percent",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.cpu_percent,
        exists_fn=_rate,
    ),
    HomelabSensorDescription(
        key="memory_percent",
        translation_key="memory_percent",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.memory_percent,
    ),
    HomelabSensorDescription(
        key="memory_used_bytes",
        translation_key="memory_used_bytes",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.memory_used_bytes,
    ),
    HomelabSensorDescription(
        key="memory_total_bytes",
        translation_key="memory_total_bytes",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.memory_total_bytes,
    ),
    HomelabSensorDescription(
        key="disk_percent",
        translation_key="disk_percent",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.disk_percent,
    ),
    HomelabSensorDescription(
        key="disk_used_bytes",
        translation_key="disk_used_bytes",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.disk_used_bytes,
    ),
    HomelabSensorDescription(
        key="disk_total_bytes",
        translation_key="disk_total_bytes",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.disk_total_bytes,
    ),
    HomelabSensorDescription(
        key="load_1m",
        translation_key="load_1m",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda s: s.load_1m,
    ),
    HomelabSensorDescription(
        key="load_5m",
        translation_key="load_5m",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda s: s.load_5m,
    ),
    HomelabSensorDescription(
        key="load_15m",
        translation_key="load_15m",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda s: s.load_15m,
    ),
    HomelabSensorDescription(
        key="network_rx_bytes_per_second",
        translation_key="network_rx_bytes_per_second",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.BYTES_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.network_rx_bytes_per_second,
        exists_fn=_rate,
    ),
    HomelabSensorDescription(
        key="network_tx_bytes_per_second",
        translation_key="network_tx_bytes_per_second",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.BYTES_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.network_tx_bytes_per_second,
        exists_fn=_rate,
    ),
    HomelabSensorDescription(
        key="temperature_celsius",
        translation_key="temperature_celsius",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.temperature_celsius,
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
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the sensors this server has, and later those of metrics it starts to report."""
    coordinator = entry.runtime_data.coordinator
    added: set[str] = set()

    @callback
    def async_add_new_sensors() -> None:
        """Add a sensor for each metric that appeared (lm-sensors installed, a plugin enabled)."""
        new = [
            description
            for description in SENSORS
            if description.key not in added and _exists(description, coordinator.data)
        ]
        if new:
            added.update(description.key for description in new)
            async_add_entities(
                HomelabSensor(coordinator, description) for description in new
            )

    async_add_new_sensors()
    if len(added) < len(SENSORS):
        entry.async_on_unload(coordinator.async_add_listener(async_add_new_sensors))


class HomelabSensor(HomelabEntity, SensorEntity):
    """A number (or time) the agent reported in the last poll."""

    entity_description: HomelabSensorDescription

    @property
    def available(self) -> bool:
        """Unavailable while the agent is down or does not give this value, never 0."""
        return super().available and self.native_value is not None

    @property
    def native_value(self) -> SensorValue:
        """The value from the latest sample."""
        return self.entity_description.value_fn(self.coordinator.data)
