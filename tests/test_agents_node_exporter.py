"""node_exporter: the targeted scanner, the Sample it builds, and the client against HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import reduce
import gzip
import itertools
import math
from operator import add
from pathlib import Path
import random
import tracemalloc
import zlib

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.agents import node_exporter
from custom_components.homelab_metrics.agents.base import (
    MAX_PAYLOAD_BYTES,
    AgentConfig,
    AgentInfo,
    CannotConnect,
    InterfaceTraffic,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.agents.node_exporter import (
    MAX_DEVICES_READ,
    MAX_ESCAPES,
    MAX_LABELS,
    MAX_LINE_BYTES,
    MAX_MOUNTS_READ,
    MAX_SERIES,
    MAX_SERIES_BYTES,
    SLICE_BYTES,
    STEP_BYTES,
    NodeExporterClient,
    async_parse_metrics,
    build_info,
    build_sample,
    label_text,
    parse_line,
    parse_lines,
    parse_metrics,
    wanted_lines,
)
from custom_components.homelab_metrics.agents.readings import (
    is_physical,
    is_real_filesystem,
    plausible,
)

from .agent_mocks import (
    NODE_EXPORTER_CONTENT_TYPE,
    hung_agent,
    mock_node_exporter,
    mock_unauthorized,
    mock_unreachable,
)
from .fake_server import basic_auth, probe_loop_steps, serve

FIXTURES = Path(__file__).parent / "fixtures" / "node_exporter"
UPSTREAM = (
    Path(__file__).parents[2]
    / "shared"
    / "fixtures"
    / "node_exporter_upstream_e2e_output.txt"
)
PAYLOADS = sorted(FIXTURES.glob("*.txt")) + ([UPSTREAM] if UPSTREAM.exists() else [])

NOW = 1_764_000_000
"""2025-11-24T16:00:00Z: the poller's clock in tests that need a plausible one."""

type Key = tuple[str, tuple[tuple[str, str], ...]]


def reference(text: str) -> dict[Key, float]:
    """Every sample prometheus_client's full parser finds, keyed by name and sorted labels."""
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def series(ref: dict[Key, float], name: str) -> list[tuple[dict[str, str], float]]:
    """Labels and value of every sample of one series name, in payload order."""
    return [(dict(labels), v) for (n, labels), v in ref.items() if n == name]


def fixture(name: str) -> str:
    """A node_exporter payload from tests/fixtures/node_exporter."""
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_scanner_matches_prometheus_client(path: Path) -> None:
    """Differential: every series the scanner keeps has prometheus_client's exact value."""
    text = path.read_text()
    ref = reference(text)
    snap = parse_metrics(text)
    assert (
        parse_lines(wanted_lines(text.encode())) == snap
    )  # the two steps, as benchmarked

    cpu = [
        (labels, v)
        for labels, v in series(ref, "node_cpu_seconds_total")
        if math.isfinite(v)
    ]
    if cpu:
        # Added one by one in payload order (sum() compensates since 3.12), so identical floats.
        assert snap.cpu_total == reduce(add, (v for _, v in cpu), 0.0)
        assert snap.cpu_idle == reduce(
            add, (v for labels, v in cpu if labels["mode"] in ("idle", "iowait")), 0.0
        )
    else:
        assert snap.cpu_total is None

    for name in (
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_boot_time_seconds",
        "node_time_seconds",
    ):
        expected = series(ref, name)
        if expected:
            assert snap.gauges[name] == expected[0][1]
        else:
            assert name not in snap.gauges

    # "/" and every real filesystem's mount (none of the payloads reaches the caps).
    mounts: dict[tuple[str, str], dict[str, float]] = {}
    fstypes: dict[tuple[str, str], str] = {}
    for stat in ("size", "free", "avail"):
        for labels, v in series(ref, f"node_filesystem_{stat}_bytes"):
            key = (labels["device"], labels["mountpoint"])
            if key[1] == "/" or is_real_filesystem(labels["fstype"], key[1]):
                mounts.setdefault(key, {})[stat] = v
                fstypes[key] = labels["fstype"]
    assert snap.filesystems == mounts
    assert snap.fstypes == fstypes
    assert snap.root_fs == next(
        (v for (_, mp), v in mounts.items() if mp == "/" and len(v) == 3), {}
    )

    updates = [v for _, v in series(ref, "apt_upgrades_pending")]
    assert snap.updates == (reduce(add, updates) if updates else None)
    for key, name in (
        ("uname", "node_uname_info"),
        ("os", "node_os_info"),
        ("build", "node_exporter_build_info"),
    ):
        info = series(ref, name)
        assert snap.info.get(key) == (info[0][0] if info else None)
    for name in (
        "node_memory_SwapTotal_bytes",
        "node_memory_SwapFree_bytes",
        "node_reboot_required",
    ):
        expected = series(ref, name)
        assert snap.gauges.get(name) == (expected[0][1] if expected else None)

    for attr, name in (
        ("rx", "node_network_receive_bytes_total"),
        ("tx", "node_network_transmit_bytes_total"),
    ):
        assert getattr(snap, attr) == {
            labels["device"]: v
            for labels, v in series(ref, name)
            if is_physical(labels["device"])
        }
    hwmon = {
        (labels["chip"], labels["sensor"]): v
        for labels, v in series(ref, "node_hwmon_temp_celsius")
    }
    assert snap.hwmon.keys() == hwmon.keys()
    for key, value in hwmon.items():
        assert snap.hwmon[key] == value or (
            math.isnan(value) and math.isnan(snap.hwmon[key])
        )
    assert snap.chip_names == {
        labels["chip"]: labels["chip_name"]
        for labels, _ in series(ref, "node_hwmon_chip_names")
    }
    assert snap.sensor_labels == {
        (labels["chip"], labels["sensor"]): labels["label"]
        for labels, _ in series(ref, "node_hwmon_sensor_label")
    }
    assert snap.thermal_zones == {
        (labels["type"], labels["zone"]): v
        for labels, v in series(ref, "node_thermal_zone_temp")
    }


