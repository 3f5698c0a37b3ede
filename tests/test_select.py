"""The "Export range" and "Export format" selects that the export button follows."""

from __future__ import annotations

from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.homelab_metrics.const import DOMAIN

from .conftest import async_add_prometheus


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "mock_client")
async def test_entities(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Two configuration selects per server, with every range and format as options."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.SELECT]):
        mock_entry.add_to_hass(hass)
        assert await async_setup_component(hass, DOMAIN, {})
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, mock_entry.entry_id)


async def test_selecting_sets_the_button_choice(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A selected option is shown and becomes what the server's button exports."""
    for entity_id, option in (
        ("select.nas_export_range", "30d"),
        ("select.nas_export_format", "json"),
    ):
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": entity_id, "option": option},
            blocking=True,
        )
        assert hass.states.get(entity_id).state == option
    choice = init_integration.runtime_data.servers["nas"].export_choice
    assert (choice.range, choice.format) == ("30d", "json")


@pytest.mark.usefixtures("mock_client")
async def test_restored_after_restart(
    hass: HomeAssistant, mock_entry: MockConfigEntry
) -> None:
    """The export range and format chosen before a restart come back; an unknown option does not."""
    mock_restore_cache(
        hass,
        [
            State("select.nas_export_range", "12m"),
            State("select.nas_export_format", "bogus"),
        ],
    )
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("select.nas_export_range").state == "12m"
    assert hass.states.get("select.nas_export_format").state == "csv"
    choice = mock_entry.runtime_data.servers["nas"].export_choice
    assert (choice.range, choice.format) == ("12m", "csv")


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities_of_prometheus_nodes(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
) -> None:
    """Two selects per node, each node with its own choice."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.SELECT]):
        entry = await async_add_prometheus(hass, freezer)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
