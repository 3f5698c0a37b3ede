"""Servers for the platforms' snapshot tests: from captured agent payloads, or reporting everything."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.agents.base import (
    FilesystemUsage,
    InterfaceTraffic,
)
from custom_components.homelab_metrics.const import DOMAIN

from .agent_mocks import FIXTURES, mock_glances, mock_node_exporter
from .conftest import FULL_SAMPLE, make_entry

CAPTURED_AT = datetime(2026, 11, 24, 16, 52, 40, tzinfo=UTC)
"""When tests/fixtures/node_exporter/metrics_1.txt was scraped (its node_time_seconds)."""

AGENTS = ("node_exporter", "glances")


async def async_add_captured_server(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    freezer: FrozenDateTimeFactory,
    agent: str,
) -> MockConfigEntry:
    """A server whose agent answers two polls with captured payloads, so rates have values.

    node_exporter is the development VM (no temperature sensor); Glances is Glances 4 with the
    hand-written sensors.json, so it has every metric.
    """
    freezer.move_to(CAPTURED_AT)
    sensors = json.loads((FIXTURES / "glances" / "sensors.json").read_text())
    if agent == "node_exporter":
        entry = make_entry()
        base = "http://192.168.1.10:9100"
        mock_node_exporter(aioclient_mock, base)
    else:
        entry = make_entry(
            "glances",
            host="192.168.1.20",
            port=61208,
            server_id="media_box",
            title="Media box",
        )
        base = "http://192.168.1.20:61208"
        mock_glances(aioclient_mock, base, overrides={"sensors": (200, sensors)})
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    aioclient_mock.clear_requests()
    if agent == "node_exporter":
        mock_node_exporter(aioclient_mock, base, payload_name="metrics_2.txt")
    else:
        mock_glances(
            aioclient_mock,
            base,
            round_="v4_second",
            overrides={"sensors": (200, sensors)},
        )
    # The captures were scraped 5 s apart, as far apart as the coordinator's second reading after
    # setup: the exporter's clock and the poll's own agree, and rates come out as on the server.
    freezer.tick(timedelta(seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


EVERY_FIELD = replace(
    FULL_SAMPLE,
    swap_percent=12.5,
    filesystems=(
        FilesystemUsage(
            mountpoint="/",
            used_bytes=12_000_000_000,
            free_bytes=36_000_000_000,
            percent=25.0,
        ),
        FilesystemUsage(
            mountpoint="/srv/data",
            used_bytes=3_000_000_000_000,
            free_bytes=1_000_000_000_000,
            percent=75.0,
        ),
        FilesystemUsage(
            mountpoint="/boot/efi",
            used_bytes=6_000_000,
            free_bytes=530_000_000,
            percent=1.1,
        ),
    ),
    interfaces=(
        InterfaceTraffic(
            name="eth0", rx_bytes_per_second=120_000.0, tx_bytes_per_second=20_000.0
        ),
        InterfaceTraffic(
            name="wlan0", rx_bytes_per_second=5_000.0, tx_bytes_per_second=None
        ),
    ),
    # What Debian's apt_info.py printed on the development VM: 10 + 60 + 3 + 17 + 6 + 45
    # packages over its apt_upgrades_pending{origin,arch} series, node_reboot_required 0.
    updates_pending=141,
    reboot_required=False,
)
"""A server whose agent reports every field: several filesystems, interfaces, apt's collector."""


async def async_add_server_reporting_everything(
    hass: HomeAssistant, mock_client: MagicMock
) -> MockConfigEntry:
    """A node_exporter server (mocked client) whose every poll is EVERY_FIELD."""
    mock_client.async_fetch.return_value = EVERY_FIELD
    entry = make_entry()
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    return entry
