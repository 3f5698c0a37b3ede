"""Prometheus node_exporter: one GET of /metrics, a targeted scan, rates from counter deltas.

Network rates count the physical interfaces only (`readings.is_physical`). Rates (CPU busy %,
network bytes per second) need two scrapes: the first poll has none, and a counter that went back
(a reboot, a driver reload) gives none for that poll.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math

from .base import InvalidResponse, Sample
from .http import HttpAgentClient
from .readings import counter_rate, finite, hottest_cpu

CPU_CHIPS = frozenset({"coretemp", "k10temp", "zenpower"})
"""hwmon chip names of x86 CPU packages; ARM boards name theirs cpu*_thermal or soc*_thermal."""

_WANTED = (
    "node_cpu_seconds_total{",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
    "node_filesystem_size_bytes{",
    "node_filesystem_free_bytes{",
    "node_filesystem_avail_bytes{",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_boot_time_seconds",
    "node_time_seconds",
    "node_network_receive_bytes_total{",
    "node_network_transmit_bytes_total{",
    "node_hwmon_temp_celsius{",
    "node_hwmon_chip_names{",
    "node_hwmon_sensor_label{",
    "node_thermal_zone_temp{",
)
_UNLABELLED = frozenset(
    {
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_boot_time_seconds",
        "node_time_seconds",
    }
)
_FILESYSTEM = {
    "node_filesystem_size_bytes": "size",
    "node_filesystem_free_bytes": "free",
    "node_filesystem_avail_bytes": "avail",
}
_IDLE_MODES = frozenset({"idle", "iowait"})


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeExporterSnapshot:
    """The series of one scrape that a Sample is made of, exactly as the exporter sent them."""

    cpu_total: float | None = None
    """Seconds over all CPUs and modes; None when the scrape had no CPU series."""
    cpu_idle: float | None = None
    """Seconds idle or waiting for I/O over all CPUs."""
    gauges: Mapping[str, float]
    """Unlabelled series (memory, load, boot time, node_time_seconds) by name."""
    root_fs: Mapping[str, float]
    """size, free and avail bytes of the filesystem mounted at "/" (the first one listed)."""
    rx: Mapping[str, float]
    """Received bytes by device."""
    tx: Mapping[str, float]
    """Transmitted bytes by device."""
    hwmon: Mapping[tuple[str, str], float]
    """Temperature by (chip, sensor)."""
    chip_names: Mapping[str, str]
    """hwmon chip → its driver's name (coretemp, k10temp, nvme…)."""
    sensor_labels: Mapping[tuple[str, str], str]
    """(chip, sensor) → label (Core 0, Package id 0, Tctl…)."""
    thermal_zones: Mapping[tuple[str, str], float]
    """Temperature by (zone type, zone number)."""


def parse_labels(text: str, start: int) -> tuple[dict[str, str], int]:
    """Labels from text[start] == '{' to its closing brace; returns them and the index after it."""
    labels: dict[str, str] = {}
    i = start + 1
    end = len(text)
    while i < end:
        while i < end and text[i] in " ,":
            i += 1
        if i < end and text[i] == "}":
            return labels, i + 1
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= end or text[eq + 1] != '"':
            raise ValueError("malformed label")
        name = text[i:eq].strip()
        j = eq + 2
        value: list[str] = []
        while True:
            quote = text.find('"', j)
            if quote < 0:
                raise ValueError("unterminated label value")
            backslash = text.find("\\", j, quote)
            if backslash < 0:
                value.append(text[j:quote])
                j = quote + 1
                break
            value.append(text[j:backslash])
            escaped = text[backslash + 1 : backslash + 2]
            value.append({"n": "\n", "\\": "\\", '"': '"'}.get(escaped, "\\" + escaped))
            j = backslash + 2
        labels[name] = "".join(value)
        i = j
    raise ValueError("unterminated label set")


def _value(rest: str) -> float:
    """The sample value at the start of rest (a timestamp may follow it)."""
    return float(rest.split(None, 1)[0])