def test_sample_from_two_real_scrapes() -> None:
    """Rates from the second scrape; percentages as df and free(1) compute them."""
    text_1, text_2 = fixture("metrics_1.txt"), fixture("metrics_2.txt")
    first, second = parse_metrics(text_1), parse_metrics(text_2)
    # The poller's clock reads what the exporter's did (boot times are checked against it).
    start = build_sample(first, None, timestamp=int(first.gauges["node_time_seconds"]))
    assert start.cpu_percent is None
    assert start.network_rx_bytes_per_second is None
    assert start.network_tx_bytes_per_second is None
    assert start.memory_percent is not None
    ref, ref_before = reference(text_2), reference(text_1)
    elapsed = ref[("node_time_seconds", ())] - ref_before[("node_time_seconds", ())]
    assert 1 < elapsed < 60
    # The poller's measure includes network delays; the exporter's own clock, which agrees
    # within a factor of two, times the counters.
    now = int(second.gauges["node_time_seconds"])
    sample = build_sample(second, first, timestamp=now, elapsed=elapsed * 1.9)
    total = ref[("node_memory_MemTotal_bytes", ())]
    avail = ref[("node_memory_MemAvailable_bytes", ())]
    assert sample.memory_percent == pytest.approx(100 * (1 - avail / total))
    assert sample.memory_used_bytes == int(total - avail)
    assert sample.memory_total_bytes == int(total)
    root = {
        name: v
        for (name, labels), v in ref.items()
        if dict(labels).get("mountpoint") == "/"
    }
    size, free, avail_fs = (
        root[f"node_filesystem_{x}_bytes"] for x in ("size", "free", "avail")
    )
    assert sample.disk_percent == pytest.approx(
        100 * (size - free) / (size - free + avail_fs)
    )
    assert sample.disk_used_bytes == int(size - free)
    assert sample.disk_total_bytes == int(size)

    def cpu_sums(r: dict[Key, float]) -> tuple[float, float]:
        cpu = series(r, "node_cpu_seconds_total")
        return sum(v for _, v in cpu), sum(
            v for labels, v in cpu if labels["mode"] in ("idle", "iowait")
        )

    (all_2, idle_2), (all_1, idle_1) = cpu_sums(ref), cpu_sums(ref_before)
    assert sample.cpu_percent == pytest.approx(
        100 * (1 - (idle_2 - idle_1) / (all_2 - all_1))
    )
    assert 0 <= sample.cpu_percent <= 100

    def physical(r: dict[Key, float], name: str) -> float:
        return sum(v for labels, v in series(r, name) if is_physical(labels["device"]))

    for field, name in (
        ("network_rx_bytes_per_second", "node_network_receive_bytes_total"),
        ("network_tx_bytes_per_second", "node_network_transmit_bytes_total"),
    ):
        assert getattr(sample, field) == pytest.approx(
            (physical(ref, name) - physical(ref_before, name)) / elapsed
        )
    assert sample.network_rx_bytes_per_second > 0
    assert sample.load_1m == ref[("node_load1", ())]
    assert sample.load_5m == ref[("node_load5", ())]
    assert sample.load_15m == ref[("node_load15", ())]
    assert sample.boot_time == int(ref[("node_boot_time_seconds", ())])
    assert sample.timestamp == now
    assert sample.temperature_celsius is None  # a VM has no sensors: missing, never 0


def test_rate_time_from_the_poller_without_node_time_seconds() -> None:
    """Without node_time_seconds in both scrapes the poller's elapsed time is used."""
    before = parse_metrics(
        'node_network_receive_bytes_total{device="eth0"} 1000\nnode_time_seconds 50\n'
    )
    after = parse_metrics('node_network_receive_bytes_total{device="eth0"} 7000\n')
    assert (
        build_sample(after, before, timestamp=0, elapsed=3).network_rx_bytes_per_second
        == 2000
    )
    assert build_sample(after, before, timestamp=0).network_rx_bytes_per_second is None
    assert build_sample(after, before, timestamp=0, elapsed=0).network_rx_bytes_per_second is None  # fmt: skip


@pytest.mark.parametrize(
    ("exporter_seconds", "elapsed", "rate"),
    [
        (0.001, 60, 1000 / 60),  # 1,000,000 B/s before
        (59.5, 60, 1000 / 59.5),  # the exporter's clock, without our network delay
        (30, 60, 1000 / 30),  # a factor of two still agrees
        (29.9, 60, 1000 / 60),
        (120, 60, 1000 / 120),
        (120.1, 60, 1000 / 60),
        (-60, 60, 1000 / 60),  # the exporter's clock went back
        (60, -60, None),  # ours went back: no time, no rate
    ],
)
def test_rate_time_from_the_exporter_only_when_both_clocks_agree(
    exporter_seconds: float, elapsed: float, rate: float | None
) -> None:
    """node_time_seconds times the rate only within a factor of two of the poller's time."""
    before = parse_metrics(
        'node_network_receive_bytes_total{device="eth0"} 1000\n'
        "node_time_seconds 1764000000\n"
    )
    after = parse_metrics(
        'node_network_receive_bytes_total{device="eth0"} 2000\n'
        f"node_time_seconds {1764000000 + exporter_seconds}\n"
    )
    sample = build_sample(after, before, timestamp=NOW, elapsed=elapsed)
    assert sample.network_rx_bytes_per_second == (
        pytest.approx(rate) if rate is not None else None
    )


def test_cpu_busy_percent_and_counter_reset() -> None:
    """Busy % from deltas summed over CPUs; a counter going back (reboot) gives no figure."""
    before = parse_metrics(
        'node_cpu_seconds_total{cpu="0",mode="idle"} 100\n'
        'node_cpu_seconds_total{cpu="0",mode="user"} 50\n'
        'node_cpu_seconds_total{cpu="1",mode="iowait"} 10\n'
        'node_cpu_seconds_total{cpu="1",mode="system"} 40\n'
        'node_network_receive_bytes_total{device="eth0"} 1000\n'
        'node_network_transmit_bytes_total{device="eth0"} 1000\n'
    )
    after = parse_metrics(
        'node_cpu_seconds_total{cpu="0",mode="idle"} 130\n'
        'node_cpu_seconds_total{cpu="0",mode="user"} 60\n'
        'node_cpu_seconds_total{cpu="1",mode="iowait"} 20\n'
        'node_cpu_seconds_total{cpu="1",mode="system"} 60\n'
        'node_network_receive_bytes_total{device="eth0"} 500\n'
        'node_network_transmit_bytes_total{device="eth0"} 3000\n'
    )
    sample = build_sample(after, before, timestamp=0, elapsed=10)
    # Δidle+Δiowait = 30+10 = 40 of Δall = 30+10+10+20 = 70.
    assert sample.cpu_percent == pytest.approx(100 * (1 - 40 / 70))
    assert sample.network_rx_bytes_per_second is None  # eth0 rx went back
    assert sample.network_tx_bytes_per_second == 200
    rebooted = build_sample(before, after, timestamp=0, elapsed=10)
    assert rebooted.cpu_percent is None
    assert rebooted.network_tx_bytes_per_second is None
    # A scrape whose cpu collector failed has no CPU figure, not 0 and not 100.
    no_cpu = parse_metrics("node_load1 0.1\n")
    assert build_sample(no_cpu, before, timestamp=0, elapsed=10).cpu_percent is None
    assert build_sample(before, no_cpu, timestamp=0, elapsed=10).cpu_percent is None


