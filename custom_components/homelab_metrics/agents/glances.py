"""Glances REST API (v4, falling back to v3): a few small endpoints per poll, our own network rates.

Glances' own `bytes_recv`/`bytes_sent` are deltas since the previous request of any client, so rates
come from the cumulative counters (`*_gauge` in v4, `cumulative_*` in v3) between our own polls,
over the same physical interfaces as node_exporter (`node_exporter.is_physical`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from .base import InvalidResponse, Sample
from .http import HttpAgentClient
from .node_exporter import is_physical

PLUGINS = ("cpu", "mem", "fs", "load", "uptime", "network", "sensors")
_UPTIME = re.compile(r"^\s*(?:(\d+)\s+days?,\s*)?(\d+):(\d{2}):(\d{2})")
BOOT_TIME_GRANULARITY = 60
"""Boot time is now - uptime, rounded so that it stays the same from poll to poll."""


def parse_uptime(text: str) -> int | None:
    """Seconds of "3 days, 10:25:20" / "1 day, 0:00:01" / "1:37:39"; None when unreadable."""
    match = _UPTIME.match(text)
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _number(value: Any) -> float | None:
    """A finite number, or None for strings such as "ERR"/"NA", booleans and NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _counters(
    network: Any, rx_key: str, tx_key: str
) -> tuple[dict[str, float], dict[str, float]]:
    rx: dict[str, float] = {}
    tx: dict[str, float] = {}
    if isinstance(network, list):
        for item in network:
            if not isinstance(item, dict):
                continue
            name = str(item.get("interface_name", ""))
            if not is_physical(name):
                continue
            if (value := _number(item.get(rx_key))) is not None:
                rx[name] = value
            if (value := _number(item.get(tx_key))) is not None:
                tx[name] = value
    return rx, tx


def _rate(
    now: dict[str, float], before: dict[str, float], seconds: float
) -> float | None:
    common = now.keys() & before.keys()
    if not common or seconds <= 0:
        return None
    delta = sum(now[k] - before[k] for k in common)
    return None if delta < 0 else delta / seconds


def _root_fs(fs: Any) -> dict[str, Any] | None:
    if not isinstance(fs, list) or not fs:
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
    values = [
        value
        for item in sensors
        if isinstance(item, dict)
        and item.get("type") == "temperature_core"
        and (value := _number(item.get("value"))) is not None
    ]
    return max(values) if values else None


class GlancesClient(HttpAgentClient):
    """Polls one Glances server; keeps the previous network counters for rates."""

    _version = 4
    _previous: tuple[dict[str, float], dict[str, float], float] | None = None

    async def _async_plugin(self, name: str) -> Any:
        """One plugin's JSON; None when the plugin is disabled or unreadable."""
        reply = await self._async_get(f"/api/{self._version}/{name}")
        if reply.status == 404 and self._version == 4:
            raise _WrongVersion
        if reply.status != 200:
            return None  # a disabled plugin answers 400 "Unknown plugin"
        try:
            return json.loads(reply.body)
        except ValueError:
            return None

    async def _async_all(self) -> dict[str, Any]:
        # cpu alone first: its 404 tells a Glances 3 server before the other requests go out.
        cpu = await self._async_plugin(PLUGINS[0])
        rest = await asyncio.gather(*(self._async_plugin(name) for name in PLUGINS[1:]))
        return dict(zip(PLUGINS, (cpu, *rest), strict=True))

    async def async_fetch(self) -> Sample:
        """Poll the plugins once (switching to /api/3 for Glances 3 servers)."""
        try:
            data = await self._async_all()
        except _WrongVersion:
            self._version = 3
            data = await self._async_all()
            if data["cpu"] is None and data["mem"] is None:
                self._version = 4
                raise InvalidResponse("no Glances API at /api/4 or /api/3") from None
        return self._sample(data, self._clock())

    def _sample(self, data: dict[str, Any], now: float) -> Sample:
        cpu, mem = data["cpu"], data["mem"]
        if not isinstance(cpu, dict) and not isinstance(mem, dict):
            raise InvalidResponse("Glances sent neither cpu nor mem")
        cpu_percent = None
        if isinstance(cpu, dict):
            total, idle = _number(cpu.get("total")), _number(cpu.get("idle"))
            # Right after Glances starts, every cpu figure is 0: no measurement yet.
            if total is not None and not (total == 0 and not idle):
                cpu_percent = total

        memory_percent = memory_used = memory_total = None
        if isinstance(mem, dict):
            memory_percent = _number(mem.get("percent"))
            used, total_mem = _number(mem.get("used")), _number(mem.get("total"))
            memory_used = int(used) if used is not None else None
            memory_total = int(total_mem) if total_mem is not None else None

        disk_percent = disk_used = disk_total = None
        if (fs := _root_fs(data["fs"])) is not None:
            used_fs, free_fs, size = (
                _number(fs.get(k)) for k in ("used", "free", "size")
            )
            if used_fs is not None and free_fs is not None and used_fs + free_fs > 0:
                disk_percent = 100.0 * used_fs / (used_fs + free_fs)
            disk_used = int(used_fs) if used_fs is not None else None
            disk_total = int(size) if size is not None else None

        load = data["load"] if isinstance(data["load"], dict) else {}
        rx_key, tx_key = (
            ("bytes_recv_gauge", "bytes_sent_gauge")
            if self._version == 4
            else ("cumulative_rx", "cumulative_tx")
        )
        rx, tx = _counters(data["network"], rx_key, tx_key)
        rx_rate = tx_rate = None
        if self._previous is not None:
            before_rx, before_tx, before = self._previous
            rx_rate, tx_rate = (
                _rate(rx, before_rx, now - before),
                _rate(tx, before_tx, now - before),
            )
        self._previous = (rx, tx, now)

        boot_time = None
        if (
            isinstance(data["uptime"], str)
            and (up := parse_uptime(data["uptime"])) is not None
        ):
            boot_time = (
                round((now - up) / BOOT_TIME_GRANULARITY) * BOOT_TIME_GRANULARITY
            )

        return Sample(
            timestamp=int(now),
            cpu_percent=cpu_percent,
            memory_percent=memory_percent,
            disk_percent=disk_percent,
            load_1m=_number(load.get("min1")),
            load_5m=_number(load.get("min5")),
            load_15m=_number(load.get("min15")),
            memory_used_bytes=memory_used,
            memory_total_bytes=memory_total,
            disk_used_bytes=disk_used,
            disk_total_bytes=disk_total,
            network_rx_bytes_per_second=rx_rate,
            network_tx_bytes_per_second=tx_rate,
            temperature_celsius=cpu_temperature(data["sensors"]),
            boot_time=boot_time,
        )


class _WrongVersion(Exception):
    """The server has no /api/4 (a Glances 3 server)."""
