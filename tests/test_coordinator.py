"""Polling a Prometheus server: every chosen node at once, devices, outages, discovery, the history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
import logging
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.agents.prometheus import ServerInfo
from custom_components.homelab_metrics.coordinator import DISCOVERY_INTERVAL
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import (
    NODES,
    NOW,
    PROMETHEUS_ENTRY_ID,
    async_add_prometheus,
    async_next_poll,
    find_server_device,
    fleet_poll,
    make_prometheus_entry,
    node_options,
)


async def test_one_poll_for_every_node(
    hass: HomeAssistant, init_prometheus: MockConfigEntry, mock_prometheus: MagicMock
) -> None:
    """One poll per interval, for the chosen nodes only, with a rate window of four scrapes."""
    assert mock_prometheus.async_poll.await_count == 1
    (window,) = mock_prometheus.async_poll.await_args.args
    assert window == 60  # max(scan interval 60 s, four 15 s scrapes)
    assert set(mock_prometheus.async_poll.await_args.kwargs["instances"]) == {
        "10.0.0.1:9100",
        "10.0.0.2:9100",
    }
    assert hass.states.get("sensor.alpha_cpu_usage").state == "12.5"
    assert hass.states.get("sensor.beta_cpu_usage").state == "80.0"
    assert hass.states.get("sensor.beta_cpu_temperature") is None  # beta has none
    assert hass.states.get("binary_sensor.alpha_online").state == STATE_ON
    # The node left out in the flow is not polled into any entity.
    assert not [s for s in hass.states.async_all() if "10_0_0_3" in s.entity_id]


async def test_rate_window_follows_the_slowest_scrape(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """A node scraped every minute widens every rate to four minutes (a scan interval of 30 s)."""
    mock_prometheus.async_discover.return_value = [
        replace(NODES[0], scrape_interval=60.0),
        NODES[1],
    ]
    options = node_options(
        ("10.0.0.1:9100", "alpha", "alpha"),
        ("10.0.0.2:9100", "beta", "beta"),
        scan_interval=30,
    )
    await async_add_prometheus(hass, freezer, make_prometheus_entry(options))
    assert mock_prometheus.async_poll.await_args.args == (240,)


async def test_devices_hang_off_the_prometheus_server(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A device per node, as a direct node_exporter's, connected via the Prometheus server's."""
    hub = find_server_device(hass, PROMETHEUS_ENTRY_ID)
    assert hub is not None
    assert (hub.name, hub.sw_version, hub.configuration_url) == (
        "192.168.1.5:9090",
        "Prometheus 2.42.0",
        "http://192.168.1.5:9090",
    )
    alpha = find_server_device(hass, "alpha")
    assert alpha is not None
    assert (alpha.name, alpha.model, alpha.model_id, alpha.sw_version) == (
        "alpha",
        "Debian GNU/Linux 12 (bookworm)",
        "10.0.0.1:9100",
        "node_exporter 1.5.0",
    )
    assert alpha.via_device_id == hub.id
    devices = dr.async_entries_for_config_entry(
        device_registry, init_prometheus.entry_id
    )
    assert len(devices) == 3


