"""The helpers every agent shares: numbers, counter rates, interfaces, CPU temperatures, plausibility."""

from __future__ import annotations

from dataclasses import fields, replace
import math

import pytest

from custom_components.homelab_metrics.agents.base import (
    FilesystemUsage,
    InterfaceTraffic,
    Sample,
)
from custom_components.homelab_metrics.agents.readings import (
    EARLIEST_BOOT,
    MAX_BYTES,
    MAX_FILESYSTEMS,
    MAX_INTERFACES,
    MAX_LOAD,
    MAX_NAME_CHARS,
    MAX_RATE,
    TEMPERATURE_RANGE,
    Mount,
    byte_count,
    clean_text,
    counter_rate,
    finite,
    hottest_cpu,
    interface_traffic,
    is_cpu_label,
    is_physical,
    plausible,
    rate_interval,
    real_filesystems,
)


def test_which_interfaces_count() -> None:
    """Physical links count once; bridges, bonds, VLANs, containers and tunnels do not."""
    for name in ("eth0", "enp3s0", "eno1", "wlan0", "wlp2s0", "ens18", "enx0c37960a"):
        assert is_physical(name), name
    for name in (
        "lo", "veth12ab", "docker0", "br-5f2a", "br0", "vmbr0", "virbr0", "bond0",
        "bond0.20", "eth0.100", "vlan20", "tailscale0", "wg0", "tun0", "tap101i0",
        "fwpr101p0", "cali7b3", "flannel.1", "cni0", "lxcbr0", "ifb0", "zt5u4y",
    ):  # fmt: skip
        assert not is_physical(name), name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (-2.5, -2.5),
        (0, 0.0),
        (10**300, 1e300),
        (10**400, None),  # an int beyond the float range: OverflowError in float()
        (-(10**400), None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        (True, None),
        ("12", None),
        ("ERR", None),
        (None, None),
        ([1], None),
    ],
)
def test_finite(value: object, expected: float | None) -> None:
    """One coercion for every agent: a finite float, else None; never an exception."""
    assert finite(value) == expected


def test_counter_rate() -> None:
    """Summed over physical interfaces seen twice; a reset, NaN or no interval gives no rate."""
    before = {"eth0": 1000.0, "eth1": 0.0, "docker0": 0.0}
    now = {"eth0": 7000.0, "eth1": 3000.0, "docker0": 10**9, "eth2": 5.0}
    assert (
        counter_rate(now, before, 3) == 3000
    )  # (6000 + 3000) / 3; docker0, eth2 left out
    assert counter_rate(now, before, 0) is None
    assert counter_rate(now, before, -1) is None
    assert counter_rate(now, before, math.nan) is None
    assert counter_rate(now, before, None) is None
    assert counter_rate(now, {}, 3) is None  # first poll
    assert counter_rate({"docker0": 5.0}, {"docker0": 1.0}, 3) is None  # nothing counts
    assert counter_rate({**now, "eth1": -1.0}, before, 3) is None  # went back
    assert counter_rate({**now, "eth1": math.nan}, before, 3) is None
    assert counter_rate({"eth0": 1e308}, {"eth0": -1e308}, 3) is None  # inf delta


def test_hottest_cpu() -> None:
    """The hottest reading; Tctl only yields to a Tdie of the same chip; None is skipped."""
    assert hottest_cpu([]) is None
    assert hottest_cpu([("c", "Core 0", None)]) is None
    assert hottest_cpu([("c", "Core 0", 40.0), ("c", "Core 1", 45.5)]) == 45.5
    amd = [("k", "Tctl", 74.0), ("k", "Tdie", 50.0), ("k", "Tccd1", 52.0)]
    assert hottest_cpu(amd) == 52.0
    assert hottest_cpu([("k", "Tctl", 74.0)]) == 74.0
    # Another chip's Tdie says nothing about this chip's Tctl.
    assert hottest_cpu([("k0", "Tdie", 50.0), ("k1", "Tctl", 60.0)]) == 60.0


