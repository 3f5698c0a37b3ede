"""Home Assistant against real agents on loopback: config flow, two polls, figures, an outage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import os

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history_manager import get_history

from .agents import RealAgent, require

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]


@pytest.fixture(params=["node_exporter", "glances"])
def agent(request: pytest.FixtureRequest) -> Iterator[RealAgent]:
    """A real agent of each kind."""
    require(request.param)
    real = RealAgent(request.param).start()
    yield real
    real.stop()


def proc_memory_percent() -> float:
    """Memory in use as the kernel reports it, the way both agents compute it."""
    info = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            key, value = line.split(":")
            info[key] = int(value.split()[0])
    return 100 * (1 - info["MemAvailable"] / info["MemTotal"])


def statvfs_disk_percent() -> float:
    """Root filesystem Use% as df shows it."""
    st = os.statvfs("/")
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return 100 * used / (used + avail)


async def _poll(hass: HomeAssistant, entry) -> None:
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_real_agent_through_home_assistant(
    hass: HomeAssistant, agent: RealAgent
) -> None:
    """Add through the flow, poll twice, compare with the agent's own figures, survive an outage."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "agent": agent.kind,
            "host": agent.host,
            "port": agent.port,
            "security": {"ssl": False, "verify_ssl": True},
            "name": "Live",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    # Rates need a second poll; Glances also reports CPU only after its own second refresh.
    for _ in range(20):
        await asyncio.sleep(1)
        await _poll(hass, entry)
        if hass.states.get("sensor.live_cpu_usage").state != STATE_UNAVAILABLE:
            break

    memory = float(hass.states.get("sensor.live_memory_usage").state)
    disk = float(hass.states.get("sensor.live_disk_usage").state)
    cpu = float(hass.states.get("sensor.live_cpu_usage").state)
    assert 0 <= cpu <= 100
    if agent.kind == "glances":
        own = json.loads(agent.get("/api/4/mem"))["percent"]
        assert memory == pytest.approx(own, abs=3)
        fs = next(
            f for f in json.loads(agent.get("/api/4/fs")) if f["mnt_point"] == "/"
        )
        assert disk == pytest.approx(fs["percent"], abs=0.5)
    else:
        assert memory == pytest.approx(proc_memory_percent(), abs=3)
        assert disk == pytest.approx(statvfs_disk_percent(), abs=0.5)
    assert hass.states.get("sensor.live_network_in").state != STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.live_online").state == STATE_ON
    store = get_history(hass).store
    assert await store.async_latest_ts("live") is not None

    agent.stop()
    await _poll(hass, entry)
    assert hass.states.get("sensor.live_memory_usage").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.live_online").state == STATE_OFF

    agent.start()
    await _poll(hass, entry)
    assert hass.states.get("binary_sensor.live_online").state == STATE_ON
    assert float(hass.states.get("sensor.live_memory_usage").state) > 0
    assert await hass.config_entries.async_unload(entry.entry_id)
