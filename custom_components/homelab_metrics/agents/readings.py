"""What every agent's readings go through: numbers, counter rates, interfaces, CPU sensors, plausibility.

node_exporter and Glances both use these, and so can any later source that computes the same
figures, so that a figure means the same whichever agent reported it. Nothing here knows an
agent's wire format.

Every Sample leaves an agent through `plausible`: a figure that cannot be true (a percentage
outside 0-100, a negative or non-finite rate, a boot time before 2000 or in the future…) is
dropped, never clamped to a value that looks real. The bounds are the `*_RANGE`/`MAX_*` constants.

Which network interfaces count: the server's own links, each once. Loopback is left out, and so
are the devices whose traffic is already counted on a physical link or never leaves the machine:
bridges (br*, vmbr*, virbr*), bonds and teams (their members count), VLAN sub-interfaces
(`eth0.100`, vlan*), veth pairs and container or VM networks (docker*, cni*, flannel*, cali*,
cilium*, weave*, kube*, lxc*, vnet*, Proxmox's fw*), tunnels and VPNs (tun*, tap*, wg*,
tailscale*, zt*) and pseudo devices (ifb*, dummy*). See `is_physical`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import math

from .base import FilesystemUsage, InterfaceTraffic, Sample

VIRTUAL_INTERFACES = (
    "lo", "veth", "docker", "br", "vmbr", "virbr", "vnet", "cni", "flannel", "cali",
    "cilium", "weave", "kube", "lxc", "fwbr", "fwln", "fwpr", "bond", "team", "vlan",
    "macvlan", "macvtap", "tun", "tap", "wg", "tailscale", "zt", "ifb", "dummy",
)  # fmt: skip
"""Name prefixes of interfaces whose traffic is not counted (see the module docstring)."""

PERCENT_RANGE = (0.0, 100.0)
TEMPERATURE_RANGE = (-40.0, 125.0)
"""°C a CPU can read: silicon is rated from -40 °C (industrial parts) and x86 and ARM chips shut
down by 125 °C. Outside lie the sensors' error values: -273.15, -128, 127, 255."""
MAX_LOAD = 4_194_304.0
"""A load average counts tasks, and Linux has at most pid_max (2^22) of them."""
MAX_BYTES = 2**63 - 1
"""Largest byte count kept: what a signed 64-bit integer holds (8 EiB)."""
MAX_RATE = 1e12
"""Bytes per second (8 Tbit/s): twenty 400 GbE links. More is a counter that jumped."""
EARLIEST_BOOT = 946_684_800
"""2000-01-01T00:00:00Z; a boot time before it is a clock or a counter gone wrong."""
BOOT_AHEAD = 86_400
"""Seconds a boot time may lie ahead of the poll's clock (clocks disagree, not by days)."""
MAX_COUNT = 1_000_000
"""Most package updates a server can wait for; a larger count is a broken collector."""

_OFFSET_LABELS = frozenset({"Tctl"})
"""AMD control temperatures that may carry an offset over the real one (Tdie), when both exist."""


def is_physical(device: str) -> bool:
    """Whether an interface's traffic counts in the network rates (see the module docstring)."""
    return not device.startswith(VIRTUAL_INTERFACES) and "." not in device