NOW = 1_764_000_000
TRUE_SAMPLE = Sample(
    timestamp=NOW,
    cpu_percent=100.0,
    memory_percent=0.0,
    disk_percent=24.9,
    load_1m=0.0,
    load_5m=17.5,
    load_15m=MAX_LOAD,
    memory_used_bytes=3_400_000_000,
    memory_total_bytes=3_400_000_000,
    disk_used_bytes=0,
    disk_total_bytes=MAX_BYTES,
    network_rx_bytes_per_second=0.0,
    network_tx_bytes_per_second=MAX_RATE,
    temperature_celsius=TEMPERATURE_RANGE[0],
    boot_time=NOW + 86_400,
    swap_percent=0.0,
    filesystems=(
        FilesystemUsage(
            mountpoint="/", used_bytes=0, free_bytes=MAX_BYTES, percent=0.0
        ),
    ),
    interfaces=(
        InterfaceTraffic(name="eth0", rx_bytes_per_second=0.0, tx_bytes_per_second=0.0),
    ),
    updates_pending=0,
    reboot_required=False,
)


def test_plausible_keeps_a_true_sample() -> None:
    """Every field of a sample that can be true (bounds included) passes unchanged.

    Every field is set here: a field added to Sample but not to plausible() fails this test.
    """
    assert all(getattr(TRUE_SAMPLE, f.name) is not None for f in fields(Sample))
    assert plausible(TRUE_SAMPLE) == TRUE_SAMPLE
    assert plausible(Sample(timestamp=NOW)) == Sample(timestamp=NOW)
    assert plausible(replace(TRUE_SAMPLE, boot_time=EARLIEST_BOOT)).boot_time == (
        EARLIEST_BOOT
    )
    assert plausible(replace(TRUE_SAMPLE, temperature_celsius=125.0)) == replace(
        TRUE_SAMPLE, temperature_celsius=125.0
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_percent", -50.0),
        ("cpu_percent", 100.000001),
        ("cpu_percent", math.nan),
        ("memory_percent", -400.0),
        ("memory_percent", 150.0),
        ("disk_percent", math.nan),
        ("disk_percent", math.inf),
        ("load_1m", -0.01),
        ("load_5m", math.inf),
        ("load_15m", MAX_LOAD * 2),
        ("memory_used_bytes", -1),
        ("memory_total_bytes", -8_000_000_000),
        ("disk_used_bytes", 10**30),
        ("disk_total_bytes", MAX_BYTES + 1),
        ("network_rx_bytes_per_second", -1.0),
        ("network_rx_bytes_per_second", math.inf),
        ("network_tx_bytes_per_second", math.nan),
        ("network_tx_bytes_per_second", MAX_RATE * 10),
        ("temperature_celsius", -273.15),
        ("temperature_celsius", 127.0),
        ("temperature_celsius", math.nan),
        ("boot_time", 10**12),  # node_boot_time_seconds 1e12
        ("boot_time", NOW + 86_401),
        ("boot_time", EARLIEST_BOOT - 1),
        ("boot_time", -1),
    ],
)
def test_plausible_drops_what_cannot_be_true(field: str, value: float) -> None:
    """An impossible figure is missing (None), never clamped; the others stay."""
    sample = replace(TRUE_SAMPLE, **{field: value})
    assert plausible(sample) == replace(TRUE_SAMPLE, **{field: None})


def test_used_bytes_above_the_total_are_dropped() -> None:
    """More used than there is: the used figure is missing, the total stays."""
    sample = replace(TRUE_SAMPLE, memory_used_bytes=9, memory_total_bytes=8)
    assert plausible(sample).memory_used_bytes is None
    assert plausible(sample).memory_total_bytes == 8
    only_used = replace(TRUE_SAMPLE, disk_used_bytes=9, disk_total_bytes=None)
    assert plausible(only_used).disk_used_bytes == 9


def test_byte_count() -> None:
    """A whole, non-negative, representable number of bytes, else None."""
    assert byte_count(8e9) == 8_000_000_000
    assert byte_count(0) == 0
    assert byte_count(MAX_BYTES) == MAX_BYTES
    for value in (None, -1.0, math.nan, math.inf, 1e300, MAX_BYTES + 1):
        assert byte_count(value) is None


