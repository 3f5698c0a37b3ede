"""Streaming CSV and JSON export writers, file names and headers (no Home Assistant)."""

from __future__ import annotations

from collections.abc import Iterator
import csv
from datetime import UTC, date, datetime, tzinfo
import io
import json
import math
import random
import re
import tracemalloc
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.export.choices import ExportFormat
from custom_components.homelab_metrics.export.writers import (
    CsvExportWriter,
    ExportMeta,
    JsonExportWriter,
    content_disposition,
    iter_export,
    make_writer,
    safe_filename,
)
from custom_components.homelab_metrics.history import reader
from custom_components.homelab_metrics.history.metrics import Tier, columns_for
from custom_components.homelab_metrics.history.store import HistoryStore

# The headers exactly as DESIGN.md spells them.
RAW_HEADER = "timestamp,cpu_percent,memory_percent,disk_percent,load_1m,network_rx_bytes_per_second,network_tx_bytes_per_second,temperature_celsius"
AGGREGATE_HEADER = (
    "timestamp,cpu_avg,cpu_min,cpu_max,memory_avg,memory_min,memory_max,disk_avg,disk_min,disk_max,"
    "load_1m_avg,load_1m_min,load_1m_max,"
    "network_rx_bytes_per_second_avg,network_rx_bytes_per_second_min,network_rx_bytes_per_second_max,"
    "network_tx_bytes_per_second_avg,network_tx_bytes_per_second_min,network_tx_bytes_per_second_max,"
    "temperature_celsius_avg,temperature_celsius_min,temperature_celsius_max,"
    "samples"
)
HEADERS = {
    Tier.RAW: RAW_HEADER,
    Tier.HOURLY: AGGREGATE_HEADER,
    Tier.DAILY: AGGREGATE_HEADER,
}
INTEGER_COLUMNS = {
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
    *(
        f"network_{d}x_bytes_per_second_{s}"
        for d in "rt"
        for s in ("avg", "min", "max")
    ),
    "samples",
}
T0 = int(datetime(2025, 11, 24, 16, 0, tzinfo=UTC).timestamp())
BERLIN = ZoneInfo("Europe/Berlin")
NUMBER = re.compile(r"-?\d+(\.\d{3})?")


def make_meta(
    tier: Tier,
    *,
    tz: tzinfo = UTC,
    tz_name: str = "UTC",
    range_: str | None = "24h",
    server_name: str = 'NAS "main" =1+1 ünï',
) -> ExportMeta:
    return ExportMeta(
        server_id="nas",
        server_name=server_name,
        range=range_,
        tier=tier,
        resolution={"raw": "raw", "hourly": "1h", "daily": "1d"}[tier.value],
        timezone=tz,
        timezone_name=tz_name,
        exported_at=T0 + 7,
    )


def export(
    fmt: str, tier: Tier, batches: list[list[tuple[Any, ...]]], **meta: Any
) -> str:
    writer = make_writer(fmt, tier, make_meta(tier, **meta))
    data = b"".join(iter_export(writer, batches))
    assert writer.rows == sum(len(b) for b in batches)
    return data.decode()


def odd_value(rnd: random.Random) -> float | None:
    """Values a history can hold, the awkward ones overrepresented."""
    return rnd.choice(
        [
            None,
            math.nan,
            math.inf,
            -math.inf,
            0.0,
            -0.0001,  # rounds to zero: written without a minus sign
            1e-7,
            -12.3456,
            0.0005,
            2.675,  # not exactly representable: rounding follows the stored binary value
            3e9,
            1e20,  # never in scientific notation
            rnd.uniform(0, 100),
            rnd.uniform(0, 100),
            rnd.uniform(-40, 120),
            rnd.uniform(0, 1e9),
        ]
    )


