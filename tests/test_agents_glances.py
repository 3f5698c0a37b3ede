"""Glances: plugins fetched, v3 fallback, own network rates, uptime, sensors and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.agents import glances as glances_agent
from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    AgentInfo,
    CannotConnect,
    FilesystemUsage,
    InterfaceTraffic,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.agents.glances import (
    BOOT_TIME_GRANULARITY,
    MAX_PLUGIN_BYTES,
    PLUGINS,
    GlancesClient,
    cpu_percent,
    cpu_temperature,
    filesystems,
    network_counters,
    parse_uptime,
    root_filesystem,
    swap_percent,
)
from custom_components.homelab_metrics.agents.readings import is_physical

from .agent_mocks import (
    UNKNOWN_PLUGIN,
    glances_has,
    glances_payload,
    hung_agent,
    mock_glances,
    mock_unauthorized,
    mock_unreachable,
)
from .fake_server import basic_auth, serve

FIXTURES = Path(__file__).parent / "fixtures" / "glances"
T0 = 1_764_000_000.0


class FakeGlances:
    """Serves /api/<version>/<plugin> from the captured payloads of one round."""

    def __init__(self) -> None:
        self.version = 4
        self.round = "v4"
        self.overrides: dict[str, tuple[int, Any]] = {}
        self.raw: dict[str, bytes] = {}
        """Bodies sent as they are, with a JSON content type."""
        self.cpu_answers: list[Any] = []
        """cpu bodies served first, one per request, before the round's own."""
        self.auth: str | None = None
        self.html = False
        self.web_ui = False
        self.page: Callable[[], web.Response] | None = None
        """What / answers, when set (web_ui answers a page otherwise)."""
        self.hang: set[str] = set()
        self.delay = 0.0
        """Seconds every plugin takes to answer."""
        self.requests: list[str] = []
        self.times: list[tuple[str, float]] = []
        self.in_flight = self.most_in_flight = 0
        self.port = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        self.times.append((request.path, asyncio.get_running_loop().time()))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        if self.html:  # what node_exporter answers on any path
            return web.Response(
                text="<html>Node Exporter</html>", content_type="text/html"
            )
        parts = request.path.strip("/").split("/")
        if len(parts) == 3 and parts[2] in self.hang:
            await self.release.wait()
        if parts[-1] == "status":  # Glances 4 answers it without a password
            return web.Response(status=200)
        if self.auth and request.headers.get("Authorization") != self.auth:
            return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
        if request.path == "/" and self.page is not None:
            return self.page()
        if request.path == "/" and self.web_ui:
            return web.Response(text="<html>Glances</html>", content_type="text/html")
        if len(parts) != 3 or parts[:2] != ["api", str(self.version)]:
            return web.json_response({"detail": "Not Found"}, status=404)
        plugin = parts[2]
        if plugin in self.raw:
            return web.Response(body=self.raw[plugin], content_type="application/json")
        if plugin in self.overrides:
            status, body = self.overrides[plugin]
            return web.json_response(body, status=status)
        if plugin == "cpu" and self.cpu_answers:
            return web.json_response(self.cpu_answers.pop(0))
        if not glances_has(self.version, plugin):
            return web.json_response(UNKNOWN_PLUGIN, status=400)
        return web.json_response(glances_payload(self.round, plugin))


@pytest.fixture
async def glances(socket_enabled: None) -> AsyncIterator[FakeGlances]:
    """A fake Glances on a free loopback port."""
    state = FakeGlances()
    async with serve(state.handle) as port:
        state.port = port
        yield state
        state.release.set()


def make_client(
    session: aiohttp.ClientSession, port: int, **kw: Any
) -> tuple[GlancesClient, list[float]]:
    """A client and the list whose first item is its clock's time."""
    now = [T0]
    client = GlancesClient(
        session,
        AgentConfig(host="127.0.0.1", port=port, **kw),
        clock=lambda: now[0],
    )
    return client, now


def physical_sum(network: list[dict[str, Any]], key: str) -> float:
    """One cumulative counter summed over the interfaces that count."""
    return sum(item[key] for item in network if is_physical(item["interface_name"]))


