"""Glances: plugins fetched, v3 fallback, own network rates, uptime, sensors and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.agents.glances import (
    BOOT_TIME_GRANULARITY,
    GlancesClient,
    cpu_temperature,
    parse_uptime,
)

from .fake_server import serve

FIXTURES = Path(__file__).parent / "fixtures" / "glances"


def load(round_: str, plugin: str) -> Any:
    path = FIXTURES / round_ / f"{plugin}.json"
    if not path.exists():
        path = FIXTURES / "v4" / f"{plugin}.json"
    return json.loads(path.read_text())


class FakeGlances:
    """Serves /api/<version>/<plugin> from the captured payloads."""

    def __init__(self) -> None:
        self.version = 4
        self.round = "v4"
        self.overrides: dict[str, tuple[int, Any]] = {}
        self.auth: str | None = None
        self.requests: list[str] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if self.auth and request.headers.get("Authorization") != self.auth:
            return web.Response(status=401)
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", str(self.version)]:
            return web.json_response({"detail": "Not Found"}, status=404)
        plugin = parts[2]
        if plugin in self.overrides:
            status, body = self.overrides[plugin]
            return web.json_response(body, status=status)
        data = load(self.round, plugin)
        if self.version == 3 and plugin == "network":
            data = [
                {
                    **item,
                    "cumulative_rx": item["bytes_recv_gauge"],
                    "cumulative_tx": item["bytes_sent_gauge"],
                }
                for item in data
            ]
        return web.json_response(data)


@pytest.fixture
async def glances(socket_enabled: None) -> AsyncIterator[FakeGlances]:
    state = FakeGlances()
    async with serve(state.handle) as port:
        state.port = port
        yield state


def make_client(
    session: aiohttp.ClientSession, fake: FakeGlances, **kw: Any
) -> tuple[GlancesClient, list[float]]:
    now = [1_000_000.0]
    client = GlancesClient(
        session,
        AgentConfig(host="127.0.0.1", port=fake.port, **kw),
        clock=lambda: now[0],
    )
    return client, now


async def test_first_poll_from_real_payloads(glances: FakeGlances) -> None:
    """Memory, disk, load as Glances reports them; the all-zero first cpu is missing."""
    glances.overrides["cpu"] = (
        200,
        json.loads((FIXTURES / "cpu_first.json").read_text()),
    )
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances)
        sample = await client.async_fetch()
    mem, fs, load_ = load("v4", "mem"), load("v4", "fs")[0], load("v4", "load")
    assert sample.cpu_percent is None  # Glances' answer right after it started
    assert sample.memory_percent == mem["percent"]
    assert sample.memory_used_bytes == mem["used"]
    assert sample.memory_total_bytes == mem["total"]
    assert sample.disk_percent == pytest.approx(
        100 * fs["used"] / (fs["used"] + fs["free"])
    )
    assert sample.disk_percent == pytest.approx(fs["percent"], abs=0.1)
    assert sample.disk_total_bytes == fs["size"]
    assert sample.load_1m == load_["min1"]
    assert sample.load_15m == load_["min15"]
    assert sample.network_rx_bytes_per_second is None
    assert sample.temperature_celsius is None  # this VM has no sensors
    assert sample.boot_time is not None
    assert sample.boot_time % BOOT_TIME_GRANULARITY == 0
    assert sorted(set(glances.requests)) == sorted(
        f"/api/4/{p}"
        for p in ("cpu", "mem", "fs", "load", "uptime", "network", "sensors")
    )


async def test_second_poll_rates_and_cpu(glances: FakeGlances) -> None:
    """Rates come from the cumulative counters between our polls."""
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances)
        await client.async_fetch()
        glances.round = "v4_second"
        now[0] += 3
        sample = await client.async_fetch()
    before = load("v4", "network")[0]
    after = load("v4_second", "network")[0]
    assert sample.network_rx_bytes_per_second == pytest.approx(
        (after["bytes_recv_gauge"] - before["bytes_recv_gauge"]) / 3
    )
    assert sample.network_tx_bytes_per_second == pytest.approx(
        (after["bytes_sent_gauge"] - before["bytes_sent_gauge"]) / 3
    )
    assert sample.cpu_percent == load("v4_second", "cpu")["total"]


async def test_glances_3_fallback(glances: FakeGlances) -> None:
    """A server with only /api/3 is used through it, remembered, with v3 counter names."""
    glances.version = 3
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances)
        await client.async_fetch()
        glances.round = "v4_second"
        now[0] += 3
        glances.requests.clear()
        sample = await client.async_fetch()
    assert all(path.startswith("/api/3/") for path in glances.requests)
    assert sample.network_rx_bytes_per_second is not None
    assert sample.memory_percent is not None


async def test_disabled_plugins_and_sensors(glances: FakeGlances) -> None:
    """A disabled plugin leaves its fields empty; sensors give the hottest readable CPU value."""
    glances.overrides["fs"] = (400, {"detail": "Unknown plugin fs"})
    glances.overrides["sensors"] = (
        200,
        json.loads((FIXTURES / "sensors.json").read_text()),
    )
    glances.overrides["uptime"] = (200, "3 days, 10:25:20")
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances)
        sample = await client.async_fetch()
    assert sample.disk_percent is None
    assert sample.disk_total_bytes is None
    assert sample.temperature_celsius == 61
    assert (
        sample.boot_time
        == round((now[0] - (3 * 86400 + 10 * 3600 + 25 * 60 + 20)) / 60) * 60
    )


async def test_not_glances(glances: FakeGlances) -> None:
    """Neither /api/4 nor /api/3 → InvalidResponse; no cpu and mem → InvalidResponse."""
    glances.version = 5
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances)
        with pytest.raises(InvalidResponse):
            await client.async_fetch()
        glances.version = 4
        glances.overrides["cpu"] = (200, "garbage")
        glances.overrides["mem"] = (400, {"detail": "Unknown plugin"})
        with pytest.raises(InvalidResponse, match="neither cpu nor mem"):
            await client.async_fetch()


async def test_auth(glances: FakeGlances) -> None:
    """Missing credentials → InvalidAuth; right ones work."""
    glances.auth = aiohttp.BasicAuth("glances", "pw").encode()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidAuth):
            await make_client(session, glances)[0].async_fetch()
        sample = await make_client(session, glances, username="glances", password="pw")[
            0
        ].async_fetch()
    assert sample.memory_percent is not None


@pytest.mark.usefixtures("socket_enabled")
async def test_hung_server_times_out() -> None:
    """A server that accepts and never answers ends in CannotConnect after the timeout."""
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            client = GlancesClient(
                session, AgentConfig(host="127.0.0.1", port=port, timeout=0.2)
            )
            with pytest.raises(CannotConnect, match="no answer within 0.2 s"):
                await client.async_fetch()
    finally:
        release.set()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:37:39", 5859),
        ("0:00:05", 5),
        ("1 day, 0:00:01", 86401),
        ("3 days, 10:25:20", 3 * 86400 + 37520),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_uptime(text: str, seconds: int | None) -> None:
    assert parse_uptime(text) == seconds


def test_cpu_temperature_shapes() -> None:
    assert cpu_temperature([]) is None
    assert cpu_temperature("nope") is None
    assert cpu_temperature([{"type": "temperature_core", "value": "NA"}]) is None
    assert cpu_temperature([{"type": "temperature_hdd", "value": 50}]) is None
    assert cpu_temperature([{"type": "temperature_core", "value": 40.5}, "x"]) == 40.5
