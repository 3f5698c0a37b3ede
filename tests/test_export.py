"""Export writers and range resolution (no Home Assistant)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
import io
import json
from pathlib import Path
import subprocess
import sys
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.export import (
    ExportMeta,
    aiter_export,
    content_disposition,
    iter_export,
    make_writer,
    neutralise,
    safe_filename,
)
from custom_components.homelab_metrics.history.metrics import (
    AGGREGATE_COLUMNS,
    RAW_COLUMNS,
    Tier,
)
from custom_components.homelab_metrics.history.ranges import (
    ExportRange,
    InvalidWindow,
    parse_timestamp,
    resolve,
)

RAW_HEADER = "timestamp,cpu_percent,memory_percent,disk_percent,load_1m,network_rx_bytes_per_second,network_tx_bytes_per_second,temperature_celsius"
AGG_HEADER = (
    "timestamp,cpu_avg,cpu_min,cpu_max,memory_avg,memory_min,memory_max,disk_avg,disk_min,disk_max,"
    + ",".join(
        f"{m}_{s}"
        for m in (
            "load_1m",
            "network_rx_bytes_per_second",
            "network_tx_bytes_per_second",
            "temperature_celsius",
        )
        for s in ("avg", "min", "max")
    )
    + ",samples"
)
T0 = 1_764_000_000
UTC_TZ = ZoneInfo("UTC")


def meta(tier: Tier, tz: Any = UTC_TZ, name: str = "UTC") -> ExportMeta:
    return ExportMeta(
        server_id="nas",
        server_name='NAS "main" =1+1',
        range="24h",
        tier=tier,
        resolution="raw",
        timezone=tz,
        timezone_name=name,
        exported_at=T0,
    )


RAW_ROWS = [
    (T0, 12.3456, 50.0, 24.9, 0.42, 125000.6, 20000.4, None),
    (T0 + 60, 0.0001, -1.5, float("nan"), 1e-7, 3e9, 0.0, 47.25),
]


def export(fmt: str, tier: Tier, rows: list[tuple], **kw: Any) -> str:
    writer = make_writer(fmt, tier, meta(tier, **kw))
    return b"".join(iter_export(writer, [rows[:1], [], rows[1:]])).decode()


def test_csv_raw_parses_back() -> None:
    """Header as designed; values as numbers, 3 decimals, integer byte rates, empty for missing."""
    text = export("csv", Tier.RAW, RAW_ROWS)
    parsed = list(csv.reader(io.StringIO(text)))
    assert ",".join(parsed[0]) == RAW_HEADER == ",".join(RAW_COLUMNS)
    assert parsed[1] == [
        "2025-11-24T16:00:00+00:00",
        "12.346",
        "50",
        "24.9",
        "0.42",
        "125001",
        "20000",
        "",
    ]
    assert parsed[2] == [
        "2025-11-24T16:01:00+00:00",
        "0",
        "-1.5",
        "",
        "0",
        "3000000000",
        "0",
        "47.25",
    ]


def test_csv_aggregate_header() -> None:
    row = (T0, *range(1, 22), 60)
    text = export("csv", Tier.HOURLY, [row])
    lines = text.splitlines()
    assert lines[0] == AGG_HEADER == ",".join(AGGREGATE_COLUMNS)
    assert lines[1].split(",")[-1] == "60"


def test_json_parses_back() -> None:
    """Metadata then data points with the CSV's keys; null for missing; empty list for no rows."""
    document = json.loads(export("json", Tier.RAW, RAW_ROWS))
    assert document["server_id"] == "nas"
    assert document["server_name"] == 'NAS "main" =1+1'
    assert document["tier"] == "raw"
    assert document["timezone"] == "UTC"
    assert document["exported_at"] == "2025-11-24T16:00:00+00:00"
    points = document["data_points"]
    assert list(points[0]) == list(RAW_COLUMNS)
    assert points[0]["cpu_percent"] == 12.346
    assert points[0]["network_rx_bytes_per_second"] == 125001
    assert points[0]["temperature_celsius"] is None
    assert points[1]["disk_percent"] is None  # NaN never reaches the file
    empty = json.loads(export("json", Tier.DAILY, []))
    assert empty["data_points"] == []
    assert export("csv", Tier.DAILY, []).strip() == AGG_HEADER


def test_local_time_zone_on_dst_day() -> None:
    """Europe/Berlin offsets change across 26 October 2025."""
    berlin = ZoneInfo("Europe/Berlin")
    before = int(datetime(2025, 10, 26, 0, 0, tzinfo=berlin).timestamp())
    after = int(datetime(2025, 10, 27, 0, 0, tzinfo=berlin).timestamp())
    rows = [(before, *[None] * 21, 1), (after, *[None] * 21, 1)]
    points = json.loads(
        export("json", Tier.DAILY, rows, tz=berlin, name="Europe/Berlin")
    )["data_points"]
    assert [p["timestamp"] for p in points] == [
        "2025-10-26T00:00:00+02:00",
        "2025-10-27T00:00:00+01:00",
    ]


