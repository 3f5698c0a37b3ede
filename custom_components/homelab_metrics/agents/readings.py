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

Which filesystems count: those that hold data on this server's own disks, each once (see
`real_filesystems`). Pseudo and in-memory filesystems (proc, sysfs, tmpfs, cgroup…), overlay and
read-only images (overlay, squashfs, iso9660), network shares (nfs, cifs, sshfs: another server's
disk) and container internals (under /var/lib/docker, /var/lib/containers, /var/lib/kubelet, /snap;
the files Docker binds into a container) are left out. A filesystem mounted at several places (a
bind mount, btrfs subvolumes) is listed once, at its shortest mount point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import math
import re

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
MAX_FILESYSTEMS = 64
"""Most filesystems a Sample lists ("/" first, then by mount point); a NAS with a few dozen
datasets fits, and each one becomes entities in Home Assistant."""
MAX_INTERFACES = 32
"""Most physical interfaces a Sample lists (by name)."""
MAX_NAME_CHARS = 255
"""Longest mount point or interface name kept; a longer one is left out (a real one is short)."""
MAX_INFO_CHARS = 255
"""Longest host name, version or OS name kept (a DNS name has at most 253 characters)."""

PSEUDO_FILESYSTEMS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "proc", "procfs",
    "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "sysfs", "tracefs", "tmpfs",
    "overlay", "overlayfs", "aufs", "squashfs", "erofs", "iso9660", "nfsd",
    "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.snapfuse", "fuse.xdg-document-portal",
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "fuse.glusterfs",
    "fuse.sshfs", "sshfs", "fuse.rclone", "fuse.s3fs", "davfs", "fuse.davfs2", "afs",
})  # fmt: skip
"""Filesystem types that are not this server's own disks (see the module docstring)."""
SYSTEM_MOUNTS = ("/proc/", "/sys/", "/dev/", "/var/lib/docker/", "/var/lib/containers/",
                 "/var/lib/kubelet/", "/snap/")  # fmt: skip
"""Mount point prefixes of container internals and kernel interfaces."""
CONTAINER_FILE_MOUNTS = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"})
"""The files Docker binds into a container: the host's disk, seen through a single file."""

CPU_CHIPS = frozenset({"coretemp", "k10temp", "zenpower"})
"""hwmon chip names of x86 CPU packages; ARM boards name theirs cpu*_thermal or soc*_thermal."""
CPU_ZONES = ("x86_pkg_temp", "cpu", "soc")
"""Thermal zone types of the CPU (used where no hwmon chip reports it, as on Raspberry Pis)."""
_CPU_LABEL = re.compile(
    r"(?:Package id [0-9]{1,4}|Core [0-9]{1,4}|Tctl|Tdie|Tccd[0-9]{1,2})"
)
"""Labels coretemp (Package id N, Core N), k10temp and zenpower (Tctl, Tdie, TccdN) give."""

_OFFSET_LABELS = frozenset({"Tctl"})
"""AMD control temperatures that may carry an offset over the real one (Tdie), when both exist."""


def is_cpu_chip(name: str) -> bool:
    """Whether an hwmon chip name is a CPU package or an ARM board's CPU/SoC sensor."""
    return name in CPU_CHIPS or (name.startswith(("cpu", "soc")) and "thermal" in name)


def is_cpu_zone(kind: str) -> bool:
    """Whether a thermal zone type is the CPU's (x86_pkg_temp, cpu*, soc*)."""
    return kind.startswith(CPU_ZONES)


def is_cpu_label(label: str) -> bool:
    """Whether a sensor known only by its label (as Glances names them) is the CPU's.

    Glances types every temperature psutil finds as a core temperature, NVMe drives, GPUs and
    Wi-Fi cards included, and names each by its label: coretemp's "Package id 0" and "Core 3",
    k10temp's "Tctl" and "Tccd1", or, for a chip without labels, the chip name and an index
    ("cpu_thermal 0", "x86_pkg_temp 0"). Glances 4 adds " N" to a label seen twice (a second
    CPU package's "Core 0 1"). The chips and zones are those node_exporter's readings count.
    """
    if _CPU_LABEL.fullmatch(label):
        return True
    name, _, index = label.rpartition(" ")
    return (
        index.isascii()
        and index.isdigit()
        and len(index) <= 4
        and bool(is_cpu_chip(name) or is_cpu_zone(name) or _CPU_LABEL.fullmatch(name))
    )


def is_physical(device: str) -> bool:
    """Whether an interface's traffic counts in the network rates (see the module docstring)."""
    return not device.startswith(VIRTUAL_INTERFACES) and "." not in device


@dataclass(frozen=True, kw_only=True, slots=True)
class Mount:
    """One mounted filesystem as an agent lists it, before `real_filesystems` chooses."""

    device: str
    fstype: str
    mountpoint: str
    size: float | None
    used: float | None
    available: float | None
    """Space still available to ordinary users (df's Avail)."""


