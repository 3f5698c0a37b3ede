"""Sensors: what the server's agent reports in each poll."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

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
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .agents.base import FilesystemUsage, InterfaceTraffic, Sample
from .coordinator import HomelabConfigEntry, HomelabCoordinator
from .entity import Candidates, HomelabEntity, async_add_as_they_appear

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


def _filesystem(sample: Sample, mountpoint: str) -> FilesystemUsage | None:
    """The filesystem mounted there in this sample; None when it is not (any more)."""
    for filesystem in sample.filesystems:
        if filesystem.mountpoint == mountpoint:
            return filesystem
    return None


def _interface(sample: Sample, name: str) -> InterfaceTraffic | None:
    """The interface of that name in this sample; None when it is gone."""
    for interface in sample.interfaces:
        if interface.name == name:
            return interface
    return None


def _root_free_bytes(sample: Sample) -> int | None:
    """Space left on "/" for ordinary users, as df's Avail."""
    root = _filesystem(sample, "/")
    return None if root is None else root.free_bytes


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
        key="disk_free_bytes",
        translation_key="disk_free_bytes",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_root_free_bytes,
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
        key="swap_percent",
        translation_key="swap_percent",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.swap_percent,
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
        key="updates_pending",
        translation_key="updates_pending",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.updates_pending,
    ),
    HomelabSensorDescription(
        key="boot_time",
        translation_key="boot_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_boot_time,
    ),
)


@dataclass(frozen=True, kw_only=True)
class HomelabPartSensorDescription(SensorEntityDescription):
    """A sensor for each part of the server a sample lists: a mount point, an interface.

    The part's name fills the placeholder of the translated entity name.
    """

    parts_fn: Callable[[Sample], Iterator[str]]
    value_fn: Callable[[Sample, str], SensorValue]
    placeholder: str


def _mountpoints(sample: Sample) -> Iterator[str]:
    """Every filesystem but the root, which has its own Disk sensors (and history column)."""
    return (fs.mountpoint for fs in sample.filesystems if fs.mountpoint != "/")


def _interface_names(sample: Sample) -> Iterator[str]:
    """Every physical interface the agent reports."""
    return (interface.name for interface in sample.interfaces)


def _filesystem_percent(sample: Sample, mountpoint: str) -> float | None:
    fs = _filesystem(sample, mountpoint)
    return None if fs is None else fs.percent


def _filesystem_used(sample: Sample, mountpoint: str) -> int | None:
    fs = _filesystem(sample, mountpoint)
    return None if fs is None else fs.used_bytes


def _filesystem_free(sample: Sample, mountpoint: str) -> int | None:
    fs = _filesystem(sample, mountpoint)
    return None if fs is None else fs.free_bytes


def _interface_rx(sample: Sample, name: str) -> float | None:
    interface = _interface(sample, name)
    return None if interface is None else interface.rx_bytes_per_second


def _interface_tx(sample: Sample, name: str) -> float | None:
    interface = _interface(sample, name)
    return None if interface is None else interface.tx_bytes_per_second


PART_SENSORS: tuple[HomelabPartSensorDescription, ...] = (
    HomelabPartSensorDescription(
        key="filesystem_percent",
        translation_key="filesystem_percent",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        parts_fn=_mountpoints,
        value_fn=_filesystem_percent,
        placeholder="mountpoint",
    ),
    HomelabPartSensorDescription(
        key="filesystem_used",
        translation_key="filesystem_used",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        parts_fn=_mountpoints,
        value_fn=_filesystem_used,
        placeholder="mountpoint",
    ),
    HomelabPartSensorDescription(
        key="filesystem_free",
        translation_key="filesystem_free",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        parts_fn=_mountpoints,
        value_fn=_filesystem_free,
        placeholder="mountpoint",
    ),
    HomelabPartSensorDescription(
        key="interface_rx",
        translation_key="interface_rx",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.BYTES_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        parts_fn=_interface_names,
        value_fn=_interface_rx,
        placeholder="interface",
    ),
    HomelabPartSensorDescription(
        key="interface_tx",
        translation_key="interface_tx",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.BYTES_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        parts_fn=_interface_names,
        value_fn=_interface_tx,
        placeholder="interface",
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomelabConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the sensors this server has, and later those of metrics and parts that appear."""
    coordinator = entry.runtime_data.coordinator

    def candidates(sample: Sample) -> Candidates:
        for description in SENSORS:
            if _exists(description, sample):
                yield description.key, partial(HomelabSensor, coordinator, description)
        for part_description in PART_SENSORS:
            for part in part_description.parts_fn(sample):
                yield (
                    f"{part_description.key}_{part}",
                    partial(HomelabPartSensor, coordinator, part_description, part),
                )

    async_add_as_they_appear(entry, async_add_entities, candidates)


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


class HomelabPartSensor(HomelabEntity, SensorEntity):
    """A figure of one mount point or interface; unavailable while the sample lacks the part."""

    entity_description: HomelabPartSensorDescription

    def __init__(
        self,
        coordinator: HomelabCoordinator,
        description: HomelabPartSensorDescription,
        part: str,
    ) -> None:
        """Name the entity after its part; the unique id holds the part as the agent names it."""
        super().__init__(coordinator, description)
        self.part = part
        self._attr_unique_id = f"{coordinator.server_id}_{description.key}_{part}"
        self._attr_translation_placeholders = {description.placeholder: part}

    @property
    def available(self) -> bool:
        """Unavailable while the agent is down, the part is gone, or its figure is missing."""
        return super().available and self.native_value is not None

    @property
    def native_value(self) -> SensorValue:
        """The part's value from the latest sample."""
        return self.entity_description.value_fn(self.coordinator.data, self.part)
