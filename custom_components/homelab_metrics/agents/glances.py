"""Glances REST API (v4, falling back to v3): a few small endpoints per poll, our own network rates.

Glances' own `bytes_recv`/`bytes_sent` are deltas since the previous request of any client, so rates
come from the cumulative counters (`*_gauge` in v4, `cumulative_*` in v3) between our own polls,
over the same physical interfaces as node_exporter (`readings.is_physical`).

The small plugin endpoints are used rather than `/all` (90 kB, mostly process lists). `/status`
answers without a password, so the data endpoints are the ones that reveal wrong credentials.
What Glances says about itself (host name, OS, version, web UI) changes only when the server is
reconfigured or upgraded, so it is asked on the first poll, after an API version change, and then
once every INFO_REFRESH seconds, not on every poll. Filesystems, swap and uptime change slowly, so
they are asked once every SLOW_REFRESH seconds and their last answers serve the polls between:
each request costs Home Assistant's event loop about a quarter of a millisecond.

CPU usage: Glances 4 answers each request in a worker thread of its web server, and psutil keeps
the previous CPU times per thread, so a CPU update that runs on a thread psutil has not seen (a
new worker, started when requests arrive together or after 10 s idle) measures nothing: every
field 0.0. Glances keeps that answer for its refresh time (2 s) and serves it to every client.
So the plugins are requested one after another, which keeps Glances on one worker that measured
at our previous poll, and an answer that measured nothing is asked once more after the refresh
time (see `CPU_RETRY_DELAY`). Such an answer is "not measured", never 0 %.

Whatever a plugin answers ends as its figures or as missing ones: a body over MAX_PLUGIN_BYTES,
JSON that does not decode (cut, not UTF-8, nested past Python's recursion limit, an integer past
its 4,300-digit limit) and values of the wrong type are all missing figures; only a poll without
cpu and mem is an error. Numbers go through `readings.finite`, so NaN, Infinity and integers past
the float range are missing too.

Why one module of about 430 lines: one client per wire format, as node_exporter and
prometheus have; most of it is the per-plugin bounds listed above.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Final

from .base import (
    AgentInfo,
    CannotConnect,
    FilesystemUsage,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from .http import HttpAgentClient
from .readings import (
    Mount,
    byte_count,
    clean_text,
    counter_rate,
    finite,
    hottest_cpu,
    interface_traffic,
    is_cpu_label,
    plausible,
    real_filesystems,
)

PLUGINS = ("cpu", "mem", "memswap", "fs", "load", "uptime", "network", "sensors")
"""What every poll asks for, in this order (cpu first: its 404 tells the API version)."""
SLOW_PLUGINS = ("memswap", "fs", "uptime")
"""Plugins asked once every SLOW_REFRESH seconds; the polls between use their last answers."""
FAST_PLUGINS = tuple(p for p in PLUGINS if p not in SLOW_PLUGINS)
"""What the polls between ask for."""
SLOW_REFRESH = 60.0
"""Seconds a slow plugin's answer serves: a disk's use or a boot time a minute old is still true."""
INFO_PLUGINS = {4: ("system", "version"), 3: ("system", "help")}
"""What Glances tells about itself; Glances 3 has no version plugin, its help holds the version."""
API_VERSIONS = (4, 3)
"""Glances 4 serves only /api/4, Glances 3 only /api/3."""
INFO_REFRESH = 3600.0
"""Seconds between two reads of the host name, OS, version and web UI."""
CPU_RETRY_DELAY = 2.1
"""Seconds before a CPU answer that measured nothing is asked again: Glances' default refresh
time (2 s) and a margin, so that the next request measures anew instead of getting the same
answer from Glances' cache."""
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "steal", "guest")
"""The CPU time percentages Glances sends beside its total."""
MAX_PAGE_BYTES = 64 * 1024
"""Largest answer to GET / read when looking for the web UI (Glances 3 and 4 send 0.5 kB)."""

BOOT_TIME_GRANULARITY = 60
"""The first boot time is now - uptime rounded to this many seconds."""
BOOT_TIME_TOLERANCE = 120
"""Later polls keep that boot time while their estimate stays this close and uptime grows."""

MAX_PLUGIN_BYTES = 64 * 1024
"""Largest plugin body read; a larger one leaves that plugin's figures missing.

The plugins send 0.01-0.7 kB; a network list takes about 350 bytes an interface, so this holds some
180 of them. json.loads is one C call that holds the GIL (the executor would not free the event
loop), so the cap is what bounds its step: 2-4 ms of CPU at worst on the test machine, four times
that at 128 KiB (benchmarks/parse.py).
"""

