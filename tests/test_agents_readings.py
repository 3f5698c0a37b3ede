"""The helpers every agent shares: numbers, counter rates, interfaces, the CPU temperature choice."""

from __future__ import annotations

import math

import pytest

from custom_components.homelab_metrics.agents.readings import (
    counter_rate,
    finite,
    hottest_cpu,
    is_physical,
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