def test_which_interfaces_count() -> None:
    """A real server's bridges, bonds and containers are left out of the rates."""
    text = fixture("amd_server.txt")
    before = parse_metrics(text)
    # Two seconds later every counter has grown by the same 2000 bytes.
    after_text = "".join(
        f"{line.rsplit(' ', 1)[0]} {float(line.rsplit(' ', 1)[1]) + 2000}\n"
        if line.startswith("node_network_")
        else line + "\n"
        for line in text.splitlines()
    )
    after = parse_metrics(after_text)
    sample = build_sample(after, before, timestamp=0, elapsed=1e9)
    physical = [d for d in after.rx if is_physical(d)]
    assert sorted(physical) == ["enp5s0", "enp6s0"]
    node_time_delta = (
        after.gauges["node_time_seconds"] - before.gauges["node_time_seconds"]
    )
    assert (
        node_time_delta == 0
    )  # the exporter's clock did not move: the poller's is used
    assert sample.network_rx_bytes_per_second == pytest.approx(2 * 2000 / 1e9)


def test_temperatures() -> None:
    """The hottest CPU sensor (not the NVMe), Tdie over an offset Tctl, a Pi's zone, none on a VM."""
    hwmon = build_sample(parse_metrics(fixture("hwmon.txt")), None, timestamp=0)
    assert hwmon.temperature_celsius == 61.5  # coretemp's package; NVMe's 70.85 ignored
    assert hwmon.memory_percent == pytest.approx(75.0)
    assert hwmon.memory_used_bytes == 12_000_000_000

    amd = build_sample(parse_metrics(fixture("amd_server.txt")), None, timestamp=0)
    assert amd.temperature_celsius == 51.25  # Tccd1; Tctl's 74.875 carries an offset
    tctl_only = parse_metrics(
        'node_hwmon_chip_names{chip="pci0000:00_0000:00:18_3",chip_name="k10temp"} 1\n'
        'node_hwmon_sensor_label{chip="pci0000:00_0000:00:18_3",label="Tctl",sensor="temp1"} 1\n'
        'node_hwmon_temp_celsius{chip="pci0000:00_0000:00:18_3",sensor="temp1"} 44.5\n'
    )
    assert build_sample(tctl_only, None, timestamp=0).temperature_celsius == 44.5

    pi = build_sample(parse_metrics(fixture("raspberry_pi.txt")), None, timestamp=0)
    assert pi.temperature_celsius == pytest.approx(48.686)
    zones_only = parse_metrics(
        'node_thermal_zone_temp{type="acpitz",zone="0"} 27.8\n'
        'node_thermal_zone_temp{type="x86_pkg_temp",zone="1"} 62\n'
        'node_thermal_zone_temp{type="x86_pkg_temp",zone="2"} 64.5\n'
    )
    assert build_sample(zones_only, None, timestamp=0).temperature_celsius == 64.5
    board_only = parse_metrics('node_thermal_zone_temp{type="acpitz",zone="0"} 27.8\n')
    assert build_sample(board_only, None, timestamp=0).temperature_celsius is None
    broken = parse_metrics(
        'node_hwmon_chip_names{chip="c",chip_name="coretemp"} 1\n'
        'node_hwmon_temp_celsius{chip="c",sensor="temp1"} NaN\n'
    )
    assert build_sample(broken, None, timestamp=0).temperature_celsius is None

    if UPSTREAM.exists():
        ref = reference(UPSTREAM.read_text())
        chips = {
            labels["chip"]
            for labels, _ in series(ref, "node_hwmon_chip_names")
            if labels["chip_name"] == "coretemp"
        }
        expected = max(
            v
            for labels, v in series(ref, "node_hwmon_temp_celsius")
            if labels["chip"] in chips
        )
        upstream = build_sample(parse_metrics(UPSTREAM.read_text()), None, timestamp=0)
        assert upstream.temperature_celsius == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n# only comments\n",
        "<html><body>Node Exporter</body></html>\n",
        "node_load1\n",
        "node_load1 not-a-number\n",
        'node_cpu_seconds_total{cpu="0",mode="idle"\n',
        'node_cpu_seconds_total{cpu="0,mode="idle"} 1\n',
        'node_cpu_seconds_total{cpu="0",mode="idle"}\n',
        'node_filesystem_size_bytes{mountpoint="/"\n',
        'node_filesystem_size_bytes{mountpoint="/",device="x"} 5',
        "node_memory_MemTotal_bytes 8e9",
    ],
)
def test_malformed_lines_are_skipped(text: str) -> None:
    """Garbage and cut-off lines never raise; they just yield nothing."""
    snap = parse_metrics(text)
    assert snap.gauges == {}
    assert snap.root_fs == {}
    assert snap.cpu_total is None
    sample = build_sample(snap, snap, timestamp=5, elapsed=1)
    assert sample.memory_percent is None
    assert sample.cpu_percent is None
    assert sample.disk_percent is None