@pytest.fixture(autouse=True)
def short_cpu_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask again for a CPU answer that measured nothing after 50 ms instead of 2.1 s."""
    monkeypatch.setattr(glances_agent, "CPU_RETRY_DELAY", 0.05)


FIRST_POLL = [
    *(f"/api/4/{p}" for p in PLUGINS),
    "/api/4/system",
    "/api/4/version",
    "/",
]
"""A first poll of Glances 4: every plugin, then what it says about itself and its web UI."""


async def test_first_poll_from_real_payloads(glances: FakeGlances) -> None:
    """Memory, disk, load as Glances reports them; what Glances says about the server."""
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port)
        assert client.info == AgentInfo()  # nothing before the first poll
        sample = await client.async_fetch()
    mem, load = glances_payload("v4", "mem"), glances_payload("v4", "load")
    fs = glances_payload("v4", "fs")[0]
    assert sample.timestamp == int(T0)
    assert sample.cpu_percent == glances_payload("v4", "cpu")["total"]
    assert sample.memory_percent == mem["percent"]
    assert sample.memory_used_bytes == mem["used"]
    assert sample.memory_total_bytes == mem["total"]
    assert sample.disk_percent == pytest.approx(
        100 * fs["used"] / (fs["used"] + fs["free"])
    )
    # Glances' own figure (one decimal) agrees: free is what non-root may use, as in df.
    assert sample.disk_percent == pytest.approx(fs["percent"], abs=0.06)
    assert sample.disk_used_bytes == fs["used"]
    assert sample.disk_total_bytes == fs["size"]
    assert sample.filesystems == (
        FilesystemUsage(
            mountpoint="/",
            used_bytes=fs["used"],
            free_bytes=fs["free"],
            percent=sample.disk_percent,
        ),
    )
    assert (
        sample.swap_percent is None
    )  # the VM has no swap: Glances says 0 % of 0 bytes
    assert (sample.load_1m, sample.load_5m, sample.load_15m) == (
        load["min1"],
        load["min5"],
        load["min15"],
    )
    assert sample.network_rx_bytes_per_second is None
    assert sample.network_tx_bytes_per_second is None
    assert sample.interfaces == (InterfaceTraffic(name="eth0"),)  # no rates yet
    assert (
        sample.temperature_celsius is None
    )  # this VM has no sensors: missing, never 0
    uptime = parse_uptime(glances_payload("v4", "uptime"))
    assert uptime is not None
    assert sample.boot_time is not None
    assert sample.boot_time % BOOT_TIME_GRANULARITY == 0
    assert abs(sample.boot_time - (T0 - uptime)) <= BOOT_TIME_GRANULARITY / 2
    assert (sample.updates_pending, sample.reboot_required) == (None, None)
    assert client.api_version == 4
    assert client.info == AgentInfo(
        hostname="vm",
        agent_version="4.5.8",
        os="Debian GNU/Linux 12",
        web_ui=False,
    )
    assert glances.requests == FIRST_POLL
    assert (
        glances.most_in_flight == 1
    )  # one request at a time (see the module docstring)


@pytest.mark.parametrize("zero", ["cpu_zero.json", "cpu_first.json"])
async def test_cpu_that_measured_nothing_is_asked_again(
    glances: FakeGlances, zero: str
) -> None:
    """Issue 9: an all-zero CPU answer is asked once more after Glances' refresh time.

    cpu_zero.json was captured from Glances 4.5.8 in mid-run (its CPU update ran on a web
    server thread psutil had not seen); cpu_first.json is its first answer after a start.
    """
    glances.cpu_answers = [json.loads((FIXTURES / zero).read_text())]
    clock_reads: list[int] = []

    def clock() -> float:
        clock_reads.append(len(glances.requests))
        return T0

    async with aiohttp.ClientSession() as session:
        client = GlancesClient(
            session, AgentConfig(host="127.0.0.1", port=glances.port), clock=clock
        )
        sample = await client.async_fetch()
    assert sample.cpu_percent == glances_payload("v4", "cpu")["total"]
    # The poll's time is when the counters were read, before the wait: rates stay true.
    assert clock_reads == [len(PLUGINS)]
    cpu = [t for path, t in glances.times if path == "/api/4/cpu"]
    assert len(cpu) == 2  # one request more, no more
    assert cpu[1] - cpu[0] >= glances_agent.CPU_RETRY_DELAY
    assert glances.requests[: len(PLUGINS) + 1] == [
        *(f"/api/4/{p}" for p in PLUGINS),
        "/api/4/cpu",
    ]


async def test_cpu_that_measured_nothing_twice_is_missing(glances: FakeGlances) -> None:
    """Two all-zero answers: no CPU figure this poll (never 0 %), and no third request."""
    zero = json.loads((FIXTURES / "cpu_zero.json").read_text())
    glances.cpu_answers = [zero, zero, glances_payload("v4", "cpu")]
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        sample = await client.async_fetch()
        assert sample.cpu_percent is None
        assert sample.memory_percent is not None
        assert glances.requests.count("/api/4/cpu") == 2
        # The next poll measures again.
        now[0] += 10
        assert (await client.async_fetch()).cpu_percent == glances_payload("v4", "cpu")[
            "total"
        ]


async def test_a_measured_cpu_answer_is_not_asked_again(glances: FakeGlances) -> None:
    """A real 0 % (all idle) and a measured breakdown beside a stale total are figures."""
    idle = {**glances_payload("v4", "cpu"), "total": 0.0, "user": 0.0, "system": 0.0}
    glances.cpu_answers = [
        {**idle, "idle": 100.0},
        {**idle, "idle": 97.5, "iowait": 1.0},
    ]
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        assert (await client.async_fetch()).cpu_percent == 0.0
        now[0] += 10
        # Glances' total came from a cache another plugin filled with nothing measured.
        assert (await client.async_fetch()).cpu_percent == pytest.approx(1.5)
    assert glances.requests.count("/api/4/cpu") == 2


async def test_requests_per_poll(glances: FakeGlances) -> None:
    """Eight plugins a poll (five while the slow ones serve); what Glances says about itself once an
    hour, and after an upgrade."""
    glances.web_ui = True
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        assert glances.requests == FIRST_POLL
        assert client.info.web_ui is True
        for seconds in (60, glances_agent.INFO_REFRESH - 61):
            glances.requests.clear()
            now[0] += seconds
            await client.async_fetch()
            assert glances.requests == [f"/api/4/{p}" for p in PLUGINS]
        glances.requests.clear()
        now[0] += 1
        await client.async_fetch()  # an hour after the first poll
        # The slow plugins were asked a second before.
        slow = [f"/api/4/{p}" for p in glances_agent.SLOW_PLUGINS]
        assert glances.requests == [p for p in FIRST_POLL if p not in slow]
        # A clock that went back does not leave the information stale for an hour more.
        glances.requests.clear()
        now[0] -= 600
        await client.async_fetch()
        assert glances.requests == FIRST_POLL
        # Downgraded to Glances 3: asked again on the new API.
        glances.version, glances.round, glances.web_ui = 3, "v3", False
        glances.requests.clear()
        now[0] += 60
        await client.async_fetch()
        assert glances.requests[-3:] == ["/api/3/system", "/api/3/help", "/"]
        assert client.info == AgentInfo(
            hostname="vm", agent_version="3.3.1.1", os="Debian GNU/Linux 12"
        )


async def test_slow_plugins_are_asked_once_a_minute(glances: FakeGlances) -> None:
    """Filesystems, swap and uptime: asked by the first poll, then once SLOW_REFRESH has passed;
    the polls between keep their figures from the last answers (one request in three saved)."""
    fast = [f"/api/4/{p}" for p in PLUGINS if p not in glances_agent.SLOW_PLUGINS]
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        first = await client.async_fetch()
        assert first.disk_percent is not None
        assert first.boot_time is not None
        fs = glances_payload("v4", "fs")
        for item in fs:
            item["used"], item["free"] = item["free"], item["used"]
        glances.overrides["fs"] = (200, fs)
        for _ in range(5):
            glances.requests.clear()
            now[0] += 10
            sample = await client.async_fetch()
            assert glances.requests == fast
            assert (sample.disk_percent, sample.filesystems) == (
                first.disk_percent,
                first.filesystems,
            )
            assert (sample.swap_percent, sample.boot_time) == (
                first.swap_percent,
                first.boot_time,
            )
            assert sample.memory_percent is not None
        glances.requests.clear()
        now[0] += 10  # SLOW_REFRESH after the first poll
        sample = await client.async_fetch()
        assert glances.requests == [f"/api/4/{p}" for p in PLUGINS]
        assert sample.disk_percent == pytest.approx(100 - first.disk_percent)
        assert sample.boot_time == first.boot_time
        # A clock that went back asks them again at once.
        glances.requests.clear()
        now[0] -= 30
        await client.async_fetch()
        assert glances.requests == [f"/api/4/{p}" for p in PLUGINS]


@pytest.mark.parametrize(
    ("page", "web_ui"),
    [
        (
            lambda: web.Response(text="<html>Glances</html>", content_type="text/html"),
            True,
        ),
        (lambda: web.Response(status=401, headers={"WWW-Authenticate": "Basic"}), True),
        (lambda: web.json_response({"detail": "Not Found"}, status=404), False),
        (lambda: web.Response(text="{}", content_type="application/json"), False),
        (lambda: web.Response(text="x" * (glances_agent.MAX_PAGE_BYTES + 1)), False),
        (
            lambda: web.Response(
                body=b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"}
            ),
            False,
        ),
    ],
    ids=["page", "login", "disabled", "not a page", "too large", "unreadable"],
)
async def test_web_ui(
    glances: FakeGlances, page: Callable[[], web.Response], web_ui: bool
) -> None:
    """A page at / (or a login before it) is a web UI to link to; anything else is not."""
    glances.page = page
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port)
        sample = await client.async_fetch()
    assert client.info.web_ui is web_ui
    assert sample.memory_percent is not None


async def test_poll_time_is_bounded_as_a_whole(glances: FakeGlances) -> None:
    """One request after another still ends within the configured timeout, in all."""
    glances.delay = 0.1
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port, timeout=0.35)
        started = asyncio.get_running_loop().time()
        with pytest.raises(CannotConnect, match="no answer within 0.35 s"):
            await client.async_fetch()
        assert asyncio.get_running_loop().time() - started < 0.6
    assert len(glances.requests) < len(PLUGINS)


async def test_what_glances_says_about_itself(glances: FakeGlances) -> None:
    """Host name, OS, version; anything unreadable is missing, never a failed poll."""
    glances.overrides["system"] = (
        200,
        {
            "os_name": "Windows",
            "hostname": "GAMING-PC",
            "platform": "64bit",
            "os_version": "10 10.0.19045 SP0",
            "hr_name": "Windows 10 64bit",
        },
    )
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        assert client.info == AgentInfo(
            hostname="GAMING-PC", agent_version="4.5.8", os="Windows 10 10.0.19045 SP0"
        )
        glances.overrides["system"] = (400, UNKNOWN_PLUGIN)
        glances.raw["version"] = b'{"version": [1]}'
        now[0] += glances_agent.INFO_REFRESH
        sample = await client.async_fetch()
    assert client.info == AgentInfo()
    assert sample.memory_percent is not None


async def test_every_real_filesystem_swap_and_interfaces(glances: FakeGlances) -> None:
    """A NAS as Glances lists it: snaps, Docker's file mounts and bind mounts left out."""
    disk = {"options": "rw", "key": "mnt_point", "percent": 50.0}
    glances.overrides["fs"] = (
        200,
        [
            {**disk, "device_name": "/dev/sda2", "fs_type": "ext4", "mnt_point": "/",
             "size": 1000, "used": 600, "free": 350},
            {**disk, "device_name": "/dev/sda2", "fs_type": "ext4",
             "mnt_point": "/etc/hosts", "size": 1000, "used": 600, "free": 350},
            {**disk, "device_name": "/dev/loop3", "fs_type": "squashfs",
             "mnt_point": "/snap/core22/1380", "size": 77, "used": 77, "free": 0},
            {**disk, "device_name": "tank/media", "fs_type": "zfs",
             "mnt_point": "/tank/media", "size": 9000, "used": 3000, "free": 6000},
            {**disk, "device_name": "tank/media", "fs_type": "zfs",
             "mnt_point": "/export/media", "size": 9000, "used": 3000, "free": 6000},
        ],
    )  # fmt: skip
    glances.overrides["memswap"] = (
        200,
        {"total": 8_000_000_000, "used": 2_000_000_000, "free": 6_000_000_000,
         "percent": 25.0, "sin": 0, "sout": 0, "time_since_update": 10.0},
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        glances.round = "v4_second"
        now[0] += 4
        sample = await client.async_fetch()
    assert sample.filesystems == (
        FilesystemUsage(
            mountpoint="/", used_bytes=600, free_bytes=350, percent=600 / 9.5
        ),
        FilesystemUsage(
            mountpoint="/tank/media", used_bytes=3000, free_bytes=6000, percent=100 / 3
        ),
    )
    assert sample.swap_percent == 25.0
    before = {i["interface_name"]: i for i in glances_payload("v4", "network")}
    after = {i["interface_name"]: i for i in glances_payload("v4_second", "network")}
    assert sample.interfaces == tuple(
        InterfaceTraffic(
            name=name,
            rx_bytes_per_second=pytest.approx(
                (after[name]["bytes_recv_gauge"] - before[name]["bytes_recv_gauge"]) / 4
            ),
            tx_bytes_per_second=pytest.approx(
                (after[name]["bytes_sent_gauge"] - before[name]["bytes_sent_gauge"]) / 4
            ),
        )
        for name in sorted(after)
        if is_physical(name)
    )
    assert len(sample.interfaces) == 1  # eth0; lo and the others are not physical


def test_swap_percent() -> None:
    """Swap in use from Glances' bytes; none at all is no figure."""
    assert swap_percent({"total": 4096, "used": 1024}) == 25.0
    assert swap_percent({"total": 0, "used": 0, "percent": 0.0}) is None
    assert swap_percent({"total": "ERR", "used": 1}) is None
    assert swap_percent({"total": 100}) is None
    assert swap_percent([]) is None
    assert filesystems("nope") == ()


async def test_cpu_temperature_is_the_cpu_s(glances: FakeGlances) -> None:
    """Glances types the NVMe drive, the GPU and the Wi-Fi card as core temperatures too."""
    glances.overrides["sensors"] = (
        200,
        json.loads((FIXTURES / "sensors_desktop.json").read_text()),
    )
    async with aiohttp.ClientSession() as session:
        sample = await make_client(session, glances.port)[0].async_fetch()
    # Tctl (63) and Tccd1 (52); the NVMe's 80, the GPU's 74 and the Wi-Fi's 48 are not the CPU.
    assert sample.temperature_celsius == 63


async def test_glances_3_fallback_probes_once(glances: FakeGlances) -> None:
    """A Glances 3 server costs one 404 on /api/4/cpu, then everything goes to /api/3."""
    glances.version, glances.round = 3, "v3"
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port)
        sample = await client.async_fetch()
    # Glances 3 has no version plugin: the version comes from its help.
    assert glances.requests == [
        "/api/4/cpu",
        *(f"/api/3/{p}" for p in PLUGINS),
        "/api/3/system",
        "/api/3/help",
        "/",
    ]
    fs = glances_payload("v3", "fs")[0]
    assert sample.disk_percent == pytest.approx(fs["percent"], abs=0.06)
    assert sample.cpu_percent == glances_payload("v3", "cpu")["total"]
    assert sample.swap_percent is None
    assert client.info == AgentInfo(
        hostname="vm", agent_version="3.3.1.1", os="Debian GNU/Linux 12"
    )


