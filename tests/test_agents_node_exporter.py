"""node_exporter: the targeted scanner, the Sample it builds, and the client against HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import gzip
import math
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
import pytest

from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.agents.node_exporter import (
    NodeExporterClient,
    build_sample,
    is_physical,
    parse_labels,
    parse_metrics,
)

from .fake_server import serve

FIXTURES = Path(__file__).parent / "fixtures" / "node_exporter"
UPSTREAM = (
    Path(__file__).parents[2]
    / "shared"
    / "fixtures"
    / "node_exporter_upstream_e2e_output.txt"
)
PAYLOADS = sorted(FIXTURES.glob("*.txt")) + ([UPSTREAM] if UPSTREAM.exists() else [])


def reference(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample prometheus_client's full parser finds, keyed by name and labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_scanner_matches_prometheus_client(path: Path) -> None:
    """Differential: every series the scanner keeps has prometheus_client's value."""
    text = path.read_text()
    ref = reference(text)
    snap = parse_metrics(text)

    def one(name: str, **labels: str) -> float:
        return ref[(name, tuple(sorted(labels.items())))]

    cpu = [(dict(k[1]), v) for k, v in ref.items() if k[0] == "node_cpu_seconds_total"]
    assert snap.cpu_total == pytest.approx(sum(v for _, v in cpu))
    assert snap.cpu_idle == pytest.approx(
        sum(v for labels, v in cpu if labels["mode"] in ("idle", "iowait"))
    )
    for name, value in snap.gauges.items():
        if name.startswith("node_filesystem_"):
            matches = [
                v
                for k, v in ref.items()
                if k[0] == name and dict(k[1]).get("mountpoint") == "/"
            ]
            assert value in matches
        else:
            assert value == one(name)
    for device, value in snap.rx.items():
        assert value == one("node_network_receive_bytes_total", device=device)
    for device, value in snap.tx.items():
        assert value == one("node_network_transmit_bytes_total", device=device)
    for (chip, sensor), value in snap.hwmon.items():
        assert value == one("node_hwmon_temp_celsius", chip=chip, sensor=sensor)
    for kind, value in snap.thermal_zones.items():
        assert value in [
            v
            for k, v in ref.items()
            if k[0] == "node_thermal_zone_temp" and dict(k[1])["type"] == kind
        ]
    # And nothing the reference has was missed.
    assert len(snap.rx) == len(
        {k for k in ref if k[0] == "node_network_receive_bytes_total"}
    )
    assert len(snap.hwmon) == len({k for k in ref if k[0] == "node_hwmon_temp_celsius"})


def test_sample_from_two_real_scrapes() -> None:
    """Rates from the second scrape; percentages as df and free(1) compute them."""
    first = parse_metrics((FIXTURES / "metrics_1.txt").read_text())
    second = parse_metrics((FIXTURES / "metrics_2.txt").read_text())
    elapsed = second.gauges["node_time_seconds"] - first.gauges["node_time_seconds"]
    start = build_sample(first, None, timestamp=1, elapsed=None)
    assert start.cpu_percent is None
    assert start.network_rx_bytes_per_second is None
    sample = build_sample(second, first, timestamp=2, elapsed=elapsed)

    ref = reference((FIXTURES / "metrics_2.txt").read_text())
    total = ref[("node_memory_MemTotal_bytes", ())]
    avail = ref[("node_memory_MemAvailable_bytes", ())]
    assert sample.memory_percent == pytest.approx(100 * (1 - avail / total))
    assert sample.memory_total_bytes == int(total)
    root = {k[0]: v for k, v in ref.items() if dict(k[1]).get("mountpoint") == "/"}
    size, free, avail_fs = (
        root[f"node_filesystem_{x}_bytes"] for x in ("size", "free", "avail")
    )
    assert sample.disk_percent == pytest.approx(
        100 * (size - free) / (size - free + avail_fs)
    )
    assert sample.disk_total_bytes == int(size)
    assert 0 <= sample.cpu_percent <= 100
    rx = sum(
        v
        for k, v in reference((FIXTURES / "metrics_2.txt").read_text()).items()
        if k[0] == "node_network_receive_bytes_total"
        and is_physical(dict(k[1])["device"])
    )
    rx_before = sum(
        v
        for k, v in reference((FIXTURES / "metrics_1.txt").read_text()).items()
        if k[0] == "node_network_receive_bytes_total"
        and is_physical(dict(k[1])["device"])
    )
    assert sample.network_rx_bytes_per_second == pytest.approx(
        (rx - rx_before) / elapsed
    )
    assert sample.load_1m == ref[("node_load1", ())]
    assert sample.boot_time == int(ref[("node_boot_time_seconds", ())])
    assert sample.temperature_celsius is None  # a VM has no sensors: missing, never 0


