"""Fill a history database with realistic data through the store's own write and rollup code.

Usage: .venv/bin/python benchmarks/generate.py --servers 50 --out /tmp/history.db

Per server: raw polls every `interval` seconds for the last `raw_days`, polls every 10 minutes
before that back to `hourly_days`, and hourly polls back to `daily_days`. One rollup then makes the
hourly and daily tiers and prunes what retention drops, exactly as a Home Assistant that was off
for a long time would on its next start. Importable: `await fill(...)`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
import math
from pathlib import Path
import random
import time

import _path  # noqa: F401

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.store import HistoryStore, RollupStats

DAY = 86_400


@dataclass(frozen=True, kw_only=True)
class FillResult:
    """What fill() wrote and how long it took."""

    samples: int
    write_seconds: float
    rollup_seconds: float
    rollup: RollupStats


def server_samples(seed: int, start: int, end: int, step: int) -> Iterator[Sample]:
    """One server's polls: a daily CPU rhythm, slowly drifting memory, a growing disk, bursty network."""
    rng = random.Random(seed)
    base_cpu = rng.uniform(3, 30)
    base_mem = rng.uniform(20, 70)
    disk = rng.uniform(10, 60)
    has_temp = rng.random() < 0.7
    for ts in range(start, end, step):
        phase = math.sin((ts % DAY) / DAY * 2 * math.pi)
        cpu = max(0.0, min(100.0, base_cpu * (1 + 0.6 * phase) + rng.gauss(0, 4)))
        yield Sample(
            timestamp=ts,
            cpu_percent=round(cpu, 2),
            memory_percent=round(
                max(0.0, min(100.0, base_mem + 5 * phase + rng.gauss(0, 1))), 2
            ),
            disk_percent=round(min(99.0, disk + (ts - start) / DAY * 0.02), 3),
            load_1m=round(cpu / 25 + rng.random() * 0.2, 2),
            network_rx_bytes_per_second=round(
                abs(rng.gauss(2e5, 1.5e5)) * (1 + phase), 1
            ),
            network_tx_bytes_per_second=round(abs(rng.gauss(5e4, 4e4)), 1),
            temperature_celsius=round(40 + cpu * 0.3 + rng.gauss(0, 1), 1)
            if has_temp
            else None,
        )


async def fill(
    path: Path,
    *,
    servers: int = 50,
    raw_days: int = 7,
    hourly_days: int = 90,
    daily_days: int = 400,
    interval: int = 60,
    now: int | None = None,
    seed: int = 0,
    time_zone: str = "UTC",
    server_ids: list[str] | None = None,
) -> FillResult:
    """Write the history of `servers` servers (or of the named ones) into the database at path."""
    names = server_ids or [f"server_{n:03d}" for n in range(servers)]
    now = int(time.time()) if now is None else now
    now -= now % interval
    store = HistoryStore(path, time_zone=time_zone)
    await store.async_open()
    spans = (
        (now - daily_days * DAY, now - hourly_days * DAY, 3600),
        (now - hourly_days * DAY, now - raw_days * DAY, 600),
        (now - raw_days * DAY, now, interval),
    )
    written = 0
    started = time.perf_counter()
    for n, name in enumerate(names):
        for start, end, step in spans:
            batch: list[Sample] = []
            for sample in server_samples(seed * 100_003 + n, start, end, step):
                batch.append(sample)
                if len(batch) == 10_000:
                    await store.async_add_many(name, batch)
                    written += len(batch)
                    batch = []
            await store.async_add_many(name, batch)
            written += len(batch)
    write_seconds = time.perf_counter() - started
    started = time.perf_counter()
    stats = await store.async_rollup(now)
    rollup_seconds = time.perf_counter() - started
    await store.async_close()
    return FillResult(
        samples=written,
        write_seconds=write_seconds,
        rollup_seconds=rollup_seconds,
        rollup=stats,
    )


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server-id", action="append", help="name the servers (repeatable)"
    )
    args = parser.parse_args()
    result = asyncio.run(
        fill(args.out, servers=args.servers, seed=args.seed, server_ids=args.server_id)
    )
    print(
        f"{args.out}: {result.samples} samples written in {result.write_seconds:.1f} s, "
        f"rollup {result.rollup_seconds:.1f} s ({result.rollup})"
    )


if __name__ == "__main__":
    main()
