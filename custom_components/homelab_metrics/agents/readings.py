"""What every agent's readings go through: numbers, counter rates, the interfaces and CPU sensors that count.

node_exporter and Glances both use these, and so can any later source that computes the same
figures, so that a figure means the same whichever agent reported it. Nothing here knows an
agent's wire format.

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

VIRTUAL_INTERFACES = (
    "lo", "veth", "docker", "br", "vmbr", "virbr", "vnet", "cni", "flannel", "cali",
    "cilium", "weave", "kube", "lxc", "fwbr", "fwln", "fwpr", "bond", "team", "vlan",
    "macvlan", "macvtap", "tun", "tap", "wg", "tailscale", "zt", "ifb", "dummy",
)  # fmt: skip
"""Name prefixes of interfaces whose traffic is not counted (see the module docstring)."""

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


def hottest_cpu(readings: Iterable[tuple[str, str, float | None]]) -> float | None:
    """The hottest of (chip, label, °C) CPU readings; a chip's Tctl yields to its own Tdie.

    The caller decides which sensors are the CPU's; unreadable values (None) are skipped.
    """
    kept = [
        (chip, label, value) for chip, label, value in readings if value is not None
    ]
    # An AMD Tctl may read 10-27 °C above the die; Tdie, when present, is the truth.
    with_tdie = {chip for chip, label, _ in kept if label == "Tdie"}
    values = [
        value
        for chip, label, value in kept
        if not (chip in with_tdie and label in _OFFSET_LABELS)
    ]
    return max(values) if values else None