# str(datetime.timedelta) as Glances sends it; days bounded so that the seconds stay plausible.
_UPTIME = re.compile(
    r"\s*+(?:([0-9]{1,6}+) days?, )?([01]?[0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])\s*+"
)
_NOT_FOUND: Final = object()
"""A plugin path answered 404: this server speaks another API version."""

_COUNTER_KEYS = (
    ("bytes_recv_gauge", "bytes_sent_gauge"),  # Glances 4
    ("cumulative_rx", "cumulative_tx"),  # Glances 3
)


def parse_uptime(text: str) -> int | None:
    """Seconds of "3 days, 10:25:20" / "1 day, 0:00:01" / "1:37:39"; None when unreadable."""
    match = _UPTIME.fullmatch(text)
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def decode_json(body: bytes) -> Any:
    """A plugin's JSON, or None when it does not decode (within Python's own bounds)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON or UTF-8 and integers past 4,300 digits; RecursionError
        # nesting past the interpreter's recursion limit.
        return None


def network_counters(network: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Cumulative received and sent bytes by interface (all of them: the rate picks the physical ones)."""
    rx: dict[str, float] = {}
    tx: dict[str, float] = {}
    if not isinstance(network, list):
        return rx, tx
    for item in network:
        if not isinstance(item, dict):
            continue
        name = item.get("interface_name")
        if not isinstance(name, str) or not name:
            continue
        for rx_key, tx_key in _COUNTER_KEYS:
            if rx_key in item or tx_key in item:
                if (value := finite(item.get(rx_key))) is not None:
                    rx[name] = value
                if (value := finite(item.get(tx_key))) is not None:
                    tx[name] = value
                break
    return rx, tx


def root_filesystem(fs: Any) -> dict[str, Any] | None:
    """The filesystem mounted at "/", else the first one listed (a container's view)."""
    if not isinstance(fs, list):
        return None
    items = [item for item in fs if isinstance(item, dict)]
    for item in items:
        if item.get("mnt_point") == "/":
            return item
    return items[0] if items else None


def filesystems(fs: Any) -> tuple[FilesystemUsage, ...]:
    """Every real filesystem Glances lists (`readings.real_filesystems` chooses)."""
    if not isinstance(fs, list):
        return ()
    return real_filesystems(
        Mount(
            device=_text(item.get("device_name")),
            fstype=_text(item.get("fs_type")),
            mountpoint=_text(item.get("mnt_point")),
            size=finite(item.get("size")),
            used=finite(item.get("used")),
            # Glances' free is what non-root users may still use: df's Avail.
            available=finite(item.get("free")),
        )
        for item in fs
        if isinstance(item, dict)
    )


def swap_percent(memswap: Any) -> float | None:
    """Swap in use, in percent; None without swap (Glances says 0 % of 0 bytes then)."""
    if not isinstance(memswap, dict):
        return None
    total, used = byte_count(finite(memswap.get("total"))), finite(memswap.get("used"))
    if not total or used is None:
        return None
    return 100.0 * used / total


def cpu_temperature(sensors: Any) -> float | None:
    """Hottest CPU temperature, recognised by its label; "ERR"/"NA" values are skipped.

    Glances types every psutil temperature (NVMe drives, GPUs, Wi-Fi cards) as a core
    temperature, so only the labels of CPU sensors count (`readings.is_cpu_label`); a server
    whose sensors have none of them has no CPU temperature rather than another device's.
    """
    if not isinstance(sensors, list):
        return None
    return hottest_cpu(
        ("", label, finite(item.get("value")))
        for item in sensors
        if isinstance(item, dict)
        and item.get("type") == "temperature_core"
        and is_cpu_label(label := _text(item.get("label")))
    )


def _text(value: Any) -> str:
    """A string field, or "" for anything else (a number or a list is no name)."""
    return value if isinstance(value, str) else ""


def cpu_measured_nothing(cpu: Any) -> bool:
    """Whether a cpu answer is the one Glances gives when it measured nothing: every field 0.

    Glances sends it right after it starts and whenever its CPU update ran on a worker thread
    psutil had not seen (see the module docstring).
    """
    return (
        isinstance(cpu, dict)
        and finite(cpu.get("total")) == 0
        and not any(finite(cpu.get(key)) for key in CPU_FIELDS)
    )


