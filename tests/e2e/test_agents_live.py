"""The agent clients against real node_exporter and Glances processes on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import os
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
import pytest

from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    AgentInfo,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from custom_components.homelab_metrics.agents.glances import GlancesClient
from custom_components.homelab_metrics.agents.node_exporter import NodeExporterClient
from custom_components.homelab_metrics.agents.readings import is_physical

from .agents import (
    RealAgent,
    agent_version,
    apt_info,
    glances_figures,
    os_release_pretty_name,
    proc_memory_percent,
    proc_swap_percent,
    require,
    statvfs_disk_percent,
    write_textfile,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

MEMORY_TOLERANCE = 3.0
"""Percentage points: memory moves between our read and the agent's (other tests run)."""
DISK_TOLERANCE = 0.5
"""Percentage points: the root filesystem barely moves within a second."""
SWAP_TOLERANCE = 3.0
"""Percentage points: swap moves between our read and the agent's."""


@pytest.fixture
def node_exporter() -> Iterator[RealAgent]:
    """A real node_exporter."""
    require("node_exporter")
    agent = RealAgent("node_exporter").start()
    yield agent
    agent.stop()


@pytest.fixture
def glances() -> Iterator[RealAgent]:
    """A real Glances 4."""
    require("glances")
    agent = RealAgent("glances").start()
    yield agent
    agent.stop()


def config_for(agent: RealAgent, **kw: object) -> AgentConfig:
    """The client settings for a real agent."""
    return AgentConfig(host=agent.host, port=agent.port, timeout=10, **kw)  # type: ignore[arg-type]


def check_ranges(sample: Sample) -> None:
    """Figures every real server has, within their ranges."""
    assert sample.memory_total_bytes is not None and sample.memory_total_bytes > 0
    assert sample.memory_used_bytes is not None
    assert 0 < sample.memory_used_bytes < sample.memory_total_bytes
    assert sample.disk_total_bytes is not None and sample.disk_total_bytes > 0
    assert sample.load_1m is not None and sample.load_1m >= 0
    assert sample.boot_time is not None and sample.boot_time < sample.timestamp


def check_this_machine(sample: Sample) -> None:
    """Swap and filesystems as the kernel says: "/" first, its figures the disk's."""
    swap = proc_swap_percent()
    if swap is None:
        assert sample.swap_percent is None  # no swap: no figure, not 0 %
    else:
        assert sample.swap_percent == pytest.approx(swap, abs=SWAP_TOLERANCE)
    assert sample.filesystems, "no filesystem at all"
    root = sample.filesystems[0]
    assert root.mountpoint == "/"
    assert root.percent == pytest.approx(statvfs_disk_percent(), abs=DISK_TOLERANCE)
    assert root.percent == sample.disk_percent
    for fs in sample.filesystems:
        assert statvfs_disk_percent(fs.mountpoint) == pytest.approx(
            fs.percent, abs=DISK_TOLERANCE
        ), fs.mountpoint
    physical = sorted(
        name for name in os.listdir("/sys/class/net") if is_physical(name)
    )
    assert [i.name for i in sample.interfaces] == physical


async def test_node_exporter_live(node_exporter: RealAgent) -> None:
    """Two polls: memory and disk as the kernel says, CPU and rates on the second poll."""
    async with aiohttp.ClientSession() as session:
        client = NodeExporterClient(session, config_for(node_exporter))
        first = await client.async_fetch()
        expected_memory, expected_disk = proc_memory_percent(), statvfs_disk_percent()
        await asyncio.sleep(1.5)
        second = await client.async_fetch()
    assert first.cpu_percent is None
    assert first.network_rx_bytes_per_second is None
    check_ranges(first)
    check_this_machine(second)
    assert client.info == AgentInfo(
        hostname=os.uname().nodename,
        agent_version=agent_version("node_exporter"),
        os=os_release_pretty_name(),
        web_ui=False,  # /metrics is no page to visit
    )
    # Without the textfile collectors' files: neither figure.
    assert (second.updates_pending, second.reboot_required) == (None, None)
    assert all(i.rx_bytes_per_second is not None for i in second.interfaces)
    assert first.memory_percent == pytest.approx(expected_memory, abs=MEMORY_TOLERANCE)
    assert first.disk_percent == pytest.approx(expected_disk, abs=DISK_TOLERANCE)
    assert second.cpu_percent is not None
    assert 0 <= second.cpu_percent <= 100
    assert second.network_rx_bytes_per_second is not None
    assert second.network_rx_bytes_per_second >= 0
    assert second.boot_time == first.boot_time


