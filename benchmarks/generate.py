"""Fill a history database with realistic data, then let the store's own rollup finish it.

Usage: .venv/bin/python benchmarks/generate.py --servers 50 --out /tmp/history.db

Per server, history reaches back `daily_days`:
- the last `raw_days`: raw polls every `interval` seconds (the store's bulk write path);
- back to `hourly_days` (from that local midnight): pre-aggregated UTC hours, written with plain
  SQL as the store's rollup would have left them, each marking its day for the rollup;
- older: one pre-aggregated bucket per local day, which only feeds that day's daily row (the
  rollup prunes the bucket itself, being older than the hourly retention).
One rollup then turns the raw week into hours, makes every daily row (weighted by sample counts)
and prunes what retention drops, exactly as a Home Assistant that was off for a week would on its
next start. The values follow a daily CPU rhythm, slowly drifting memory, a growing disk, noisy
network traffic and a CPU-driven temperature (absent on some servers, as on VMs).

Importable: `await fill(path, servers=..., now=...)`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta
import math
from pathlib import Path
import random
import sqlite3
import time
from zoneinfo import ZoneInfo

import _path  # noqa: F401

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.metrics import METRICS
from custom_components.homelab_metrics.history.ranges import DAY, HOUR
from custom_components.homelab_metrics.history.schema import line_functions
from custom_components.homelab_metrics.history.sql import AGGREGATE_LINE
from custom_components.homelab_metrics.history.store import HistoryStore, RollupStats

BATCH = 10_000

type Stats = tuple[float, float, float, int]
"""One metric over one bucket: avg, min, max and how many samples had it."""
type Bucket = tuple[int, int, dict[str, Stats]]
"""A pre-aggregated bucket: its start, its sample count, and stats by metric."""


@dataclass(frozen=True, kw_only=True)
class FillResult:
    """What fill() wrote and how long it took."""

    samples: int
    """Raw polls written."""
    buckets: int
    """Pre-aggregated buckets imported."""
    write_seconds: float
    rollup_seconds: float
    rollup: RollupStats


@dataclass(frozen=True, kw_only=True)
class ServerModel:
    """One server's character: the smooth part of each metric and how noisy it is."""

    base_cpu: float
    base_mem: float
    disk_start: float
    has_temp: bool
    origin: int

    @classmethod
    def from_seed(cls, seed: int, origin: int) -> ServerModel:
        """A server drawn from the seed; `origin` is when its disk growth starts."""
        rng = random.Random(seed)
        return cls(
            base_cpu=rng.uniform(3, 30),
            base_mem=rng.uniform(20, 70),
            disk_start=rng.uniform(10, 60),
            has_temp=rng.random() < 0.7,
            origin=origin,
        )

    def smooth(self, ts: int) -> dict[str, float]:
        """Noise-free values at ts: daily rhythm, weekly memory drift, linear disk growth."""
        phase = math.sin((ts % DAY) / DAY * 2 * math.pi)
        cpu = _clamp(self.base_cpu * (1 + 0.6 * phase))
        return {
            "cpu_percent": cpu,
            "memory_percent": _clamp(
                self.base_mem + 5 * phase + 8 * math.sin(ts / (7 * DAY))
            ),
            "disk_percent": min(
                99.0, self.disk_start + (ts - self.origin) / DAY * 0.02
            ),
            "load_1m": cpu / 25 + 0.1,
            "network_rx_bytes_per_second": 2e5 * (1 + phase),
            "network_tx_bytes_per_second": 5e4,
            "temperature_celsius": 40 + cpu * 0.3,
        }


NOISE = {
    "cpu_percent": 4.0,
    "memory_percent": 1.0,
    "disk_percent": 0.0,
    "load_1m": 0.1,
    "network_rx_bytes_per_second": 1.5e5,
    "network_tx_bytes_per_second": 4e4,
    "temperature_celsius": 1.0,
}
"""Standard deviation of each metric's poll-to-poll noise."""

_BOUNDS = {
    "cpu_percent": (0.0, 100.0),
    "memory_percent": (0.0, 100.0),
    "disk_percent": (0.0, 100.0),
}