def test_formula_cells_neutralised() -> None:
    for text in ("=HYPERLINK(1)", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(text).startswith("'")
    assert neutralise("2025-11-24T00:00:00-05:00") == "2025-11-24T00:00:00-05:00"
    # Negative numbers stay numbers.
    assert "-1.5" in export("csv", Tier.RAW, RAW_ROWS).splitlines()[2].split(",")


@pytest.mark.parametrize(
    ("server_id", "expected"),
    [
        ("nas", "nas-metrics-7d-2025-11-24.csv"),
        ('a"b\r\nContent-Type: x', "a_b_Content-Type_x-metrics-7d-2025-11-24.csv"),
        ("../../etc/passwd", "_.._etc_passwd-metrics-7d-2025-11-24.csv"),
        ("ünïcödé", "_n_c_d_-metrics-7d-2025-11-24.csv"),
    ],
)
def test_filenames_and_header(server_id: str, expected: str) -> None:
    name = safe_filename(server_id, "7d", date(2025, 11, 24), "csv")
    assert name == expected
    header = content_disposition(name)
    assert header == f'attachment; filename="{expected}"'
    assert "\r" not in header and "\n" not in header and header.count('"') == 2
    assert content_disposition('x"\r\ny.csv') == 'attachment; filename="x_y.csv"'


MEMORY_PROBE = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from zoneinfo import ZoneInfo
from custom_components.homelab_metrics.export import ExportMeta, iter_export, make_writer
from custom_components.homelab_metrics.history.metrics import Tier

def batches(n):
    for start in range(0, n, 5000):
        yield [(1764000000 + (start + i) * 60, 1.5, 2.5, 3.5, 0.5, 1000.0, 2000.0, 40.0) for i in range(5000)]

def run(n):
    meta = ExportMeta(server_id="a", server_name="a", range=None, tier=Tier.RAW, resolution="raw",
                      timezone=ZoneInfo("UTC"), timezone_name="UTC", exported_at=0)
    writer = make_writer(sys.argv[2], Tier.RAW, meta)
    size = sum(len(chunk) for chunk in iter_export(writer, batches(n)))
    return writer.rows, size

run(10_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows, size = run(1_000_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows, size, before, after)
"""


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_million_rows_in_flat_memory(fmt: str) -> None:
    """1,000,000 rows stream through without the process growing (peak RSS, fresh interpreter)."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(root), fmt],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    rows, size, before, after = (int(x) for x in result.stdout.split())
    assert rows == 1_000_000
    assert size > 50_000_000
    assert after - before < 16 * 1024, (
        f"peak RSS grew by {(after - before) / 1024:.1f} MB"
    )


async def test_async_export() -> None:
    async def batches():
        yield RAW_ROWS

    writer = make_writer("csv", Tier.RAW, meta(Tier.RAW))
    text = b"".join([c async for c in aiter_export(writer, batches())]).decode()
    assert len(text.splitlines()) == 3
    assert writer.rows == 2


NOW = T0 + 1234


@pytest.mark.parametrize(
    ("range_", "tier", "start"),
    [
        ("24h", Tier.RAW, NOW - 86400),
        ("7d", Tier.HOURLY, T0 - 7 * 86400),
        ("30d", Tier.HOURLY, T0 - 30 * 86400),
        ("12m", Tier.DAILY, NOW - 365 * 86400),
    ],
)
def test_ranges(range_: str, tier: Tier, start: int) -> None:
    window = resolve(ExportRange(range_), now=NOW)
    assert window.tier is tier
    assert window.start == start
    assert window.end == NOW + 1
    assert (
        window.resolution == {"raw": "raw", "hourly": "1h", "daily": "1d"}[tier.value]
    )


@pytest.mark.parametrize(
    ("age_days", "tier"),
    [
        (1, Tier.RAW),
        (7, Tier.RAW),
        (7.01, Tier.HOURLY),
        (90, Tier.HOURLY),
        (91, Tier.DAILY),
        (1000, Tier.DAILY),
    ],
)
def test_custom_window_tier(age_days: float, tier: Tier) -> None:
    start = NOW - int(age_days * 86400)
    window = resolve(None, now=NOW, start=start, end=NOW)
    assert window.tier is tier
    assert (window.start, window.end) == (start, NOW)


def test_invalid_windows() -> None:
    with pytest.raises(InvalidWindow):
        resolve(None, now=NOW, start=NOW, end=NOW)
    with pytest.raises(InvalidWindow):
        resolve(None, now=NOW, start=NOW)
    with pytest.raises(InvalidWindow):
        resolve(None, now=NOW)


def test_parse_timestamp() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_timestamp("2025-11-24T16:00:00Z", UTC) == T0
    assert parse_timestamp("2025-11-24T17:00:00+01:00", UTC) == T0
    assert parse_timestamp("2025-11-24 17:00:00", berlin) == T0
    with pytest.raises(InvalidWindow, match="ISO 8601"):
        parse_timestamp("yesterday", UTC)
