"""The Prometheus client against real Prometheus and VictoriaMetrics on loopback.

Each server scrapes a real node_exporter every second (job "node") and a closed port (a node that
is down). The figures of one poll are compared with the direct node_exporter client's; the PromQL
definitions are compared exactly with the direct agent's on the same scrapes loaded as history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
import math
import os
from pathlib import Path
import re
import subprocess
import time

import aiohttp
import pytest

from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    CannotConnect,
    FilesystemUsage,
    InvalidAuth,
    Sample,
)
from custom_components.homelab_metrics.agents.node_exporter import (
    NodeExporterClient,
    build_sample,
    parse_metrics,
)
from custom_components.homelab_metrics.agents.prometheus import (
    ImportChunk,
    PrometheusClient,
    PrometheusConfig,
    plan_import,
)
from custom_components.homelab_metrics.agents.promql import FIELDS, ROOT_FREE
from custom_components.homelab_metrics.agents.readings import plausible

from .agents import RealAgent, free_port, require
from .prom_servers import (
    KINDS,
    PROMETHEUS,
    MetricsServer,
    Scrape,
    require as require_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "node_exporter"

MEMORY_TOLERANCE = 3.0
"""Percentage points: memory moves between the server's last scrape and ours (other tests run)."""
DISK_TOLERANCE = 0.5
"""Percentage points: the root filesystem barely moves within a second."""
LOAD_TOLERANCE = 1.0
"""Load moves by its own 5 s kernel updates between the two reads on a busy, shared machine."""
CPU_TOLERANCE = 15.0
"""Percentage points. Both figures are busy time over about the same 8 s, but the server's window
ends at its last scrape (up to 1 s before ours) and VictoriaMetrics starts it at the scrape before
the window: up to 2 s of 8 differ, on a machine that other test runs make swing from 20 to 100 %."""
RATE_TOLERANCE = 0.35
"""Relative, with NETWORK_FLOOR: the windows differ as for CPU (a quarter of the span) and the
traffic is this test's own bursts (scrapes of a few kB every second)."""
NETWORK_FLOOR = 20_000.0
"""Bytes per second of absolute slack, for links that carry almost nothing."""
WINDOW = 8
"""Seconds between the direct client's two polls, and the server's rate window."""
SAMPLE_FIELDS = tuple(field for field in FIELDS if field != ROOT_FREE)
"""The Sample fields a poll fills one by one (ROOT_FREE becomes the root filesystem)."""
EXACT = 2e-4
"""Relative: the servers keep sample times in milliseconds, so a rate over a 5.0459 s gap is
divided by 5.046 s (1e-4); every other figure agrees to the last digit."""


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