def test_hottest_cpu_skips_impossible_readings() -> None:
    """A sensor's error value neither wins nor hides the real readings."""
    assert hottest_cpu([("c", "Core 0", 127.0), ("c", "Core 1", 55.0)]) == 55.0
    assert hottest_cpu([("c", "Core 0", -273.15)]) is None
    # A broken Tdie does not hide the only real figure left, Tctl.
    assert hottest_cpu([("k", "Tdie", -128.0), ("k", "Tctl", 61.0)]) == 61.0


def test_rate_interval() -> None:
    """The agent's clock within a factor of two of ours, else ours; nothing without ours."""
    assert rate_interval(59.0, 60.0) == 59.0
    assert rate_interval(0.001, 60.0) == 60.0
    assert rate_interval(math.nan, 60.0) == 60.0
    assert rate_interval(None, 60.0) == 60.0
    assert rate_interval(60.0, None) is None
    assert rate_interval(60.0, 0.0) is None
    assert rate_interval(60.0, math.nan) is None


def mount(
    mountpoint: str,
    device: str = "/dev/sda1",
    fstype: str = "ext4",
    *,
    size: float | None = 1000.0,
    used: float | None = 600.0,
    available: float | None = 350.0,
) -> Mount:
    """A mount as an agent lists it (50 bytes reserved for root by default)."""
    return Mount(
        device=device,
        fstype=fstype,
        mountpoint=mountpoint,
        size=size,
        used=used,
        available=available,
    )


def test_real_filesystems_of_a_nas() -> None:
    """A NAS: its disks and pool, without pseudo, overlay, network or container mounts."""
    mounts = [
        mount(
            "/boot/efi", "/dev/nvme0n1p1", "vfat", size=5e8, used=1e7, available=4.9e8
        ),
        mount("/", "/dev/nvme0n1p2", "ext4", size=1e11, used=4e10, available=5.5e10),
        mount("/run", "tmpfs", "tmpfs"),
        mount("/dev/shm", "tmpfs", "tmpfs"),
        mount("/tank", "tank", "zfs", size=8e12, used=6e12, available=2e12),
        mount("/tank/media", "tank/media", "zfs", size=7e12, used=5e12, available=2e12),
        mount(
            "/srv/pool", "pool", "fuse.mergerfs", size=4e12, used=1e12, available=3e12
        ),
        mount("/mnt/usb", "/dev/sdc1", "fuseblk", size=1e12, used=5e11, available=5e11),
        mount("/var/lib/docker/overlay2/ab12/merged", "overlay", "overlay"),
        mount("/var/lib/docker/zfs/graph/ab12", "tank/docker/ab12", "zfs"),
        mount("/snap/core22/1380", "/dev/loop0", "squashfs", available=0),
        mount("/media/cdrom", "/dev/sr0", "iso9660", available=0),
        mount("/mnt/backup", "nas:/backup", "nfs4"),
        mount("/mnt/share", "//nas/share", "cifs"),
        mount("/sys/fs/cgroup", "cgroup2", "cgroup2"),
        mount("/proc/sys/fs/binfmt_misc", "binfmt_misc", "binfmt_misc"),
        mount("/run/user/1000/doc", "portal", "fuse.portal"),
        mount("/var/lib/lxcfs", "lxcfs", "fuse.lxcfs"),
    ]
    found = real_filesystems(mounts)
    assert [fs.mountpoint for fs in found] == [
        "/", "/boot/efi", "/mnt/usb", "/srv/pool", "/tank", "/tank/media",
    ]  # fmt: skip
    root = found[0]
    assert (root.used_bytes, root.free_bytes) == (40_000_000_000, 55_000_000_000)
    assert root.percent == pytest.approx(100 * 4e10 / 9.5e10)  # df's Use%


