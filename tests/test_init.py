"""Setup, unload, removal and poll failures of a server."""

from __future__ import annotations

from dataclasses import replace
import logging
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.homelab_metrics import async_get_store
from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history.metrics import Tier

from .conftest import FULL_SAMPLE, async_next_poll, make_entry


async def test_setup_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A loaded entry has entities; unloading it closes the history."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    store = entry.runtime_data.store
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
    store = init_integration.runtime_data.store
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
    store = init_integration.runtime_data.store
    original = store.async_add

    async def broken(*args: object) -> None:
        raise OSError("disk full")

    store.async_add = broken  # type: ignore[method-assign]
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, cpu_percent=55.0)
    for _ in range(2):
        await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_usage").state == "55.0"
    assert caplog.text.count("Could not record a sample of nas") == 1
    store.async_add = original  # type: ignore[method-assign]
    await async_next_poll(hass, freezer)
    assert "Recording samples of nas works again" in caplog.text


async def test_two_servers_share_one_store(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """The history closes only when the last server unloads."""
    first = make_entry(server_id="a", host="10.0.0.1")
    second = make_entry(server_id="b", host="10.0.0.2")
    first.add_to_hass(hass)
    second.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = first.runtime_data.store
    assert second.runtime_data.store is store
    await hass.config_entries.async_unload(first.entry_id)
    assert not store.closed
    await hass.config_entries.async_unload(second.entry_id)
    assert store.closed


async def test_remove_entry_deletes_history(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Deleting a server removes its rows; others keep theirs."""
    store = init_integration.runtime_data.store
    await store.async_add("other", FULL_SAMPLE)
    assert await store.async_latest_ts("nas") == FULL_SAMPLE.timestamp
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    store = await async_get_store(hass)
    assert await store.async_latest_ts("nas") is None
    assert await store.async_latest_ts("other") == FULL_SAMPLE.timestamp
    await hass.async_stop()