def test_scanner_details() -> None:
    """Escapes, label order, exponents, NaN, timestamps, CRLF and a truncated last line."""
    parsed = parse_line(b'x{a="q\\"uote", b = "back\\\\slash\\n",} 1 1700000000000\r')
    assert parsed is not None
    name, labels, value = parsed
    assert (name, value) == (b"x", 1.0)
    assert {k: label_text(v) for k, v in labels.items()} == {
        b"a": 'q"uote',
        b"b": "back\\slash\n",
    }
    text = (
        'node_filesystem_avail_bytes{mountpoint="/",device="/dev/sda1"} 1.5e+09 1700000000000\r\n'
        'node_filesystem_size_bytes{device="/dev/sda1",mountpoint="/"} 4E9\r\n'
        'node_filesystem_free_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 2e9\r\n'
        'node_filesystem_avail_bytes{device="/dev/sdb",mountpoint="/srv"} 7\r\n'
        'node_network_receive_bytes_total{device="eth\\"0"} 1\r\n'
        "node_load1 NaN\r\n"
        "node_load5 +Inf\n"
        "node_load15 0.5\n"
        "node_boot_time_seconds -Inf\n"
        "node_memory_MemTotal_bytes 8e9\n"
        "node_memory_MemAvailable_bytes 2.5e"
    )
    snap = parse_metrics(text)
    assert snap.root_fs == {"avail": 1.5e9, "size": 4e9, "free": 2e9}
    assert snap.rx == {'eth"0': 1}
    assert math.isnan(snap.gauges["node_load1"])
    assert "node_memory_MemAvailable_bytes" not in snap.gauges  # cut off: dropped
    sample = build_sample(snap, None, timestamp=0)
    assert sample.load_1m is None
    assert sample.load_5m is None
    assert sample.load_15m == 0.5
    assert sample.boot_time is None
    assert sample.memory_total_bytes == 8_000_000_000
    assert sample.memory_percent is None
    # used = 4e9 - 2e9, avail 1.5e9: df's Use% = 2 / 3.5, not 1 - avail/size.
    assert sample.disk_percent == pytest.approx(100 * 2 / 3.5)
    # A value cut in the middle ("0.5" → "0.") is dropped, never misread.
    cut = parse_metrics("node_load1 0.25\nnode_load15 0.")
    assert cut.gauges == {"node_load1": 0.25}


@pytest.mark.parametrize(
    "raw",
    [
        "plain",
        "",
        'q\\"uote',
        "back\\\\slash",
        "new\\nline",
        "\\\\n",  # an escaped backslash, then a plain n
        "\\\\\\n",  # an escaped backslash, then an escaped newline
        '\\\\\\"',
        "unknown \\t escape",
        "\\\\" * 8,  # as many backslashes as a line may hold
        "ünïcödé",
    ],
)
def test_label_escapes_as_prometheus_client(raw: str) -> None:
    """Label values are unescaped exactly as the reference parser does."""
    line = f'node_hwmon_sensor_label{{chip="c",label="{raw}",sensor="temp1"}} 1\n'
    expected = series(reference(line), "node_hwmon_sensor_label")[0][0]["label"]
    assert parse_metrics(line).sensor_labels == {("c", "temp1"): expected}


def test_wanted_line_longer_than_the_cap_is_skipped() -> None:
    """A line over MAX_LINE_BYTES is not read (it cost seconds of quadratic scanning before).

    Legit lines are under 300 bytes; a path label may reach 4 KiB and is still read.
    """
    long_path = "/" + "d" * 4094
    escapes = "\\\\" * (256 * 1024)  # 512 KiB of escaped backslashes
    text = (
        f'node_hwmon_sensor_label{{chip="c",label="{escapes}",sensor="temp1"}} 1\n'
        f'node_hwmon_sensor_label{{chip="c",label="{"x" * MAX_LINE_BYTES}",sensor="temp2"}} 1\n'
        f'node_filesystem_size_bytes{{device="{long_path}",mountpoint="/"}} 100\n'
        f'node_filesystem_free_bytes{{device="{long_path}",mountpoint="/"}} 50\n'
        f'node_filesystem_avail_bytes{{device="{long_path}",mountpoint="/"}} 40\n'
        'node_hwmon_sensor_label{chip="c",label="Core 0",sensor="temp3"} 1\n'
    )
    snap = parse_metrics(text)
    assert snap.sensor_labels == {("c", "temp3"): "Core 0"}
    assert snap.root_fs == {"size": 100, "free": 50, "avail": 40}


