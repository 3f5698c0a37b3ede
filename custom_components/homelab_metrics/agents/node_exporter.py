"""Prometheus node_exporter: one GET of /metrics, a targeted scan, rates from counter deltas.

Which network interfaces count: every device node_exporter lists except loopback and virtual
ones — bridges, veth pairs, container and VM networks, tunnels and VPNs (see VIRTUAL_INTERFACES) —
so the rate is the traffic that crosses the server's physical links, counted once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math

from .base import InvalidResponse, Sample
from .http import HttpAgentClient

VIRTUAL_INTERFACES = (
    "lo", "veth", "docker", "br-", "virbr", "vnet", "cni", "flannel", "cali", "cilium",
    "weave", "kube", "tun", "tap", "wg", "tailscale", "zt", "ifb", "dummy", "bond-slave",
)  # fmt: skip
"""Name prefixes of interfaces whose traffic is not counted (ifb mirrors another device's)."""

CPU_CHIPS = (
    "coretemp",
    "k10temp",
    "zenpower",
    "cpu_thermal",
    "soc_thermal",
    "cpu-thermal",
    "acpitz",
)
"""hwmon chip names that measure the CPU or its package, most specific first."""

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
    "node_thermal_zone_temp{",
)
_IDLE_MODES = frozenset({"idle", "iowait"})


@dataclass(kw_only=True, slots=True)
class Snapshot:
    """The series of one scrape that a Sample is made of."""

    cpu_total: float = 0.0
    cpu_idle: float = 0.0
    cpu_seen: bool = False
    gauges: dict[str, float] = field(default_factory=dict)
    """Unlabelled series and the root filesystem's figures, by series name."""
    rx: dict[str, float] = field(default_factory=dict)
    tx: dict[str, float] = field(default_factory=dict)
    hwmon: dict[tuple[str, str], float] = field(default_factory=dict)
    chip_names: dict[str, str] = field(default_factory=dict)
    thermal_zones: dict[str, float] = field(default_factory=dict)
    """Temperature by zone type (x86_pkg_temp, cpu-thermal, …)."""


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
            backslash = text.find("\\", j, quote if quote >= 0 else end)
            if quote < 0:
                raise ValueError("unterminated label value")
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
    """The sample value at the start of rest (a timestamp may follow)."""
    return float(rest.split(None, 1)[0])


def parse_metrics(text: str) -> Snapshot:
    """Scan exposition text for the series we use; other lines are skipped unparsed."""
    snap = Snapshot()
    # splitlines also ends lines at CR; startswith skips the other ~95 % of lines unparsed.
    for raw_line in text.splitlines():
        if not raw_line.startswith(_WANTED):
            continue
        line = raw_line.rstrip()
        try:
            brace = line.find("{")
            space = line.find(" ")
            if brace < 0 or (0 <= space < brace):
                name = line[:space]
                if name in _UNLABELLED:
                    snap.gauges[name] = _value(line[space:])
                continue
            name = line[:brace]
            labels, after = parse_labels(line, brace)
            value = _value(line[after:])
        except (ValueError, IndexError):
            continue  # a truncated or malformed line costs only itself
        _take(snap, name, labels, value)
    return snap


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


def _take(snap: Snapshot, name: str, labels: dict[str, str], value: float) -> None:
    """File one labelled series into the snapshot."""
    if name == "node_cpu_seconds_total":
        if math.isfinite(value):
            snap.cpu_seen = True
            snap.cpu_total += value
            if labels.get("mode") in _IDLE_MODES:
                snap.cpu_idle += value
    elif name.startswith("node_filesystem_"):
        if labels.get("mountpoint") == "/":
            snap.gauges[name] = value
    elif name == "node_network_receive_bytes_total":
        snap.rx[labels.get("device", "")] = value
    elif name == "node_network_transmit_bytes_total":
        snap.tx[labels.get("device", "")] = value
    elif name == "node_hwmon_temp_celsius":
        snap.hwmon[(labels.get("chip", ""), labels.get("sensor", ""))] = value
    elif name == "node_hwmon_chip_names":
        snap.chip_names[labels.get("chip", "")] = labels.get("chip_name", "")
    elif name == "node_thermal_zone_temp":
        snap.thermal_zones[labels.get("type", "")] = value


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def is_physical(device: str) -> bool:
    """Whether an interface's traffic counts in the network rates."""
    return not device.startswith(VIRTUAL_INTERFACES)