def cpu_percent(cpu: Any) -> float | None:
    """Busy %, or None when Glances measured nothing (every field 0).

    The total comes from Glances' own cache, which another plugin (quicklook) may have filled
    from a thread that measured nothing, while the time percentages beside it were measured; a
    total of 0 then yields to them: busy is what is neither idle nor waiting for I/O.
    """
    if not isinstance(cpu, dict) or cpu_measured_nothing(cpu):
        return None
    total = finite(cpu.get("total"))
    if total is None or total != 0:
        return total
    idle, iowait = finite(cpu.get("idle")) or 0.0, finite(cpu.get("iowait")) or 0.0
    # Each percentage is rounded to 0.1: idle + iowait may exceed 100 by a rounding step.
    return max(0.0, 100.0 - idle - iowait) if idle + iowait <= 100.2 else None


def agent_info(system: Any, version: Any, *, web_ui: bool) -> AgentInfo:
    """What Glances tells about itself: /system, and /version (Glances 4) or /help (Glances 3)."""
    system = system if isinstance(system, dict) else {}
    if isinstance(version, dict):
        # Glances 3's help: {"version": "Glances 3.3.1.1", "psutil_version": ...}
        version = _text(version.get("version")).removeprefix("Glances ")
    os_name, distro = _text(system.get("os_name")), _text(system.get("linux_distro"))
    os_text = (
        distro
        if os_name == "Linux" and distro
        else f"{os_name} {_text(system.get('os_version'))}"
    )
    return AgentInfo(
        hostname=clean_text(system.get("hostname")),
        agent_version=clean_text(version),
        os=clean_text(os_text),
        web_ui=web_ui,
    )