def _midnight_before(ts: int, zone: ZoneInfo) -> int:
    """The local midnight starting the day that holds ts."""
    day = datetime.fromtimestamp(ts, zone).date()
    return int(datetime.combine(day, dtime(0), zone).timestamp())


def _local_day(ts: int, zone: ZoneInfo) -> tuple[int, int]:
    """The local midnights around ts."""
    day = datetime.fromtimestamp(ts, zone).date()
    start = datetime.combine(day, dtime(0), zone)
    return int(start.timestamp()), int(
        datetime.combine(day + timedelta(days=1), dtime(0), zone).timestamp()
    )


def _clamp(value: float, low: float = 0.0, high: float = 100.0) -> float:
    return max(low, min(high, value))


def _bounded(key: str, value: float) -> float:
    low, high = _BOUNDS.get(key, (0.0, math.inf))
    return max(low, min(high, value))


def server_samples(seed: int, start: int, end: int, step: int) -> Iterator[Sample]:
    """One server's raw polls from start to end, every step seconds."""
    model = ServerModel.from_seed(seed, origin=start)
    rng = random.Random(f"{seed}:{start}")
    for ts in range(start, end, step):
        smooth = model.smooth(ts)
        values = {
            key: round(_bounded(key, smooth[key] + rng.gauss(0, NOISE[key])), 3)
            for key in smooth
        }
        if not model.has_temp:
            values["temperature_celsius"] = None
        yield Sample(timestamp=ts, **values)