async def test_a_server_without_a_version(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """VictoriaMetrics tells no version: the server's device shows none."""
    mock_prometheus.async_test.return_value = ServerInfo(version=None, buildinfo=True)
    await async_add_prometheus(hass, freezer)
    hub = find_server_device(hass, PROMETHEUS_ENTRY_ID)
    assert hub is not None and hub.sw_version is None


async def test_prometheus_down_then_back(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every node unavailable and offline, one log line for the outage and one for the recovery."""
    poll = mock_prometheus.async_poll.side_effect
    mock_prometheus.async_poll.side_effect = CannotConnect("refused")
    caplog.set_level(logging.INFO)
    for _ in range(3):
        await async_next_poll(hass, freezer)
    for node in ("alpha", "beta"):
        assert hass.states.get(f"sensor.{node}_cpu_usage").state == STATE_UNAVAILABLE
        assert hass.states.get(f"binary_sensor.{node}_online").state == STATE_OFF
    # The buttons and selects stay: the history can be exported while the server is down.
    assert hass.states.get("button.alpha_export_metrics").state != STATE_UNAVAILABLE
    down = [
        r
        for r in caplog.records
        if "Could not reach the Prometheus server" in r.message
    ]
    assert len(down) == 1, caplog.text
    assert down[0].levelno == logging.ERROR
    mock_prometheus.async_poll.side_effect = poll
    for _ in range(2):
        await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.alpha_cpu_usage").state == "12.5"
    assert hass.states.get("binary_sensor.beta_online").state == STATE_ON
    assert caplog.text.count("data recovered") == 1


async def test_a_node_down_is_only_that_device_offline(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """up == 0 for beta: beta's sensors unavailable and Online off; alpha goes on."""

    async def beta_down(window: int, instances: object = None, **_: object) -> object:
        answer = fleet_poll()
        answer["10.0.0.2:9100"] = None
        return answer

    mock_prometheus.async_poll.side_effect = beta_down
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.beta_cpu_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.beta_online").state == STATE_OFF
    assert hass.states.get("sensor.alpha_cpu_usage").state == "12.5"
    assert hass.states.get("binary_sensor.alpha_online").state == STATE_ON


async def test_a_node_no_longer_scraped_is_offline(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A chosen node missing from the answer: unavailable, as a node that is down."""

    async def without_beta(
        window: int, instances: object = None, **_: object
    ) -> object:
        answer = fleet_poll()
        del answer["10.0.0.2:9100"]
        return answer

    mock_prometheus.async_poll.side_effect = without_beta
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.beta_memory_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.beta_online").state == STATE_OFF


async def test_a_node_down_at_setup_gets_its_entities_when_it_answers(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """Online exists from the start; the figures' sensors appear with its first answer."""
    options = node_options(("10.0.0.3:9100", "gamma", "gamma"))
    await async_add_prometheus(hass, freezer, make_prometheus_entry(options))
    assert hass.states.get("binary_sensor.gamma_online").state == STATE_OFF
    assert hass.states.get("sensor.gamma_cpu_usage") is None

    async def gamma_up(window: int, instances: object = None, **_: object) -> object:
        return {"10.0.0.3:9100": fleet_poll()["10.0.0.2:9100"]}

    mock_prometheus.async_poll.side_effect = gamma_up
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.gamma_cpu_usage").state == "80.0"
    assert hass.states.get("binary_sensor.gamma_online").state == STATE_ON


async def test_every_node_keeps_its_own_history(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Each poll is a row per node that answered, under its own server id."""
    await async_next_poll(hass, freezer)
    store = get_history(hass).store
    assert store is not None
    alpha = [
        row
        async for batch in store.async_query("alpha", Tier.RAW, 0, NOW + 3600)
        for row in batch
    ]
    assert [(row[0], row[1]) for row in alpha] == [(NOW + 30, 12.5), (NOW + 91, 12.5)]
    assert await store.async_count("beta", Tier.RAW, 0, NOW + 3600) == 2
    assert await store.async_latest_ts("10_0_0_3_9100") is None


async def test_discovery_once_an_hour_updates_the_devices(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Discovery runs at start and then hourly, not every poll; a node upgraded shows it."""
    assert mock_prometheus.async_discover.await_count == 1
    await async_next_poll(hass, freezer)
    assert mock_prometheus.async_discover.await_count == 1
    mock_prometheus.async_discover.return_value = [
        replace(NODES[0], version="1.9.0", os="Debian GNU/Linux 13 (trixie)"),
        *NODES[1:],
    ]
    freezer.tick(timedelta(seconds=DISCOVERY_INTERVAL))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mock_prometheus.async_discover.await_count == 2
    alpha = find_server_device(hass, "alpha")
    assert alpha is not None
    assert (alpha.sw_version, alpha.model) == (
        "node_exporter 1.9.0",
        "Debian GNU/Linux 13 (trixie)",
    )


async def test_a_failing_discovery_does_not_stop_polling(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Too many nodes to list (say): a warning, and the chosen nodes are polled all the same."""
    mock_prometheus.async_discover.side_effect = InvalidResponse("more than 5000 nodes")
    entry = await async_add_prometheus(hass, freezer)
    assert entry.state is ConfigEntryState.LOADED
    assert "Could not list the nodes" in caplog.text
    assert hass.states.get("sensor.alpha_cpu_usage").state == "12.5"


@pytest.mark.parametrize(
    "error", [CannotConnect("refused"), InvalidResponse("not a Prometheus API")]
)
async def test_setup_retries_while_the_server_fails(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    error: Exception,
) -> None:
    """A server down or answering nonsense at start: setup is retried."""
    mock_prometheus.async_poll.side_effect = error
    entry = await async_add_prometheus(hass, freezer)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_refused_credentials_start_reauth(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """401 from the server asks for new credentials."""
    mock_prometheus.async_test.side_effect = InvalidAuth("401")
    entry = await async_add_prometheus(hass, freezer)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_recording_failure_does_not_stop_polling(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A history that cannot be written is logged once for the whole fleet, and its recovery once."""
    store = get_history(hass).store
    assert store is not None
    original = store.async_add_each

    async def broken(*args: object) -> None:
        raise OSError("disk full")

    store.async_add_each = broken  # type: ignore[method-assign]
    caplog.set_level(logging.INFO)
    for _ in range(2):
        await async_next_poll(hass, freezer)
    assert caplog.text.count("Could not record a sample of 192.168.1.5:9090") == 1
    store.async_add_each = original  # type: ignore[method-assign]
    await async_next_poll(hass, freezer)
    assert "Recording samples of 192.168.1.5:9090 works again" in caplog.text
