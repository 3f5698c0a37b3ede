"""Diagnostics keep secrets out."""

from __future__ import annotations

from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.homelab_metrics.agents.base import AgentInfo
from custom_components.homelab_metrics.const import DOMAIN

from .conftest import async_add_prometheus, make_entry, make_prometheus_entry


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


@pytest.fixture
async def prometheus_with_token(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """A Prometheus server's entry with a token (before hass_client: the clock moves first)."""
    assert await async_setup_component(hass, "diagnostics", {})
    return await async_add_prometheus(
        hass, freezer, make_prometheus_entry(token="s3cr3t-token")
    )


async def test_diagnostics_of_a_prometheus_server(
    hass: HomeAssistant,
    prometheus_with_token: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """Each node by server id with its state and sample; no URL, token, instance or host name."""
    entry = prometheus_with_token
    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = repr(result)
    for secret in ("s3cr3t-token", "192.168.1.5", "10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert secret not in text, secret
    assert result["entry"]["data"]["token"] == "**REDACTED**"
    assert result["entry"]["options"]["nodes"] == 2
    assert result["entry"]["options"]["ignored"] == 1
    assert result["server_version"] == "2.42.0"
    assert result["scraped_nodes"] == 3
    assert result["rate_window"] == 60
    assert set(result["nodes"]) == {"alpha", "beta"}
    assert result["nodes"]["alpha"]["online"] is True
    assert result["nodes"]["alpha"]["node_exporter"] == "1.5.0"
    assert result["nodes"]["beta"]["sample"]["cpu_percent"] == 80.0
