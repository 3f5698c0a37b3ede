"""Connectivity sensor of a server."""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    InvalidResponse,
)
from custom_components.homelab_metrics.binary_sensor import BINARY_SENSORS, ONLINE

from .captured import (
    AGENTS,
    EVERY_FIELD,
    async_add_captured_server,
    async_add_server_reporting_everything,
)
from .conftest import FULL_SAMPLE, async_next_poll

EN = json.loads(
    (
        Path(__file__).parents[1]
        / "custom_components/homelab_metrics/translations/en.json"
    ).read_text()
)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("agent", AGENTS)
async def test_binary_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    aioclient_mock: AiohttpClientMocker,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
    agent: str,
) -> None:
    """The connectivity sensor of a node_exporter and a Glances server."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.BINARY_SENSOR]):
        entry = await async_add_captured_server(hass, aioclient_mock, freezer, agent)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


@pytest.mark.parametrize("error", [CannotConnect("refused"), InvalidResponse("html")])
async def test_off_while_the_agent_fails_and_still_available(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
    error: Exception,
) -> None:
    """A failed poll turns Online off (not unavailable, so it can be automated on); a good one, on."""
    assert hass.states.get("binary_sensor.nas_online").state == STATE_ON
    mock_client.async_fetch.side_effect = error
    await async_next_poll(hass, freezer)
    assert hass.states.get("binary_sensor.nas_online").state == STATE_OFF

    mock_client.async_fetch.side_effect = None
    await async_next_poll(hass, freezer)
    assert hass.states.get("binary_sensor.nas_online").state == STATE_ON


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_binary_sensors_of_every_field(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    mock_client: MagicMock,
    snapshot: SnapshotAssertion,
) -> None:
    """Online and, from apt's textfile collector, Reboot required."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.BINARY_SENSOR]):
        entry = await async_add_server_reporting_everything(hass, mock_client)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


async def test_reboot_required(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Absent until the collector reports it; on when /run/reboot-required exists; unavailable while down."""
    assert hass.states.get("binary_sensor.nas_reboot_required") is None
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, reboot_required=False)
    await async_next_poll(hass, freezer)
    assert hass.states.get("binary_sensor.nas_reboot_required").state == STATE_OFF

    mock_client.async_fetch.return_value = replace(EVERY_FIELD, reboot_required=True)
    await async_next_poll(hass, freezer)
    assert hass.states.get("binary_sensor.nas_reboot_required").state == STATE_ON

    mock_client.async_fetch.side_effect = CannotConnect("refused")
    await async_next_poll(hass, freezer)
    assert (
        hass.states.get("binary_sensor.nas_reboot_required").state == STATE_UNAVAILABLE
    )
    assert hass.states.get("binary_sensor.nas_online").state == STATE_OFF

    mock_client.async_fetch.side_effect = None
    mock_client.async_fetch.return_value = FULL_SAMPLE
    await async_next_poll(hass, freezer)
    assert (
        hass.states.get("binary_sensor.nas_reboot_required").state == STATE_UNAVAILABLE
    )


def test_every_binary_sensor_has_a_name_and_an_icon() -> None:
    icons = json.loads(
        (
            Path(__file__).parents[1] / "custom_components/homelab_metrics/icons.json"
        ).read_text()
    )["entity"]["binary_sensor"]
    for description in (ONLINE, *BINARY_SENSORS):
        key = description.translation_key
        assert EN["entity"]["binary_sensor"][key]["name"], key
        assert key in icons or description.device_class is not None, key