async def test_glances_live(glances: RealAgent) -> None:
    """Two polls: memory and disk as Glances itself reports them, CPU from the first poll.

    Glances' first CPU answer after it starts measures nothing (all zeros): the client asks
    once more after Glances' refresh time, so the first poll has a CPU figure already.
    """
    async with aiohttp.ClientSession() as session:
        client = GlancesClient(session, config_for(glances))
        first = await client.async_fetch()
        await asyncio.sleep(1)
        second = await client.async_fetch()
        own = glances_figures(glances)
        system = glances.get_json("/api/4/system")
    assert client.api_version == 4
    check_ranges(first)
    check_ranges(second)
    assert second.memory_percent == pytest.approx(
        own["memory_percent"], abs=MEMORY_TOLERANCE
    )
    assert second.disk_percent == pytest.approx(own["disk_percent"], abs=0.1)
    assert second.disk_percent == pytest.approx(
        statvfs_disk_percent(), abs=DISK_TOLERANCE
    )
    for sample in (first, second):
        assert sample.cpu_percent is not None
        assert 0 <= sample.cpu_percent <= 100
    assert second.network_rx_bytes_per_second is not None
    assert second.boot_time == first.boot_time
    check_this_machine(second)
    assert client.info == AgentInfo(
        hostname=os.uname().nodename,
        agent_version=agent_version("glances"),
        os=system["linux_distro"],
        web_ui=False,  # started with --disable-webui
    )


async def test_glances_web_ui_live() -> None:
    """Glances with its web UI on (and a password): the device can link to it."""
    require("glances")
    agent = RealAgent("glances", web_ui=True, password="s3cret").start()
    try:
        async with aiohttp.ClientSession() as session:
            client = GlancesClient(
                session,
                config_for(agent, username=agent.username, password=agent.password),
            )
            await client.async_fetch()
        assert client.info.web_ui is True
    finally:
        agent.stop()


async def test_node_exporter_textfile_collectors_live(tmp_path: Path) -> None:
    """Debian's apt_info.py, run for real, read by node_exporter's textfile collector.

    Updates pending are the sum of apt_upgrades_pending over origins and architectures; the
    reboot flag is asked both ways: as the machine is, then with /run/reboot-required present
    (in a private mount namespace; see `agents.apt_info` for where that cannot be done).
    """
    require("node_exporter")
    require("collectors")
    output, _ = apt_info()
    write_textfile(str(tmp_path), "apt.prom", output)
    expected = sum(
        sample.value
        for family in text_string_to_metric_families(output)
        for sample in family.samples
        if sample.name == "apt_upgrades_pending"
    )
    agent = RealAgent("node_exporter", textfile_dir=str(tmp_path)).start()
    try:
        async with aiohttp.ClientSession() as session:
            client = NodeExporterClient(session, config_for(agent))
            sample = await client.async_fetch()
            assert sample.updates_pending == expected
            assert sample.reboot_required is os.path.exists("/run/reboot-required")

            output, how = apt_info(reboot_required=True)
            write_textfile(str(tmp_path), "apt.prom", output)
            sample = await client.async_fetch()
        assert sample.reboot_required is True, how
        assert sample.updates_pending == expected
    finally:
        agent.stop()


@pytest.mark.parametrize("kind", ["node_exporter", "glances"])
async def test_auth_live(kind: str) -> None:
    """With a password on: none → InvalidAuth, the right one → a Sample."""
    require(kind)
    agent = RealAgent(kind, password="s3cret pass").start()
    try:
        make = NodeExporterClient if kind == "node_exporter" else GlancesClient
        async with aiohttp.ClientSession() as session:
            with pytest.raises(InvalidAuth):
                await make(session, config_for(agent)).async_fetch()
            with pytest.raises(InvalidAuth):
                await make(
                    session,
                    config_for(agent, username=agent.username, password="wrong"),
                ).async_fetch()
            sample = await make(
                session,
                config_for(agent, username=agent.username, password=agent.password),
            ).async_fetch()
        assert sample.memory_percent is not None
    finally:
        agent.stop()


async def test_outage_and_restart_on_the_same_port(node_exporter: RealAgent) -> None:
    """A stopped agent is CannotConnect; back on the same port, the same client recovers."""
    async with aiohttp.ClientSession() as session:
        client = NodeExporterClient(session, config_for(node_exporter))
        await client.async_fetch()
        node_exporter.stop()
        with pytest.raises(CannotConnect):
            await client.async_fetch()
        node_exporter.start()
        sample = await client.async_fetch()
    assert sample.memory_percent is not None
    assert sample.cpu_percent is not None  # the counters kept going across the restart


async def test_clients_pointed_at_the_wrong_agent(
    node_exporter: RealAgent, glances: RealAgent
) -> None:
    """A Glances client on node_exporter's port and the reverse are InvalidResponse."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidResponse):
            await GlancesClient(session, config_for(node_exporter)).async_fetch()
        with pytest.raises(InvalidResponse):
            await NodeExporterClient(session, config_for(glances)).async_fetch()
