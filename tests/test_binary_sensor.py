"""Connectivity sensor of a server."""

from __future__ import annotations

from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, Platform
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

from .captured import AGENTS, async_add_captured_server
from .conftest import async_next_poll


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