def random_rows(tier: Tier, count: int, seed: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    width = len(columns_for(tier)) - 1
    rows = []
    for i in range(count):
        values: list[Any] = [odd_value(rnd) for _ in range(width)]
        if tier is not Tier.RAW:
            values[-1] = rnd.randrange(0, 100)  # samples: an integer count
        rows.append((T0 + i * 3600, *values))
    return rows


def expected(column: str, value: Any) -> int | float | None:
    """What a cell must read back as, computed without the writer."""
    if value is None or not math.isfinite(value):
        return None
    if column in INTEGER_COLUMNS:
        return round(value)
    return round(value, 3) + 0.0  # + 0.0: -0.0 reads back as 0.0


@pytest.mark.parametrize("tier", list(Tier))
def test_csv_header_is_the_designed_one(tier: Tier) -> None:
    writer = CsvExportWriter(tier, make_meta(tier))
    assert writer.start().decode() == HEADERS[tier] + "\r\n"
    assert ",".join(columns_for(tier)) == HEADERS[tier]


@pytest.mark.parametrize("tier", list(Tier))
def test_csv_parses_back_to_the_same_values(tier: Tier) -> None:
    rows = random_rows(tier, 300, seed=list(Tier).index(tier))
    text = export("csv", tier, [rows[:100], [], rows[100:]])
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    columns = columns_for(tier)
    assert parsed[0] == list(columns)
    assert len(parsed) == len(rows) + 1
    for row, cells in zip(rows, parsed[1:], strict=True):
        assert datetime.fromisoformat(cells[0]).timestamp() == row[0]
        assert cells[0].endswith("+00:00")
        for column, value, cell in zip(columns[1:], row[1:], cells[1:], strict=True):
            want = expected(column, value)
            if want is None:
                assert cell == "", (column, value)
                continue
            # A plain number: no exponent, no minus on zero, three decimals or none.
            assert NUMBER.fullmatch(cell), (column, value, cell)
            assert not re.fullmatch(r"-0(\.0+)?", cell)
            if column in INTEGER_COLUMNS:
                assert "." not in cell
                assert int(cell) == want
            else:
                assert float(cell) == want, (column, value, cell)


@pytest.mark.parametrize("tier", list(Tier))
def test_json_parses_back_to_the_same_values(tier: Tier) -> None:
    rows = random_rows(tier, 300, seed=10 + list(Tier).index(tier))
    document = json.loads(export("json", tier, [rows[:1], [], rows[1:150], rows[150:]]))
    columns = columns_for(tier)
    points = document["data_points"]
    assert len(points) == len(rows)
    for row, point in zip(rows, points, strict=True):
        assert list(point) == list(columns)
        assert datetime.fromisoformat(point["timestamp"]).timestamp() == row[0]
        for column, value in zip(columns[1:], row[1:], strict=True):
            want = expected(column, value)
            assert point[column] == want, (column, value, point[column])
            if want is not None and column in INTEGER_COLUMNS:
                assert type(point[column]) is int


@pytest.mark.parametrize("tier", list(Tier))
def test_data_points_are_what_the_json_file_holds(tier: Tier) -> None:
    """Built straight from rows, the data points equal the file's, value for value and type for type."""
    rows: list[tuple[Any, ...]] = random_rows(
        tier, 300, seed=20 + list(Tier).index(tier)
    )
    width = len(columns_for(tier)) - 1
    rows += [
        (T0 + 400 * 3600, "=1+1", *[1] * (width - 1)),
        (T0 + 401 * 3600, b"bytes", *[True] * (width - 1)),
        (T0 + 402 * 3600 + 0.5, *[-0.0] * width),
    ]
    meta = {"tz": BERLIN, "tz_name": "Europe/Berlin"}
    document = json.loads(export("json", tier, [rows[:10], rows[10:]], **meta))
    points = JsonExportWriter(tier, make_meta(tier, **meta)).data_points(rows)
    assert points == document["data_points"]
    # json.dumps tells 1 from 1.0 and -0.0 from 0.0, which == does not.
    assert json.dumps(points) == json.dumps(document["data_points"])


def test_data_points_refuse_rows_of_the_wrong_width() -> None:
    writer = JsonExportWriter(Tier.RAW, make_meta(Tier.RAW))
    with pytest.raises(ValueError, match="columns"):
        writer.data_points([(T0, 1.0, 2.0)])


def test_json_metadata() -> None:
    document = json.loads(export("json", Tier.HOURLY, [], range_="7d"))
    assert document == {
        "server_id": "nas",
        "server_name": 'NAS "main" =1+1 ünï',
        "range": "7d",
        "tier": "hourly",
        "resolution": "1h",
        "timezone": "UTC",
        "exported_at": "2025-11-24T16:00:07+00:00",
        "data_points": [],
    }
    assert list(document) == [
        "server_id",
        "server_name",
        "range",
        "tier",
        "resolution",
        "timezone",
        "exported_at",
        "data_points",
    ]
    custom = json.loads(
        export("json", Tier.RAW, [], range_=None, tz=BERLIN, tz_name="Europe/Berlin")
    )
    assert custom["range"] is None
    assert custom["timezone"] == "Europe/Berlin"
    assert custom["exported_at"] == "2025-11-24T17:00:07+01:00"


def test_json_name_that_is_not_valid_unicode() -> None:
    """A lone surrogate cannot be UTF-8; the header escapes it instead of failing."""
    document = json.loads(export("json", Tier.RAW, [], server_name="bad \ud800 name"))
    assert document["server_name"] == "bad \ud800 name"


@pytest.mark.parametrize("tier", list(Tier))
def test_empty_export(tier: Tier) -> None:
    assert export("csv", tier, []) == HEADERS[tier] + "\r\n"
    assert export("csv", tier, [[], []]) == HEADERS[tier] + "\r\n"
    assert json.loads(export("json", tier, [[]]))["data_points"] == []


def test_time_zones_on_a_dst_day() -> None:
    """Berlin's 25-hour day: 02:00 comes twice, at +02:00 then +01:00; UTC is unaffected."""
    start = int(datetime(2025, 10, 25, 22, 0, tzinfo=UTC).timestamp())
    rows = [(start + h * 3600, *[1.0] * 21, 6) for h in range(25)]
    berlin = json.loads(
        export("json", Tier.HOURLY, [rows], tz=BERLIN, tz_name="Europe/Berlin")
    )
    utc = json.loads(export("json", Tier.HOURLY, [rows]))
    local_stamps = [p["timestamp"] for p in berlin["data_points"]]
    assert local_stamps[0] == "2025-10-26T00:00:00+02:00"
    assert local_stamps[2:4] == [
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:00:00+01:00",
    ]
    assert local_stamps[-1] == "2025-10-26T23:00:00+01:00"
    assert utc["data_points"][0]["timestamp"] == "2025-10-25T22:00:00+00:00"
    assert all(p["timestamp"].endswith("+00:00") for p in utc["data_points"])
    # Both name the same instants.
    for local, row in zip(local_stamps, rows, strict=True):
        assert datetime.fromisoformat(local).timestamp() == row[0]
    csv_lines = export("csv", Tier.HOURLY, [rows], tz=BERLIN).splitlines()
    assert [line.split(",")[0] for line in csv_lines[1:]] == local_stamps


@pytest.mark.parametrize(
    "zone",
    [
        "UTC",
        "Europe/Berlin",
        "America/St_Johns",  # -03:30 / -02:30
        "Asia/Kathmandu",  # +05:45, and +05:30 before 1986
        "Australia/Lord_Howe",  # DST moves the clock by 30 minutes
        "Pacific/Chatham",  # +12:45 / +13:45
        "Pacific/Apia",  # skipped 30 December 2011 entirely
        "Africa/Casablanca",  # leaves and re-enters DST around Ramadan
        "Europe/Dublin",  # negative DST in the zone data, +00:25:21 before 1916
    ],
)
def test_timestamps_match_isoformat_in_every_zone(zone: str) -> None:
    """Rows of every spacing, over decades, are written exactly as datetime.isoformat does."""
    tz = ZoneInfo(zone)
    rnd = random.Random(zone)
    starts = [rnd.randrange(-2_500_000_000, 4_000_000_000) for _ in range(20)]
    # Days holding a change: Berlin's spring and autumn in 2025, the day before Apia's lost day.
    starts += [1_743_292_800 - 86_400, 1_761_436_800 - 86_400, 1_325_203_200 - 86_400]
    for start in starts:
        for step in (1, 60, 299, 3600, 86_400):
            timestamps = [start + i * step for i in range(400)]
            rows = [(ts, *[None] * 7) for ts in timestamps]
            writer = CsvExportWriter(Tier.RAW, make_meta(Tier.RAW, tz=tz))
            lines = writer.write(rows).decode().splitlines()
            assert [line.split(",")[0] for line in lines] == [
                datetime.fromtimestamp(ts, tz).isoformat() for ts in timestamps
            ]


def test_fractional_timestamps_keep_their_fraction() -> None:
    writer = CsvExportWriter(Tier.RAW, make_meta(Tier.RAW, tz=BERLIN))
    line = writer.write([(T0 + 0.5, *[None] * 7)]).decode()
    assert line.startswith("2025-11-24T17:00:00.500000+01:00,")


@pytest.mark.parametrize(
    "text", ["=HYPERLINK(1)", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx", 'a,"b"\r\nc', "7"]
)
def test_text_is_never_written(text: str) -> None:
    """A value that is not a number (only a damaged file could hold one) is missing, so no
    formula and no separator of the file's own can reach it."""
    row = (T0, text, -1.5, -0.25, 0.5, 10.0, 20.0, -3.0)
    parsed = list(csv.reader(io.StringIO(export("csv", Tier.RAW, [[row]]), newline="")))
    assert len(parsed) == 2
    cells = parsed[1]
    assert cells[1] == ""
    # Negative numbers are numbers, not text: they stay as they are.
    assert cells[2:4] == ["-1.500", "-0.250"]
    assert cells[-1] == "-3.000"
    point = json.loads(export("json", Tier.RAW, [[row]]))["data_points"][0]
    assert point["cpu_percent"] is None
    assert point["memory_percent"] == -1.5


def test_rows_of_the_wrong_width_are_refused() -> None:
    for writer in (
        CsvExportWriter(Tier.RAW, make_meta(Tier.RAW)),
        JsonExportWriter(Tier.RAW, make_meta(Tier.RAW)),
    ):
        with pytest.raises(ValueError, match="columns"):
            writer.write([(T0, 1.0, 2.0)])
        with pytest.raises(ValueError, match="columns"):
            writer.write([(T0, *[1.0] * 8)])


def test_a_writer_per_format() -> None:
    assert isinstance(
        make_writer(ExportFormat.CSV, Tier.RAW, make_meta(Tier.RAW)), CsvExportWriter
    )
    assert isinstance(
        make_writer(ExportFormat.JSON, Tier.RAW, make_meta(Tier.RAW)), JsonExportWriter
    )
    with pytest.raises(ValueError, match="xml"):
        make_writer("xml", Tier.RAW, make_meta(Tier.RAW))


@pytest.mark.parametrize(
    ("server_id", "range_label", "expected"),
    [
        ("nas", "7d", "nas-metrics-7d-2025-11-24.csv"),
        ("nas", "custom", "nas-metrics-custom-2025-11-24.csv"),
        (
            'a"b\r\nContent-Type: x',
            "7d",
            "a_b_Content-Type_x-metrics-7d-2025-11-24.csv",
        ),
        ("../../etc/passwd", "7d", "_.._etc_passwd-metrics-7d-2025-11-24.csv"),
        ("..\\..\\boot.ini", "7d", "_.._boot.ini-metrics-7d-2025-11-24.csv"),
        (".hidden", "24h", "hidden-metrics-24h-2025-11-24.csv"),
        ("--rm", "24h", "rm-metrics-24h-2025-11-24.csv"),
        ("ünïcödé", "7d", "_n_c_d_-metrics-7d-2025-11-24.csv"),
        ("", "7d", "server-metrics-7d-2025-11-24.csv"),
        ("nas", "a/b;c", "nas-metrics-a_b_c-2025-11-24.csv"),
    ],
)
def test_safe_filename(server_id: str, range_label: str, expected: str) -> None:
    name = safe_filename(server_id, range_label, date(2025, 11, 24), "csv")
    assert name == expected
    assert content_disposition(name) == f'attachment; filename="{expected}"'


def test_safe_filename_is_bounded_and_keeps_its_date() -> None:
    name = safe_filename("x" * 5000, "12m", date(2026, 1, 2), "json")
    assert len(name) <= 150
    assert name.endswith("-metrics-12m-2026-01-02.json")


@pytest.mark.parametrize(
    "filename",
    [
        'x"\r\ny.csv',
        "a\nSet-Cookie: s=1",
        "ünï.csv",
        "../x.csv",
        "",
        '"',
        "a; filename*=UTF-8''evil",
    ],
)
def test_content_disposition_never_passes_quotes_or_line_breaks(filename: str) -> None:
    header = content_disposition(filename)
    assert re.fullmatch(
        r'attachment; filename="[A-Za-z0-9_][A-Za-z0-9._-]*"', header
    ), header
    assert header.isascii()


def row_batches(count: int, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Raw rows made on demand, with a missing temperature now and then."""
    for first in range(0, count, size):
        yield [
            (
                T0 + i * 60,
                i % 100 + 0.125,
                50.5,
                24.9,
                (i % 7) / 3,
                float(i % 100_000),
                2000.0,
                None if i % 97 == 0 else 40.0 + i % 30,
            )
            for i in range(first, min(first + size, count))
        ]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_million_rows_in_flat_memory(fmt: str) -> None:
    """1,000,000 rows stream through with a peak of traced memory that does not grow with them.

    The rows are ten distinct batches handed out in turn, made before tracing starts, so the
    trace (which slows every allocation) measures the writer rather than the row factory.
    """
    rows, size = 1_000_000, 2000
    pool = list(row_batches(10 * size, size))
    writer = make_writer(
        fmt, Tier.RAW, make_meta(Tier.RAW, tz=BERLIN, tz_name="Europe/Berlin")
    )
    tracemalloc.start()
    try:
        total = 0
        batches = (pool[i % len(pool)] for i in range(rows // size))
        for chunk in iter_export(writer, batches):
            total += len(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.rows == rows
    # Every row is at least its timestamp and seven values.
    assert total > rows * len("2025-11-24T16:00:00+01:00,1,1,1,1,1,1,1")
    assert peak < 5 * 1024 * 1024, f"peak traced memory {peak / 1024 / 1024:.1f} MB"


async def test_store_count_is_the_writers_row_count(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL count a response gives as `rows` equals the rows a writer of the same export writes.

    The history has rolled-up hours and days, hours and days not rolled up yet (newer polls and a
    late one for a rolled-up hour), the hour and day holding now, and windows that cut buckets.
    """
    now = T0 + 2 * 86_400 + 1_800
    samples = [
        Sample(timestamp=ts, cpu_percent=float(ts % 11), memory_percent=None)
        for ts in range(T0 - 3 * 86_400, T0 + 86_400, 600)
    ]
    await store.async_add_many("a", samples)
    await store.async_rollup(T0 + 86_400)
    await store.async_add_many(
        "a",
        [
            *(
                Sample(timestamp=ts, cpu_percent=1.0)
                for ts in range(T0 + 86_400, now, 900)
            ),
            Sample(timestamp=T0 - 3_600 + 7, cpu_percent=99.0),
        ],
    )
    windows = [
        (T0 - 4 * 86_400, now + 1),
        (T0 - 86_400 + 1_234, T0 + 86_400 + 5_678),
        (T0 + 86_400, now + 1),
        (now - 600, now + 1),
        (T0 - 10 * 86_400, T0 - 9 * 86_400),
    ]
    counts: dict[tuple[Tier, int, int], int] = {}
    for tier in Tier:
        for start, end in windows:
            for step in (3, 250):
                monkeypatch.setattr(reader, "LINES_STEP", step)
                writer = make_writer(ExportFormat.CSV, tier, make_meta(tier))
                async for _chunk in store.async_export(
                    "a", tier, start, end, writer, now=now
                ):
                    pass
                counted = await store.async_count("a", tier, start, end, now=now)
                assert counted == writer.rows, (tier, start - T0, end - T0, step)
                counts[tier, start, end] = counted
    # Nothing after T0 + 1 day is rolled up: its 24 hours and the hour holding now are computed.
    assert counts[Tier.HOURLY, T0 + 86_400, now + 1] == 25
    assert counts[Tier.RAW, T0 - 10 * 86_400, T0 - 9 * 86_400] == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_store_export_is_the_file_of_its_rows(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Chunks formatted on the reader thread make the file the writer makes of the query's rows.

    Small steps and chunks, so that the file comes in many chunks and steps end inside them.
    """
    monkeypatch.setattr(reader, "STEP", 7)
    monkeypatch.setattr(reader, "LINES_STEP", 7)
    monkeypatch.setattr(reader, "CHUNK_BYTES", 500)
    now = T0 + 86_400 + 1_800
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=float(ts % 13), load_1m=None)
            for ts in range(T0 - 86_400, now, 300)
        ],
    )
    await store.async_rollup(T0)
    for tier in Tier:
        rows = [
            row
            async for batch in store.async_query(
                "a", tier, T0 - 2 * 86_400, now + 1, now=now
            )
            for row in batch
        ]
        expected = export(fmt, tier, [rows])
        writer = make_writer(fmt, tier, make_meta(tier))
        chunks = [
            chunk
            async for chunk in store.async_export(
                "a", tier, T0 - 2 * 86_400, now + 1, writer, now=now
            )
        ]
        assert b"".join(chunks).decode() == expected
        assert writer.rows == len(rows)
        if tier is Tier.RAW:
            assert len(chunks) > 10