async def test_server_changes_version(glances: FakeGlances) -> None:
    """An upgrade between polls (404 on the remembered version) is followed."""
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        glances.version, glances.round = 3, "v3"
        now[0] += 60
        sample = await client.async_fetch()
        assert client.api_version == 3
        assert sample.memory_percent == glances_payload("v3", "mem")["percent"]
        # Interfaces and counters are the same across versions: rates continue.
        assert sample.network_rx_bytes_per_second is not None


async def test_disabled_plugins_and_sensors(glances: FakeGlances) -> None:
    """A disabled plugin leaves its fields empty; sensors give the hottest readable CPU value."""
    glances.overrides["fs"] = (400, {"detail": "Unknown plugin fs"})
    glances.overrides["load"] = (400, {"detail": "Unknown plugin load"})
    glances.overrides["sensors"] = (
        200,
        json.loads((FIXTURES / "sensors.json").read_text()),
    )
    glances.overrides["uptime"] = (200, "3 days, 10:25:20")
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        sample = await client.async_fetch()
    assert sample.disk_percent is None
    assert sample.disk_total_bytes is None
    assert sample.load_1m is None
    assert sample.memory_percent is not None
    assert (
        sample.temperature_celsius == 61
    )  # Core 0; "ERR" skipped, NVMe and fan ignored
    uptime = 3 * 86400 + 10 * 3600 + 25 * 60 + 20
    assert sample.boot_time == round((now[0] - uptime) / 60) * 60