def test_cpu_busy_percent_and_counter_reset() -> None:
    """Busy % from deltas summed over CPUs; a counter going back (reboot) gives no figure."""
    before = parse_metrics(
        'node_cpu_seconds_total{cpu="0",mode="idle"} 100\n'
        'node_cpu_seconds_total{cpu="0",mode="user"} 50\n'
        'node_cpu_seconds_total{cpu="1",mode="iowait"} 10\n'
        'node_cpu_seconds_total{cpu="1",mode="system"} 40\n'
        'node_network_receive_bytes_total{device="eth0"} 1000\n'
    )
    after = parse_metrics(
        'node_cpu_seconds_total{cpu="0",mode="idle"} 130\n'
        'node_cpu_seconds_total{cpu="0",mode="user"} 60\n'
        'node_cpu_seconds_total{cpu="1",mode="iowait"} 20\n'
        'node_cpu_seconds_total{cpu="1",mode="system"} 60\n'
        'node_network_receive_bytes_total{device="eth0"} 500\n'
    )
    sample = build_sample(after, before, timestamp=0, elapsed=10)
    assert sample.cpu_percent == pytest.approx(100 * (1 - 40 / 70))
    assert sample.network_rx_bytes_per_second is None
    rebooted = build_sample(before, after, timestamp=0, elapsed=10)
    assert rebooted.cpu_percent is None


def test_virtual_interfaces_not_counted() -> None:
    """Bridges, veth, docker and loopback traffic would count packets twice."""
    assert is_physical("eth0") and is_physical("enp3s0") and is_physical("wlan0")
    for name in (
        "lo",
        "veth12ab",
        "docker0",
        "br-5f2a",
        "virbr0",
        "tailscale0",
        "wg0",
        "tun0",
    ):
        assert not is_physical(name)
    before = parse_metrics(
        'node_network_transmit_bytes_total{device="eth0"} 0\n'
        'node_network_transmit_bytes_total{device="docker0"} 0\n'
    )
    after = parse_metrics(
        'node_network_transmit_bytes_total{device="eth0"} 2000\n'
        'node_network_transmit_bytes_total{device="docker0"} 9999999\n'
    )
    assert (
        build_sample(after, before, timestamp=0, elapsed=2).network_tx_bytes_per_second
        == 1000
    )


def test_temperatures() -> None:
    """The hottest CPU sensor (not the NVMe); a Pi's CPU thermal zone; none on a VM."""
    hwmon = build_sample(
        parse_metrics((FIXTURES / "hwmon.txt").read_text()),
        None,
        timestamp=0,
        elapsed=None,
    )
    assert hwmon.temperature_celsius == 61.5
    assert hwmon.memory_percent == pytest.approx(75.0)
    pi = build_sample(
        parse_metrics((FIXTURES / "raspberry_pi.txt").read_text()),
        None,
        timestamp=0,
        elapsed=None,
    )
    assert pi.temperature_celsius == pytest.approx(48.686)
    if UPSTREAM.exists():
        upstream = build_sample(
            parse_metrics(UPSTREAM.read_text()), None, timestamp=0, elapsed=None
        )
        assert upstream.temperature_celsius is not None
        assert upstream.temperature_celsius > 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n# only comments\n",
        "<html><body>Node Exporter</body></html>",
        "node_load1",
        "node_load1 not-a-number",
        'node_cpu_seconds_total{cpu="0",mode="idle"',
        'node_cpu_seconds_total{cpu="0,mode="idle"} 1',
        'node_filesystem_size_bytes{mountpoint="/"',
    ],
)
def test_malformed_lines_are_skipped(text: str) -> None:
    """Garbage never raises; it just yields nothing."""
    snap = parse_metrics(text)
    assert snap.gauges == {}
    assert not snap.cpu_seen


