"""PromQL for the Prometheus source: every Sample field written as the direct node_exporter agent computes it.

`field_queries` gives one expression per field, `poll_queries` batches them into the fixed handful
of instant queries a poll sends for every node, `history_stat_queries` the hourly avg/min/max/count
for an import, and `discovery_query` what the nodes say about themselves. Regexes come from the
same lists the direct agent uses (`readings`), so both sides agree on interfaces and CPU chips.
The text is kept apart from the client (`prometheus`), which sends it and decodes the answers.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
import json
import re

from .readings import CPU_CHIPS, TEMPERATURE_RANGE, VIRTUAL_INTERFACES

SMALL_SELECTION = 50
"""A poll for at most this many chosen instances filters them on the server (a short URL)."""

# --- Fields -----------------------------------------------------------------------------------------

ROOT_FREE = "disk_free_bytes"
"""Space left on "/" for ordinary users (df's Avail), part of a poll's answer."""

FIELDS: tuple[str, ...] = (
    "cpu_percent",
    "memory_percent",
    "disk_percent",
    "load_1m",
    "load_5m",
    "load_15m",
    "memory_used_bytes",
    "memory_total_bytes",
    "disk_used_bytes",
    "disk_total_bytes",
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
    "temperature_celsius",
    "boot_time",
    "swap_percent",
    "updates_pending",
    "reboot_required",
    ROOT_FREE,
)
"""Sample fields a poll computes, each with one PromQL expression (`field_queries`).

ROOT_FREE is no field of its own: with the root disk's used bytes and percentage it makes the
root filesystem of `Sample.filesystems`, as the direct agent lists it ("Disk free"). The other
mounts and the per-interface figures are not read: a Docker or Kubernetes host has dozens of
mounts and veths, which would multiply the series of a fleet poll several times over for
sensors most users leave disabled.
"""

UP_TAG = "up"
"""Tag of the `up` series in a poll's answer."""
STATS = ("avg", "min", "max", "count")
"""What an hourly bucket holds of each field."""
TAG = "hm"
"""The label a batched query adds to tell its parts apart (`or` ignores metric names)."""

_THERMAL_ZONE_PREFIXES = ("x86_pkg_temp", "cpu", "soc")
"""Thermal zone types of CPUs (the direct agent's fallback when no hwmon CPU chip exists)."""


def physical_interface_regex() -> str:
    """RE2 matching every interface `is_physical` leaves out (PromQL anchors it at both ends)."""
    prefixes = "|".join(re.escape(p) for p in VIRTUAL_INTERFACES)
    return f"(?:{prefixes}).*|.*[.].*"


def cpu_chip_regex() -> str:
    """RE2 matching the hwmon chip names the direct agent reads as CPU sensors."""
    chips = "|".join(re.escape(c) for c in sorted(CPU_CHIPS))
    return f"{chips}|(?:cpu|soc).*thermal.*"


def promql_string(text: str) -> str:
    """A PromQL string literal (Go's escapes, which JSON's are a subset of)."""
    return json.dumps(text)


def selector(name: str, *matchers: str, extra: str = "") -> str:
    """name{matchers} with the caller's extra matcher (an instance) added."""
    parts = [m for m in (*matchers, extra) if m]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def field_queries(window: int, instance: str | None = None) -> dict[str, str]:
    """PromQL for each Sample field, one series per instance (see the module docstring).

    window is the rate window in seconds; instance restricts every selector to one node (imports).
    """
    x = f"instance={promql_string(instance)}" if instance is not None else ""
    w = f"[{int(window)}s]"
    low, high = TEMPERATURE_RANGE

    def s(name: str, *matchers: str) -> str:
        return selector(name, *matchers, extra=x)

    root = 'mountpoint="/"'
    used = f"({s('node_filesystem_size_bytes', root)} - {s('node_filesystem_free_bytes', root)})"
    idle_modes = 'mode=~"idle|iowait"'
    idle = (
        f"sum by (job, instance) (rate({s('node_cpu_seconds_total', idle_modes)}{w}))"
    )
    total = f"sum by (job, instance) (rate({s('node_cpu_seconds_total')}{w}))"
    physical = f"device!~{promql_string(physical_interface_regex())}"
    chips = s("node_hwmon_chip_names", f"chip_name=~{promql_string(cpu_chip_regex())}")
    hwmon = (
        f"(({s('node_hwmon_temp_celsius')} >= {low:g}) <= {high:g})"
        f" and on (job, instance, chip) {chips}"
    )
    on_sensor = "on (job, instance, chip, sensor)"
    tctl = s("node_hwmon_sensor_label", 'label="Tctl"')
    tdie = s("node_hwmon_sensor_label", 'label="Tdie"')
    # hottest_cpu: Tctl readings count only on chips without a (plausible) Tdie reading.
    hottest_hwmon = (
        f"max by (job, instance) (({hwmon} unless {on_sensor} {tctl})"
        f" or (({hwmon} and {on_sensor} {tctl})"
        f" unless on (job, instance, chip) ({hwmon} and {on_sensor} {tdie})))"
    )
    zone_types = "|".join(_THERMAL_ZONE_PREFIXES)
    zone_type = f'type=~"(?:{zone_types}).*"'
    zones = (
        f"max by (job, instance) (({s('node_thermal_zone_temp', zone_type)}"
        f" >= {low:g}) <= {high:g})"
    )
    mem_total = s("node_memory_MemTotal_bytes")
    mem_avail = s("node_memory_MemAvailable_bytes")
    per_job = {
        "cpu_percent": f"100 * (1 - {idle} / {total})",
        "memory_percent": f"100 * (1 - {mem_avail} / {mem_total})",
        "disk_percent": f"100 * {used} / ({used} + {s('node_filesystem_avail_bytes', root)})",
        "load_1m": s("node_load1"),
        "load_5m": s("node_load5"),
        "load_15m": s("node_load15"),
        "memory_used_bytes": f"{mem_total} - {mem_avail}",
        "memory_total_bytes": mem_total,
        "disk_used_bytes": used,
        "disk_total_bytes": s("node_filesystem_size_bytes", root),
        "network_rx_bytes_per_second": (
            f"sum by (job, instance) (rate({s('node_network_receive_bytes_total', physical)}{w}))"
        ),
        "network_tx_bytes_per_second": (
            f"sum by (job, instance) (rate({s('node_network_transmit_bytes_total', physical)}{w}))"
        ),
        "temperature_celsius": f"{hottest_hwmon} or {zones}",
        "boot_time": s("node_boot_time_seconds"),
        # No swap at all (SwapTotal 0) is no figure, not 0 %.
        "swap_percent": (
            f"100 * (1 - {s('node_memory_SwapFree_bytes')}"
            f" / ({s('node_memory_SwapTotal_bytes')} > 0))"
        ),
        # Debian's apt_info collector writes one gauge per origin and architecture.
        "updates_pending": f"sum by (job, instance) ({s('apt_upgrades_pending')})",
        "reboot_required": s("node_reboot_required"),
        ROOT_FREE: s("node_filesystem_avail_bytes", root),
    }
    # One instance scraped by two jobs is the same exporter twice: keep one figure.
    return {field: f"max by (instance) ({expr})" for field, expr in per_job.items()}


def up_query() -> str:
    """`up` of every target in a job that has node_exporter targets, by instance."""
    return (
        "max by (instance) (up and on (job) group by (job)"
        " (node_uname_info or node_memory_MemTotal_bytes))"
    )


def _tagged(tag: str, expr: str) -> str:
    """The expression with the label hm=tag on every series."""
    return f'label_replace({expr}, "{TAG}", {promql_string(tag)}, "", "")'


def batch(parts: Mapping[str, str]) -> str:
    """One query answering every part, each series tagged with its part's name."""
    return " or ".join(_tagged(tag, expr) for tag, expr in parts.items())


RATE_FIELDS = (
    "cpu_percent",
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
)
"""The fields computed with rate() over counters: most of a poll's work on the server."""
POLL_BATCHES: tuple[tuple[str, ...], ...] = (
    (UP_TAG, "boot_time", "load_1m", "load_5m", "load_15m"),
    ("updates_pending", "reboot_required", *RATE_FIELDS),
    (
        "memory_percent",
        "memory_used_bytes",
        "memory_total_bytes",
        "swap_percent",
        "temperature_celsius",
    ),
    ("disk_percent", "disk_used_bytes", "disk_total_bytes", ROOT_FREE),
)
"""How a poll's parts are grouped into requests, sent at once: four, by family.

The server evaluates them side by side. For 200 nodes on a quiet machine a poll took 134 ms
(Prometheus) and 184 ms (VictoriaMetrics) of wall time and 38 and 28 ms of client CPU, against
259 and 268 ms as one query (`benchmarks/prometheus_scale.py`, README).
"""


def poll_queries(
    window: int,
    instances: Collection[str] | None = None,
    batches: Sequence[Sequence[str]] = POLL_BATCHES,
) -> list[str]:
    """The instant queries of one poll: one per batch, whatever the number of nodes."""
    parts = {UP_TAG: up_query(), **field_queries(window)}
    queries = [batch({tag: parts[tag] for tag in group}) for group in batches]
    if instances is not None and len(instances) <= SMALL_SELECTION:
        wanted = "|".join(re.escape(i) for i in sorted(instances)) or "(?!)"
        keep = f" and on (instance) group by (instance) (up{{instance=~{promql_string(wanted)}}})"
        queries = [f"({q}){keep}" for q in queries]
    return queries


def history_stat_queries(
    window: int, step: int, instance: str, fields: Sequence[str]
) -> dict[str, str]:
    """avg, min, max and count over the hour ending at the evaluation time, per field.

    Each is a subquery of the field's expression at step seconds: the figure the integration would
    have polled at that interval, aggregated as the store's hourly rollup does.
    """
    exprs = field_queries(window, instance)
    out: dict[str, str] = {}
    for field in fields:
        inner = f"({exprs[field]})[1h:{int(step)}s]"
        for stat in STATS:
            out[f"{field}:{stat}"] = f"{stat}_over_time({inner})"
    return out


def discovery_query() -> str:
    """The one query of discovery: host names, OS, version, node series, `up`, scrape intervals."""
    node_jobs = "group by (job) (node_uname_info or node_memory_MemTotal_bytes)"
    return batch(
        {
            "uname": (
                "group by (job, instance, nodename, sysname, release) (node_uname_info)"
            ),
            "os": "group by (job, instance, pretty_name, name, version) (node_os_info)",
            "build": "group by (job, instance, version) (node_exporter_build_info)",
            "node": "group by (job, instance) (node_memory_MemTotal_bytes)",
            "up": f"max by (job, instance) (up and on (job) {node_jobs})",
            # Seconds from the first sample of the last 5 minutes to the last, per interval
            # between them: right for a target that is minutes old as for one that is years old.
            "interval": (
                "max by (job, instance) ((timestamp(up) - min_over_time(timestamp(up)[5m:1s]))"
                f" / (count_over_time(up[5m]) - 1 > 0) and on (job) {node_jobs})"
            ),
        }
    )
