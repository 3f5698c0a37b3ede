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
    MAX_LOAD,
    MAX_RATE,
    TEMPERATURE_RANGE,
    byte_count,
    counter_rate,
    finite,
    hottest_cpu,
    is_physical,
    plausible,
    rate_interval,
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