class GlancesClient(HttpAgentClient):
    """Polls one Glances server; remembers its API version, network counters and boot time."""

    _version: int | None = None
    _previous: tuple[dict[str, float], dict[str, float], float] | None = None
    _boot: tuple[int, int] | None = None
    """The boot time last reported and the uptime it came from."""
    _info_read: tuple[int, float] | None = None
    """The API version and the time of the last read of what Glances tells about itself."""
    _slow: tuple[int, float, dict[str, Any]] | None = None
    """The API version, time and answers of the last read of SLOW_PLUGINS."""

    @property
    def api_version(self) -> int | None:
        """The API version the server answered on (None before the first good poll)."""
        return self._version

    async def _async_plugin(self, version: int, name: str) -> Any:
        """One plugin's JSON; None when disabled or unreadable, _NOT_FOUND on a 404."""
        try:
            reply = await self._async_get(
                f"/api/{version}/{name}", max_bytes=MAX_PLUGIN_BYTES
            )
        except InvalidResponse:
            return None  # too large, or an encoding we cannot read
        if reply.status == 404:
            return _NOT_FOUND
        if reply.status != 200:
            return None  # a disabled plugin answers 400 "Unknown plugin"
        # One body per step of the event loop: each request before it yielded to the loop.
        return decode_json(reply.body)

    async def _async_plugins(
        self, version: int, names: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """Plugins one after another (see the module docstring); None when the first is 404.

        A 404 on the first plugin means the server speaks another API version; on a later one,
        that plugin is missing.
        """
        data: dict[str, Any] = {}
        for name in names:
            value = await self._async_plugin(version, name)
            if value is _NOT_FOUND and not data:
                return None
            data[name] = None if value is _NOT_FOUND else value
        return data

    async def _async_web_ui(self) -> bool:
        """Whether Glances serves its web UI at / (it answers 404 with --disable-webui)."""
        try:
            reply = await self._async_get("/", max_bytes=MAX_PAGE_BYTES)
        except InvalidAuth:
            return True  # a page behind the same password
        except InvalidResponse:
            return False
        return reply.status == 200 and reply.content_type.startswith("text/html")

    async def _async_poll(self) -> tuple[int, dict[str, Any], bool]:
        """Every plugin, on the remembered API version or the one the server speaks.

        The slow plugins' answers come from the last poll that asked them while they serve;
        the flag says whether this poll asked them.
        """
        if self._version is not None:
            version = self._version
            if (slow := self._slow) is not None and (
                slow[0] == version and 0 <= self._clock() - slow[1] < SLOW_REFRESH
            ):
                data = await self._async_plugins(version, FAST_PLUGINS)
                if data is not None:
                    return version, {**data, **slow[2]}, False
            elif (data := await self._async_plugins(version, PLUGINS)) is not None:
                return version, data, True
        # First poll, or the server was upgraded or downgraded since.
        for version in API_VERSIONS:
            if (data := await self._async_plugins(version, PLUGINS)) is not None:
                self._version = version
                return version, data, True
        self._version = None
        raise InvalidResponse("no Glances API at /api/4 or /api/3")

    async def async_fetch(self) -> Sample:
        """Poll the plugins once; a poll takes at most the configured timeout in all."""
        try:
            async with asyncio.timeout(self._config.timeout):
                version, data, asked_slow = await self._async_poll()
                if not isinstance(data["cpu"], dict) and not isinstance(
                    data["mem"], dict
                ):
                    raise InvalidResponse("Glances sent neither cpu nor mem")
                # When the counters were read: the rates' interval, whatever follows.
                now = self._clock()
                if asked_slow:
                    self._slow = (version, now, {p: data[p] for p in SLOW_PLUGINS})
                if cpu_measured_nothing(data["cpu"]):
                    # Glances keeps that answer for its refresh time: ask once more after it.
                    await asyncio.sleep(CPU_RETRY_DELAY)
                    cpu = await self._async_plugin(version, "cpu")
                    data["cpu"] = None if cpu is _NOT_FOUND else cpu
                if (
                    self._info_read is None
                    or self._info_read[0] != version
                    or not (0 <= now - self._info_read[1] < INFO_REFRESH)
                ):
                    about = await self._async_plugins(version, INFO_PLUGINS[version])
                    about = about or {}
                    self.info = agent_info(
                        about.get("system"),
                        about.get(INFO_PLUGINS[version][1]),
                        web_ui=await self._async_web_ui(),
                    )
                    self._info_read = (version, now)
        except TimeoutError as err:
            raise CannotConnect(f"no answer within {self._config.timeout:g} s") from err
        return self._sample(data, now)

    def _sample(self, data: dict[str, Any], now: float) -> Sample:
        """Turn one poll's plugin answers into a Sample."""
        mem = data["mem"]
        memory_percent = memory_used = memory_total = None
        if isinstance(mem, dict):
            memory_percent = finite(mem.get("percent"))
            memory_used = byte_count(finite(mem.get("used")))
            memory_total = byte_count(finite(mem.get("total")))

        disk_percent = disk_used = disk_total = None
        if (fs := root_filesystem(data["fs"])) is not None:
            # Only byte counts that can be true enter the figure (huge ones made it NaN).
            used_fs, free_fs, size = (
                byte_count(finite(fs.get(k))) for k in ("used", "free", "size")
            )
            # Glances' free is what non-root users may still use: the same Use% as df.
            if used_fs is not None and free_fs is not None and used_fs + free_fs > 0:
                disk_percent = 100.0 * used_fs / (used_fs + free_fs)
            disk_used, disk_total = used_fs, size

        load = data["load"] if isinstance(data["load"], dict) else {}
        rx, tx = network_counters(data["network"])
        rx_rate = tx_rate = seconds = None
        before_counters = None
        if self._previous is not None:
            before_rx, before_tx, before = self._previous
            seconds = now - before
            rx_rate = counter_rate(rx, before_rx, seconds)
            tx_rate = counter_rate(tx, before_tx, seconds)
            before_counters = (before_rx, before_tx)
        self._previous = (rx, tx, now)

        return plausible(
            Sample(
                timestamp=int(now),
                cpu_percent=cpu_percent(data["cpu"]),
                memory_percent=memory_percent,
                disk_percent=disk_percent,
                load_1m=finite(load.get("min1")),
                load_5m=finite(load.get("min5")),
                load_15m=finite(load.get("min15")),
                memory_used_bytes=memory_used,
                memory_total_bytes=memory_total,
                disk_used_bytes=disk_used,
                disk_total_bytes=disk_total,
                network_rx_bytes_per_second=rx_rate,
                network_tx_bytes_per_second=tx_rate,
                temperature_celsius=cpu_temperature(data["sensors"]),
                boot_time=self._boot_time(data["uptime"], now),
                swap_percent=swap_percent(data["memswap"]),
                filesystems=filesystems(data["fs"]),
                interfaces=interface_traffic(rx, tx, before_counters, seconds),
            )
        )

    def _boot_time(self, uptime: Any, now: float) -> int | None:
        """Boot time as now - uptime, kept from poll to poll so that it does not jitter (as core does)."""
        if not isinstance(uptime, str) or (seconds := parse_uptime(uptime)) is None:
            return None
        estimate = now - seconds
        if (
            self._boot is not None
            and seconds >= self._boot[1]
            and abs(estimate - self._boot[0]) <= BOOT_TIME_TOLERANCE
        ):
            boot = self._boot[0]
        else:
            # First poll, a reboot (uptime went back) or a clock step: a new boot time.
            boot = round(estimate / BOOT_TIME_GRANULARITY) * BOOT_TIME_GRANULARITY
        self._boot = (boot, seconds)
        return boot