def _rate(
    current: dict[str, float], previous: dict[str, float], seconds: float
) -> float | None:
    """Bytes per second over physical interfaces; None on the first poll or after a counter reset."""
    total = 0.0
    counted = False
    for device, value in current.items():
        if not is_physical(device) or device not in previous:
            continue
        delta = value - previous[device]
        if delta < 0 or not math.isfinite(delta):
            return None
        total += delta
        counted = True
    return total / seconds if counted else None


def cpu_temperature(snap: Snapshot) -> float | None:
    """Hottest CPU/package sensor: hwmon chips known to be the CPU, else CPU thermal zones."""
    for chip_name in CPU_CHIPS:
        chips = {chip for chip, name in snap.chip_names.items() if name == chip_name}
        chips |= {chip for chip, _ in snap.hwmon if chip.endswith(chip_name)}
        values = [
            v
            for (chip, _), v in snap.hwmon.items()
            if chip in chips and math.isfinite(v)
        ]
        if values:
            return max(values)
    zones = [
        v
        for kind, v in snap.thermal_zones.items()
        if (kind.startswith(("x86_pkg_temp", "cpu", "soc")) and math.isfinite(v))
    ]
    return max(zones) if zones else None


def build_sample(
    snap: Snapshot, previous: Snapshot | None, *, timestamp: int, elapsed: float | None
) -> Sample:
    """Turn one scrape (and the one before, for rates) into a Sample."""
    g = snap.gauges
    mem_total = _finite(g.get("node_memory_MemTotal_bytes"))
    mem_avail = _finite(g.get("node_memory_MemAvailable_bytes"))
    memory_percent = memory_used = None
    if mem_total and mem_avail is not None:
        memory_percent = 100.0 * (1.0 - mem_avail / mem_total)
        memory_used = int(mem_total - mem_avail)

    size = _finite(g.get("node_filesystem_size_bytes"))
    free = _finite(g.get("node_filesystem_free_bytes"))
    avail = _finite(g.get("node_filesystem_avail_bytes"))
    disk_percent = disk_used = None
    if size is not None and free is not None and avail is not None:
        used = size - free
        disk_used = int(used)
        if used + avail > 0:
            disk_percent = 100.0 * used / (used + avail)

    cpu_percent = rx = tx = None
    if previous is not None:
        d_total = snap.cpu_total - previous.cpu_total
        d_idle = snap.cpu_idle - previous.cpu_idle
        if snap.cpu_seen and previous.cpu_seen and d_total > 0 and d_idle >= 0:
            cpu_percent = min(100.0, max(0.0, 100.0 * (1.0 - d_idle / d_total)))
        if elapsed is not None and elapsed > 0:
            rx = _rate(snap.rx, previous.rx, elapsed)
            tx = _rate(snap.tx, previous.tx, elapsed)

    boot = _finite(g.get("node_boot_time_seconds"))
    return Sample(
        timestamp=timestamp,
        cpu_percent=cpu_percent,
        memory_percent=memory_percent,
        disk_percent=disk_percent,
        load_1m=_finite(g.get("node_load1")),
        load_5m=_finite(g.get("node_load5")),
        load_15m=_finite(g.get("node_load15")),
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

    _previous: tuple[Snapshot, float] | None = None

    async def async_fetch(self) -> Sample:
        """Scrape /metrics once."""
        reply = await self._async_get("/metrics", headers={"Accept-Encoding": "gzip"})
        if reply.status != 200:
            raise InvalidResponse(f"/metrics answered HTTP {reply.status}")
        if not reply.content_type.startswith("text/plain"):
            raise InvalidResponse(
                f"/metrics is {reply.content_type or 'untyped'}, not node_exporter"
            )
        snap = parse_metrics(reply.body.decode("utf-8", errors="replace"))
        if not snap.cpu_seen and "node_memory_MemTotal_bytes" not in snap.gauges:
            raise InvalidResponse("no node_exporter series in /metrics")
        now = self._clock()
        # The exporter's own clock times the counters best; ours is the fallback.
        moment = snap.gauges.get("node_time_seconds", now)
        elapsed = None
        previous = None
        if self._previous is not None:
            previous, before = self._previous
            elapsed = moment - before
        self._previous = (snap, moment)
        return build_sample(snap, previous, timestamp=int(now), elapsed=elapsed)