def test_bind_mounts_and_subvolumes_are_listed_once() -> None:
    """The same device and size at several mount points is one filesystem, at the shortest."""
    found = real_filesystems(
        [
            mount("/srv/data/share", "/dev/sdb1"),
            mount("/export/share", "/dev/sdb1"),
            mount("/srv/data", "/dev/sdb1"),
            mount("/home", "/dev/sda2", "btrfs"),
            mount("/", "/dev/sda2", "btrfs"),
            # Two pools that merely share a device name are two filesystems.
            mount("/srv/pool1", "mergerfs", "fuse.mergerfs", size=4000.0),
            mount("/srv/pool2", "mergerfs", "fuse.mergerfs", size=8000.0),
            # Without a device name, only the mount point tells them apart.
            mount("/data1", ""),
            mount("/data2", ""),
        ]
    )
    assert [fs.mountpoint for fs in found] == [
        "/", "/data1", "/data2", "/srv/data", "/srv/pool1", "/srv/pool2",
    ]  # fmt: skip


def test_docker_file_mounts_are_not_filesystems() -> None:
    """An agent in a container sees the host's disk through /etc/hosts & co: not a mount point."""
    found = real_filesystems(
        [
            mount("/", "overlay", "overlay"),
            mount("/etc/resolv.conf", "/dev/sda1"),
            mount("/etc/hostname", "/dev/sda1"),
            mount("/etc/hosts", "/dev/sda1"),
            mount("/data", "/dev/sdb1"),
        ]
    )
    assert [fs.mountpoint for fs in found] == ["/data"]


def test_filesystems_that_cannot_be_true_are_left_out() -> None:
    """Missing, negative, huge or empty figures, and mount points that are no names."""
    found = real_filesystems(
        [
            mount("/a", "a", size=None),
            mount("/b", "b", used=None),
            mount("/c", "c", available=None),
            mount("/d", "d", used=-1.0),
            mount("/e", "e", available=math.nan),
            mount("/f", "f", size=1e300),
            mount("/g", "g", used=0.0, available=0.0),
            mount("", "h"),
            mount("/i\nj", "i"),
            mount("/k\tl", "k"),
            mount("/" + "x" * MAX_NAME_CHARS, "l"),
            mount(" /m", "m"),
            mount("/ok", "ok"),
            mount("/" + "y" * (MAX_NAME_CHARS - 1), "n"),
            mount("/mnt/my disk", "o"),
            mount("/mnt/Fotos \u00e9t\u00e9", "p"),
        ]
    )
    assert [fs.mountpoint for fs in found] == [
        "/mnt/Fotos \u00e9t\u00e9",
        "/mnt/my disk",
        "/ok",
        "/" + "y" * (MAX_NAME_CHARS - 1),
    ]


def test_filesystems_are_capped() -> None:
    """At most MAX_FILESYSTEMS, "/" always among them, the same ones at every poll."""
    mounts = [mount(f"/tank/{i:03}", f"tank/{i:03}", "zfs") for i in range(200)]
    mounts.append(mount("/", "/dev/sda1"))
    found = real_filesystems(reversed(mounts))
    assert len(found) == MAX_FILESYSTEMS
    assert found[0].mountpoint == "/"
    assert found[-1].mountpoint == f"/tank/{MAX_FILESYSTEMS - 2:03}"


def test_interface_traffic() -> None:
    """Each physical interface's rates; a reset one has none, the others keep theirs."""
    before = ({"eth0": 1000.0, "eth1": 500.0, "docker0": 0.0}, {"eth0": 10.0})
    rx = {"eth0": 4000.0, "eth1": 100.0, "docker0": 9e9, "eth2": 7.0, "wg0": 1.0}
    tx = {"eth0": 310.0, "eno1": 5.0}
    traffic = interface_traffic(rx, tx, before, 3.0)
    assert traffic == (
        InterfaceTraffic(name="eno1"),  # transmit only, and new: no rates yet
        InterfaceTraffic(
            name="eth0", rx_bytes_per_second=1000.0, tx_bytes_per_second=100.0
        ),
        InterfaceTraffic(name="eth1"),  # its counter went back (a driver reload)
        InterfaceTraffic(name="eth2"),  # new since the previous poll
    )
    # The first poll lists the interfaces, without rates.
    assert interface_traffic(rx, tx, None, None) == tuple(
        InterfaceTraffic(name=name) for name in ("eno1", "eth0", "eth1", "eth2")
    )
    assert all(
        t.rx_bytes_per_second is None for t in interface_traffic(rx, tx, before, 0.0)
    )