def is_real_filesystem(fstype: str, mountpoint: str) -> bool:
    """Whether a mount holds data on the server's own disks (see the module docstring)."""
    return (
        fstype not in PSEUDO_FILESYSTEMS
        and mountpoint not in CONTAINER_FILE_MOUNTS
        and not (mountpoint + "/").startswith(SYSTEM_MOUNTS)
    )


def real_filesystems(mounts: Iterable[Mount]) -> tuple[FilesystemUsage, ...]:
    """Usage of every real filesystem, once each: "/" first, then by mount point.

    A device listed with the same size at several mount points (a bind mount, btrfs subvolumes)
    is one filesystem, kept at its shortest mount point ("/" when it is one). Mounts whose
    figures cannot be true, or whose mount point is not short printable text, are left out;
    at most MAX_FILESYSTEMS are kept.
    """
    chosen: dict[tuple[str, int], FilesystemUsage] = {}
    for mount in mounts:
        if clean_text(mount.mountpoint, MAX_NAME_CHARS) != mount.mountpoint:
            continue
        if not is_real_filesystem(mount.fstype, mount.mountpoint):
            continue
        size, used, available = (
            byte_count(mount.size),
            byte_count(mount.used),
            byte_count(mount.available),
        )
        if size is None or used is None or available is None or used + available <= 0:
            continue
        # Without a device name, only the mount point tells filesystems apart.
        key = (mount.device or mount.mountpoint, size)
        kept = chosen.get(key)
        if kept is not None and len(kept.mountpoint) <= len(mount.mountpoint):
            continue
        chosen[key] = FilesystemUsage(
            mountpoint=mount.mountpoint,
            used_bytes=used,
            free_bytes=available,
            percent=100.0 * used / (used + available),
        )
    ordered = sorted(
        chosen.values(), key=lambda fs: (fs.mountpoint != "/", fs.mountpoint)
    )
    return tuple(ordered[:MAX_FILESYSTEMS])


def interface_traffic(
    rx: Mapping[str, float],
    tx: Mapping[str, float],
    before: tuple[Mapping[str, float], Mapping[str, float]] | None,
    seconds: float | None,
) -> tuple[InterfaceTraffic, ...]:
    """Rates of each physical interface seen now, by name; a rate is None without two polls.

    An interface whose counter went back (a driver reload) has no rate this poll, while the
    others keep theirs. At most MAX_INTERFACES are listed; names longer than MAX_NAME_CHARS or
    not printable are left out.
    """
    names = sorted(
        name
        for name in rx.keys() | tx.keys()
        if is_physical(name) and clean_text(name, MAX_NAME_CHARS) == name
    )
    before_rx, before_tx = before if before is not None else ({}, {})
    return tuple(
        InterfaceTraffic(
            name=name,
            rx_bytes_per_second=counter_rate(
                _only(rx, name), _only(before_rx, name), seconds
            ),
            tx_bytes_per_second=counter_rate(
                _only(tx, name), _only(before_tx, name), seconds
            ),
        )
        for name in names[:MAX_INTERFACES]
    )


def _only(counters: Mapping[str, float], name: str) -> dict[str, float]:
    """One interface's counter, as counter_rate takes them."""
    value = counters.get(name)
    return {} if value is None else {name: value}


def clean_text(value: object, max_chars: int = MAX_INFO_CHARS) -> str | None:
    """Printable text of at most max_chars without surrounding spaces, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > max_chars or not text.isprintable():
        return None
    return text


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
    TEMPERATURE_RANGE; the boot time from 2000-01-01 to a day past the sample's timestamp;
    filesystems and interfaces named by short printable text, at most MAX_FILESYSTEMS and
    MAX_INTERFACES of them.
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
        )[:MAX_FILESYSTEMS],
        interfaces=tuple(
            i for i in map(_interface, sample.interfaces) if i is not None
        )[:MAX_INTERFACES],
        updates_pending=_count(sample.updates_pending),
        reboot_required=sample.reboot_required
        if isinstance(sample.reboot_required, bool)
        else None,
    )


def _filesystem(fs: FilesystemUsage) -> FilesystemUsage | None:
    """A mount whose figures can all be true, else None (it is left out)."""
    used, free = byte_count(fs.used_bytes), byte_count(fs.free_bytes)
    percent = _within(fs.percent, PERCENT_RANGE)
    if used is None or free is None or percent is None:
        return None
    if clean_text(fs.mountpoint, MAX_NAME_CHARS) != fs.mountpoint:
        return None
    return fs


def _interface(traffic: InterfaceTraffic) -> InterfaceTraffic | None:
    """An interface's rates with the impossible ones missing; None for a name that is no name."""
    if clean_text(traffic.name, MAX_NAME_CHARS) != traffic.name:
        return None
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
