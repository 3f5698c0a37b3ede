"""The agent clients against real node_exporter and Glances processes on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from custom_components.homelab_metrics.agents.glances import GlancesClient
from custom_components.homelab_metrics.agents.node_exporter import NodeExporterClient

from .agents import (
    RealAgent,
    glances_figures,
    proc_memory_percent,
    require,
    statvfs_disk_percent,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

MEMORY_TOLERANCE = 3.0
"""Percentage points: memory moves between our read and the agent's (other tests run)."""
DISK_TOLERANCE = 0.5
"""Percentage points: the root filesystem barely moves within a second."""
GLANCES_POLLS = 10
"""Polls a second apart before Glances must have measured its CPU once."""


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
    assert first.memory_percent == pytest.approx(expected_memory, abs=MEMORY_TOLERANCE)
    assert first.disk_percent == pytest.approx(expected_disk, abs=DISK_TOLERANCE)
    assert second.cpu_percent is not None
    assert 0 <= second.cpu_percent <= 100
    assert second.network_rx_bytes_per_second is not None
    assert second.network_rx_bytes_per_second >= 0
    assert second.boot_time == first.boot_time


async def test_glances_live(glances: RealAgent) -> None:
    """Two polls: memory and disk as Glances itself reports them; CPU once it has measured."""
    async with aiohttp.ClientSession() as session:
        client = GlancesClient(session, config_for(glances))
        first = await client.async_fetch()
        # Glances refreshes every 2 s and its first answers are zeros: wait for a measurement.
        for _ in range(GLANCES_POLLS):
            await asyncio.sleep(1)
            second = await client.async_fetch()
            if second.cpu_percent is not None:
                break
        own = glances_figures(glances)
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
    assert second.cpu_percent is not None
    assert 0 <= second.cpu_percent <= 100
    assert second.network_rx_bytes_per_second is not None
    assert second.boot_time == first.boot_time


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
