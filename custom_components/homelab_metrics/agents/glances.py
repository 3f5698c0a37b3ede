"""Glances REST API (v4, falling back to v3): a few small endpoints per poll, our own network rates.

Glances' own `bytes_recv`/`bytes_sent` are deltas since the previous request of any client, so rates
come from the cumulative counters (`*_gauge` in v4, `cumulative_*` in v3) between our own polls,
over the same physical interfaces as node_exporter (`readings.is_physical`).

The small plugin endpoints are used rather than `/all` (90 kB, mostly process lists). `/status`
answers without a password, so the data endpoints are the ones that reveal wrong credentials.

Whatever a plugin answers ends as its figures or as missing ones: a body over MAX_PLUGIN_BYTES,
JSON that does not decode (cut, not UTF-8, nested past Python's recursion limit, an integer past
its 4,300-digit limit) and values of the wrong type are all missing figures; only a poll without
cpu and mem is an error. Numbers go through `readings.finite`, so NaN, Infinity and integers past
the float range are missing too.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Final

from .base import InvalidAuth, InvalidResponse, Sample
from .http import HttpAgentClient
from .readings import byte_count, counter_rate, finite, hottest_cpu, plausible

PLUGINS = ("cpu", "mem", "fs", "load", "uptime", "network", "sensors")
API_VERSIONS = (4, 3)
"""Glances 4 serves only /api/4, Glances 3 only /api/3."""

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


def cpu_temperature(sensors: Any) -> float | None:
    """Hottest CPU core/package temperature; "ERR"/"NA" values are skipped."""
    if not isinstance(sensors, list):
        return None
    return hottest_cpu(
        ("", _text(item.get("label")), finite(item.get("value")))
        for item in sensors
        if isinstance(item, dict) and item.get("type") == "temperature_core"
    )


def _text(value: Any) -> str:
    """A string field, or "" for anything else (a number or a list is no name)."""
    return value if isinstance(value, str) else ""


def cpu_percent(cpu: Any) -> float | None:
    """Busy %, or None before Glances has measured (its first answer is all zeros)."""
    if not isinstance(cpu, dict):
        return None
    total, idle = finite(cpu.get("total")), finite(cpu.get("idle"))
    if total is None or (total == 0 and not idle):
        return None
    return total


class GlancesClient(HttpAgentClient):
    """Polls one Glances server; remembers its API version, network counters and boot time."""

    _version: int | None = None
    _previous: tuple[dict[str, float], dict[str, float], float] | None = None
    _boot: tuple[int, int] | None = None
    """The boot time last reported and the uptime it came from."""

    @property
    def api_version(self) -> int | None:
        """The API version the server answered on (None before the first good poll)."""
        return self._version

    async def _async_plugin(self, version: int, name: str) -> object:
        """One plugin's body; None when disabled or unreadable, _NOT_FOUND on a 404."""
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
        return reply.body

    async def _async_gather(self, version: int, names: tuple[str, ...]) -> list[Any]:
        """Plugins concurrently; every request ends (each has the timeout) before an error is raised.

        The bodies are decoded one per step of the event loop: fetched concurrently, they would
        otherwise all be decoded in the same loop iteration.
        """
        results = await asyncio.gather(
            *(self._async_plugin(version, name) for name in names),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # Wrong credentials say more than whichever request happened to fail first.
            raise next((e for e in errors if isinstance(e, InvalidAuth)), errors[0])
        decoded: list[Any] = []
        for result in results:
            if isinstance(result, bytes):
                await asyncio.sleep(0)
                result = decode_json(result)
            decoded.append(result)
        return decoded

    async def _async_poll(self, version: int, *, probe: bool) -> dict[str, Any] | None:
        """Every plugin of one API version; None when that version is not served."""
        if probe:
            # cpu alone first: on a server of the other version, one 404 instead of seven.
            first = await self._async_gather(version, PLUGINS[:1])
            if first[0] is _NOT_FOUND:
                return None
            results = first + await self._async_gather(version, PLUGINS[1:])
        else:
            results = await self._async_gather(version, PLUGINS)
            if results[0] is _NOT_FOUND:
                return None
        return {
            name: None if value is _NOT_FOUND else value
            for name, value in zip(PLUGINS, results, strict=True)
        }

    async def async_fetch(self) -> Sample:
        """Poll the plugins once, on the remembered API version or the one the server speaks."""
        data = None
        if self._version is not None:
            data = await self._async_poll(self._version, probe=False)
        if data is None:
            # First poll, or the server was upgraded or downgraded since.
            for version in API_VERSIONS:
                if (data := await self._async_poll(version, probe=True)) is not None:
                    self._version = version
                    break
            else:
                self._version = None
                raise InvalidResponse("no Glances API at /api/4 or /api/3")
        return self._sample(data, self._clock())

    def _sample(self, data: dict[str, Any], now: float) -> Sample:
        """Turn one poll's plugin answers into a Sample."""
        mem = data["mem"]
        if not isinstance(data["cpu"], dict) and not isinstance(mem, dict):
            raise InvalidResponse("Glances sent neither cpu nor mem")

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
        rx_rate = tx_rate = None
        if self._previous is not None:
            before_rx, before_tx, before = self._previous
            rx_rate = counter_rate(rx, before_rx, now - before)
            tx_rate = counter_rate(tx, before_tx, now - before)
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
