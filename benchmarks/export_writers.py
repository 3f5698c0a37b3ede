"""Throughput of the CSV and JSON export writers alone (no store, no Home Assistant).

Usage: .venv/bin/python benchmarks/export_writers.py [--rows 200000] [--runs 3] [--batch 2000]

Prints, per tier, format and time zone, the median of --runs: rows per second (CPU time of
formatting and encoding; the rows are made beforehand, as the store's export reader hands them:
a missing value as infinity) and bytes per row. A last pass runs the same export under
tracemalloc and prints its peak, which must not depend on --rows.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, tzinfo
import math
import random
import statistics
import time
import tracemalloc
from typing import Any
from zoneinfo import ZoneInfo

import _path  # noqa: F401

from custom_components.homelab_metrics.export.writers import (
    ExportMeta,
    iter_export,
    make_writer,
)
from custom_components.homelab_metrics.history.metrics import Tier, columns_for
from custom_components.homelab_metrics.history.ranges import RESOLUTION

STEP = {Tier.RAW: 60, Tier.HOURLY: 3600, Tier.DAILY: 86_400}


def make_rows(tier: Tier, count: int, seed: int = 1) -> list[tuple[Any, ...]]:
    """Rows like the store's: percents, loads, byte rates, a missing value now and then."""
    rnd = random.Random(seed)
    width = len(columns_for(tier)) - 1
    start = 1_764_000_000
    rows: list[tuple[Any, ...]] = []
    for i in range(count):
        values: list[Any] = [rnd.uniform(0, 100) for _ in range(width)]
        if i % 50 == 0:
            values[-2] = (
                math.inf
            )  # missing (a server without a temperature sensor at times)
        if tier is not Tier.RAW:
            values[-1] = rnd.randrange(1, 61)
        rows.append((start + i * STEP[tier], *values))
    return rows


def batches(rows: list[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows in store-sized batches."""
    for first in range(0, len(rows), size):
        yield rows[first : first + size]


def meta(tier: Tier, tz: tzinfo, name: str) -> ExportMeta:
    """Metadata of a benchmark export."""
    return ExportMeta(
        server_id="bench",
        server_name="Bench",
        range=None,
        tier=tier,
        resolution=RESOLUTION[tier],
        timezone=tz,
        timezone_name=name,
        exported_at=1_764_000_000,
    )


def run(
    fmt: str, tier: Tier, tz: tzinfo, name: str, rows: list[tuple[Any, ...]], batch: int
) -> tuple[float, int]:
    """CPU seconds and bytes of one export."""
    writer = make_writer(fmt, tier, meta(tier, tz, name))
    begin = time.process_time()
    size = sum(len(chunk) for chunk in iter_export(writer, batches(rows, batch)))
    return time.process_time() - begin, size


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    zones: list[tuple[tzinfo, str]] = [
        (UTC, "UTC"),
        (ZoneInfo("Europe/Berlin"), "Europe/Berlin"),
    ]
    print(f"{args.rows:,} rows, batches of {args.batch}, median of {args.runs} runs")
    print(f"{'tier':7} {'format':6} {'time zone':14} {'rows/s':>10} {'bytes/row':>10}")
    for tier in (Tier.RAW, Tier.HOURLY):
        rows = make_rows(tier, args.rows)
        for fmt in ("csv", "json"):
            for tz, name in zones:
                results = [
                    run(fmt, tier, tz, name, rows, args.batch) for _ in range(args.runs)
                ]
                seconds = statistics.median(r[0] for r in results)
                size = results[0][1]
                print(
                    f"{tier.value:7} {fmt:6} {name:14} {args.rows / seconds:>10,.0f}"
                    f" {size / args.rows:>10.1f}"
                )
    rows = make_rows(Tier.RAW, args.rows)
    for fmt in ("csv", "json"):
        tracemalloc.start()
        run(fmt, Tier.RAW, UTC, "UTC", rows, args.batch)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak traced memory, raw {fmt}: {peak / 1024 / 1024:.2f} MB")


if __name__ == "__main__":
    main()