def test_line_bounds() -> None:
    """Escapes, labels and digits per line are bounded; a line past a bound is not read."""
    line = 'node_hwmon_sensor_label{{chip="c",label="{}",sensor="t"{}}} {}'
    escaped = "\\\\" * (MAX_ESCAPES // 2)
    assert parse_line(line.format(escaped, "", "1").encode()) is not None
    assert parse_line(line.format(escaped + "\\n", "", "1").encode()) is None
    extra = "".join(f',l{i}="v"' for i in range(MAX_LABELS - 3))
    assert parse_line(line.format("", extra, "1").encode()) is not None
    assert parse_line(line.format("", extra + ',x="v"', "1").encode()) is None
    number = "1" * 64
    assert parse_line(line.format("", "", number).encode()) == (
        b"node_hwmon_sensor_label",
        {b"chip": b"c", b"label": b"", b"sensor": b"t"},
        float(number),
    )
    assert parse_line(line.format("", "", number + "1").encode()) is None
    assert parse_line(line.format("", "", "0x10").encode()) is None


def test_scan_across_slices() -> None:
    """Wanted lines are found wherever the scan's slices end, around lines of any length."""
    rng = random.Random(8)
    parts, expected = [], {}
    for i in range(300):
        filler = "#" + "x" * rng.choice([0, 10, 1000, SLICE_BYTES - 40, 70_000])
        parts += [filler, f'node_network_receive_bytes_total{{device="eth{i}"}} {i}']
        expected[f"eth{i}"] = i
    body = "\n".join(parts) + "\n"
    assert len(body) > 20 * SLICE_BYTES
    assert parse_metrics(body).rx == expected
    assert parse_metrics(body[:-1]).rx == {
        k: v for k, v in expected.items() if k != "eth299"
    }


def test_too_many_wanted_series_are_refused() -> None:
    """More lines of the series we read than any server sends: InvalidResponse, bounded work."""
    line = 'node_cpu_seconds_total{cpu="0",mode="idle"} 1\n'
    snap = parse_metrics(line * MAX_SERIES + "node_unwanted_series 1\n" * 1000)
    assert snap.cpu_total == MAX_SERIES
    with pytest.raises(InvalidResponse, match="more than"):
        parse_metrics(line * (MAX_SERIES + 1))
    long_line = f'node_hwmon_sensor_label{{label="{"x" * 1000}"}} 1\n'
    lines = MAX_SERIES_BYTES // (len(long_line) - 1)  # counted without their newline
    assert len(parse_metrics(long_line * lines).sensor_labels) == 1
    with pytest.raises(InvalidResponse, match="more than"):
        parse_metrics(long_line * (lines + 1))


@pytest.mark.parametrize(
    ("before", "after", "missing"),
    [
        ("", "node_boot_time_seconds 1e12\n", ["boot_time"]),
        ("", "node_boot_time_seconds 1e300\n", ["boot_time"]),
        (  # available above the total: -400 % before
            "",
            "node_memory_MemTotal_bytes 8e9\nnode_memory_MemAvailable_bytes 40e9\n",
            ["memory_percent", "memory_used_bytes"],
        ),
        (  # a negative total: 150 % before
            "",
            "node_memory_MemTotal_bytes -8e9\nnode_memory_MemAvailable_bytes 4e9\n",
            ["memory_percent", "memory_used_bytes", "memory_total_bytes"],
        ),
        (  # OverflowError (int of an infinite difference) before
            "",
            "node_memory_MemTotal_bytes 1e308\nnode_memory_MemAvailable_bytes -1e308\n",
            ["memory_percent", "memory_used_bytes", "memory_total_bytes"],
        ),
        (
            "",
            'node_filesystem_size_bytes{device="d",mountpoint="/"} 1e300\n'
            'node_filesystem_free_bytes{device="d",mountpoint="/"} 1e299\n'
            'node_filesystem_avail_bytes{device="d",mountpoint="/"} 1e299\n',
            ["disk_percent", "disk_used_bytes", "disk_total_bytes"],
        ),
        (
            "",
            'node_filesystem_size_bytes{device="d",mountpoint="/"} 100\n'
            'node_filesystem_free_bytes{device="d",mountpoint="/"} 150\n'
            'node_filesystem_avail_bytes{device="d",mountpoint="/"} 140\n',
            ["disk_percent", "disk_used_bytes"],
        ),
        (  # user time went back by more than idle grew: clamped to 0 % before
            'node_cpu_seconds_total{cpu="0",mode="idle"} 100\n'
            'node_cpu_seconds_total{cpu="0",mode="user"} 50\n',
            'node_cpu_seconds_total{cpu="0",mode="idle"} 130\n'
            'node_cpu_seconds_total{cpu="0",mode="user"} 30\n',
            ["cpu_percent"],
        ),
        (
            "",
            'node_hwmon_chip_names{chip="c",chip_name="coretemp"} 1\n'
            'node_hwmon_temp_celsius{chip="c",sensor="temp1"} 127\n',
            ["temperature_celsius"],
        ),
        ("node_load1 1\n", "node_load1 -1\nnode_load5 +Inf\n", ["load_1m", "load_5m"]),
    ],
)
def test_implausible_figures_are_missing(
    before: str, after: str, missing: list[str]
) -> None:
    """A figure that cannot be true is missing, never clamped, and none raises."""
    base = (
        "node_memory_MemTotal_bytes 8e9\n"
        "node_memory_MemAvailable_bytes 2e9\n"
        "node_load1 0.5\n"
        "node_load5 0.5\n"
    )
    sample = build_sample(
        parse_metrics(base + after),
        parse_metrics(base + before),
        timestamp=NOW,
        elapsed=60,
    )
    for field in missing:
        assert getattr(sample, field) is None, field
    assert sample == plausible(sample)
    if "load_1m" not in missing:
        assert sample.load_1m == 0.5  # the others stay
    if "memory_total_bytes" not in missing:
        assert sample.memory_total_bytes is not None


def test_missing_root_mountpoint() -> None:
    """No filesystem at "/" (collector off, or only other mounts): no disk figures."""
    snap = parse_metrics(
        'node_filesystem_size_bytes{device="/dev/sdb",mountpoint="/srv"} 100\n'
        'node_filesystem_free_bytes{device="/dev/sdb",mountpoint="/srv"} 50\n'
        'node_filesystem_avail_bytes{device="/dev/sdb",mountpoint="/srv"} 40\n'
        'node_filesystem_size_bytes{device="/dev/sda",mountpoint="/"} 100\n'
    )
    sample = build_sample(snap, None, timestamp=0)
    assert sample.disk_percent is None
    assert sample.disk_used_bytes is None
    assert sample.disk_total_bytes is None


def test_every_real_filesystem_of_a_nas() -> None:
    """Each real mount once, "/" first; tmpfs, NFS, Docker and a bind mount are left out."""
    sample = build_sample(parse_metrics(fixture("nas.txt")), None, timestamp=NOW)
    ref = reference(fixture("nas.txt"))

    def figures(mountpoint: str) -> tuple[int, int, float]:
        size, free, avail = (
            ref[(f"node_filesystem_{stat}_bytes", labels)]
            for stat in ("size", "free", "avail")
            for (name, labels) in ref
            if name == f"node_filesystem_{stat}_bytes"
            and dict(labels)["mountpoint"] == mountpoint
        )
        return int(size - free), int(avail), 100 * (size - free) / (size - free + avail)

    assert [fs.mountpoint for fs in sample.filesystems] == [
        "/",
        "/boot/efi",
        "/media/usb backup",
        "/srv/disk1",
        "/srv/disk2",
        "/srv/pool",  # mergerfs: the pool people watch
        "/tank",
        "/tank/media",  # also bind-mounted at /export/media: listed once
        "/tank/photos",
    ]
    for fs in sample.filesystems:
        used, free, percent = figures(fs.mountpoint)
        assert (fs.used_bytes, fs.free_bytes) == (used, free)
        assert fs.percent == pytest.approx(percent)
    # The root filesystem is still the history's disk figure, and the same as its entry.
    assert sample.disk_percent == sample.filesystems[0].percent
    assert sample.disk_used_bytes == sample.filesystems[0].used_bytes


def test_filesystems_of_the_captured_scrapes() -> None:
    """Debian's node_exporter on the VM lists "/" only; the AMD box's docker bind is left out."""
    vm = build_sample(parse_metrics(fixture("metrics_1.txt")), None, timestamp=NOW)
    assert [fs.mountpoint for fs in vm.filesystems] == ["/"]
    assert vm.filesystems[0].percent == vm.disk_percent
    amd = build_sample(parse_metrics(fixture("amd_server.txt")), None, timestamp=NOW)
    assert [fs.mountpoint for fs in amd.filesystems] == ["/", '/srv/media "archive"']
    assert (
        build_sample(parse_metrics("node_load1 1\n"), None, timestamp=NOW).filesystems
        == ()
    )


def test_mounts_and_devices_read_are_capped() -> None:
    """Past MAX_MOUNTS_READ real mounts and MAX_DEVICES_READ physical devices, no more is read.

    Choosing among the mounts and computing each device's rates happen in one step of the event
    loop: the caps bound it (benchmarks/parse.py). "/" is read wherever it comes.
    """
    lines = [
        f'node_filesystem_{stat}_bytes{{device="/dev/d{i}",fstype="ext4",'
        f'mountpoint="/srv/{i:04}"}} 100\n'
        for i in range(MAX_MOUNTS_READ + 10)
        for stat in ("size", "free", "avail")
    ]
    lines += [
        f'node_filesystem_size_bytes{{device="tmpfs",fstype="tmpfs",mountpoint="/run/{i}"}} 1\n'
        for i in range(50)
    ]
    lines += [
        f'node_filesystem_{stat}_bytes{{device="/dev/root",fstype="ext4",mountpoint="/"}} 100\n'
        for stat in ("size", "free", "avail")
    ]
    lines += [
        f'node_network_{way}_bytes_total{{device="{name}{i}"}} {i}\n'
        for i in range(MAX_DEVICES_READ + 10)
        for name in ("veth", "eth")
        for way in ("receive", "transmit")
    ]
    snap = parse_metrics("".join(lines))
    assert len(snap.filesystems) == MAX_MOUNTS_READ + 1
    assert ("/dev/root", "/") in snap.filesystems
    assert snap.root_fs == {"size": 100, "free": 100, "avail": 100}
    assert list(snap.rx) == [f"eth{i}" for i in range(MAX_DEVICES_READ)]
    assert list(snap.tx) == list(snap.rx)


def test_swap() -> None:
    """Swap in use; none at all (SwapTotal 0, as on the VM) is no figure rather than 0 %."""
    nas = build_sample(parse_metrics(fixture("nas.txt")), None, timestamp=NOW)
    assert nas.swap_percent == pytest.approx(25.0)  # 6 GB of 8 GB free
    vm = build_sample(parse_metrics(fixture("metrics_1.txt")), None, timestamp=NOW)
    assert vm.swap_percent is None
    for text in (
        "node_memory_SwapTotal_bytes 8e9\n",
        "node_memory_SwapFree_bytes 8e9\n",
        "node_memory_SwapTotal_bytes 8e9\nnode_memory_SwapFree_bytes 9e9\n",
        "node_memory_SwapTotal_bytes NaN\nnode_memory_SwapFree_bytes 1\n",
    ):
        assert (
            build_sample(parse_metrics(text), None, timestamp=NOW).swap_percent is None
        )
    full = "node_memory_SwapTotal_bytes 8e9\nnode_memory_SwapFree_bytes 0\n"
    assert build_sample(parse_metrics(full), None, timestamp=NOW).swap_percent == 100


def test_traffic_per_physical_interface() -> None:
    """Each physical interface's rates between two scrapes; bridges, veth, VPNs left out."""
    text = fixture("nas.txt")
    before = parse_metrics(text)
    after = parse_metrics(
        text.replace(
            'receive_bytes_total{device="enp3s0"} 8.1e+11',
            'receive_bytes_total{device="enp3s0"} 8.1000006e+11',
        )
        .replace(
            'transmit_bytes_total{device="enp3s0"} 2.3e+12',
            'transmit_bytes_total{device="enp3s0"} 2.3000012e+12',
        )
        .replace("node_time_seconds 1.7640000e+09", "node_time_seconds 1.764000060e+09")
    )
    first = build_sample(before, None, timestamp=NOW)
    assert first.interfaces == (
        InterfaceTraffic(name="enp3s0"),
        InterfaceTraffic(name="enp4s0"),
    )
    sample = build_sample(after, before, timestamp=NOW + 60, elapsed=60)
    assert sample.interfaces == (
        InterfaceTraffic(
            name="enp3s0", rx_bytes_per_second=1000.0, tx_bytes_per_second=20000.0
        ),
        InterfaceTraffic(
            name="enp4s0", rx_bytes_per_second=0.0, tx_bytes_per_second=0.0
        ),
    )
    # The per-interface rates add up to the server's.
    assert sample.network_rx_bytes_per_second == pytest.approx(1000.0)
    assert sample.network_tx_bytes_per_second == pytest.approx(20000.0)


def test_textfile_collectors_real_output() -> None:
    """Debian's apt_info.py as the real package prints it, and as node_exporter serves it.

    metrics_textfile.txt was scraped from node_exporter 1.5 reading the output of
    /usr/share/prometheus-node-exporter-collectors/apt_info.py run in a private mount
    namespace that held /run/reboot-required; apt_info.prom is the same script's output
    without that file.
    """
    served = build_sample(
        parse_metrics(fixture("metrics_textfile.txt")), None, timestamp=NOW
    )
    assert (
        served.updates_pending == 10 + 3 + 6 + 60 + 17 + 45
    )  # summed over origins and arches
    assert served.reboot_required is True
    printed = build_sample(parse_metrics(fixture("apt_info.prom")), None, timestamp=NOW)
    assert printed.updates_pending == 141
    assert printed.reboot_required is False
    # Without the collectors: neither figure, not 0 and not False.
    plain = build_sample(parse_metrics(fixture("metrics_1.txt")), None, timestamp=NOW)
    assert (plain.updates_pending, plain.reboot_required) == (None, None)


@pytest.mark.parametrize(
    ("text", "updates", "reboot"),
    [
        # What apt_info.py prints when nothing is pending.
        (
            'apt_upgrades_pending{origin="",arch=""} 0\nnode_reboot_required 0\n',
            0,
            False,
        ),
        ('apt_upgrades_pending{origin="a",arch="all"} 2.5\n', None, None),
        ('apt_upgrades_pending{origin="a",arch="all"} -3\n', None, None),
        ('apt_upgrades_pending{origin="a",arch="all"} NaN\n', None, None),
        ('apt_upgrades_pending{origin="a",arch="all"} 1e12\n', None, None),
        ("node_reboot_required 2\n", None, None),
        ("node_reboot_required NaN\n", None, None),
        ('node_reboot_required{x="y"} 1\n', None, None),
    ],
)
def test_textfile_figures_that_cannot_be_true(
    text: str, updates: int | None, reboot: bool | None
) -> None:
    """Counts must be whole and plausible, the reboot flag 0 or 1."""
    sample = build_sample(parse_metrics(text), None, timestamp=NOW)
    assert (sample.updates_pending, sample.reboot_required) == (updates, reboot)


def test_agent_info() -> None:
    """Host name, OS and exporter version from the info series of the same scrape."""
    assert build_info(parse_metrics(fixture("metrics_1.txt"))) == AgentInfo(
        hostname="vm",
        agent_version="1.5.0",
        os="Debian GNU/Linux 12 (bookworm)",
        web_ui=False,
    )
    # Before node_os_info (node_exporter < 1.3): the kernel as uname names it.
    amd = build_info(parse_metrics(fixture("amd_server.txt")))
    assert amd == AgentInfo(hostname="tower", os="Linux 6.8.12-4-pve")
    no_pretty = parse_metrics(
        'node_os_info{name="Alpine Linux",version="3.20"} 1\n'
        'node_uname_info{nodename="pi\\nhole"} 1\n'
        'node_exporter_build_info{version="' + "9" * 300 + '"} 1\n'
    )
    # A host name or version that is no name is left out.
    assert build_info(no_pretty) == AgentInfo(os="Alpine Linux 3.20")
    assert build_info(parse_metrics("node_load1 1\n")) == AgentInfo()


class Agent:
    """A tiny HTTP server on 127.0.0.1 that answers like node_exporter (or misbehaves)."""

    def __init__(self) -> None:
        self.body = (FIXTURES / "metrics_1.txt").read_bytes()
        self.content_type = NODE_EXPORTER_CONTENT_TYPE
        self.status = 200
        self.gzip = False
        self.content_encoding: str | None = None
        """Sent as Content-Encoding with the body as it is (already encoded)."""
        self.stream = False
        self.auth: str | None = None
        self.port = 0
        self.seen: list[web.Request] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        if self.auth and request.headers.get("Authorization") != self.auth:
            return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
        body = self.body
        headers = {"Content-Type": self.content_type}
        if self.gzip and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if self.content_encoding is not None:
            headers["Content-Encoding"] = self.content_encoding
        if self.stream:
            # Chunked, without Content-Length: only counting the bytes can catch it.
            response = web.StreamResponse(status=self.status, headers=headers)
            await response.prepare(request)
            for start in range(0, len(body), 1 << 20):
                await response.write(body[start : start + (1 << 20)])
            await response.write_eof()
            return response
        return web.Response(status=self.status, body=body, headers=headers)


@pytest.fixture
async def agent(socket_enabled: None) -> AsyncIterator[Agent]:
    """A fake node_exporter on a free loopback port."""
    state = Agent()
    async with serve(state.handle) as port:
        state.port = port
        yield state


def client_for(
    session: aiohttp.ClientSession, port: int, **kw: object
) -> NodeExporterClient:
    """A client whose clock says 1000, 1060, 1120…"""
    clock = iter(range(1000, 2000, 60))
    return NodeExporterClient(
        session,
        AgentConfig(host="127.0.0.1", port=port, **kw),  # type: ignore[arg-type]
        clock=lambda: next(clock),
    )


async def test_client_polls_gzip(agent: Agent) -> None:
    """Two polls: the second has rates; the client asks for gzip and reads it."""
    agent.gzip = True
    async with aiohttp.ClientSession() as session:
        client = client_for(session, agent.port)
        first = await client.async_fetch()
        assert first.timestamp == 1000
        assert first.cpu_percent is None
        assert first.network_rx_bytes_per_second is None
        agent.body = (FIXTURES / "metrics_2.txt").read_bytes()
        second = await client.async_fetch()
    assert "gzip" in agent.seen[0].headers["Accept-Encoding"]
    assert agent.seen[0].path == "/metrics"
    assert second.timestamp == 1060
    expected = build_sample(
        parse_metrics(fixture("metrics_2.txt")),
        parse_metrics(fixture("metrics_1.txt")),
        timestamp=1060,
        elapsed=60,
    )
    assert second == expected
    assert second.cpu_percent is not None


async def test_client_wrong_content(agent: Agent) -> None:
    """HTML (a wrong port), unrelated metrics and HTTP errors are InvalidResponse."""
    async with aiohttp.ClientSession() as session:
        agent.content_type = "text/html"
        agent.body = b"<html><head><title>Node Exporter</title></head></html>"
        with pytest.raises(InvalidResponse, match="text/html"):
            await client_for(session, agent.port).async_fetch()
        agent.content_type = "text/plain"
        agent.body = b"some_other_metric 1\n"
        with pytest.raises(InvalidResponse, match="no node_exporter series"):
            await client_for(session, agent.port).async_fetch()
        agent.body = (FIXTURES / "metrics_1.txt").read_bytes()
        agent.status = 500
        with pytest.raises(InvalidResponse, match="500"):
            await client_for(session, agent.port).async_fetch()


@pytest.mark.parametrize("stream", [False, True], ids=["content-length", "chunked"])
async def test_client_payload_over_the_cap(agent: Agent, stream: bool) -> None:
    """A body over MAX_PAYLOAD_BYTES is refused, declared or not."""
    agent.body = b"#" * (MAX_PAYLOAD_BYTES + 1)
    agent.stream = stream
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidResponse, match="too large|larger"):
            await client_for(session, agent.port).async_fetch()


