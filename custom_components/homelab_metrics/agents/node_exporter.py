"""Prometheus node_exporter: one GET of /metrics, a targeted scan, rates from counter deltas.

Network rates count the physical interfaces only (`readings.is_physical`). Rates (CPU busy %,
network bytes per second) need two scrapes: the first poll has none, and a counter that went back
(a reboot, a driver reload) gives none for that poll.

The same scrape tells who the server is (`node_uname_info`, `node_os_info`,
`node_exporter_build_info`) and, where Debian's textfile collectors run
(`prometheus-node-exporter-collectors`), the pending package updates (`apt_upgrades_pending`, one
gauge per origin and architecture, summed) and whether a reboot is required
(`node_reboot_required`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
import math
import re

from .base import AgentInfo, InvalidResponse, Sample
from .http import HttpAgentClient
from .readings import (
    Mount,
    byte_count,
    clean_text,
    counter_rate,
    finite,
    hottest_cpu,
    interface_traffic,
    is_cpu_chip,
    is_cpu_zone,
    is_physical,
    is_real_filesystem,
    plausible,
    rate_interval,
    real_filesystems,
)

MAX_LINE_BYTES = 8 * 1024
"""Longest line of a wanted series that is read; a longer one is skipped unread.

node_exporter's lines are under 300 bytes; a label holding a path may reach PATH_MAX (4 KiB), so
twice that leaves room for any real line while bounding what one line may cost.
"""
MAX_LABELS = 32
"""Most labels one line may carry (node_exporter's wanted series have at most 3)."""
MAX_ESCAPES = 16
"""Most backslashes one line may hold; real label values hardly ever need one."""
MAX_SERIES = 10_000
"""Most lines of wanted series one scrape may hold; more and the scrape is refused.

A 256-thread server has 2,048 CPU lines; a container host with hundreds of interfaces and mounts
adds some 2,000 more. Over twice that leaves room while bounding a poll's work.
"""
MAX_SERIES_BYTES = 1024 * 1024
"""Most bytes those lines may hold together; more and the scrape is refused.

Such a server's lines take some 300 kB. With MAX_SERIES this bounds a poll's parse to 30-70 ms of
CPU on the shared 2-core test machine at either cap (benchmarks/parse.py; the most when every line
is a distinct mount, whose three labels are all decoded), where the 4 MiB body cap alone allowed
three times that. The parse runs in steps: no step of it takes more than a few milliseconds.
"""
MAX_MOUNTS_READ = 256
"""Most mounts of real filesystems one scrape is read for ("/" is read beyond it).

A NAS has a few dozen; choosing among them (`readings.real_filesystems`) costs about 10 µs a mount
in one step of the event loop, so this bounds that step to a few milliseconds.
"""
MAX_DEVICES_READ = 1024
"""Most physical network devices one scrape is read for (about 2.5 µs each when the rates are
computed, in one step of the event loop); a server has a handful."""
SLICE_BYTES = 64 * 1024
"""The scan for wanted lines goes through the body in slices of about this size, one C call each
(about a millisecond); the event loop runs other work between slices."""
STEP_BYTES = 16 * 1024
"""The wanted lines are parsed in steps of about this many bytes (each line counted 100 more for
its fixed cost), about a millisecond each; the event loop runs other work between steps."""

# Lines of the wanted series, found by a regex scan in C (only these reach Python): a newline, a
# wanted name, then at most MAX_LINE_BYTES up to the next newline. A longer line, or a last line
# without its newline (cut off in transit: its number may be truncated), does not match.
_WANTED_LINE = re.compile(
    rb"\n((?:"
    rb"node_cpu_seconds_total\{"
    rb"|node_memory_Mem(?:Available|Total)_bytes[ \t{]"
    rb"|node_filesystem_(?:size|free|avail)_bytes\{"
    rb"|node_load(?:1|5|15)[ \t{]"
    rb"|node_(?:boot_)?time_seconds[ \t{]"
    rb"|node_network_(?:receive|transmit)_bytes_total\{"
    rb"|node_hwmon_(?:temp_celsius|chip_names|sensor_label)\{"
    rb"|node_thermal_zone_temp\{"
    rb"|node_memory_Swap(?:Total|Free)_bytes[ \t{]"
    rb"|node_(?:uname|os)_info\{|node_exporter_build_info\{"
    rb"|node_reboot_required[ \t{]"
    rb")[^\n]{0,%d}+)(?=\n)" % MAX_LINE_BYTES
)
# The apt textfile collector's series is scanned apart, and only in a slice that holds it: in the
# pattern above, a name that does not begin with node_ would cost the pattern its literal prefix
# (the scan of a 57 kB scrape took 0.15 ms instead of 0.09), and a pattern of its own costs
# 0.08 ms where bytes.find costs 0.01.
_TEXTFILE_NAME = b"\napt_upgrades_pending{"
_TEXTFILE_LINE = re.compile(
    rb"\n(apt_upgrades_pending\{[^\n]{0,%d}+)(?=\n)" % MAX_LINE_BYTES
)
# A quoted label value consumes any escaped character, and every quantifier is possessive: the
# scan of a line never backtracks, so it is linear in the line's length.
_QUOTED = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_PAIR = rb"[ \t]*+[a-zA-Z_][a-zA-Z0-9_]*+[ \t]*+=[ \t]*+" + _QUOTED + rb"[ \t]*+"
_SAMPLE = re.compile(
    rb"([a-zA-Z_:][a-zA-Z0-9_:]*+)"
    rb"(?:\{(" + _PAIR + rb"(?:," + _PAIR + rb")*+,?[ \t]*+|[ \t]*+)\}[ \t]*+|[ \t]++)"
    rb"([^ \t\r]{1,64}+)(?:[ \t]++-?[0-9]{1,20}+)?[ \t\r]*+"
)
_LABEL = re.compile(
    rb'([a-zA-Z_][a-zA-Z0-9_]*+)[ \t]*+=[ \t]*+"([^"\\]*+(?:\\.[^"\\]*+)*+)"'
)

_GAUGES = {
    name.encode(): name
    for name in (
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_memory_SwapTotal_bytes",
        "node_memory_SwapFree_bytes",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_boot_time_seconds",
        "node_time_seconds",
        "node_reboot_required",
    )
}
"""Unlabelled series, by their name as bytes."""
_FILESYSTEM = {
    b"node_filesystem_size_bytes": "size",
    b"node_filesystem_free_bytes": "free",
    b"node_filesystem_avail_bytes": "avail",
}
_NETWORK = frozenset(
    {b"node_network_receive_bytes_total", b"node_network_transmit_bytes_total"}
)
_IDLE_MODES = frozenset({b"idle", b"iowait"})
_INFO = {
    b"node_uname_info": "uname",
    b"node_os_info": "os",
    b"node_exporter_build_info": "build",
}
"""Series that describe the server and the exporter in their labels (their value is 1)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeExporterSnapshot:
    """The series of one scrape that a Sample is made of, exactly as the exporter sent them."""

    cpu_total: float | None = None
    """Seconds over all CPUs and modes; None when the scrape had no CPU series."""
    cpu_idle: float | None = None
    """Seconds idle or waiting for I/O over all CPUs."""
    gauges: Mapping[str, float]
    """Unlabelled series (memory, swap, load, boot time, node_time_seconds, reboot) by name."""
    root_fs: Mapping[str, float]
    """size, free and avail bytes of the filesystem mounted at "/" (the first one listed)."""
    filesystems: Mapping[tuple[str, str], Mapping[str, float]] = field(
        default_factory=dict
    )
    """size, free and avail bytes by (device, mountpoint): "/" and the mounts of real filesystems
    (`readings.is_real_filesystem`), at most MAX_MOUNTS_READ of those."""
    fstypes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """The fstype label of each of those mounts, from its first line."""
    updates: float | None = None
    """apt_upgrades_pending summed over its series; None when there is none."""
    info: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Labels of node_uname_info ("uname"), node_os_info ("os") and node_exporter_build_info
    ("build"), the first line of each."""
    rx: Mapping[str, float]
    """Received bytes by physical device (`readings.is_physical`), at most MAX_DEVICES_READ."""
    tx: Mapping[str, float]
    """Transmitted bytes by physical device, at most MAX_DEVICES_READ."""
    hwmon: Mapping[tuple[str, str], float]
    """Temperature by (chip, sensor)."""
    chip_names: Mapping[str, str]
    """hwmon chip → its driver's name (coretemp, k10temp, nvme…)."""
    sensor_labels: Mapping[tuple[str, str], str]
    """(chip, sensor) → label (Core 0, Package id 0, Tctl…)."""
    thermal_zones: Mapping[tuple[str, str], float]
    """Temperature by (zone type, zone number)."""


def label_text(raw: bytes) -> str:
    r"""A raw label value as text: the format's escapes (\\, \", \n) undone, bad UTF-8 replaced."""
    if b"\\" in raw:
        # Split at escaped backslashes first, so that an escaped backslash before "n" stays one.
        raw = b"\\".join(
            [
                part.replace(b'\\"', b'"').replace(b"\\n", b"\n")
                for part in raw.split(b"\\\\")
            ]
        )
    return raw.decode("utf-8", "replace")


def parse_line(line: bytes) -> tuple[bytes, dict[bytes, bytes], float] | None:
    """Name, raw label values and value of one sample line; None for a line that is not read.

    A line longer than MAX_LINE_BYTES, with more than MAX_ESCAPES backslashes or MAX_LABELS
    labels, or not in the exposition format, is not read. Its cost is linear in its length.
    """
    if len(line) > MAX_LINE_BYTES or line.count(b"\\") > MAX_ESCAPES:
        return None
    match = _SAMPLE.fullmatch(line)
    if match is None:
        return None
    name, body, value = match.groups()
    pairs = _LABEL.findall(body) if body else []
    if len(pairs) > MAX_LABELS:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return name, dict(pairs), number


def _slices(body: bytes | str) -> Iterator[list[bytes]]:
    """The lines of the series we read, slice by slice, found by a C scan (linear in the size).

    The format ends every line with a newline, so a last line without one was cut off in transit
    and is dropped: its number may be truncated. Lines longer than MAX_LINE_BYTES are left out.
    Raises InvalidResponse as soon as there are more than MAX_SERIES or MAX_SERIES_BYTES.
    """
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    count = total = 0
    for found in _scan(body):
        count += len(found)
        total += sum(map(len, found))
        if count > MAX_SERIES or total > MAX_SERIES_BYTES:
            raise InvalidResponse(
                f"more than {MAX_SERIES} lines or {MAX_SERIES_BYTES} bytes of the series read"
            )
        yield found


def _scan(body: bytes) -> Iterator[list[bytes]]:
    """The wanted lines of each slice of the body, one C call each."""
    # The pattern finds a line after its newline; the first line has none before it.
    head = b"\n" + body[: MAX_LINE_BYTES + 64]
    yield _find(head, 0, head.find(b"\n", 1) + 1)
    start = body.find(b"\n")
    while 0 <= start < len(body) - 1:
        # A slice ends just after a newline (the pattern looks for it); the next starts at it.
        end = body.rfind(b"\n", start + 1, start + SLICE_BYTES)
        if end < 0:
            # A line longer than a slice is too long to be read: skipped without a scan.
            start = body.find(b"\n", start + SLICE_BYTES)
            continue
        yield _find(body, start, end + 1)
        start = end


def _find(body: bytes, start: int, end: int) -> list[bytes]:
    """The wanted lines between start and end (two or three C calls)."""
    found: list[bytes] = _WANTED_LINE.findall(body, start, end)
    if body.find(_TEXTFILE_NAME, start, end) >= 0:
        found += _TEXTFILE_LINE.findall(body, start, end)
    return found


def wanted_lines(body: bytes | str) -> list[bytes]:
    """The lines of the series we read (see `_slices`)."""
    return [line for found in _slices(body) for line in found]


def parse_metrics(body: bytes | str) -> NodeExporterSnapshot:
    """Scan exposition text for the series we use; every other line is skipped unparsed.

    The body is read as bytes in time linear in its size: a C scan picks the lines of wanted
    series (`wanted_lines`), each is matched once (`parse_line`), and only the label values kept
    are decoded. A line that does not parse costs only itself.
    """
    return _finish(_parse_steps(body))


async def async_parse_metrics(body: bytes | str) -> NodeExporterSnapshot:
    """parse_metrics, letting the event loop run other work between steps of a millisecond."""
    steps = _parse_steps(body)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            snapshot: NodeExporterSnapshot = done.value
            return snapshot
        await asyncio.sleep(0)


def parse_lines(lines: Iterable[bytes]) -> NodeExporterSnapshot:
    """The snapshot of the wanted lines of one scrape."""
    return _finish(_read_lines(lines))


def _finish(steps: Generator[None, None, NodeExporterSnapshot]) -> NodeExporterSnapshot:
    """Run every step of a parse at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            snapshot: NodeExporterSnapshot = done.value
            return snapshot


def _parse_steps(body: bytes | str) -> Generator[None, None, NodeExporterSnapshot]:
    """The parse of a body, yielding after each slice of the scan and each step of lines."""
    lines: list[bytes] = []
    for found in _slices(body):
        lines += found
        yield
    return (yield from _read_lines(lines))


def _read_lines(lines: Iterable[bytes]) -> Generator[None, None, NodeExporterSnapshot]:
    """The snapshot of the wanted lines of one scrape, yielding after each STEP_BYTES of work."""
    work = 0
    cpu_total = cpu_idle = 0.0
    cpu_seen = False
    gauges: dict[str, float] = {}
    filesystems: dict[tuple[str, str], dict[str, float]] = {}
    fstypes: dict[tuple[str, str], str] = {}
    reals = 0
    updates: float | None = None
    info: dict[str, dict[str, str]] = {}
    rx: dict[str, float] = {}
    tx: dict[str, float] = {}
    hwmon: dict[tuple[str, str], float] = {}
    chip_names: dict[str, str] = {}
    sensor_labels: dict[tuple[str, str], str] = {}
    zones: dict[tuple[str, str], float] = {}

    for line in lines:
        work += len(line) + 100
        if work > STEP_BYTES:
            yield
            work = 0
        if (parsed := parse_line(line)) is None:
            continue
        name, labels, value = parsed
        if name == b"node_cpu_seconds_total":
            # NaN or Inf in one counter would poison the sums for good: skip that series.
            if math.isfinite(value):
                cpu_seen = True
                cpu_total += value
                if labels.get(b"mode") in _IDLE_MODES:
                    cpu_idle += value
        elif name in _FILESYSTEM:
            mountpoint = label_text(labels.get(b"mountpoint", b""))
            mount = (label_text(labels.get(b"device", b"")), mountpoint)
            if (figures := filesystems.get(mount)) is None:
                fstype = label_text(labels.get(b"fstype", b""))
                # Pseudo and container mounts are dropped here, so the cap counts real ones.
                if mountpoint != "/" and (
                    reals >= MAX_MOUNTS_READ
                    or not is_real_filesystem(fstype, mountpoint)
                ):
                    continue
                reals += mountpoint != "/"
                figures = filesystems[mount] = {}
                fstypes[mount] = fstype
            figures.setdefault(_FILESYSTEM[name], value)
        elif name in _NETWORK:
            device = label_text(labels.get(b"device", b""))
            counters = rx if name == b"node_network_receive_bytes_total" else tx
            if is_physical(device) and (
                device in counters or len(counters) < MAX_DEVICES_READ
            ):
                counters[device] = value
        elif name == b"node_hwmon_temp_celsius":
            hwmon[_chip_sensor(labels)] = value
        elif name == b"node_hwmon_chip_names":
            chip = label_text(labels.get(b"chip", b""))
            chip_names[chip] = label_text(labels.get(b"chip_name", b""))
        elif name == b"node_hwmon_sensor_label":
            sensor_labels[_chip_sensor(labels)] = label_text(labels.get(b"label", b""))
        elif name == b"node_thermal_zone_temp":
            kind = label_text(labels.get(b"type", b""))
            zones[(kind, label_text(labels.get(b"zone", b"")))] = value
        elif name == b"apt_upgrades_pending":
            updates = value if updates is None else updates + value
        elif name in _INFO:
            if _INFO[name] not in info:
                info[_INFO[name]] = {
                    key.decode(): label_text(raw) for key, raw in labels.items()
                }
        elif name in _GAUGES and not labels:
            gauges[_GAUGES[name]] = value

    # Bind mounts can list "/" twice; the first device with all three figures is the root.
    root_fs = next(
        (
            figures
            for (_, mountpoint), figures in filesystems.items()
            if mountpoint == "/" and len(figures) == 3
        ),
        {},
    )
    return NodeExporterSnapshot(
        cpu_total=cpu_total if cpu_seen else None,
        cpu_idle=cpu_idle if cpu_seen else None,
        gauges=gauges,
        root_fs=root_fs,
        filesystems=filesystems,
        fstypes=fstypes,
        updates=updates,
        info=info,
        rx=rx,
        tx=tx,
        hwmon=hwmon,
        chip_names=chip_names,
        sensor_labels=sensor_labels,
        thermal_zones=zones,
    )


def _chip_sensor(labels: Mapping[bytes, bytes]) -> tuple[str, str]:
    """The (chip, sensor) key of an hwmon series."""
    return label_text(labels.get(b"chip", b"")), label_text(labels.get(b"sensor", b""))


def cpu_temperature(snap: NodeExporterSnapshot) -> float | None:
    """Hottest CPU/package sensor: hwmon CPU chips, else CPU thermal zones; None when absent."""
    hottest = hottest_cpu(
        (chip, snap.sensor_labels.get((chip, sensor), ""), finite(value))
        for (chip, sensor), value in snap.hwmon.items()
        if is_cpu_chip(snap.chip_names.get(chip, ""))
    )
    if hottest is not None:
        return hottest
    return hottest_cpu(
        (kind, "", finite(value))
        for (kind, _), value in snap.thermal_zones.items()
        if is_cpu_zone(kind)
    )


def build_sample(
    snap: NodeExporterSnapshot,
    previous: NodeExporterSnapshot | None,
    *,
    timestamp: int,
    elapsed: float | None = None,
) -> Sample:
    """Turn one scrape (and the one before, for rates) into a Sample.

    elapsed is the poller's measure of the time between the scrapes; without it there are no
    network rates. The exporter's own clock (node_time_seconds in both) times them instead when
    it agrees (`readings.rate_interval`).
    """
    g = snap.gauges
    # Only byte counts that can be true enter a figure: NaN, negative or huge ones are missing.
    mem_total = byte_count(g.get("node_memory_MemTotal_bytes"))
    mem_avail = byte_count(g.get("node_memory_MemAvailable_bytes"))
    memory_percent = memory_used = None
    if mem_total and mem_avail is not None:
        memory_percent = 100.0 * (1.0 - mem_avail / mem_total)
        memory_used = mem_total - mem_avail

    size, free, avail = (
        byte_count(snap.root_fs.get(stat)) for stat in ("size", "free", "avail")
    )
    disk_percent = disk_used = None
    if size is not None and free is not None and avail is not None:
        # As df: blocks reserved for root are neither used nor available.
        disk_used = size - free
        if disk_used + avail > 0:
            disk_percent = 100.0 * disk_used / (disk_used + avail)

    swap_total = byte_count(g.get("node_memory_SwapTotal_bytes"))
    swap_free = byte_count(g.get("node_memory_SwapFree_bytes"))
    swap_percent = None
    if swap_total and swap_free is not None:  # no swap at all: no figure, not 0 %
        swap_percent = 100.0 * (1.0 - swap_free / swap_total)

    cpu_percent = rx = tx = seconds = None
    if previous is not None:
        if (
            snap.cpu_total is not None
            and snap.cpu_idle is not None
            and previous.cpu_total is not None
            and previous.cpu_idle is not None
        ):
            d_total = snap.cpu_total - previous.cpu_total
            if d_total > 0:
                # Outside 0-100 only when some counter went back: dropped, not clamped.
                d_idle = snap.cpu_idle - previous.cpu_idle
                cpu_percent = 100.0 * (1.0 - d_idle / d_total)
        now_time = finite(g.get("node_time_seconds"))
        before_time = finite(previous.gauges.get("node_time_seconds"))
        exporter_seconds = (
            now_time - before_time
            if now_time is not None and before_time is not None
            else None
        )
        seconds = rate_interval(exporter_seconds, elapsed)
        rx = counter_rate(snap.rx, previous.rx, seconds)
        tx = counter_rate(snap.tx, previous.tx, seconds)

    boot = finite(g.get("node_boot_time_seconds"))
    reboot = g.get("node_reboot_required")
    return plausible(
        Sample(
            timestamp=timestamp,
            cpu_percent=cpu_percent,
            memory_percent=memory_percent,
            disk_percent=disk_percent,
            load_1m=finite(g.get("node_load1")),
            load_5m=finite(g.get("node_load5")),
            load_15m=finite(g.get("node_load15")),
            memory_used_bytes=memory_used,
            memory_total_bytes=mem_total,
            disk_used_bytes=disk_used,
            disk_total_bytes=size,
            network_rx_bytes_per_second=rx,
            network_tx_bytes_per_second=tx,
            temperature_celsius=cpu_temperature(snap),
            boot_time=int(boot) if boot is not None else None,
            swap_percent=swap_percent,
            filesystems=real_filesystems(
                Mount(
                    device=device,
                    fstype=snap.fstypes.get((device, mountpoint), ""),
                    mountpoint=mountpoint,
                    size=figures.get("size"),
                    # As df: blocks reserved for root are neither used nor available.
                    used=_difference(figures.get("size"), figures.get("free")),
                    available=figures.get("avail"),
                )
                for (device, mountpoint), figures in snap.filesystems.items()
            ),
            interfaces=interface_traffic(
                snap.rx,
                snap.tx,
                (previous.rx, previous.tx) if previous is not None else None,
                seconds,
            ),
            updates_pending=_whole(snap.updates),
            reboot_required={0.0: False, 1.0: True}.get(reboot)
            if reboot is not None
            else None,
        )
    )


def build_info(snap: NodeExporterSnapshot) -> AgentInfo:
    """Host name, OS and exporter version from the scrape's info series.

    node_exporter has no page worth a link (/metrics is for machines): web_ui stays False.
    """
    uname = snap.info.get("uname", {})
    os_release = snap.info.get("os", {})
    os_name = clean_text(os_release.get("pretty_name")) or clean_text(
        " ".join(
            part
            for part in (os_release.get("name", ""), os_release.get("version", ""))
            if part
        )
    )
    if os_name is None:
        # node_exporter before 1.3, or a system without os-release: the kernel.
        os_name = clean_text(f"{uname.get('sysname', '')} {uname.get('release', '')}")
    return AgentInfo(
        hostname=clean_text(uname.get("nodename")),
        agent_version=clean_text(snap.info.get("build", {}).get("version")),
        os=os_name,
    )


def _difference(size: float | None, free: float | None) -> float | None:
    """The size less the free bytes, when both are known."""
    return None if size is None or free is None else size - free


def _whole(value: float | None) -> int | None:
    """A count sent as a float: the int when it is a whole, finite number, else None."""
    if value is None or not math.isfinite(value) or not value.is_integer():
        return None
    return int(value)


class NodeExporterClient(HttpAgentClient):
    """Polls one node_exporter; keeps the previous scrape for CPU and network rates."""

    _previous: tuple[NodeExporterSnapshot, float] | None = None

    async def async_fetch(self) -> Sample:
        """Scrape /metrics once."""
        reply = await self._async_get("/metrics")  # gzip is offered: 9.5 kB for 57 kB
        if reply.status != 200:
            raise InvalidResponse(f"/metrics answered HTTP {reply.status}")
        # node_exporter answers 200 with an HTML page on every other path and port mix-up.
        if not reply.content_type.startswith("text/plain"):
            raise InvalidResponse(
                f"/metrics is {reply.content_type or 'untyped'}, not node_exporter"
            )
        snap = await async_parse_metrics(reply.body)
        if snap.cpu_total is None and "node_memory_MemTotal_bytes" not in snap.gauges:
            raise InvalidResponse("no node_exporter series in /metrics")
        now = self._clock()
        previous, elapsed = None, None
        if self._previous is not None:
            previous, before = self._previous
            elapsed = now - before
        self._previous = (snap, now)
        sample = build_sample(snap, previous, timestamp=int(now), elapsed=elapsed)
        self.info = build_info(snap)
        return sample
