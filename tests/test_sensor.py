"""Sensors of a server: what exists, values, availability, metrics that appear later."""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path
import shutil
import subprocess
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.homelab_metrics.agents.base import (
    AgentInfo,
    CannotConnect,
    FilesystemUsage,
    Sample,
)
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.sensor import PART_SENSORS, SENSORS

from .agent_mocks import FIXTURES, mock_glances
from .captured import (
    AGENTS,
    EVERY_FIELD,
    async_add_captured_server,
    async_add_server_reporting_everything,
)
from .conftest import FULL_SAMPLE, NOW, async_next_poll, make_entry, server_device

EN = json.loads(
    (
        Path(__file__).parents[1]
        / "custom_components/homelab_metrics/translations/en.json"
    ).read_text()
)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("agent", AGENTS)
async def test_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    aioclient_mock: AiohttpClientMocker,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
    agent: str,
) -> None:
    """Every sensor of a real node_exporter and Glances poll: units, classes, precision, states."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.SENSOR]):
        entry = await async_add_captured_server(hass, aioclient_mock, freezer, agent)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sensors_of_every_field(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    mock_client: MagicMock,
    snapshot: SnapshotAssertion,
) -> None:
    """Swap, each filesystem but the root, each interface, updates pending, root's free space."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.SENSOR]):
        entry = await async_add_server_reporting_everything(hass, mock_client)
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


async def test_filesystem_and_interface_sensors(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, mock_client: MagicMock
) -> None:
    """Per mount point: usage, used, free (the root has its own Disk sensors); interfaces off."""
    await async_add_server_reporting_everything(hass, mock_client)
    assert hass.states.get("sensor.nas_disk_usage_srv_data").state == "75.0"
    gib = 2**30
    used = hass.states.get("sensor.nas_disk_used_srv_data")
    assert float(used.state) == pytest.approx(3_000_000_000_000 / gib)
    free = hass.states.get("sensor.nas_disk_free_srv_data")
    assert float(free.state) == pytest.approx(1_000_000_000_000 / gib)
    assert hass.states.get("sensor.nas_disk_usage_boot_efi").state == "1.1"
    root_free = hass.states.get("sensor.nas_disk_free")
    assert float(root_free.state) == pytest.approx(36_000_000_000 / gib)
    assert hass.states.get("sensor.nas_disk_usage_2") is None
    entry = entity_registry.async_get("sensor.nas_disk_usage_srv_data")
    assert entry.unique_id == "nas_filesystem_percent_/srv/data"
    assert entry.translation_key == "filesystem_percent"
    assert hass.states.get("sensor.nas_swap_usage").state == "12.5"
    assert hass.states.get("sensor.nas_updates_pending").state == "141"
    interface = entity_registry.async_get("sensor.nas_network_in_eth0")
    assert interface.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert interface.unique_id == "nas_interface_rx_eth0"
    assert hass.states.get("sensor.nas_network_in_eth0") is None