def hour_spans(start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, length) of each UTC hour from start to end."""
    first = start + (-start) % HOUR
    return ((ts, HOUR) for ts in range(first, end - HOUR + 1, HOUR))


def day_spans(start: int, end: int, zone: ZoneInfo) -> Iterator[tuple[int, int]]:
    """(first whole hour, length) of each local day that begins in [start, end)."""
    day = datetime.fromtimestamp(start, zone).date()
    while True:
        midnight = int(datetime.combine(day, dtime(0), zone).timestamp())
        day += timedelta(days=1)
        following = int(datetime.combine(day, dtime(0), zone).timestamp())
        if midnight >= end:
            return
        first = midnight + (-midnight) % HOUR
        if midnight >= start:
            yield first, following - first + (-following) % HOUR


def server_buckets(
    seed: int, spans: Iterable[tuple[int, int]], interval: int, origin: int
) -> Iterator[Bucket]:
    """Pre-aggregated buckets for the (start, length) spans, as if polled every `interval` s."""
    model = ServerModel.from_seed(seed, origin=origin)
    rng = random.Random(f"{seed}:{origin}")
    for ts, span in spans:
        polls = span // interval
        # Expected extreme of `polls` normal draws, in standard deviations.
        spread = math.sqrt(2 * math.log(polls)) if polls > 1 else 0.0
        # Each bucket loses a few polls now and then (agent restarts, network hiccups).
        count = polls - (
            rng.randint(1, max(1, polls // 20)) if rng.random() < 0.05 else 0
        )
        points = [model.smooth(ts + span * i // 6) for i in range(6)]
        metrics: dict[str, Stats] = {}
        for key, sigma in NOISE.items():
            if key == "temperature_celsius" and not model.has_temp:
                continue
            curve = [p[key] for p in points]
            avg = sum(curve) / len(curve) + rng.gauss(0, sigma / math.sqrt(count))
            metrics[key] = (
                round(_bounded(key, avg), 3),
                round(_bounded(key, min(curve) - sigma * spread), 3),
                round(_bounded(key, max(curve) + sigma * spread), 3),
                count,
            )
        yield ts, count, metrics


_KEYS = [m.key for m in METRICS]
_AGGREGATE_COLUMNS = ", ".join(
    f"{key}_{stat}" for key in _KEYS for stat in ("avg", "min", "max", "n")
)
_INSERT_HOURLY = (
    f"INSERT OR REPLACE INTO hourly (server_id, ts, {_AGGREGATE_COLUMNS}, samples) "
    f"VALUES ({', '.join('?' for _ in range(3 + 4 * len(_KEYS)))})"
)
_NO_SAMPLES = (None, None, None, 0)


def write_hours(
    conn: sqlite3.Connection, server_id: str, buckets: list[Bucket], zone: ZoneInfo
) -> None:
    """Store buckets as hourly rows and mark their local days for the next rollup (plain SQL)."""
    with conn:
        conn.executemany(
            _INSERT_HOURLY,
            [
                (
                    server_id,
                    ts,
                    *(v for key in _KEYS for v in metrics.get(key, _NO_SAMPLES)),
                    samples,
                )
                for ts, samples, metrics in buckets
            ],
        )
        # Each row's line, as the rollup writes it.
        line_functions(conn, _KEYS)
        conn.execute(
            f"UPDATE hourly SET line = {AGGREGATE_LINE} "
            "WHERE server_id = ? AND line = ''",
            (server_id,),
        )
        # A day ends with its last whole hour (the store's rule for half-hour zones).
        conn.executemany(
            "INSERT OR IGNORE INTO dirty_days VALUES (?, ?, ?)",
            {
                (server_id, start, end + (-end) % HOUR)
                for start, end in (_local_day(ts, zone) for ts, _, _ in buckets)
            },
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
    """Write the history of `servers` servers (or of the named ones) into the database at path.

    `now` (default: the clock) is rounded down to a whole hour; the rollup runs at that time.
    """
    names = server_ids or [f"server_{n:03d}" for n in range(servers)]
    now = int(time.time()) if now is None else now
    now -= now % HOUR
    zone = ZoneInfo(time_zone)
    raw_start = now - raw_days * DAY
    # Hours start at a local midnight, so every older day is exactly one imported bucket.
    hourly_start = min(raw_start, _midnight_before(now - hourly_days * DAY, zone))
    history_start = min(hourly_start, now - daily_days * DAY)
    store = HistoryStore(path, time_zone=time_zone)
    await store.async_open()
    samples = buckets = 0
    started = time.perf_counter()
    try:
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA busy_timeout=5000")
            for n, name in enumerate(names):
                server_seed = seed * 100_003 + n
                spans = [
                    *day_spans(history_start, hourly_start, zone),
                    *hour_spans(hourly_start, raw_start),
                ]
                write_hours(
                    conn,
                    name,
                    list(server_buckets(server_seed, spans, interval, history_start)),
                    zone,
                )
                buckets += len(spans)
        for n, name in enumerate(names):
            server_seed = seed * 100_003 + n
            raw: list[Sample] = []
            for sample in server_samples(server_seed, raw_start, now, interval):
                raw.append(sample)
                if len(raw) == BATCH:
                    await store.async_add_many(name, raw)
                    samples += len(raw)
                    raw = []
            await store.async_add_many(name, raw)
            samples += len(raw)
        write_seconds = time.perf_counter() - started
        started = time.perf_counter()
        stats = await store.async_rollup(now)
        rollup_seconds = time.perf_counter() - started
    finally:
        await store.async_close()
    return FillResult(
        samples=samples,
        buckets=buckets,
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
    parser.add_argument("--raw-days", type=int, default=7)
    parser.add_argument("--hourly-days", type=int, default=90)
    parser.add_argument("--daily-days", type=int, default=400)
    parser.add_argument(
        "--interval", type=int, default=60, help="seconds between polls"
    )
    parser.add_argument("--time-zone", default="UTC", help="daily buckets' time zone")
    parser.add_argument(
        "--server-id", action="append", help="name the servers (repeatable)"
    )
    args = parser.parse_args()
    result = asyncio.run(
        fill(
            args.out,
            servers=args.servers,
            raw_days=args.raw_days,
            hourly_days=args.hourly_days,
            daily_days=args.daily_days,
            interval=args.interval,
            seed=args.seed,
            time_zone=args.time_zone,
            server_ids=args.server_id,
        )
    )
    print(
        f"{args.out}: {result.samples:,} raw samples and {result.buckets:,} buckets written "
        f"in {result.write_seconds:.1f} s, rollup {result.rollup_seconds:.1f} s "
        f"({result.rollup})"
    )


if __name__ == "__main__":
    main()