def finite(value: object) -> float | None:
    """A finite float from a number; None for text ("ERR", "NA"), booleans, NaN, ±inf and huge ints."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None


def counter_rate(
    now: Mapping[str, float], before: Mapping[str, float], seconds: float | None
) -> float | None:
    """Bytes per second summed over the physical interfaces seen in both polls.

    None on the first poll (no interface in common), without a positive interval, and when any
    counter went back (a reboot, a driver reload) or is not a finite number: one poll without a
    figure is better than a spike.
    """
    if seconds is None or not seconds > 0:
        return None
    total = 0.0
    counted = False
    for device, value in now.items():
        if (previous := before.get(device)) is None or not is_physical(device):
            continue
        delta = value - previous
        if not math.isfinite(delta) or delta < 0:
            return None
        total += delta
        counted = True
    return total / seconds if counted else None


def rate_interval(agent_seconds: float | None, elapsed: float | None) -> float | None:
    """Seconds between two polls for a rate: the agent's own clock when it agrees with ours.

    The agent reads its clock beside its counters, so it leaves out our network delays; but a
    clock that stepped or a forged value (a 1 ms delta turned 1 kB into 1 MB/s) is not believed:
    it must lie within a factor of two of elapsed, the poller's own measure, which is used
    otherwise. None without a positive elapsed time.
    """
    if elapsed is None or not elapsed > 0:
        return None
    if agent_seconds is not None and elapsed / 2 <= agent_seconds <= elapsed * 2:
        return agent_seconds
    return elapsed


def hottest_cpu(readings: Iterable[tuple[str, str, float | None]]) -> float | None:
    """The hottest of (chip, label, °C) CPU readings; a chip's Tctl yields to its own Tdie.

    The caller decides which sensors are the CPU's. Unreadable and impossible readings are
    skipped before the choice, so that one broken sensor hides neither the others nor itself wins.
    """
    kept = [
        (chip, label, value)
        for chip, label, reading in readings
        if (value := _within(reading, TEMPERATURE_RANGE)) is not None
    ]
    # An AMD Tctl may read 10-27 °C above the die; Tdie, when present, is the truth.
    with_tdie = {chip for chip, label, _ in kept if label == "Tdie"}
    values = [
        value
        for chip, label, value in kept
        if not (chip in with_tdie and label in _OFFSET_LABELS)
    ]
    return max(values) if values else None


def byte_count(value: float | None) -> int | None:
    """A number of bytes: a finite value from 0 to MAX_BYTES as an int, else None."""
    if value is None or not 0 <= value <= MAX_BYTES:
        return None
    return int(value)


def plausible(sample: Sample) -> Sample:
    """The sample with every figure that cannot be true dropped: missing, never clamped.

    Percentages within 0-100; loads, rates and byte counts finite and not negative (and within
    MAX_LOAD, MAX_RATE, MAX_BYTES); used bytes not above the total; temperatures within
    TEMPERATURE_RANGE; the boot time from 2000-01-01 to a day past the sample's timestamp.
    """
    memory_total = byte_count(sample.memory_total_bytes)
    disk_total = byte_count(sample.disk_total_bytes)
    return Sample(
        timestamp=sample.timestamp,
        cpu_percent=_within(sample.cpu_percent, PERCENT_RANGE),
        memory_percent=_within(sample.memory_percent, PERCENT_RANGE),
        disk_percent=_within(sample.disk_percent, PERCENT_RANGE),
        load_1m=_within(sample.load_1m, (0.0, MAX_LOAD)),
        load_5m=_within(sample.load_5m, (0.0, MAX_LOAD)),
        load_15m=_within(sample.load_15m, (0.0, MAX_LOAD)),
        memory_used_bytes=_used(sample.memory_used_bytes, memory_total),
        memory_total_bytes=memory_total,
        disk_used_bytes=_used(sample.disk_used_bytes, disk_total),
        disk_total_bytes=disk_total,
        network_rx_bytes_per_second=_within(
            sample.network_rx_bytes_per_second, (0.0, MAX_RATE)
        ),
        network_tx_bytes_per_second=_within(
            sample.network_tx_bytes_per_second, (0.0, MAX_RATE)
        ),
        temperature_celsius=_within(sample.temperature_celsius, TEMPERATURE_RANGE),
        boot_time=_boot_time(sample.boot_time, sample.timestamp),
        swap_percent=_within(sample.swap_percent, PERCENT_RANGE),
        filesystems=tuple(
            fs for fs in map(_filesystem, sample.filesystems) if fs is not None
        ),
        interfaces=tuple(_interface(i) for i in sample.interfaces),
        updates_pending=_count(sample.updates_pending),
        reboot_required=sample.reboot_required
        if isinstance(sample.reboot_required, bool)
        else None,
    )


def _filesystem(fs: FilesystemUsage) -> FilesystemUsage | None:
    """A mount whose figures can all be true, else None (it is left out)."""
    used, free = byte_count(fs.used_bytes), byte_count(fs.free_bytes)
    percent = _within(fs.percent, PERCENT_RANGE)
    if used is None or free is None or percent is None or not fs.mountpoint:
        return None
    return fs


def _interface(traffic: InterfaceTraffic) -> InterfaceTraffic:
    """An interface's rates with the impossible ones missing."""
    return InterfaceTraffic(
        name=traffic.name,
        rx_bytes_per_second=_within(traffic.rx_bytes_per_second, (0.0, MAX_RATE)),
        tx_bytes_per_second=_within(traffic.tx_bytes_per_second, (0.0, MAX_RATE)),
    )


def _count(value: int | None) -> int | None:
    """A whole count of things (updates): not negative, not a bool, within MAX_COUNT."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_COUNT else None


def _within(value: float | None, bounds: tuple[float, float]) -> float | None:
    """The value when it lies within bounds (NaN never does), else None."""
    low, high = bounds
    return value if value is not None and low <= value <= high else None


def _used(used: int | None, total: int | None) -> int | None:
    """Used bytes, unless they are implausible or exceed a known total."""
    used = byte_count(used)
    return None if used is None or (total is not None and used > total) else used


def _boot_time(boot: int | None, now: int) -> int | None:
    """A boot time from 2000-01-01 to a day after now."""
    if boot is None or not EARLIEST_BOOT <= boot <= now + BOOT_AHEAD:
        return None
    return boot
