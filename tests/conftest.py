"""Fixtures shared by the Home Assistant tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
    HomeAssistantSnapshotSerializer,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.homelab_metrics.agents.base import AgentClient, AgentInfo, Sample
from custom_components.homelab_metrics.const import (
    CONF_AGENT,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    DOMAIN,
)
from custom_components.homelab_metrics.history.store import HistoryStore
from custom_components.homelab_metrics.history_manager import get_history

NOW = 1_764_000_000
"""2025-11-24T16:00:00Z: a fixed, hour-aligned instant for tests."""

FULL_SAMPLE = Sample(
    timestamp=NOW,
    cpu_percent=12.5,
    memory_percent=41.25,
    disk_percent=24.9,
    load_1m=0.42,
    load_5m=0.3,
    load_15m=0.25,
    memory_used_bytes=3_400_000_000,
    memory_total_bytes=8_000_000_000,
    disk_used_bytes=12_000_000_000,
    disk_total_bytes=50_000_000_000,
    network_rx_bytes_per_second=125_000.0,
    network_tx_bytes_per_second=20_000.0,
    temperature_celsius=47.0,
    boot_time=NOW - 86_400,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/ from this repository."""


@pytest.fixture(autouse=True)
def _own_config_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Give every Home Assistant under test its own config folder, so the history file is fresh."""
    if "hass" in request.fixturenames:
        hass: HomeAssistant = request.getfixturevalue("hass")
        hass.config.config_dir = str(tmp_path_factory.mktemp("config"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    """An open history store in UTC (no Home Assistant), closed after the test."""
    s = HistoryStore(tmp_path / "h.db")
    await s.async_open()
    yield s
    await s.async_close()


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create entities that are disabled by default, as if the user had enabled them."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
    ):
        yield


async def async_next_poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Move past the scan interval and let the coordinator's scheduled poll run to the end."""
    freezer.tick(timedelta(seconds=61))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def make_entry(
    agent: str = "node_exporter",
    *,
    host: str = "192.168.1.10",
    port: int = 9100,
    server_id: str = "nas",
    title: str = "NAS",
    **extra: Any,
) -> MockConfigEntry:
    """A config entry as the user step would create it."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=f"{host}:{port}",
        data={
            CONF_AGENT: agent,
            CONF_SERVER_ID: server_id,
            "host": host,
            "port": port,
            "ssl": False,
            "verify_ssl": True,
            **extra,
        },
        options={CONF_SCAN_INTERVAL: 60},
    )


@pytest.fixture
def mock_entry() -> MockConfigEntry:
    """A node_exporter server."""
    return make_entry()


@pytest.fixture
def mock_client() -> Generator[MagicMock]:
    """An agent client that answers with FULL_SAMPLE, wherever the integration creates one."""
    client = MagicMock(spec=AgentClient)
    client.async_fetch.return_value = FULL_SAMPLE
    client.info = AgentInfo(hostname="nas.lan", agent_version="1.5.0")
    with (
        patch(
            "custom_components.homelab_metrics.async_create_client", return_value=client
        ),
        patch(
            "custom_components.homelab_metrics.config_flow.async_create_client",
            return_value=client,
        ),
    ):
        yield client


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """Set up the integration with one server whose agent answers, half a minute after NOW."""
    freezer.move_to(datetime.fromtimestamp(NOW + 30, UTC))
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    return mock_entry


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[Any]:
    """In CI a live test must run: its skip (a missing agent or browser) becomes a failure."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and item.get_closest_marker("e2e") is not None
        and os.environ.get("HOMELAB_METRICS_REQUIRE_E2E") == "1"
    ):
        reason = (
            report.longrepr[2]
            if isinstance(report.longrepr, tuple)
            else report.longrepr
        )
        report.outcome = "failed"
        report.longrepr = f"live test skipped where it must run (HOMELAB_METRICS_REQUIRE_E2E=1): {reason}"


EXPORT_HISTORY_START = NOW - 3 * 86400
"""The export tests' history begins three days before NOW."""
EXPORT_NOW = NOW + 1800
""""Now" during the export tests: half an hour after NOW, not rolled up yet."""


@pytest.fixture
async def export_history(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """A server with three days of 5-minute samples, rolled up, and half an hour not yet rolled up."""
    freezer.move_to(datetime.fromtimestamp(EXPORT_NOW, UTC))
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, timestamp=EXPORT_NOW)
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = get_history(hass).store
    assert store is not None
    for ts in range(EXPORT_HISTORY_START, EXPORT_NOW, 300):
        await store.async_add(
            "nas",
            replace(
                FULL_SAMPLE,
                timestamp=ts,
                cpu_percent=float(ts % 7),
                temperature_celsius=None,
            ),
        )
    await store.async_rollup(EXPORT_NOW)
    return mock_entry


class _SnapshotSerializer(HomeAssistantSnapshotSerializer):
    """Home Assistant's serializer, with registry entries cut to what this integration decides.

    Each release adds registry fields (2026.10: object_id_base, suggested_object_id, aliases that
    start with the entity's own name) and turns capability keys into enum members; keeping the
    fields we set makes one snapshot hold on every release we test on.
    """

    @classmethod
    def _serializable_entity_registry_entry(cls, data: Any) -> Any:
        serialized = super()._serializable_entity_registry_entry(data)
        for key in set(serialized) - _REGISTRY_FIELDS:
            del serialized[key]
        if isinstance(capabilities := serialized.get("capabilities"), dict):
            serialized["capabilities"] = {
                str(key): value for key, value in capabilities.items()
            }
        return serialized

    @classmethod
    def _serializable_state(cls, data: Any) -> Any:
        serialized = super()._serializable_state(data)
        # Attribute names are enum members in 2026.10, plain strings before: the same text.
        serialized["attributes"] = {
            str(key): value for key, value in serialized["attributes"].items()
        }
        return serialized


_REGISTRY_FIELDS = frozenset(
    {
        "capabilities",
        "config_entry_id",
        "device_class",
        "device_id",
        "disabled_by",
        "domain",
        "entity_category",
        "entity_id",
        "has_entity_name",
        "hidden_by",
        "icon",
        "id",
        "name",
        "options",
        "original_device_class",
        "original_icon",
        "original_name",
        "platform",
        "supported_features",
        "translation_key",
        "unique_id",
        "unit_of_measurement",
    }
)


class _SnapshotExtension(HomeAssistantSnapshotExtension):
    """Snapshots in tests/snapshots/, the same on every Home Assistant release we test on."""

    serializer_class = _SnapshotSerializer


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with Home Assistant's serializer (registry entries and states without ids or times).

    The test plugin defines the same fixture, but syrupy's own, registered later, would win.
    """
    return snapshot.use_extension(_SnapshotExtension)


def english_exception(key: str, placeholders: dict[str, str]) -> str:
    """The English message of one of the integration's exceptions, as Home Assistant words it.

    Home Assistant drops a final full stop and fills the placeholders.
    """
    english = json.loads(
        (
            Path(__file__).parents[1]
            / "custom_components"
            / DOMAIN
            / "translations"
            / "en.json"
        ).read_text()
    )
    message = str(english["exceptions"][key]["message"]).rstrip(".")
    return message.format(**placeholders)


def server_device(hass: HomeAssistant, server_id: str) -> dr.DeviceEntry:
    """A server's device, found through its entry's devices.

    `async_get_device(identifiers=…)` raises in the newest test harness (identifiers are unique
    per config entry only since 2026.10); going through the entry works on every version.
    """
    registry = dr.async_get(hass)
    (device,) = (
        device
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if (DOMAIN, server_id) in device.identifiers
    )
    return device