async def test_not_glances(glances: FakeGlances) -> None:
    """No Glances API, a node_exporter's HTML, or neither cpu nor mem → InvalidResponse."""
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port)
        glances.version = 5
        with pytest.raises(InvalidResponse, match="no Glances API"):
            await client.async_fetch()
        assert client.api_version is None
        glances.version, glances.html = 4, True
        with pytest.raises(InvalidResponse, match="neither cpu nor mem"):
            await client.async_fetch()
        glances.html = False
        glances.overrides["cpu"] = (200, "garbage")
        glances.overrides["mem"] = (400, {"detail": "Unknown plugin"})
        with pytest.raises(InvalidResponse, match="neither cpu nor mem"):
            await client.async_fetch()
        # cpu alone is enough.
        del glances.overrides["cpu"]
        assert (await client.async_fetch()).cpu_percent is not None


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in json.loads
        b'{"total": 1'
        + b"0" * 400
        + b', "used": 1e999, "percent": 1e999}',  # OverflowError
        b'{"total": 1' + b"0" * 5000 + b"}",  # ValueError: int digits limit
        b'{"total": NaN, "used": Infinity, "percent": -Infinity}',
        b'{"total": "8e9", "used": [1], "percent": {"a": 1}, "available": true}',
        b"\xff\xfe\x00garbage",
        b"<html><body>Not Glances</body></html>",
        b'{"total": 8',  # cut off
        b"",
    ],
    ids=[
        "deep",
        "400 digits",
        "5000 digits",
        "NaN and Infinity",
        "wrong types",
        "not UTF-8",
        "HTML",
        "cut",
        "empty",
    ],
)
async def test_unreadable_plugin_is_missing(glances: FakeGlances, body: bytes) -> None:
    """Any body a plugin may send ends as missing figures, never another exception."""
    glances.raw["mem"] = body
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port)
        sample = await client.async_fetch()
    assert sample.memory_percent is None
    assert sample.memory_total_bytes is None
    assert sample.memory_used_bytes is None
    assert sample.cpu_percent is not None  # the other plugins still count


