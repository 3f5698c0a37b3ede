"""A Prometheus server's nodes over time: new ones added or offered, gone ones removed with their history."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
import logging
from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.homelab_metrics.agents.prometheus import Node
from custom_components.homelab_metrics.const import DOMAIN
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
    make_entry,
    make_prometheus_entry,
    node_options,
)

DELTA = Node(
    instance="10.0.0.4:9100",
    job="node",
    nodename="delta",
    up=True,
    scrape_interval=15.0,
    os="Debian GNU/Linux 12 (bookworm)",
    version="1.5.0",
)
"""A node the Prometheus server starts scraping after the entry was added."""


async def _rediscover(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let an hour pass: the next poll discovers the nodes again (and a reload settles)."""
    freezer.tick(timedelta(seconds=DISCOVERY_INTERVAL))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def _with_delta(mock_prometheus: MagicMock) -> None:
    """The server now scrapes DELTA too, and answers for it."""
    mock_prometheus.async_discover.return_value = [*NODES, DELTA]

    async def poll(window: int, instances: Any = None, **_: Any) -> Any:
        answer = {**fleet_poll(), DELTA.instance: fleet_poll()["10.0.0.2:9100"]}
        return {i: s for i, s in answer.items() if instances is None or i in instances}

    mock_prometheus.async_poll.side_effect = poll


async def test_a_new_node_is_added_automatically(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At the next discovery the new node becomes a server with its device; the left-out one does not."""
    caplog.set_level(logging.INFO)
    _with_delta(mock_prometheus)
    await _rediscover(hass, freezer)
    entry = init_prometheus
    assert entry.state is ConfigEntryState.LOADED
    assert entry.options["nodes"]["10.0.0.4:9100"] == {
        "server_id": "delta",
        "name": "delta",
    }
    assert "10.0.0.3:9100" not in entry.options["nodes"]
    assert "scrapes 1 new node(s), added: delta" in caplog.text
    device = find_server_device(hass, "delta")
    assert device is not None and device.model_id == "10.0.0.4:9100"
    assert hass.states.get("sensor.delta_cpu_usage").state == "80.0"
    # Added once: the next discovery finds nothing new.
    await _rediscover(hass, freezer)
    assert len(entry.options["nodes"]) == 3


async def test_a_new_node_gets_an_import_when_the_option_says_so(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """With "import the history of nodes added from now on", the added node has its import."""
    options = node_options(("10.0.0.1:9100", "alpha", "alpha"), import_history=True)
    entry = await async_add_prometheus(hass, freezer, make_prometheus_entry(options))
    # At setup, the first discovery adds beta and the node that is down, polled at once.
    assert set(entry.options["nodes"]) == {n.instance for n in NODES}
    assert entry.options["nodes"]["10.0.0.2:9100"]["import_until"] == NOW + 30
    assert "import_until" not in entry.options["nodes"]["10.0.0.1:9100"]
    assert hass.states.get("sensor.beta_cpu_usage").state == "80.0"


@pytest.fixture
async def offering(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """A Prometheus server's entry that offers new nodes (alpha chosen) and the repairs.

    Requested before hass_client: its access token must be issued after the clock moved.
    """
    assert await async_setup_component(hass, "repairs", {})
    options = node_options(("10.0.0.1:9100", "alpha", "alpha"), add_new_nodes=False)
    return await async_add_prometheus(hass, freezer, make_prometheus_entry(options))


async def test_new_nodes_are_offered_in_a_repair(
    hass: HomeAssistant,
    offering: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
) -> None:
    """Without automatic adding, a repair names the new nodes; its fix adds those still ticked."""
    entry = offering
    issue_id = f"new_nodes_{PROMETHEUS_ENTRY_ID}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None and issue.is_fixable
    assert issue.translation_placeholders == {
        "server": "192.168.1.5:9090",
        "count": "2",
        "nodes": "10.0.0.3:9100, beta",
    }
    assert set(entry.options["nodes"]) == {"10.0.0.1:9100"}

    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert response.status == HTTPStatus.OK
    flow = await response.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["nodes"] == "10.0.0.3:9100, beta"
    response = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}",
        json={"nodes": ["10.0.0.2:9100"], "import_history": False},
    )
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert set(entry.options["nodes"]) == {"10.0.0.1:9100", "10.0.0.2:9100"}
    assert entry.options["ignored"] == ["10.0.0.3:9100"]
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get("sensor.beta_cpu_usage").state == "80.0"
    # Nothing new is left to offer at the next discovery.
    await _rediscover(hass, freezer)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_the_repair_of_an_entry_that_is_gone(
    hass: HomeAssistant, offering: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    """The entry was deleted before the fix: the flow says so."""
    entry = offering
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix",
        json={"handler": DOMAIN, "issue_id": f"new_nodes_{entry.entry_id}"},
    )
    flow = await response.json()
    assert await hass.config_entries.async_remove(entry.entry_id)
    response = await client.post(
        f"/api/repairs/issues/fix/{flow['flow_id']}",
        json={"nodes": [], "import_history": False},
    )
    result = await response.json()
    assert (result["type"], result["reason"]) == ("abort", "entry_gone")


async def _remove_device(
    hass: HomeAssistant, ws: WebSocketGenerator, entry_id: str, device_id: str
) -> dict[str, Any]:
    """Ask, as the device page's Delete does, to remove a device from an entry."""
    assert await async_setup_component(hass, "config", {})
    client = await ws(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry_id,
            "device_id": device_id,
        }
    )
    return dict(await client.receive_json())