def parse_metrics(text: str) -> NodeExporterSnapshot:
    """Scan exposition text for the series we use; every other line is skipped unparsed.

    A line that does not parse costs only itself. The format ends every line with a newline, so
    a last line without one was cut off in transit and is dropped: its number may be truncated.
    """
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    cpu_total = cpu_idle = 0.0
    cpu_seen = False
    gauges: dict[str, float] = {}
    filesystems: dict[str, dict[str, float]] = {}
    rx: dict[str, float] = {}
    tx: dict[str, float] = {}
    hwmon: dict[tuple[str, str], float] = {}
    chip_names: dict[str, str] = {}
    sensor_labels: dict[tuple[str, str], str] = {}
    zones: dict[tuple[str, str], float] = {}

    # splitlines also ends lines at CR; startswith skips ~95 % of the lines before any copy.
    for raw_line in text.splitlines():
        if not raw_line.startswith(_WANTED):
            continue
        line = raw_line.rstrip()
        try:
            brace = line.find("{")
            space = line.find(" ")
            if brace < 0 or 0 <= space < brace:
                if space > 0 and line[:space] in _UNLABELLED:
                    gauges[line[:space]] = _value(line[space:])
                continue
            name = line[:brace]
            labels, after = parse_labels(line, brace)
            value = _value(line[after:])
        except (ValueError, IndexError):
            continue
        if name == "node_cpu_seconds_total":
            # NaN or Inf in one counter would poison the sums for good: skip that series.
            if math.isfinite(value):
                cpu_seen = True
                cpu_total += value
                if labels.get("mode") in _IDLE_MODES:
                    cpu_idle += value
        elif name in _FILESYSTEM:
            if labels.get("mountpoint") == "/":
                fs = filesystems.setdefault(labels.get("device", ""), {})
                fs.setdefault(_FILESYSTEM[name], value)
        elif name == "node_network_receive_bytes_total":
            rx[labels.get("device", "")] = value
        elif name == "node_network_transmit_bytes_total":
            tx[labels.get("device", "")] = value
        elif name == "node_hwmon_temp_celsius":
            hwmon[(labels.get("chip", ""), labels.get("sensor", ""))] = value
        elif name == "node_hwmon_chip_names":
            chip_names[labels.get("chip", "")] = labels.get("chip_name", "")
        elif name == "node_hwmon_sensor_label":
            key = (labels.get("chip", ""), labels.get("sensor", ""))
            sensor_labels[key] = labels.get("label", "")
        elif name == "node_thermal_zone_temp":
            zones[(labels.get("type", ""), labels.get("zone", ""))] = value
        elif name in _UNLABELLED and not labels:
            gauges[name] = value

    # Bind mounts can list "/" twice; the first device with all three figures is the root.
    root_fs = next((fs for fs in filesystems.values() if len(fs) == 3), {})
    return NodeExporterSnapshot(
        cpu_total=cpu_total if cpu_seen else None,
        cpu_idle=cpu_idle if cpu_seen else None,
        gauges=gauges,
        root_fs=root_fs,
        rx=rx,
        tx=tx,
        hwmon=hwmon,
        chip_names=chip_names,
        sensor_labels=sensor_labels,
        thermal_zones=zones,
    )


def _is_cpu_chip(name: str) -> bool:
    """Whether an hwmon chip name is a CPU package or an ARM board's CPU/SoC sensor."""
    return name in CPU_CHIPS or (name.startswith(("cpu", "soc")) and "thermal" in name)


def cpu_temperature(snap: NodeExporterSnapshot) -> float | None:
    """Hottest CPU/package sensor: hwmon CPU chips, else CPU thermal zones; None when absent."""
    hottest = hottest_cpu(
        (chip, snap.sensor_labels.get((chip, sensor), ""), finite(value))
        for (chip, sensor), value in snap.hwmon.items()
        if _is_cpu_chip(snap.chip_names.get(chip, ""))
    )
    if hottest is not None:
        return hottest
    return hottest_cpu(
        (kind, "", finite(value))
        for (kind, _), value in snap.thermal_zones.items()
        if kind.startswith(("x86_pkg_temp", "cpu", "soc"))
    )