def test_scanner_details() -> None:
    """Escapes, label order, exponents, NaN, timestamps, CRLF and a truncated last line."""
    labels, end = parse_labels('x{a="q\\"uote",b="back\\\\slash\\n"} 1', 1)
    assert labels == {"a": 'q"uote', "b": "back\\slash\n"}
    text = (
        'node_filesystem_avail_bytes{mountpoint="/",device="/dev/sda1"} 1.5e+09 1700000000000\r\n'
        'node_filesystem_avail_bytes{device="/dev/sdb",mountpoint="/srv"} 7\r\n'
        "node_load1 NaN\r\n"
        "node_load5 +Inf\n"
        "node_load15 0.5\n"
        "node_memory_MemTotal_bytes 8e9\n"
        "node_memory_MemAvail"
    )
    snap = parse_metrics(text)
    assert snap.gauges["node_filesystem_avail_bytes"] == 1.5e9
    assert math.isnan(snap.gauges["node_load1"])
    sample = build_sample(snap, None, timestamp=0, elapsed=None)
    assert sample.load_1m is None
    assert sample.load_5m is None
    assert sample.load_15m == 0.5
    assert sample.memory_percent is None  # MemAvailable was cut off


class Agent:
    """A tiny HTTP server on 127.0.0.1 that answers like node_exporter (or misbehaves)."""

    def __init__(self) -> None:
        self.body = (FIXTURES / "metrics_1.txt").read_bytes()
        self.content_type = "text/plain; version=0.0.4; charset=utf-8"
        self.status = 200
        self.gzip = False
        self.hang = False
        self.auth: str | None = None
        self.port = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.release.wait()
        if self.auth and request.headers.get("Authorization") != self.auth:
            return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
        body = self.body
        headers = {"Content-Type": self.content_type}
        if self.gzip and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(status=self.status, body=body, headers=headers)


@pytest.fixture
async def agent(socket_enabled: None) -> AsyncIterator[Agent]:
    state = Agent()
    async with serve(state.handle) as port:
        state.port = port
        yield state
        state.release.set()
        await asyncio.sleep(0.05)


def client_for(
    session: aiohttp.ClientSession, agent: Agent, **kw: object
) -> NodeExporterClient:
    clock = iter(range(1000, 2000, 60))
    return NodeExporterClient(
        session,
        AgentConfig(host="127.0.0.1", port=agent.port, **kw),
        clock=lambda: next(clock),  # type: ignore[arg-type]
    )


async def test_client_polls(agent: Agent) -> None:
    """Two polls: the second has rates; gzip is accepted."""
    agent.gzip = True
    async with aiohttp.ClientSession() as session:
        client = client_for(session, agent)
        first = await client.async_fetch()
        assert first.timestamp == 1000
        assert first.cpu_percent is None
        agent.body = (FIXTURES / "metrics_2.txt").read_bytes()
        second = await client.async_fetch()
        assert second.timestamp == 1060
        assert second.cpu_percent is not None
        assert second.memory_percent is not None


async def test_client_errors(agent: Agent) -> None:
    """HTML on a wrong port, HTTP errors, auth, oversized and hung agents each map to their error."""
    async with aiohttp.ClientSession() as session:
        agent.content_type = "text/html"
        with pytest.raises(InvalidResponse):
            await client_for(session, agent).async_fetch()
        agent.content_type = "text/plain"
        agent.body = b"some_other_metric 1\n"
        with pytest.raises(InvalidResponse, match="no node_exporter series"):
            await client_for(session, agent).async_fetch()
        agent.status = 500
        with pytest.raises(InvalidResponse, match="500"):
            await client_for(session, agent).async_fetch()
        agent.status = 200
        agent.body = b"#" * (5 * 1024 * 1024)
        with pytest.raises(InvalidResponse, match="too large|larger"):
            await client_for(session, agent).async_fetch()
        agent.body = (FIXTURES / "metrics_1.txt").read_bytes()
        agent.auth = aiohttp.BasicAuth("prom", "secret").encode()
        with pytest.raises(InvalidAuth):
            await client_for(session, agent).async_fetch()
        sample = await client_for(
            session, agent, username="prom", password="secret"
        ).async_fetch()
        assert sample.memory_percent is not None
        agent.hang = True
        with pytest.raises(CannotConnect, match="no answer"):
            await client_for(session, agent, timeout=0.2).async_fetch()


@pytest.mark.usefixtures("socket_enabled")
async def test_client_refused() -> None:
    """Nothing listening: CannotConnect, quickly."""
    async with aiohttp.ClientSession() as session:
        client = NodeExporterClient(session, AgentConfig(host="127.0.0.1", port=1))
        with pytest.raises(CannotConnect):
            await client.async_fetch()


def test_base_url_brackets_ipv6() -> None:
    assert AgentConfig(host="::1", port=9100).base_url == "http://[::1]:9100"
    assert AgentConfig(host="nas", port=1, ssl=True).base_url == "https://nas:1"
