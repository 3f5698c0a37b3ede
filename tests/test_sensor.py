"""Sensor and connectivity entities of a server."""

from __future__ import annotations

from dataclasses import replace
from unittest.mock import MagicMock

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.const import DOMAIN

from .conftest import FULL_SAMPLE, NOW

EXPECTED = {
    "sensor.nas_cpu_usage": ("12.5", "%"),
    "sensor.nas_memory_usage": ("41.25", "%"),
    "sensor.nas_disk_usage": ("24.9", "%"),
    "sensor.nas_load_1_min": ("0.42", None),
    "sensor.nas_load_5_min": ("0.3", None),
    "sensor.nas_load_15_min": ("0.25", None),
    "sensor.nas_cpu_temperature": ("47.0", "°C"),
    "sensor.nas_last_boot": ("2025-11-23T16:00:00+00:00", None),
}


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_sensor_values(hass: HomeAssistant) -> None:
    """Every metric of the sample becomes a sensor with its unit and classes."""
    for entity_id, (state, unit) in EXPECTED.items():
        current = hass.states.get(entity_id)
        assert current is not None, entity_id
        assert current.state == state, entity_id
        assert current.attributes.get("unit_of_measurement") == unit, entity_id
    cpu = hass.states.get("sensor.nas_cpu_usage")
    assert cpu.attributes["state_class"] == "measurement"
    rx = hass.states.get("sensor.nas_network_in")
    assert rx.attributes["device_class"] == "data_rate"
    assert rx.attributes["unit_of_measurement"] == "Mbit/s"
    assert float(rx.state) == pytest.approx(1.0)
    memory = hass.states.get("sensor.nas_memory_used")
    assert memory.attributes["unit_of_measurement"] == "GiB"
    assert float(memory.state) == pytest.approx(3_400_000_000 / 2**30, abs=0.01)
    assert hass.states.get("sensor.nas_memory_total") is not None


@pytest.mark.usefixtures("init_integration")
async def test_registry_and_device(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    mock_entry: MockConfigEntry,
) -> None:
    """Unique ids come from the fixed server id; totals are disabled by default; one device."""
    entry = entity_registry.async_get("sensor.nas_cpu_usage")
    assert entry.unique_id == "nas_cpu_percent"
    total = entity_registry.async_get("sensor.nas_memory_total")
    assert total.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    devices = dr.async_entries_for_config_entry(device_registry, mock_entry.entry_id)
    assert [device.identifiers for device in devices] == [{(DOMAIN, "nas")}]
    device = devices[0]
    assert device.name == "NAS"
    assert device.model == "node_exporter"
    assert device.configuration_url == "http://192.168.1.10:9100"
    entities = er.async_entries_for_config_entry(entity_registry, mock_entry.entry_id)
    assert {entity.device_id for entity in entities} == {device.id}


async def test_missing_values_are_not_zero(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """What the agent lacks is not created; a first poll without rates leaves them unavailable."""
    mock_client.async_fetch.return_value = Sample(
        timestamp=NOW, memory_percent=10.0, disk_percent=20.0, load_1m=0.1
    )
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_temperature") is None
    assert hass.states.get("sensor.nas_load_5_min") is None
    assert hass.states.get("sensor.nas_cpu_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_network_in").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_memory_usage").state == "10.0"


async def test_rates_appear_on_second_poll(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """A rate sensor created without a value shows one once the agent gives it."""
    coordinator = init_integration.runtime_data.coordinator
    coordinator.async_set_updated_data(replace(FULL_SAMPLE, cpu_percent=None))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_usage").state == STATE_UNAVAILABLE
    coordinator.async_set_updated_data(replace(FULL_SAMPLE, cpu_percent=3.25))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_usage").state == "3.25"
