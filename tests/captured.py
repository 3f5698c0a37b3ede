"""A server set up from the captured agent payloads, for the platforms' snapshot tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.const import DOMAIN

from .agent_mocks import FIXTURES, mock_glances, mock_node_exporter
from .conftest import make_entry

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
    # The captures were scraped 5 s apart: poll again after as long, so the exporter's clock and
    # the poll's own agree and rates come out as they were on the server.
    freezer.tick(timedelta(seconds=5))
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    return entry