def gzip_bomb(mib: int) -> bytes:
    """A gzip stream of mib MiB of zeros (about 1 kB per MiB)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(mib)) + compressor.flush()


async def test_client_gzip_bomb_inflates_no_further_than_the_cap(agent: Agent) -> None:
    """A small gzip body that inflates to 32 MiB is refused after inflating at most the cap.

    aiohttp inflates each chunk it receives whole, in one step of the event loop (a 0.5 MB body
    stalled it for 0.65 s and allocated twice what it inflated), so the client inflates itself.
    """
    agent.body = gzip_bomb(32)
    agent.content_encoding = "gzip"
    async with aiohttp.ClientSession() as session:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidResponse, match="inflates to more than"):
                await client_for(session, agent.port).async_fetch()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 4 * MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("deflate", zlib.compress),
        (
            "deflate",
            lambda body: zlib.compress(body)[2:-4],
        ),  # raw deflate, as some send it
        ("x-gzip", gzip.compress),
        ("identity", lambda body: body),
    ],
)
async def test_client_content_encodings(
    agent: Agent, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    """gzip, zlib and raw deflate bodies are inflated; the Sample is the plain body's."""
    plain = agent.body
    agent.body, agent.content_encoding = encode(plain), encoding
    async with aiohttp.ClientSession() as session:
        sample = await client_for(session, agent.port).async_fetch()
    assert sample == build_sample(parse_metrics(plain), None, timestamp=1000)
    assert agent.seen[0].headers["Accept-Encoding"] == "gzip"


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("br", b"\x0b\x02\x80", "unsupported Content-Encoding 'br'"),
        ("gzip", b"\x1f\x8bnot gzip at all", "not valid gzip"),
    ],
)
async def test_client_unreadable_encodings(
    agent: Agent, encoding: str, body: bytes, message: str
) -> None:
    """An encoding we did not offer, or a broken stream, is InvalidResponse."""
    agent.body, agent.content_encoding = body, encoding
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidResponse, match=message):
            await client_for(session, agent.port).async_fetch()