def build_sample(
    snap: NodeExporterSnapshot,
    previous: NodeExporterSnapshot | None,
    *,
    timestamp: int,
    elapsed: float | None = None,
) -> Sample:
    """Turn one scrape (and the one before, for rates) into a Sample.

    The time between the scrapes comes from the exporter's own clock (node_time_seconds in both,
    moving forward), else from elapsed, the poller's measure of it.
    """
    g = snap.gauges
    mem_total = finite(g.get("node_memory_MemTotal_bytes"))
    mem_avail = finite(g.get("node_memory_MemAvailable_bytes"))
    memory_percent = memory_used = None
    if mem_total and mem_avail is not None:
        memory_percent = 100.0 * (1.0 - mem_avail / mem_total)
        memory_used = int(mem_total - mem_avail)

    size = finite(snap.root_fs.get("size"))
    free = finite(snap.root_fs.get("free"))
    avail = finite(snap.root_fs.get("avail"))
    disk_percent = disk_used = None
    if size is not None and free is not None and avail is not None:
        # As df: blocks reserved for root are neither used nor available.
        used = size - free
        disk_used = int(used)
        if used + avail > 0:
            disk_percent = 100.0 * used / (used + avail)

    cpu_percent = rx = tx = None
    if previous is not None:
        if (
            snap.cpu_total is not None
            and snap.cpu_idle is not None
            and previous.cpu_total is not None
            and previous.cpu_idle is not None
        ):
            d_total = snap.cpu_total - previous.cpu_total
            d_idle = snap.cpu_idle - previous.cpu_idle
            if d_total > 0 and d_idle >= 0:
                cpu_percent = min(100.0, max(0.0, 100.0 * (1.0 - d_idle / d_total)))
        now_time = finite(g.get("node_time_seconds"))
        before_time = finite(previous.gauges.get("node_time_seconds"))
        seconds = elapsed
        if now_time is not None and before_time is not None and now_time > before_time:
            seconds = now_time - before_time
        if seconds is not None and seconds > 0:
            rx = counter_rate(snap.rx, previous.rx, seconds)
            tx = counter_rate(snap.tx, previous.tx, seconds)

    boot = finite(g.get("node_boot_time_seconds"))
    return Sample(
        timestamp=timestamp,
        cpu_percent=cpu_percent,
        memory_percent=memory_percent,
        disk_percent=disk_percent,
        load_1m=finite(g.get("node_load1")),
        load_5m=finite(g.get("node_load5")),
        load_15m=finite(g.get("node_load15")),
        memory_used_bytes=memory_used,
        memory_total_bytes=int(mem_total) if mem_total is not None else None,
        disk_used_bytes=disk_used,
        disk_total_bytes=int(size) if size is not None else None,
        network_rx_bytes_per_second=rx,
        network_tx_bytes_per_second=tx,
        temperature_celsius=cpu_temperature(snap),
        boot_time=int(boot) if boot is not None else None,
    )


class NodeExporterClient(HttpAgentClient):
    """Polls one node_exporter; keeps the previous scrape for CPU and network rates."""

    _previous: tuple[NodeExporterSnapshot, float] | None = None

    async def async_fetch(self) -> Sample:
        """Scrape /metrics once."""
        reply = await self._async_get("/metrics", headers={"Accept-Encoding": "gzip"})
        if reply.status != 200:
            raise InvalidResponse(f"/metrics answered HTTP {reply.status}")
        # node_exporter answers 200 with an HTML page on every other path and port mix-up.
        if not reply.content_type.startswith("text/plain"):
            raise InvalidResponse(
                f"/metrics is {reply.content_type or 'untyped'}, not node_exporter"
            )
        snap = parse_metrics(reply.body.decode("utf-8", errors="replace"))
        if snap.cpu_total is None and "node_memory_MemTotal_bytes" not in snap.gauges:
            raise InvalidResponse("no node_exporter series in /metrics")
        now = self._clock()
        previous, elapsed = None, None
        if self._previous is not None:
            previous, before = self._previous
            elapsed = now - before
        self._previous = (snap, now)
        return build_sample(snap, previous, timestamp=int(now), elapsed=elapsed)
