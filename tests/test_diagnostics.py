"""Diagnostics keep secrets out."""

from __future__ import annotations

from unittest.mock import MagicMock

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.homelab_metrics.agents.base import AgentInfo
from custom_components.homelab_metrics.const import DOMAIN

from .conftest import make_entry


async def test_diagnostics_redacts_credentials(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, mock_client: MagicMock
) -> None:
    """Password, username, host and host name never appear; the sample, agent and poll state do."""
    mock_client.info = AgentInfo(
        hostname="secret-nas",
        agent_version="1.5.0",
        os="Debian GNU/Linux 12 (bookworm)",
    )
    entry: MockConfigEntry = make_entry(username="prom", password="hunter2")
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "diagnostics", {})
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = repr(result)
    assert "hunter2" not in text
    assert "prom" not in text.replace("prometheus", "")
    assert "192.168.1.10" not in text
    assert result["entry"]["data"]["password"] == "**REDACTED**"
    assert result["entry"]["data"]["server_id"] == "nas"
    assert result["last_update_success"] is True
    assert result["sample"]["cpu_percent"] == 12.5
    assert "secret-nas" not in text
    assert result["agent"] == {
        "hostname": "**REDACTED**",
        "agent_version": "1.5.0",
        "os": "Debian GNU/Linux 12 (bookworm)",
        "web_ui": False,
    }