def test_interface_traffic_is_capped() -> None:
    """At most MAX_INTERFACES, by name; names that are no names are left out."""
    rx = {f"eth{i:03}": 1.0 for i in range(100)} | {"eth\n0": 1.0, "e" * 300: 1.0}
    traffic = interface_traffic(rx, {}, None, None)
    assert [t.name for t in traffic] == [f"eth{i:03}" for i in range(MAX_INTERFACES)]


@pytest.mark.parametrize(
    "label",
    [
        "Package id 0", "Package id 1", "Core 0", "Core 27", "Core 0 1", "Tctl", "Tdie",
        "Tccd1", "Tccd8", "Tctl 1", "cpu_thermal 0", "cpu-thermal 0", "soc_thermal 0",
        "cpu0_thermal 0", "x86_pkg_temp 0", "coretemp 0", "k10temp 0", "zenpower 2",
    ],
)  # fmt: skip
def test_cpu_labels(label: str) -> None:
    """Labels of CPU sensors as Glances names them (label, or chip name and index)."""
    assert is_cpu_label(label)


@pytest.mark.parametrize(
    "label",
    [
        "Composite", "Sensor 1", "Sensor 2", "edge", "junction", "mem", "acpitz 0",
        "iwlwifi_1 0", "pch_cannonlake 0", "nvme 0", "drivetemp 0", "SYSTIN", "CPUTIN",
        "PCH_CHIP_TEMP", "amdgpu 0", "nouveau 0", "Core", "Core X", "Package id",
        "cpu_thermal", "cpu_thermal x", "Core 0 12345", "temp1", "", "Tctl2", "Tctl \u0663",
    ],
)  # fmt: skip
def test_not_cpu_labels(label: str) -> None:
    """Drives, GPUs, Wi-Fi cards, boards and chipsets are not the CPU."""
    assert not is_cpu_label(label)


def test_clean_text() -> None:
    """Short printable text without surrounding spaces, else None."""
    assert clean_text(" nas \n") == "nas"
    assert clean_text("Debian GNU/Linux 12 (bookworm)") == (
        "Debian GNU/Linux 12 (bookworm)"
    )
    assert clean_text("x" * 255) == "x" * 255
    for value in ("", "   ", "x" * 256, "a\x00b", "a\nb", "a\u202eb", 5, None, ["a"]):
        assert clean_text(value) is None, value
    assert clean_text("abc", max_chars=2) is None


def test_plausible_drops_entries_that_are_no_names() -> None:
    """A filesystem or interface without a name that can be shown is left out."""
    fs = TRUE_SAMPLE.filesystems[0]
    sample = replace(
        TRUE_SAMPLE,
        filesystems=(
            replace(fs, mountpoint=""),
            replace(fs, mountpoint="/a\nb"),
            replace(fs, mountpoint="/c", percent=150.0),
            replace(fs, mountpoint="/d", used_bytes=-1),
            fs,
        ),
        interfaces=(
            InterfaceTraffic(name="eth\x1b[0m"),
            InterfaceTraffic(name="eth0", rx_bytes_per_second=-1.0),
        ),
    )
    assert plausible(sample).filesystems == (fs,)
    assert plausible(sample).interfaces == (InterfaceTraffic(name="eth0"),)
    many = replace(
        TRUE_SAMPLE,
        filesystems=(fs,) * (MAX_FILESYSTEMS + 1),
        interfaces=TRUE_SAMPLE.interfaces * (MAX_INTERFACES + 1),
    )
    assert len(plausible(many).filesystems) == MAX_FILESYSTEMS
    assert len(plausible(many).interfaces) == MAX_INTERFACES