async def test_oversized_plugin_is_missing(glances: FakeGlances) -> None:
    """A plugin body over MAX_PLUGIN_BYTES is not read: its figures are missing."""
    item = glances_payload("v4", "network")[1]
    many = [
        {**item, "interface_name": f"eth{i}"}
        for i in range(MAX_PLUGIN_BYTES // len(json.dumps(item)) + 1)
    ]
    glances.overrides["network"] = (200, many[: len(many) // 2])
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        now[0] += 60
        assert (await client.async_fetch()).network_rx_bytes_per_second == 0
        glances.overrides["network"] = (200, many)
        now[0] += 60
        sample = await client.async_fetch()
    assert sample.network_rx_bytes_per_second is None
    assert sample.memory_percent is not None


async def test_odd_shapes_inside_plugins(glances: FakeGlances) -> None:
    """Names and labels that are not text, and nesting inside items, are skipped."""
    deep: Any = []
    for _ in range(900):  # under json's own nesting limit
        deep = [deep]
    glances.overrides["network"] = (
        200,
        [{"interface_name": deep, "bytes_recv_gauge": 1}, {"interface_name": 5}],
    )
    glances.overrides["sensors"] = (
        200,
        [
            {"label": deep, "type": "temperature_core", "value": 90},
            {"label": "Core 0", "type": "temperature_core", "value": 50},
        ],
    )
    async with aiohttp.ClientSession() as session:
        sample = await make_client(session, glances.port)[0].async_fetch()
    assert sample.temperature_celsius == 50  # a sensor without a name is not the CPU
    assert sample.memory_percent is not None


async def test_implausible_figures_are_missing(glances: FakeGlances) -> None:
    """CPU -50 %, memory 150 %, NaN disk % from huge sizes, an inf rate, a boot before 2000."""
    mem = glances_payload("v4", "mem")
    fs = glances_payload("v4", "fs")
    network = glances_payload("v4", "network")
    glances.overrides["cpu"] = (200, {**glances_payload("v4", "cpu"), "total": -50})
    glances.overrides["mem"] = (200, {**mem, "percent": 150})
    glances.overrides["fs"] = (200, [{**fs[0], "used": 1e308, "free": 1e308}])
    glances.overrides["network"] = (
        200,
        [{**item, "bytes_recv_gauge": -1.7e308} for item in network],
    )
    glances.overrides["uptime"] = (200, "999999 days, 0:00:00")
    glances.overrides["sensors"] = (
        200,
        [
            {"label": "Core 0", "type": "temperature_core", "value": 127},
            {"label": "Core 1", "type": "temperature_core", "value": 49},
        ],
    )
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        glances.overrides["network"] = (
            200,
            [{**item, "bytes_recv_gauge": 1.7e308} for item in network],
        )
        now[0] += 60
        sample = await client.async_fetch()
    assert sample.cpu_percent is None
    assert sample.memory_percent is None
    assert sample.memory_total_bytes == mem["total"]
    assert sample.disk_percent is None
    assert sample.disk_used_bytes is None
    assert sample.disk_total_bytes == fs[0]["size"]
    assert sample.network_rx_bytes_per_second is None
    assert sample.network_tx_bytes_per_second is not None
    assert sample.boot_time is None
    assert sample.temperature_celsius == 49


async def test_auth(glances: FakeGlances) -> None:
    """/status is open, so a missing password shows on the data endpoints: InvalidAuth."""
    glances.auth = basic_auth("glances", "pw")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidAuth):
            await make_client(session, glances.port)[0].async_fetch()
        with pytest.raises(InvalidAuth):
            await make_client(
                session, glances.port, username="glances", password="nope"
            )[0].async_fetch()
        client, _ = make_client(
            session, glances.port, username="glances", password="pw"
        )
        sample = await client.async_fetch()
    assert sample.memory_percent is not None


async def test_one_hung_plugin_times_the_poll_out(glances: FakeGlances) -> None:
    """A plugin that never answers fails the whole poll, and leaves no request behind."""
    glances.hang = {"sensors"}
    async with aiohttp.ClientSession() as session:
        client, _ = make_client(session, glances.port, timeout=0.3)
        with pytest.raises(CannotConnect, match="no answer"):
            await client.async_fetch()
    assert sorted(glances.requests) == sorted(f"/api/4/{p}" for p in PLUGINS)


@pytest.mark.usefixtures("socket_enabled")
async def test_hung_server_times_out() -> None:
    """A server that accepts and never answers ends in CannotConnect after the timeout."""
    async with hung_agent() as port, aiohttp.ClientSession() as session:
        client, _ = make_client(session, port, timeout=0.2)
        with pytest.raises(CannotConnect, match="no answer within 0.2 s"):
            await client.async_fetch()


def test_boot_time_is_stable() -> None:
    """Jitter across a rounding boundary keeps the boot time; a reboot or a clock step moves it."""
    client = GlancesClient(None, AgentConfig(host="h", port=1))  # type: ignore[arg-type]
    # Uptime is read a little after our clock: now - uptime crosses the :30 rounding edge.
    first = client._boot_time("1:00:00", 1_000_029.0)
    assert first == round((1_000_029 - 3600) / 60) * 60
    assert client._boot_time("1:01:00", 1_000_091.0) == first  # would round up alone
    assert client._boot_time("1:11:00", 1_000_688.0) == first
    # Uptime went back: the server rebooted.
    rebooted = client._boot_time("0:02:00", 1_000_800.0)
    assert rebooted == round((1_000_800 - 120) / 60) * 60
    # Our clock jumped an hour: the estimate is re-made.
    assert (
        client._boot_time("0:03:00", 1_004_460.0) == round((1_004_460 - 180) / 60) * 60
    )
    assert client._boot_time("soon", 1_004_500.0) is None
    assert client._boot_time(None, 1_004_500.0) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:37:39", 5859),
        ("0:00:05", 5),
        ("1 day, 0:00:01", 86401),
        ("3 days, 10:25:20", 3 * 86400 + 37520),
        ("400 days, 23:59:59", 400 * 86400 + 86399),
        ("999999 days, 23:59:59", 999999 * 86400 + 86399),
        ("soon", None),
        ("1:2:3", None),
        ("", None),
        ("1" * 30 + " days, 1:00:00", None),  # beyond any boot time: unreadable
        ("1000000 days, 0:00:00", None),
        ("1" * 400 + ":00:00", None),
        ("24:00:00", None),
        ("1:60:00", None),
        ("٣:00:00", None),  # digits of another script
    ],
)
def test_parse_uptime(text: str, seconds: int | None) -> None:
    """Glances' uptime text in seconds."""
    assert parse_uptime(text) == seconds