async def test_a_node_gone_can_be_deleted_with_its_history(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A node the server no longer scrapes: its device, option and history go; it is not left out."""

    async def without_beta(window: int, instances: Any = None, **_: Any) -> Any:
        answer = fleet_poll()
        del answer["10.0.0.2:9100"]
        return answer

    mock_prometheus.async_poll.side_effect = without_beta
    mock_prometheus.async_discover.return_value = [NODES[0], NODES[2]]
    await async_next_poll(hass, freezer)
    store = get_history(hass).store
    assert store is not None
    assert await store.async_count("beta", Tier.RAW, 0, NOW + 3600) == 1
    beta = find_server_device(hass, "beta")
    assert beta is not None
    response = await _remove_device(
        hass, hass_ws_client, init_prometheus.entry_id, beta.id
    )
    assert response["success"], response
    await hass.async_block_till_done()
    assert find_server_device(hass, "beta") is None
    assert set(init_prometheus.options["nodes"]) == {"10.0.0.1:9100"}
    assert "10.0.0.2:9100" not in init_prometheus.options["ignored"]
    store = get_history(hass).store
    assert store is not None
    assert await store.async_count("beta", Tier.RAW, 0, NOW + 3600) == 0
    assert await store.async_count("alpha", Tier.RAW, 0, NOW + 3600) == 2
    assert hass.states.get("sensor.beta_cpu_usage") is None


async def test_devices_that_cannot_be_deleted(
    hass: HomeAssistant,
    mock_client: MagicMock,
    init_prometheus: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A node still scraped, the Prometheus server's own device, and a directly polled server."""
    for identifier in ("alpha", PROMETHEUS_ENTRY_ID):
        device = find_server_device(hass, identifier)
        assert device is not None
        response = await _remove_device(
            hass, hass_ws_client, init_prometheus.entry_id, device.id
        )
        assert not response["success"], identifier
    direct = make_entry()
    direct.add_to_hass(hass)
    assert await hass.config_entries.async_setup(direct.entry_id)
    await hass.async_block_till_done()
    device = find_server_device(hass, "nas")
    assert device is not None
    response = await _remove_device(hass, hass_ws_client, direct.entry_id, device.id)
    assert not response["success"]
    assert set(init_prometheus.options["nodes"]) == {"10.0.0.1:9100", "10.0.0.2:9100"}


async def test_deleting_the_entry_deletes_every_nodes_history(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The entry goes with the history of each of its nodes; another server's stays."""
    direct = make_entry()
    direct.add_to_hass(hass)
    assert await hass.config_entries.async_setup(direct.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_remove(init_prometheus.entry_id)
    await hass.async_block_till_done()
    store = get_history(hass).store
    assert store is not None
    for server_id in ("alpha", "beta"):
        assert await store.async_latest_ts(server_id) is None
    assert await store.async_latest_ts("nas") is not None
