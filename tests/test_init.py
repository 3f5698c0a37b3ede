"""Setup, unload, removal and poll failures of a server."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
import logging
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.coordinator import first_wait, server_name
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history_manager import get_history

from .captured import CAPTURED_AT, async_add_captured_server
from .conftest import FULL_SAMPLE, async_next_poll, server_device


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A loaded entry has entities; unloading it closes the history."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    store = get_history(hass).store
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert store.closed


@pytest.mark.parametrize("error", [CannotConnect("refused"), InvalidResponse("html")])
async def test_setup_retries_when_agent_down(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    error: Exception,
) -> None:
    """An unreachable or wrong agent at start-up → setup retry, not a failed entry."""
    mock_client.async_fetch.side_effect = error
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert mock_entry.state is ConfigEntryState.SETUP_RETRY


async def test_setup_auth_failure_starts_reauth(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """A 401 at start-up asks the user for credentials."""
    mock_client.async_fetch.side_effect = InvalidAuth("401")
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert mock_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_unavailable_and_recovery(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Agent down → sensors unavailable, connectivity off (still available); back → on.

    The log shows one clean line for the outage and one for the recovery. Since 2026.10 the
    coordinator adds the traceback as a separate debug record, seen only with debug logging on.
    """

    def shown() -> list[tuple[int, str, bool]]:
        return [
            (record.levelno, record.getMessage(), record.exc_info is not None)
            for record in caplog.records
            if record.name.startswith("custom_components.homelab_metrics")
            and record.levelno > logging.DEBUG
        ]

    assert hass.states.get("binary_sensor.nas_online").state == STATE_ON
    mock_client.async_fetch.side_effect = CannotConnect("refused")
    for _ in range(3):
        await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.nas_online").state == STATE_OFF
    assert shown() == [
        (
            logging.ERROR,
            "Error fetching homelab_metrics NAS data: Could not reach the agent: refused",
            False,
        )
    ]

    caplog.clear()
    mock_client.async_fetch.side_effect = None
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    assert hass.states.get("binary_sensor.nas_online").state == STATE_ON
    assert shown() == [
        (logging.INFO, "Fetching homelab_metrics NAS data recovered", False)
    ]