async def test_mount_appears_then_goes(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A disk mounted later gets its sensors at the next poll; unmounted, they are unavailable."""
    root_only = replace(EVERY_FIELD, filesystems=EVERY_FIELD.filesystems[:1])
    mock_client.async_fetch.return_value = root_only
    entry = make_entry()
    entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_disk_usage_mnt_backup") is None

    backup = FilesystemUsage(
        mountpoint="/mnt/backup",
        used_bytes=100_000_000_000,
        free_bytes=900_000_000_000,
        percent=10.0,
    )
    mock_client.async_fetch.return_value = replace(
        root_only, filesystems=(*root_only.filesystems, backup)
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_disk_usage_mnt_backup").state == "10.0"

    mock_client.async_fetch.return_value = root_only
    await async_next_poll(hass, freezer)
    assert (
        hass.states.get("sensor.nas_disk_usage_mnt_backup").state == STATE_UNAVAILABLE
    )
    assert hass.states.get("sensor.nas_disk_free_mnt_backup").state == STATE_UNAVAILABLE
    assert entity_registry.async_get("sensor.nas_disk_usage_mnt_backup") is not None

    mock_client.async_fetch.return_value = replace(
        root_only, filesystems=(*root_only.filesystems, replace(backup, percent=11.0))
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_disk_usage_mnt_backup").state == "11.0"
    ids = [
        e.unique_id
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    ]
    assert ids.count("nas_filesystem_percent_/mnt/backup") == 1


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_interface_removed(
    hass: HomeAssistant, mock_client: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """A USB network adapter unplugged: its enabled sensors turn unavailable, the others go on."""
    await async_add_server_reporting_everything(hass, mock_client)
    assert hass.states.get("sensor.nas_network_in_wlan0").state == "0.04"
    mock_client.async_fetch.return_value = replace(
        EVERY_FIELD, interfaces=EVERY_FIELD.interfaces[:1]
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_network_in_wlan0").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_network_in_eth0").state == "0.96"


async def test_textfile_collector_installed_later(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Updates pending appears once the apt collector writes its file; swap once there is swap."""
    assert hass.states.get("sensor.nas_updates_pending") is None
    assert hass.states.get("sensor.nas_swap_usage") is None
    mock_client.async_fetch.return_value = replace(
        FULL_SAMPLE, updates_pending=0, swap_percent=0.0
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_updates_pending").state == "0"
    assert hass.states.get("sensor.nas_swap_usage").state == "0.0"


async def test_part_sensors_unavailable_while_the_agent_is_down(
    hass: HomeAssistant,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A failing poll makes the per-mount sensors unavailable too."""
    await async_add_server_reporting_everything(hass, mock_client)
    mock_client.async_fetch.side_effect = CannotConnect("refused")
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_disk_usage_srv_data").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_updates_pending").state == STATE_UNAVAILABLE


def test_every_sensor_has_a_name_and_an_icon() -> None:
    """Every sensor, per-mount and per-interface ones included, has a text and an icon."""
    icons = json.loads(
        (
            Path(__file__).parents[1] / "custom_components/homelab_metrics/icons.json"
        ).read_text()
    )["entity"]["sensor"]
    for description in (*SENSORS, *PART_SENSORS):
        key = description.translation_key
        assert EN["entity"]["sensor"][key]["name"], key
        assert key in icons or description.device_class is not None, key
    for description in PART_SENSORS:
        name = EN["entity"]["sensor"][description.translation_key]["name"]
        assert f"{{{description.placeholder}}}" in name, name


@pytest.mark.usefixtures("init_integration")
async def test_registry_and_device(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    mock_entry: MockConfigEntry,
) -> None:
    """Unique ids come from the fixed server id; totals are disabled by default; one device."""
    entry = entity_registry.async_get("sensor.nas_cpu_usage")
    assert entry.unique_id == "nas_cpu_percent"
    total = entity_registry.async_get("sensor.nas_memory_total")
    assert total.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    devices = dr.async_entries_for_config_entry(device_registry, mock_entry.entry_id)
    assert [device.identifiers for device in devices] == [{(DOMAIN, "nas")}]
    device = devices[0]
    assert device.name == "NAS"
    entities = er.async_entries_for_config_entry(entity_registry, mock_entry.entry_id)
    assert {entity.device_id for entity in entities} == {device.id}


@pytest.mark.parametrize(
    ("agent", "info", "expected"),
    [
        (
            "node_exporter",
            AgentInfo(
                hostname="nas",
                agent_version="1.5.0",
                os="Debian GNU/Linux 12 (bookworm)",
            ),
            {
                "model": "Debian GNU/Linux 12 (bookworm)",
                "model_id": "192.168.1.10",
                "sw_version": "node_exporter 1.5.0",
                "configuration_url": None,
            },
        ),
        (
            "glances",
            AgentInfo(
                hostname="nas", agent_version="4.5.8", os="Linux 6.1.0", web_ui=True
            ),
            {
                "model": "Linux 6.1.0",
                "model_id": "192.168.1.10",
                "sw_version": "Glances 4.5.8",
                "configuration_url": "http://192.168.1.10:9100",
            },
        ),
        (
            "glances",
            AgentInfo(),
            {
                "model": None,
                "model_id": "192.168.1.10",
                "sw_version": "Glances",
                "configuration_url": None,
            },
        ),
    ],
    ids=["node_exporter_metrics_page_not_linked", "glances_web_ui", "nothing_told"],
)
async def test_device_info_from_the_agent(
    hass: HomeAssistant,
    device_registry: dr.DeviceRegistry,
    mock_client: MagicMock,
    agent: str,
    info: AgentInfo,
    expected: dict[str, str | None],
) -> None:
    """The OS as model, the host beside it, the agent and its version, a link only to a web UI."""
    mock_client.info = info
    make_entry(agent).add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    device = server_device(hass, "nas")
    assert device is not None
    assert {key: getattr(device, key) for key in expected} == expected
    assert device.manufacturer is None
    assert device.hw_version is None


async def test_device_info_follows_an_agent_upgrade(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A new agent version or web UI shows on the device at the next poll, without a reload."""
    device = server_device(hass, "nas")
    assert device.sw_version == "node_exporter 1.5.0"
    mock_client.info = AgentInfo(
        hostname="nas.lan", agent_version="1.6.0", os="Debian GNU/Linux 13 (trixie)"
    )
    await async_next_poll(hass, freezer)
    device = server_device(hass, "nas")
    assert device.sw_version == "node_exporter 1.6.0"
    assert device.model == "Debian GNU/Linux 13 (trixie)"
    assert device.name == "NAS"


async def test_missing_values_are_not_zero(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """What the agent lacks is not created; a first poll without rates leaves them unavailable."""
    mock_client.async_fetch.return_value = Sample(
        timestamp=NOW, memory_percent=10.0, disk_percent=20.0, load_1m=0.1
    )
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_temperature") is None
    assert hass.states.get("sensor.nas_load_05_min") is None
    assert hass.states.get("sensor.nas_cpu_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_network_in").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_memory_usage").state == "10.0"


async def test_rates_appear_on_second_poll(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """A rate sensor created without a value shows one once the agent gives it."""
    coordinator = init_integration.runtime_data.coordinator
    coordinator.async_set_updated_data(replace(FULL_SAMPLE, cpu_percent=None))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_usage").state == STATE_UNAVAILABLE
    coordinator.async_set_updated_data(replace(FULL_SAMPLE, cpu_percent=3.25))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_usage").state == "3.25"


@pytest.mark.parametrize(
    "boot_time",
    [10**12, NOW - 10**30],
    ids=["node_boot_time_seconds_1e12", "glances_uptime_of_30_digits"],
)
async def test_absurd_boot_time_at_setup(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    boot_time: int,
) -> None:
    """A boot time no datetime can hold leaves out Last boot, not the whole platform."""
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, boot_time=boot_time)
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_usage").state == "12.5"
    assert hass.states.get("sensor.nas_last_boot") is None


@pytest.mark.parametrize(
    "boot_time",
    [10**12, NOW - 10**30],
    ids=["node_boot_time_seconds_1e12", "glances_uptime_of_30_digits"],
)
async def test_absurd_boot_time_in_a_later_poll(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    boot_time: int,
) -> None:
    """A later absurd boot time makes Last boot unavailable; every other state is written."""
    mock_client.async_fetch.return_value = replace(
        FULL_SAMPLE, cpu_percent=55.0, boot_time=boot_time
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_last_boot").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.nas_cpu_usage").state == "55.0"
    assert "Traceback" not in caplog.text


async def test_device_of_an_ipv6_server(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry, mock_client: MagicMock
) -> None:
    """The link to a Glances web UI brackets an IPv6 address, as the client's URL does."""
    mock_client.info = AgentInfo(web_ui=True)
    make_entry("glances", host="fd00::10", port=61208, server_id="v6").add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    device = server_device(hass, "v6")
    assert device is not None
    assert device.configuration_url == "http://[fd00::10]:61208"
    assert device.model_id == "fd00::10"


async def test_metric_appearing_later_gets_its_sensor_without_reload(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """lm-sensors installed on a running server: CPU temperature is added at the next poll, once."""
    mock_client.async_fetch.return_value = replace(
        FULL_SAMPLE, temperature_celsius=None
    )
    mock_entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.nas_cpu_temperature") is None

    mock_client.async_fetch.return_value = FULL_SAMPLE
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_temperature").state == "47.0"
    assert mock_entry.state is ConfigEntryState.LOADED

    mock_client.async_fetch.return_value = replace(
        FULL_SAMPLE, temperature_celsius=52.0
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.nas_cpu_temperature").state == "52.0"
    entries = er.async_entries_for_config_entry(entity_registry, mock_entry.entry_id)
    assert [e.unique_id for e in entries].count("nas_temperature_celsius") == 1
    assert "already exists" not in caplog.text


async def test_glances_sensors_plugin_enabled_later(
    hass: HomeAssistant,
    aioclient_mock: AiohttpClientMocker,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A Glances server whose sensors plugin was disabled gets CPU temperature once it is enabled."""
    entry = make_entry(
        "glances", host="192.168.1.20", port=61208, server_id="media", title="Media"
    )
    base = "http://192.168.1.20:61208"
    mock_glances(
        aioclient_mock, base, overrides={"sensors": (400, {"detail": "Unknown plugin"})}
    )
    entry.add_to_hass(hass)
    await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.media_cpu_usage") is not None
    assert hass.states.get("sensor.media_cpu_temperature") is None

    aioclient_mock.clear_requests()
    sensors = json.loads((FIXTURES / "glances" / "sensors.json").read_text())
    mock_glances(
        aioclient_mock, base, round_="v4_second", overrides={"sensors": (200, sensors)}
    )
    await async_next_poll(hass, freezer)
    assert hass.states.get("sensor.media_cpu_temperature").state == "61.0"


SORT_LIKE_THE_DEVICE_PAGE = """
const names = JSON.parse(require("fs").readFileSync(0, "utf8"));
const collator = new Intl.Collator("en", { numeric: process.argv[1] === "numeric" });
console.log(JSON.stringify(names.sort(collator.compare)));
"""


@pytest.mark.parametrize(
    "collation",
    ["plain", "numeric"],
    ids=["frontend_before_2025_7", "frontend_2025_7_and_later"],
)
def test_load_sensors_sort_in_order_on_the_device_page(collation: str) -> None:
    """The device page sorts a device's sensors by name with Intl.Collator.

    Plain collation up to frontend 2025.6 (Home Assistant 2025.4 sorts "15" before "5"),
    numeric since; the load names are in order with both.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the card's tests need it too)")
    names = [
        EN["entity"]["sensor"][description.translation_key]["name"]
        for description in SENSORS
        if description.entity_category is None
    ]
    result = subprocess.run(
        [node, "-e", SORT_LIKE_THE_DEVICE_PAGE, collation],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    ordered = [name for name in json.loads(result.stdout) if name.startswith("Load")]
    assert ordered == [
        EN["entity"]["sensor"][key]["name"]
        for key in ("load_1m", "load_5m", "load_15m")
    ]