def test_plugin_shapes() -> None:
    """Odd shapes give None, never 0."""
    assert cpu_temperature([]) is None
    assert cpu_temperature("nope") is None
    assert cpu_temperature([{"type": "temperature_core", "value": "NA"}]) is None
    assert cpu_temperature([{"type": "temperature_hdd", "value": 50}]) is None
    core = {"label": "Core 0", "type": "temperature_core"}
    assert cpu_temperature([{**core, "value": 40.5}, "x"]) == 40.5
    assert cpu_temperature([{"type": "temperature_core", "value": 40.5}]) is None
    assert cpu_percent({"total": 0.0, "idle": 0.0}) is None
    assert cpu_percent({"total": 0.0, "idle": 100.0}) == 0.0
    assert cpu_percent({"total": "ERR"}) is None
    assert cpu_percent(None) is None
    assert root_filesystem([]) is None
    assert root_filesystem([{"mnt_point": "/data"}, {"mnt_point": "/"}]) == {
        "mnt_point": "/"
    }
    assert root_filesystem([{"mnt_point": "/etc/hosts"}]) == {"mnt_point": "/etc/hosts"}
    rx, tx = network_counters(
        [
            {"interface_name": "eth0", "bytes_recv_gauge": 10, "bytes_sent_gauge": 5},
            {
                "interface_name": "docker0",
                "bytes_recv_gauge": 99,
                "bytes_sent_gauge": 99,
            },
            {"interface_name": "eth1", "cumulative_rx": 7, "cumulative_tx": "NA"},
            {"bytes_recv_gauge": 1},
            "junk",
        ]
    )
    # Every interface is kept here; the rate counts the physical ones (test_agents_readings).
    assert rx == {"eth0": 10, "docker0": 99, "eth1": 7}
    assert tx == {"eth0": 5, "docker0": 99}