async def test_auth_failure_while_running(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A 401 during polling starts a reauth flow."""
    mock_client.async_fetch.side_effect = InvalidAuth("401")
    await async_next_poll(hass, freezer)
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_polls_land_in_history(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every successful poll is one raw row of the server's history."""
    store = get_history(hass).store
    second = replace(
        FULL_SAMPLE, timestamp=FULL_SAMPLE.timestamp + 60, cpu_percent=80.0
    )
    mock_client.async_fetch.return_value = second
    await async_next_poll(hass, freezer)
    rows = [
        row
        async for batch in store.async_query(
            "nas", Tier.RAW, 0, FULL_SAMPLE.timestamp + 3600
        )
        for row in batch
    ]
    assert [(row[0], row[1]) for row in rows] == [
        (FULL_SAMPLE.timestamp, 12.5),
        (FULL_SAMPLE.timestamp + 60, 80.0),
    ]


async def test_store_failure_does_not_stop_polling(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A history that cannot be written is logged once; the entities keep updating."""
    caplog.set_level(logging.INFO)
    store = get_history(hass).store
    original = store.async_add_each

    async def broken(*args: object) -> None:
        raise OSError("disk full")

    store.async_add_each = broken  # type: ignore[method-assign]
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, cpu_percent=55.0)
    for _ in range(2):
        await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_usage").state == "55.0"
    assert caplog.text.count("Could not record a sample of nas") == 1
    store.async_add_each = original  # type: ignore[method-assign]
    await async_next_poll(hass, freezer)
    assert "Recording samples of nas works again" in caplog.text


async def test_samples_are_timed_by_home_assistants_clock(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The agent client reads Home Assistant's clock: a sample's time and rate intervals follow it."""
    entry = await async_add_captured_server(hass, aioclient_mock, freezer, "glances")
    sample = entry.runtime_data.coordinator.data
    assert sample.timestamp == int(CAPTURED_AT.timestamp()) + 5
    # Glances' boot time is now - uptime, so it is on the frozen day too.
    assert sample.boot_time is not None
    assert abs(sample.boot_time - CAPTURED_AT.timestamp()) < 86_400


FIRST_POLL = replace(
    FULL_SAMPLE,
    cpu_percent=None,
    network_rx_bytes_per_second=None,
    network_tx_bytes_per_second=None,
)
"""What node_exporter's first poll gives: no rates yet, they need a previous poll's counters."""


async def test_second_reading_gives_rates_within_seconds(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A first poll without rates is followed by a second one 5 s later, not a minute later."""
    mock_client.async_fetch.return_value = FIRST_POLL
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_network_in").state == STATE_UNAVAILABLE

    mock_client.async_fetch.return_value = FULL_SAMPLE
    freezer.tick(timedelta(seconds=4))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert mock_client.async_fetch.await_count == 1

    freezer.tick(timedelta(seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert mock_client.async_fetch.await_count == 2
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    assert hass.states.get("sensor.nas_network_in").state != STATE_UNAVAILABLE

    # Then the server's share of the interval, counted from the second reading (the
    # coordinator schedules within a second of it), then the whole interval. The share
    # itself is checked on the coordinator: timers run on the loop's real clock, so a
    # margin of a second on the frozen one would not hold on a busy machine.
    coordinator = mock_entry.runtime_data.coordinator
    wait = first_wait(timedelta(seconds=60), "nas")
    assert coordinator.update_interval == wait
    assert await _polls_after(hass, freezer, mock_client, wait.total_seconds() + 1) == 3
    assert coordinator.update_interval == timedelta(seconds=60)
    assert await _polls_after(hass, freezer, mock_client, 55) == 3
    assert await _polls_after(hass, freezer, mock_client, 6) == 4


async def _polls_after(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_client: MagicMock,
    seconds: float,
) -> int:
    """Polls so far, once `seconds` more have passed."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    return mock_client.async_fetch.await_count


def test_first_waits_spread_over_the_interval() -> None:
    """Servers set up together poll in different seconds of the interval from then on."""
    interval = timedelta(seconds=10)
    waits = [first_wait(interval, f"server_{n:03d}") for n in range(200)]
    assert all(timedelta(seconds=1) <= wait <= interval for wait in waits)
    assert (
        first_wait(interval, "server_000") == waits[0]
    )  # the same for a server each time
    seconds = Counter(int(wait.total_seconds()) for wait in waits)
    assert set(seconds) == set(range(1, 10))
    assert max(seconds.values()) < 50


async def test_no_second_reading_when_the_first_has_rates(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A first poll that already has every rate waits for the server's share of the interval."""
    coordinator = init_integration.runtime_data.coordinator
    wait = first_wait(timedelta(seconds=60), "nas")
    assert coordinator.update_interval == wait
    assert await _polls_after(hass, freezer, mock_client, wait.total_seconds() + 1) == 2
    assert coordinator.update_interval == timedelta(seconds=60)
    assert await _polls_after(hass, freezer, mock_client, 55) == 2
    assert await _polls_after(hass, freezer, mock_client, 6) == 3


async def test_second_reading_cancelled_on_unload(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A server unloaded before its second reading is not polled again."""
    mock_client.async_fetch.return_value = FIRST_POLL
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(mock_entry.entry_id)
    freezer.tick(timedelta(seconds=10))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert mock_client.async_fetch.await_count == 1


async def test_second_reading_pending_when_home_assistant_stops(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """Stopping Home Assistant within the 5 s leaves no timer behind (the harness checks)."""
    mock_client.async_fetch.return_value = FIRST_POLL
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    await hass.async_stop()
    assert mock_client.async_fetch.await_count == 1


async def test_renamed_server_is_called_by_its_new_name(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The device's name is the server's name: a rename shows on its entities and survives reloads."""
    device = server_device(hass, "nas")
    assert server_name(hass, init_integration, "nas") == "NAS"
    device_registry.async_update_device(device.id, name_by_user="Storage")
    await hass.async_block_till_done()
    state = hass.states.get("sensor.nas_cpu_usage")
    assert state.attributes["friendly_name"] == "Storage CPU usage"
    assert server_name(hass, init_integration, "nas") == "Storage"

    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert server_name(hass, init_integration, "nas") == "Storage"
    assert init_integration.title == "NAS"
    state = hass.states.get("sensor.nas_cpu_usage")
    assert state.attributes["friendly_name"] == "Storage CPU usage"


async def test_server_name_before_the_device_exists(
    hass: HomeAssistant, mock_entry: MockConfigEntry
) -> None:
    """A server never set up has no device yet: its name is the entry's title."""
    mock_entry.add_to_hass(hass)
    assert server_name(hass, mock_entry, "nas") == "NAS"