def adversarial_body() -> bytes:
    """3.5 MiB of a real scrape's lines after one 512 KiB line of escaped backslashes."""
    escapes = b"\\\\" * (256 * 1024)
    line = b'node_hwmon_sensor_label{chip="c",label="' + escapes + b'",sensor="t"} 1\n'
    scrape = (FIXTURES / "metrics_1.txt").read_bytes()
    return line + scrape * (7 * (1 << 19) // len(scrape))


@pytest.mark.parametrize(
    ("body", "fewest", "most"),
    [
        (lambda: (FIXTURES / "metrics_1.txt").read_bytes(), 0, 2),
        (adversarial_body, 4 * (1 << 20) // (SLICE_BYTES + MAX_LINE_BYTES), 1000),
        (  # more lines than one step parses, in a body of one slice
            lambda: b'node_network_receive_bytes_total{device="eth0"} 1\n' * 1000,
            1000 * (50 + 100) // (STEP_BYTES + MAX_LINE_BYTES + 100),
            1000,
        ),
    ],
    ids=["real scrape", "4 MiB", "many lines"],
)
async def test_parse_lets_the_loop_run_between_steps(
    monkeypatch: pytest.MonkeyPatch, body: Callable[[], bytes], fewest: int, most: int
) -> None:
    """A big body is parsed in steps, a real scrape in one or two (main parsed any in one).

    Between two turns of another task, the parse matched at most STEP_BYTES of lines (plus the
    line that crossed it) and scanned one slice.
    """
    parsed = [0]

    def counting(line: bytes) -> tuple[bytes, dict[bytes, bytes], float] | None:
        parsed[0] += len(line) + 100
        return parse_line(line)

    monkeypatch.setattr(node_exporter, "parse_line", counting)
    turns: list[int] = []
    done = False

    async def other_task() -> None:
        while not done:
            turns.append(parsed[0])
            await asyncio.sleep(0)

    data = body()
    task = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    turns.clear()
    snap = await async_parse_metrics(data)
    done = True
    await task
    assert snap == parse_metrics(data)
    assert fewest <= len(turns) <= most
    steps = [after - before for before, after in itertools.pairwise([0, *turns])]
    assert max(steps, default=0) <= STEP_BYTES + MAX_LINE_BYTES + 100


async def test_client_poll_keeps_the_event_loop_free(agent: Agent) -> None:
    """No loop step of a poll of a 4 MiB adversarial body comes near a second.

    Before, its 512 KiB line alone held the loop for seconds. benchmarks/parse.py measures the
    longest step (a few ms); this bound is generous so that a loaded machine cannot fail it.
    """
    agent.body = adversarial_body()
    async with aiohttp.ClientSession() as session, probe_loop_steps() as steps:
        sample = await client_for(session, agent.port).async_fetch()
    assert sample.memory_percent is not None
    assert steps.longest < 0.5


async def test_client_auth(agent: Agent) -> None:
    """401 without or with wrong credentials; basic auth with the right ones."""
    agent.auth = basic_auth("prom", "secret")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidAuth):
            await client_for(session, agent.port).async_fetch()
        with pytest.raises(InvalidAuth):
            await client_for(
                session, agent.port, username="prom", password="wrong"
            ).async_fetch()
        sample = await client_for(
            session, agent.port, username="prom", password="secret"
        ).async_fetch()
    assert sample.memory_percent is not None


async def test_client_forbidden(agent: Agent) -> None:
    """403 (a proxy's refusal) is an auth problem too."""
    agent.status = 403
    async with aiohttp.ClientSession() as session:
        with pytest.raises(InvalidAuth):
            await client_for(session, agent.port).async_fetch()


@pytest.mark.usefixtures("socket_enabled")
async def test_client_hung_agent_times_out() -> None:
    """An agent that accepts and never answers: CannotConnect after config.timeout."""
    async with hung_agent() as port, aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(CannotConnect, match="no answer within 0.2 s"):
            await client_for(session, port, timeout=0.2).async_fetch()
        assert loop.time() - started < 5


@pytest.mark.usefixtures("socket_enabled")
async def test_client_refused() -> None:
    """Nothing listening: CannotConnect."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(CannotConnect):
            await client_for(session, 1).async_fetch()


def test_base_url_brackets_ipv6() -> None:
    """IPv6 literals are bracketed in the URL."""
    assert AgentConfig(host="::1", port=9100).base_url == "http://[::1]:9100"
    assert AgentConfig(host="nas", port=1, ssl=True).base_url == "https://nas:1"


async def test_mocks_for_home_assistant_tests(
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """agent_mocks' node_exporter helpers drive the real client through aioclient_mock."""
    config = AgentConfig(host="192.168.1.10", port=9100)
    session = aioclient_mock.create_session(asyncio.get_running_loop())
    try:
        client = NodeExporterClient(session, config, clock=lambda: 1000.0)
        mock_node_exporter(aioclient_mock, config.base_url)
        first = await client.async_fetch()
        assert first.memory_percent is not None
        assert first.cpu_percent is None
        aioclient_mock.clear_requests()
        mock_node_exporter(
            aioclient_mock, config.base_url, payload_name="metrics_2.txt"
        )
        second = await client.async_fetch()
        assert second.cpu_percent is not None
        assert str(aioclient_mock.mock_calls[-1][1]) == f"{config.base_url}/metrics"

        aioclient_mock.clear_requests()
        mock_node_exporter(aioclient_mock, config.base_url, content_type="text/html")
        with pytest.raises(InvalidResponse):
            await client.async_fetch()
        aioclient_mock.clear_requests()
        mock_unauthorized(aioclient_mock, config.base_url)
        with pytest.raises(InvalidAuth):
            await client.async_fetch()
        aioclient_mock.clear_requests()
        mock_unreachable(aioclient_mock, config.base_url)
        with pytest.raises(CannotConnect):
            await client.async_fetch()
    finally:
        await session.close()
