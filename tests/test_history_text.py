"""Each row's values as exports write them: made once when stored, the same whichever way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
import math
from pathlib import Path
import random
import sqlite3
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.export.writers import (
    ExportMeta,
    iter_export,
    make_writer,
    offset_span,
)
from custom_components.homelab_metrics.history import reader, text
from custom_components.homelab_metrics.history.metrics import METRICS, Tier, columns_for
from custom_components.homelab_metrics.history.queries import _PUBLIC_AGG
from custom_components.homelab_metrics.history.sql import KEYS
from custom_components.homelab_metrics.history.store import HistoryStore

from .history_common import DAY, HOUR

AWKWARD = [
    *(math.nan, math.inf, -math.inf, -0.0, -0.0001, -0.4, -0.5, 0.5, 2.5),
    *(-12.3456, 0.0005, 2.675, 1e20, 3e9, -7, 0, None, 10**400, "text", True),
]
"""Values a template cannot take, or writes in a way that has to be mended."""


def by_value(tier: Tier, values: tuple[Any, ...]) -> str:
    """A line written value by value, without the one-call template."""
    whole = text.tier_whole(tier)
    parts = []
    for value, is_whole in zip(values, whole, strict=True):
        try:
            ok = isinstance(value, int | float) and math.isfinite(value)
        except OverflowError:
            ok = False
        parts.append(format(value, "z.0f" if is_whole else "z.3f") if ok else "")
    return "".join(
        (text.SEPARATORS[i - 1] if i else "") + part for i, part in enumerate(parts)
    )


@pytest.mark.parametrize("tier", [Tier.RAW, Tier.HOURLY])
def test_template_writes_what_value_by_value_writes(tier: Tier) -> None:
    """Rows of numbers go through one template call, then mended: the same text as value by value,
    with infinities, NaN, negative zeros, huge numbers and text among them."""
    rnd = random.Random(7)
    write = text.tier_writer(tier)
    width = len(columns_for(tier)) - 1
    for _ in range(2000):
        values = tuple(
            rnd.choice([*AWKWARD, rnd.uniform(-9, 9), rnd.uniform(0, 1e9)])
            if rnd.random() < 0.5
            else rnd.uniform(-100, 100)
            for _ in range(width)
        )
        assert write(*values) == by_value(tier, values), values


def test_lines_hold_no_character_of_a_file() -> None:
    """Separators are control characters no number, CSV or JSON text needs, never \\t \\r \\n."""
    assert len(set(text.SEPARATORS)) == len(text.SEPARATORS) >= len(_PUBLIC_AGG)
    assert all(ord(c) < 32 and c not in "\t\r\n" for c in text.SEPARATORS)


def test_wrong_width_is_refused() -> None:
    write = text.tier_writer(Tier.RAW)
    with pytest.raises(ValueError, match="columns"):
        write(1.0, 2.0)
    with pytest.raises(ValueError, match="columns"):
        write(*[1.0] * 8)


@dataclass
class Stats:
    avg: float
    min: float
    max: float
    count: int


@dataclass
class Hour:
    timestamp: int
    samples: int
    fields: dict[str, Stats] = field(default_factory=dict)


async def test_every_write_stores_the_line_of_its_values(store: HistoryStore) -> None:
    """Polls, imported polls and hours, rollups of hours and days: each row's line is its values'."""
    t0 = int(datetime(2025, 3, 28, tzinfo=UTC).timestamp())
    rnd = random.Random(3)
    samples = [
        Sample(
            timestamp=ts,
            **{k: rnd.choice([None, *AWKWARD[:16], rnd.uniform(0, 100)]) for k in KEYS},
        )
        for ts in range(t0, t0 + 2 * DAY, 600)
    ]
    await store.async_add_many("a", samples[:100])
    await store.async_import_raw("a", samples[100:])
    await store.async_import_hourly(
        "a",
        [
            Hour(t0 - 5 * HOUR, 12, {"cpu_percent": Stats(1.5, -0.0001, 2.675, 12)}),
            Hour(
                t0 - 4 * HOUR, 3, {"network_rx_bytes_per_second": Stats(1e9, 0, 3e9, 3)}
            ),
        ],
    )
    await store.async_rollup(t0 + 3 * DAY)
    await store.async_close()
    with sqlite3.connect(store.path) as conn:
        for tier, columns in (
            (Tier.RAW, KEYS),
            (Tier.HOURLY, (*_PUBLIC_AGG, "samples")),
        ):
            write = text.tier_writer(tier)
            tables = ["raw"] if tier is Tier.RAW else ["hourly", "daily"]
            for table in tables:
                stored = conn.execute(
                    f"SELECT line, {', '.join(columns)} FROM {table}"
                ).fetchall()
                assert len(stored) > 2, table
                for line, *values in stored:
                    assert line == write(*values), (table, values)


def meta(tier: Tier, tz: tzinfo) -> ExportMeta:
    return ExportMeta(
        server_id="a",
        server_name="a",
        range=None,
        tier=tier,
        resolution="x",
        timezone=tz,
        timezone_name=str(tz),
        exported_at=0,
    )


@pytest.mark.parametrize(
    "zone",
    [
        "UTC",
        "Europe/Berlin",
        "America/St_Johns",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_sql_writes_the_file_python_writes_across_offset_changes(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, zone: str, fmt: str
) -> None:
    """Stored rows written by SQLite, in runs between offset changes and computed buckets, make the
    file the writer makes of the same rows of values: spring and autumn changes, half and
    quarter hour offsets, a zone that moves by 30 minutes; small steps end runs everywhere."""
    monkeypatch.setattr(reader, "LINES_STEP", 37)
    monkeypatch.setattr(reader, "CHUNK_BYTES", 3000)
    tz = ZoneInfo(zone)
    spring = int(datetime(2025, 3, 29, tzinfo=UTC).timestamp())
    autumn = int(datetime(2025, 10, 4, tzinfo=UTC).timestamp())
    rnd = random.Random(zone)
    stretches = [
        range(spring, spring + 10 * DAY, 1800),
        range(autumn, autumn + 30 * DAY, 3600),
    ]
    await store.async_add_many(
        "a",
        [
            Sample(timestamp=ts, cpu_percent=rnd.uniform(0, 100), load_1m=None)
            for stretch in stretches
            for ts in stretch
        ],
    )
    now = autumn + 30 * DAY
    # Before the rollup every bucket is computed; after it most are stored (raw is pruned to 7 days).
    for rolled_up in (False, True):
        if rolled_up:
            await store.async_rollup(autumn + 20 * DAY)
        for tier in Tier:
            for start, end in (
                (spring - DAY, spring + 11 * DAY),
                (autumn - 1, now + 1),
            ):
                rows = [
                    row
                    async for batch in store.async_query("a", tier, start, end, now=now)
                    for row in batch
                ]
                # Retention keeps 7 days of raw rows and 90 of hours.
                assert rows or (rolled_up and tier is not Tier.DAILY), (tier, start)
                expected = make_writer(fmt, tier, meta(tier, tz))
                wanted = b"".join(iter_export(expected, [rows]))
                writer = make_writer(fmt, tier, meta(tier, tz))
                got = b"".join(
                    [
                        c
                        async for c in store.async_export(
                            "a", tier, start, end, writer, now=now
                        )
                    ]
                )
                assert got == wanted, (tier, start, rolled_up)
                assert writer.rows == len(rows)


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe"]
)
def test_offset_span_ends_at_the_change(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    end = start + 366 * DAY
    changes = []
    while start < end:
        offset, suffix, until = offset_span(tz, start, end)
        here = datetime.fromtimestamp(start, tz)
        assert offset == here.utcoffset().total_seconds()  # type: ignore[union-attr]
        assert here.isoformat().endswith(suffix)
        assert datetime.fromtimestamp(until - 1, tz).utcoffset() == timedelta(
            seconds=offset
        )
        changes.append(until)
        start = until
    assert len(changes) == 3  # two changes within the year, then the end
    for change in changes[:-1]:
        before, after = (
            datetime.fromtimestamp(t, tz).utcoffset() for t in (change - 1, change)
        )
        assert before != after


def test_upgraded_file_exports_what_it_did(tmp_path: Path) -> None:
    """A version 1 file (no lines) is migrated with lines for every row."""
    from custom_components.homelab_metrics.history import schema

    conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version=1")
    conn.executemany(
        f"INSERT INTO raw (server_id, ts, {', '.join(KEYS)}) VALUES (?, ?, {', '.join('?' * len(KEYS))})",
        [
            ("a", ts, ts / 7, None, -0.0001, 1.0, 12345.6, 0.0, math.inf)
            for ts in range(0, 6000, 60)
        ],
    )
    assert schema.migrate(conn) == 1
    write = text.tier_writer(Tier.RAW)
    for line, *values in conn.execute(f"SELECT line, {', '.join(KEYS)} FROM raw"):
        assert line == write(*values)
    conn.close()
    assert [m.key for m in METRICS] == list(KEYS)


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"])
async def test_a_window_of_millennia_reads_only_its_rows(
    store: HistoryStore, zone: str
) -> None:
    """A custom window from year 1 to 9999 is the file of the rows it holds: the offset search and
    the SQL runs cover only the stretch with rows, so no time outside Python's dates is looked at
    and the cost does not grow with the window."""
    tz = ZoneInfo(zone)
    now = int(datetime(2025, 11, 24, tzinfo=UTC).timestamp())
    await store.async_add_many(
        "a",
        [Sample(timestamp=ts, cpu_percent=ts % 7) for ts in range(now - DAY, now, 600)],
    )
    first = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
    last = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
    for tier in Tier:
        rows = [
            row
            async for batch in store.async_query("a", tier, now - 2 * DAY, now, now=now)
            for row in batch
        ]
        expected = make_writer("json", tier, meta(tier, tz))
        wanted = b"".join(iter_export(expected, [rows]))
        writer = make_writer("json", tier, meta(tier, tz))
        got = b"".join(
            [
                c
                async for c in store.async_export(
                    "a", tier, first, last, writer, now=now
                )
            ]
        )
        assert got == wanted, tier
        # Nothing at all in the window: a file without rows.
        empty = make_writer("csv", tier, meta(tier, tz))
        chunks = [
            c
            async for c in store.async_export(
                "a", tier, first, now - 3 * DAY, empty, now=now
            )
        ]
        assert b"".join(chunks) == empty.start()
        assert empty.rows == 0
