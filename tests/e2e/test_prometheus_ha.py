"""Home Assistant with a real Prometheus and VictoriaMetrics on loopback: the flow, polls, an outage, an import.

Each server scrapes a real node_exporter (job "node") and a closed port every second. For the
import, the server also holds a made-up past of that same node: hourly-only days 9 to 7 ago (a
scrape every 5 minutes) and the last day at one scrape a minute, loaded before the live scrapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from itertools import pairwise
import logging
import time
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history_import import STORAGE_KEY
from custom_components.homelab_metrics.history_manager import get_history

from .agents import RealAgent, free_port, require
from .prom_servers import (
    KINDS,
    MetricsServer,
    Scrape,
    fleet_payload,
    require as require_server,
)
from .test_live_ha import proc_memory_percent, statvfs_disk_percent

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

HOUR = 3600
DAY = 86400
HISTORY_MEMORY = 62.5
"""Memory used in the made-up past: 3 GiB available of 8 GiB (fleet_payload's node 0)."""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Prometheus, then VictoriaMetrics."""
    require_server(request.param)
    return str(request.param)


@pytest.fixture
def node_exporter() -> Iterator[RealAgent]:
    """A real node_exporter."""
    require("node_exporter")
    agent = RealAgent("node_exporter").start()
    yield agent
    agent.stop()


def _past(instance: str, now: float) -> list[Scrape]:
    """The made-up past of the live node: days 9 to 7 ago every 5 min, the last day every minute."""
    old = range(int(now - 9 * DAY), int(now - 7 * DAY), 300)
    recent = range(int(now - DAY), int(now - 600), 60)
    return [
        (instance, float(at), fleet_payload(0, at, filler=False))
        for at in (*old, *recent)
    ]


def _server(
    kind: str, node_exporter: RealAgent, *, past: bool = False
) -> MetricsServer:
    """The server scraping the node_exporter and a closed port, started, with data of both."""
    live = f"127.0.0.1:{node_exporter.port}"
    server = MetricsServer(kind, targets=[live, f"127.0.0.1:{free_port()}"])
    if past:
        server.load(_past(live, time.time()))
    else:
        server.start()
    server.wait_for('up{job="node"}', count=2)
    server.wait_for(f'node_load1{{instance="{live}"}}')
    # Two scrapes at least: the scrape interval and the rates need them.
    server.wait_for(f'count_over_time(up{{instance="{live}"}}[1m]) > 2')
    return server


async def _add(
    hass: HomeAssistant, server: MetricsServer, *, history: bool
) -> MockConfigEntry:
    """Add the server through the flow as the UI does: menu, URL, every node."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "prometheus"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": server.url, "security": {"verify_ssl": True}}
    )
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == "nodes"
    assert result["description_placeholders"] == {"count": "2", "down": "1"}
    schema = result["data_schema"].schema
    nodes_key = next(key for key in schema if key == "nodes")
    chosen = nodes_key.default()
    assert len(chosen) == 2
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"nodes": chosen, "add_new_nodes": True, "import_history": history},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def test_fleet_through_home_assistant(
    hass: HomeAssistant,
    kind: str,
    node_exporter: RealAgent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Flow, then each node a server: figures from the first poll, the down node offline, an outage."""
    server = await asyncio.to_thread(_server, kind, node_exporter)
    try:
        entry = await _add(hass, server, history=False)
        servers = entry.runtime_data.servers
        live_id = next(
            sid
            for sid, s in servers.items()
            if s.config.instance == f"127.0.0.1:{node_exporter.port}"
        )
        down_id = next(sid for sid in servers if sid != live_id)
        memory = float(hass.states.get(f"sensor.{live_id}_memory_usage").state)
        disk = float(hass.states.get(f"sensor.{live_id}_disk_usage").state)
        assert memory == pytest.approx(proc_memory_percent(), abs=3)
        assert disk == pytest.approx(statvfs_disk_percent(), abs=0.5)
        # Rates from the first poll: the server has the samples already.
        assert 0 <= float(hass.states.get(f"sensor.{live_id}_cpu_usage").state) <= 100
        assert (
            hass.states.get(f"sensor.{live_id}_network_in").state != STATE_UNAVAILABLE
        )
        assert hass.states.get(f"binary_sensor.{live_id}_online").state == STATE_ON
        assert hass.states.get(f"binary_sensor.{down_id}_online").state == STATE_OFF
        store = get_history(hass).store
        assert store is not None
        assert await store.async_latest_ts(live_id) is not None
        assert await store.async_latest_ts(down_id) is None

        coordinator = entry.runtime_data.coordinator
        caplog.set_level(logging.INFO)
        await asyncio.to_thread(server.stop)
        for _ in range(2):
            await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert (
            hass.states.get(f"sensor.{live_id}_memory_usage").state == STATE_UNAVAILABLE
        )
        assert hass.states.get(f"binary_sensor.{live_id}_online").state == STATE_OFF
        assert caplog.text.count("Could not reach the Prometheus server") == 1

        await asyncio.to_thread(server.start)
        await asyncio.to_thread(
            server.wait_for, f'up{{instance="127.0.0.1:{node_exporter.port}"}} == 1'
        )
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert hass.states.get(f"binary_sensor.{live_id}_online").state == STATE_ON
        assert float(hass.states.get(f"sensor.{live_id}_memory_usage").state) > 0
        assert caplog.text.count("data recovered") == 1
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await asyncio.to_thread(server.remove)


async def test_import_of_the_past(
    hass: HomeAssistant,
    kind: str,
    node_exporter: RealAgent,
    hass_storage: dict[str, Any],
) -> None:
    """The node's last day raw at the scan interval, its older days hourly; a second run adds nothing."""
    server = await asyncio.to_thread(_server, kind, node_exporter, past=True)
    try:
        entry = await _add(hass, server, history=True)
        # The import is the entry's background task: wait for it to end.
        await hass.async_block_till_done(wait_background_tasks=True)
        importer = entry.runtime_data.importer
        assert importer is not None and not importer.running
        live_id = next(
            sid
            for sid, s in entry.runtime_data.servers.items()
            if s.config.instance == f"127.0.0.1:{node_exporter.port}"
        )
        until = entry.options["nodes"][f"127.0.0.1:{node_exporter.port}"][
            "import_until"
        ]
        store = get_history(hass).store
        assert store is not None

        async def rows(tier: Tier, start: int, end: int) -> list[tuple[Any, ...]]:
            assert store is not None
            return [
                row
                async for batch in store.async_query(live_id, tier, start, end)
                for row in batch
            ]

        raw = await rows(Tier.RAW, until - DAY, until)
        past = [row for row in raw if row[2] == HISTORY_MEMORY]
        # A row a minute from the past's first scrape until its last is 5 minutes stale.
        assert len(past) >= DAY // 60 - 20, len(past)
        stamps = [row[0] for row in raw]
        # One row a minute, the first at the past's first scrape, none from before it was added.
        assert {b - a for a, b in pairwise(stamps)} == {60}
        assert stamps[0] == until - DAY and stamps[-1] < until
        hours = await rows(Tier.HOURLY, until - 10 * DAY, until - 6 * DAY)
        old = [row for row in hours if row[0] < until - 7 * DAY]
        assert 40 <= len(old) <= 49, len(old)
        middle = old[len(old) // 2]
        assert middle[4] == pytest.approx(HISTORY_MEMORY)  # memory_avg
        assert middle[-1] == 60  # samples: the hour at the scan interval

        # The rollup makes days of both, as for polled samples.
        await store.async_rollup(int(time.time()))
        days = await rows(Tier.DAILY, until - 10 * DAY, until)
        assert len(days) >= 3

        # Without its progress (lost in a crash), the import runs again: the same rows.
        counts = [
            await store.async_count(live_id, tier, until - 10 * DAY, until, now=until)
            for tier in (Tier.RAW, Tier.HOURLY)
        ]
        hass.data.pop("homelab_metrics_imports")
        hass_storage.pop(STORAGE_KEY)
        await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        store = get_history(hass).store
        assert store is not None
        assert [
            await store.async_count(live_id, tier, until - 10 * DAY, until, now=until)
            for tier in (Tier.RAW, Tier.HOURLY)
        ] == counts
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await asyncio.to_thread(server.remove)