async def test_counter_reset_gives_no_rate(glances: FakeGlances) -> None:
    """Counters that went back (Glances or the server restarted) give no rate for that poll."""
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        glances.round = "v4_second"
        await client.async_fetch()
        glances.round = "v4"
        now[0] += 60
        sample = await client.async_fetch()
    assert sample.network_rx_bytes_per_second is None
    assert sample.network_tx_bytes_per_second is None


async def test_no_rate_without_time_passing(glances: FakeGlances) -> None:
    """Two polls at the same instant, or with our clock gone back, give no rate."""
    async with aiohttp.ClientSession() as session:
        client, now = make_client(session, glances.port)
        await client.async_fetch()
        glances.round = "v4_second"
        assert (await client.async_fetch()).network_rx_bytes_per_second is None
        now[0] -= 30
        assert (await client.async_fetch()).network_rx_bytes_per_second is None


async def test_mocks_for_home_assistant_tests(
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """agent_mocks' Glances helpers drive the real client through aioclient_mock."""
    base = AgentConfig(host="192.168.1.20", port=61208).base_url
    session = aioclient_mock.create_session(asyncio.get_running_loop())
    try:
        client = GlancesClient(session, AgentConfig(host="192.168.1.20", port=61208))
        mock_glances(aioclient_mock, base, version=3, first_cpu=True)
        sample = await client.async_fetch()
        assert sample.cpu_percent is None
        assert sample.memory_percent == glances_payload("v3", "mem")["percent"]
        assert client.api_version == 3

        aioclient_mock.clear_requests()
        mock_glances(
            aioclient_mock, base, overrides={"fs": (400, {"detail": "Unknown plugin"})}
        )
        sample = await client.async_fetch()
        assert client.api_version == 4
        assert sample.disk_percent is None
        assert sample.cpu_percent == glances_payload("v4", "cpu")["total"]

        aioclient_mock.clear_requests()
        mock_unauthorized(aioclient_mock, base)
        with pytest.raises(InvalidAuth):
            await client.async_fetch()
        aioclient_mock.clear_requests()
        mock_unreachable(aioclient_mock, base)
        with pytest.raises(CannotConnect):
            await client.async_fetch()
        aioclient_mock.clear_requests()
        mock_unreachable(aioclient_mock, base, TimeoutError())
        with pytest.raises(CannotConnect):
            await client.async_fetch()
    finally:
        await session.close()