@pytest.fixture
def server(kind: str, node_exporter: RealAgent) -> Iterator[MetricsServer]:
    """The server scraping the node_exporter and a closed port every second, with data in."""
    down = f"127.0.0.1:{free_port()}"
    srv = MetricsServer(kind, targets=[f"127.0.0.1:{node_exporter.port}", down]).start()
    try:
        srv.wait_for('up{job="node"}', count=2)
        srv.wait_for("node_uname_info")
        yield srv
    finally:
        srv.remove()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (Home Assistant's shared one in production)."""
    async with aiohttp.ClientSession() as s:
        yield s


def client_for(
    session: aiohttp.ClientSession, url: str, **kw: object
) -> PrometheusClient:
    """A client with a short timeout."""
    return PrometheusClient(session, PrometheusConfig(url=url, timeout=10, **kw))  # type: ignore[arg-type]


async def test_connection_and_discovery(
    kind: str,
    server: MetricsServer,
    node_exporter: RealAgent,
    session: aiohttp.ClientSession,
) -> None:
    """buildinfo answers (VictoriaMetrics without a version); both targets are found."""
    server.wait_for(
        f'count_over_time(up{{instance="127.0.0.1:{node_exporter.port}"}}[1m]) > 3'
    )
    client = client_for(session, server.url)
    info = await client.async_test()
    assert info.buildinfo
    if kind == "prometheus":
        # The version the binary prints (2.42.0+ds on bookworm, 3.5.3+ds1 on sid).
        printed = subprocess.run(
            [PROMETHEUS, "--version"], capture_output=True, text=True, check=True
        )
        assert info.version is not None
        assert f"version {info.version} " in printed.stdout + printed.stderr
    else:
        # VictoriaMetrics 1.79 answers {"data": {}}; later ones a Prometheus version they
        # stand in for (2.24.0), not their own.
        assert info.version is None or info.version[0].isdigit()
    nodes = {n.instance: n for n in await client.async_discover()}
    live = nodes[f"127.0.0.1:{node_exporter.port}"]
    assert live.job == "node" and live.up
    assert live.nodename == os.uname().nodename
    # node_exporter 1.5 reads os-release (node_os_info) and tells its version.
    assert live.os and live.version and live.version[0].isdigit()
    assert live.scrape_interval is not None and 0.5 < live.scrape_interval < 3
    (down,) = (n for n in nodes.values() if n is not live)
    assert not down.up and down.nodename is None and down.job == "node"


async def test_poll_agrees_with_direct_agent(
    kind: str,
    server: MetricsServer,
    node_exporter: RealAgent,
    session: aiohttp.ClientSession,
) -> None:
    """One poll of the server gives the direct client's figures within the stated tolerances."""
    direct = NodeExporterClient(
        session, AgentConfig(host="127.0.0.1", port=node_exporter.port, timeout=10)
    )
    client = client_for(session, server.url)
    instance = f"127.0.0.1:{node_exporter.port}"
    server.wait_for(f'node_load1{{instance="{instance}"}}')
    await direct.async_fetch()
    await asyncio.sleep(WINDOW)
    expected = await direct.async_fetch()
    nodes = await client.async_poll(WINDOW)
    got = nodes[instance]
    assert got is not None
    assert [i for i, s in nodes.items() if s is None] == [
        i for i in nodes if i != instance
    ]  # the closed port: offline
    report = {
        f: (getattr(got, f), getattr(expected, f)) for f in SAMPLE_FIELDS
    }  # shown on failure
    assert got.memory_total_bytes == expected.memory_total_bytes, report
    assert got.disk_total_bytes == expected.disk_total_bytes, report
    assert got.boot_time is not None and expected.boot_time is not None
    assert abs(got.boot_time - expected.boot_time) <= 1, report
    assert _close(got.memory_percent, expected.memory_percent, MEMORY_TOLERANCE), report
    assert _close(got.disk_percent, expected.disk_percent, DISK_TOLERANCE), report
    for field in ("load_1m", "load_5m", "load_15m"):
        assert _close(getattr(got, field), getattr(expected, field), LOAD_TOLERANCE), (
            report
        )
    assert _close(got.cpu_percent, expected.cpu_percent, CPU_TOLERANCE), report
    for field in ("network_rx_bytes_per_second", "network_tx_bytes_per_second"):
        a, b = getattr(got, field), getattr(expected, field)
        assert (a is None) == (b is None), report
        if a is not None and b is not None:
            assert abs(a - b) <= max(NETWORK_FLOOR, RATE_TOLERANCE * max(a, b)), report
    assert got.temperature_celsius == expected.temperature_celsius or (
        got.temperature_celsius is not None
        and expected.temperature_celsius is not None
        and abs(got.temperature_celsius - expected.temperature_celsius) <= 5
    ), report


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= tolerance


async def test_server_outage_and_recovery(
    server: MetricsServer, node_exporter: RealAgent, session: aiohttp.ClientSession
) -> None:
    """A stopped server is CannotConnect for the whole fleet; restarted, the nodes come back."""
    client = client_for(session, server.url)
    live = f"127.0.0.1:{node_exporter.port}"
    polled = await client.async_poll(10)
    (down,) = set(polled) - {live}
    # A few chosen nodes are filtered on the server.
    assert set(await client.async_poll(10, instances=[live])) == {live}
    assert await client.async_poll(10, instances=[down]) == {down: None}
    server.stop()
    with pytest.raises(CannotConnect):
        await client.async_poll(10)
    with pytest.raises(CannotConnect):
        await client.async_test()
    server.start()
    server.wait_for(f'up{{instance="127.0.0.1:{node_exporter.port}"}} == 1')
    deadline = time.monotonic() + 30
    sample: Sample | None = None
    while sample is None or sample.memory_percent is None:
        assert time.monotonic() < deadline, "no data after the restart"
        await asyncio.sleep(0.5)
        sample = (await client.async_poll(10)).get(f"127.0.0.1:{node_exporter.port}")


async def test_import_past_minutes(
    server: MetricsServer, node_exporter: RealAgent, session: aiohttp.ClientSession
) -> None:
    """query_range gives raw rows at the step for the past minutes, and an hourly bucket."""
    client = client_for(session, server.url)
    instance = f"127.0.0.1:{node_exporter.port}"
    await asyncio.sleep(6)
    now = int(time.time())
    oldest = await client.async_oldest(instance, now)
    assert oldest is not None and now - 2 * 3600 < oldest <= now
    plan = plan_import(now=now, step=2, oldest=oldest)
    assert plan and {c.tier for c in plan} == {"raw"}
    rows = await client.async_import_chunk(
        instance, plan[0], step=2, window=4, fields=FIELDS
    )
    assert len(rows) >= 2
    assert all(isinstance(r, Sample) for r in rows)
    stamps = [r.timestamp for r in rows]
    assert stamps == sorted(set(stamps))
    assert all(
        plan[0].start <= t < plan[0].end and (t - plan[0].start) % 2 == 0
        for t in stamps
    )
    last = rows[-1]
    assert isinstance(last, Sample) and last.memory_percent is not None
    assert last.cpu_percent is not None
    hour = now // 3600 * 3600
    buckets = await client.async_import_chunk(
        instance,
        ImportChunk(tier="hourly", start=hour, end=hour + 3600),
        step=2,
        window=4,
        fields=("cpu_percent", "memory_percent", "load_1m"),
    )
    (bucket,) = buckets
    assert bucket.timestamp == hour  # type: ignore[union-attr]
    stats = bucket.fields["memory_percent"]  # type: ignore[union-attr]
    assert stats.count >= 2 and stats.min <= stats.avg <= stats.max


@pytest.mark.parametrize("kind", KINDS)
async def test_basic_auth(
    kind: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Wrong or missing credentials are InvalidAuth; the right ones pass."""
    require_server(kind)
    server = MetricsServer(kind, data_dir=tmp_path, login=("homelab", "s3cret"))
    if kind == "prometheus":
        import bcrypt

        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
        (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  homelab: {hashed}\n")
        server.extra_args = [f"--web.config.file={tmp_path / 'web.yml'}"]
    else:
        server.extra_args = ["-httpAuth.username=homelab", "-httpAuth.password=s3cret"]
    await asyncio.to_thread(server.start)
    try:
        for creds in ({}, {"username": "homelab", "password": "wrong"}):
            with pytest.raises(InvalidAuth):
                await client_for(session, server.url, **creds).async_test()
        good = client_for(session, server.url, username="homelab", password="s3cret")
        assert (await good.async_test()).buildinfo
    finally:
        await asyncio.to_thread(server.remove)


# --- The PromQL definitions against the direct agent, exactly, on the same scrapes ----------------

EDGE_SCRAPE = """\
node_hwmon_chip_names{chip="amd",chip_name="k10temp"} 1
node_hwmon_sensor_label{chip="amd",label="Tctl",sensor="temp1"} 1
node_hwmon_sensor_label{chip="amd",label="Tdie",sensor="temp2"} 1
node_hwmon_temp_celsius{chip="amd",sensor="temp1"} 81.5
node_hwmon_temp_celsius{chip="amd",sensor="temp2"} 255
node_hwmon_chip_names{chip="soc",chip_name="cpu_thermal"} 1
node_hwmon_temp_celsius{chip="soc",sensor="temp1"} -273.15
node_hwmon_temp_celsius{chip="soc",sensor="temp2"} 44
node_memory_MemTotal_bytes 1000
node_memory_MemAvailable_bytes 250
node_memory_SwapTotal_bytes 2048
node_memory_SwapFree_bytes 1536
node_load1 0.5
apt_upgrades_pending{arch="all",origin="Debian:bookworm/stable"} 3
apt_upgrades_pending{arch="amd64",origin="Debian:bookworm-security"} 2
node_reboot_required 1
"""
"""A broken Tdie (255) lets the chip's Tctl count; a -273 reading is skipped: 81.5 °C. Swap 25 %,
5 updates from two origins, a reboot required."""
ZONES_SCRAPE = """\
node_thermal_zone_temp{type="acpitz",zone="0"} 90
node_thermal_zone_temp{type="cpu-thermal",zone="1"} 48.5
node_thermal_zone_temp{type="soc-thermal",zone="2"} 51
node_memory_MemTotal_bytes 1000
node_memory_MemAvailable_bytes 750
"""
"""No hwmon CPU chip: the hottest CPU zone, not the board's (acpitz): 51 °C."""


def _with_newer_fields(sample: Sample, text: str) -> Sample:
    """The direct agent's sample with swap, updates and reboot from the scrape where it lacks them.

    The direct agent reads these since the `agents` branch; until it does here, they are computed
    from the scrape by its rules: swap used over total (none without swap), the updates summed over
    every origin, the reboot flag from 0 or 1, the root filesystem as `df` shows it. Only the
    root filesystem is compared: the Prometheus source lists no other.
    """
    values: dict[str, list[float]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values.setdefault(series.split("{", 1)[0], []).append(float(value))
    total = values.get("node_memory_SwapTotal_bytes", [0.0])[0]
    free = values.get("node_memory_SwapFree_bytes", [0.0])[0]
    updates = values.get("apt_upgrades_pending")
    reboot = values.get("node_reboot_required", [None])[0]
    root = re.search(
        r'^node_filesystem_avail_bytes\{[^}]*mountpoint="/"[^}]*\} (\S+)$',
        text,
        re.MULTILINE,
    )
    filesystems = sample.filesystems[:1]
    if not filesystems and root and sample.disk_used_bytes is not None:
        filesystems = (
            FilesystemUsage(
                mountpoint="/",
                used_bytes=sample.disk_used_bytes,
                free_bytes=int(float(root.group(1))),
                percent=sample.disk_percent or 0.0,
            ),
        )
    return replace(
        sample,
        filesystems=filesystems,
        swap_percent=sample.swap_percent
        if sample.swap_percent is not None
        else (100 * (1 - free / total) if total > 0 else None),
        updates_pending=sample.updates_pending
        if sample.updates_pending is not None
        else (int(sum(updates)) if updates else None),
        reboot_required=sample.reboot_required
        if sample.reboot_required is not None
        else {0.0: False, 1.0: True}.get(reboot)
        if reboot is not None
        else None,
    )


def _bumped(text: str, step: float) -> str:
    """A later scrape: every counter grown by its own amount (network by device).

    Counters at 0 stay there, as irq and steal do on real machines: Prometheus extrapolates a rate
    no further back than the counter's zero, so one that starts growing from 0 inside the window
    would read lower than the direct agent's delta (see the README's limits).
    """
    out = []
    for line in text.splitlines():
        if line.startswith(
            ("node_cpu_seconds_total{", "node_network_")
        ) and not line.endswith(" 0"):
            series, value = line.rsplit(" ", 1)
            grow = step * (1 + len(series) % 7) * (1000 if "network" in series else 0.1)
            line = f"{series} {float(value) + grow!r}"
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("kind", KINDS)
async def test_definitions_equal_direct_agent(
    kind: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """On the same two scrapes, the PromQL figures are the direct agent's (rates over them)."""
    require_server(kind)
    t2 = float(int(time.time()) - 600)
    m1 = (FIXTURES / "metrics_1.txt").read_text()
    m2 = (FIXTURES / "metrics_2.txt").read_text()
    amd = (FIXTURES / "amd_server.txt").read_text()
    # The capture's own clock spacing, so that both sides divide by the same seconds.
    gap = (
        parse_metrics(m2).gauges["node_time_seconds"]
        - parse_metrics(m1).gauges["node_time_seconds"]
    )
    pairs = {
        "capture:9100": (m1, m2, gap),
        "amd:9100": (amd, _bumped(amd, 6), 6.0),
        "coretemp:9100": (None, (FIXTURES / "hwmon.txt").read_text(), 0.0),
        "pi:9100": (None, (FIXTURES / "raspberry_pi.txt").read_text(), 0.0),
        "edge:9100": (None, EDGE_SCRAPE, 0.0),
        "zones:9100": (None, ZONES_SCRAPE, 0.0),
    }
    scrapes: list[Scrape] = []
    for instance, (before, after, seconds) in pairs.items():
        if before is not None:
            scrapes.append((instance, t2 - seconds, before))
        scrapes.append((instance, t2, after))
    server = MetricsServer(kind, data_dir=tmp_path)
    await asyncio.to_thread(server.load, scrapes)
    try:
        client = client_for(session, server.url)
        deadline = time.monotonic() + 30
        while len(polled := await client.async_poll(10, at=t2)) < len(pairs):
            assert time.monotonic() < deadline, sorted(polled)
            await asyncio.sleep(0.5)  # VictoriaMetrics: imported rows become searchable
    finally:
        await asyncio.to_thread(server.remove)
    for instance, (before, after, seconds) in pairs.items():
        snap = parse_metrics(after)
        previous = parse_metrics(before) if before is not None else None
        expected = _with_newer_fields(
            plausible(
                build_sample(snap, previous, timestamp=int(t2), elapsed=seconds or None)
            ),
            after,
        )
        got = polled.get(instance)
        assert got is not None, instance
        assert got.filesystems[:1] == expected.filesystems[:1], instance
        for field in SAMPLE_FIELDS:
            a, b = getattr(got, field), getattr(expected, field)
            assert (a is None) == (b is None), (instance, field, a, b)
            if a is not None:
                assert math.isclose(a, b, rel_tol=EXACT, abs_tol=1e-9), (
                    instance,
                    field,
                    a,
                    b,
                )
    assert polled["zones:9100"].temperature_celsius == 51  # type: ignore[union-attr]
    edge = polled["edge:9100"]
    assert edge is not None
    assert (edge.swap_percent, edge.updates_pending, edge.reboot_required) == (
        25.0,
        5,
        True,
    )
    capture = polled["capture:9100"]
    assert capture is not None and capture.swap_percent is None  # SwapTotal 0: no swap
    # Tctl (74.875) yields to the chip's Tdie; the hottest left is Tccd1.
    assert polled["amd:9100"].temperature_celsius == 51.25  # type: ignore[union-attr]
