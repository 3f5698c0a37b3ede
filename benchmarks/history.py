"""History store figures for N servers: writes, rollups, queries, size, memory, event-loop lag.

Usage: .venv/bin/python benchmarks/history.py [--servers 50] [--rounds 3] [--db FILE]

Fills a database through benchmarks/generate.py (7 days of 1-minute polls, 90 days of hours,
400 days of days per server; the fill ends with the catch-up rollup of a week not rolled up), then
times what the integration does: one poll per server per minute for `rounds` hours, each hour's
rollup, and exports of each tier. Every timed operation is repeated and printed as its median with
the spread (10th to 90th percentile, and the maximum). "loop lag" is how late a 1 ms timer on the
event loop fired meanwhile: what the store's calls cost Home Assistant's loop. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
import resource
import sqlite3
import statistics
import tempfile
import time

import _path  # noqa: F401
from generate import DAY, HOUR, fill, server_samples

from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import HistoryStore

QUERIED_SERVERS = 10
LABEL = 32


def _size(db: Path) -> tuple[int, int]:
    """Bytes on disk (file, WAL and shared memory) and bytes of pages in use."""
    on_disk = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    with sqlite3.connect(db) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return on_disk, (pages - free) * page


def spread(seconds: list[float]) -> str:
    """Median in ms, with 10th-90th percentile and maximum, of timings in seconds."""
    ms = sorted(s * 1e3 for s in seconds)
    if len(ms) < 2:
        return f"{ms[0]:.2f} ms (n=1)"
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    return (
        f"median {statistics.median(ms):.2f} ms "
        f"(p10 {deciles[0]:.2f} - p90 {deciles[-1]:.2f}, max {ms[-1]:.2f}, n={len(ms)})"
    )


def line(label: str, text: str) -> None:
    """One figure, aligned."""
    print(f"{label:<{LABEL}}{text}")


class LoopLag:
    """How late a 1 ms timer fires on the loop, while a phase runs."""

    def __init__(self) -> None:
        """Nothing measured yet."""
        self.lags: list[float] = []

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.001)
            self.lags.append(max(0.0, loop.time() - start - 0.001))

    @asynccontextmanager
    async def measure(self) -> AsyncIterator[None]:
        """Measure while the block runs."""
        task = asyncio.create_task(self._tick())
        try:
            yield
        finally:
            task.cancel()

    def summary(self) -> str:
        """p99 and maximum lag in ms."""
        if not self.lags:
            return "-"
        ms = sorted(lag * 1e3 for lag in self.lags)
        return f"p99 {ms[int(len(ms) * 0.99) - 1]:.2f} ms, max {ms[-1]:.2f} ms"


async def timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    """Seconds each call took, one after the other."""
    out = []
    for call in calls:
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


async def read_all(
    counts: list[int],
    store: HistoryStore,
    server: str,
    tier: Tier,
    start: int,
    now: int,
) -> None:
    """Read an export's rows as the export does, batch by batch; note how many."""
    rows = 0
    async for batch in store.async_query(server, tier, start, now + 1, now=now):
        rows += len(batch)
    counts.append(rows)


async def measure(servers: int, rounds: int, db: Path) -> None:
    """Fill, then time the operations the integration performs."""
    now = int(time.time())
    now -= now % HOUR
    result = await fill(db, servers=servers, now=now)
    line("servers", str(servers))
    line(
        "fill (generate + write)",
        f"{result.samples:,} raw samples + {result.buckets:,} imported buckets in "
        f"{result.write_seconds:.1f} s",
    )
    line(
        "catch-up rollup (7 days raw)",
        f"{result.rollup_seconds:.2f} s ({result.rollup.hours:,} hours, "
        f"{result.rollup.days:,} days, {result.rollup.pruned:,} rows pruned)",
    )

    store = HistoryStore(db)
    await store.async_open()
    # Bulk path (async_add_many) into the full database, samples generated beforehand.
    bulk = {
        f"bulk_{n:03d}": list(server_samples(10_000 + n, now - 7 * DAY, now, 60))
        for n in range(QUERIED_SERVERS)
    }
    chunks = [
        (name, samples[first : first + 2000])
        for name, samples in bulk.items()
        for first in range(0, len(samples), 2000)
    ]
    took = await timed(
        [lambda n=name, c=chunk: store.async_add_many(n, c) for name, chunk in chunks]
    )
    line(
        "bulk write, 2000 samples/call",
        f"{spread(took)} = {2000 / statistics.median(took):,.0f} samples/s",
    )
    took = await timed([lambda n=name: store.async_remove_server(n) for name in bulk])
    line("remove a server (7 days raw)", spread(took))
    del bulk, chunks

    # The poll path: one sample per server per minute, one call and transaction each.
    polls = {
        n: list(server_samples(n, now, now + rounds * HOUR, 60)) for n in range(servers)
    }
    poll_lag = LoopLag()
    poll_times: list[float] = []
    rollup_times: list[float] = []
    pruned = hours = 0
    for hour in range(rounds):
        async with poll_lag.measure():
            poll_times += await timed(
                [
                    partial(store.async_add, f"server_{n:03d}", polls[n][minute])
                    for minute in range(hour * 60, (hour + 1) * 60)
                    for n in range(servers)
                ]
            )
        started = time.perf_counter()
        stats = await store.async_rollup(now + (hour + 1) * HOUR + 60)
        rollup_times.append(time.perf_counter() - started)
        pruned += stats.pruned
        hours += stats.hours
    line("poll-path write (1 per call)", spread(poll_times))
    line("  loop lag meanwhile", poll_lag.summary())
    line(
        "hourly rollup, all servers",
        f"{spread(rollup_times)} ({hours // rounds} hours, {pruned // rounds} rows pruned)",
    )

    later = now + rounds * HOUR + 60
    queried = min(servers, QUERIED_SERVERS)
    for tier, days in (
        (Tier.RAW, 1),
        (Tier.RAW, 7),
        (Tier.HOURLY, 30),
        (Tier.HOURLY, 90),
        (Tier.DAILY, 400),
    ):
        counts: list[int] = []
        lag = LoopLag()
        async with lag.measure():
            took = await timed(
                [
                    partial(
                        read_all,
                        counts,
                        store,
                        f"server_{n:03d}",
                        tier,
                        later - days * DAY,
                        later,
                    )
                    for _ in range(3)
                    for n in range(queried)
                ]
            )
        per_query = statistics.median(counts)
        line(
            f"query {tier.value:6} {days:3} days",
            f"{spread(took)}, {per_query:,.0f} rows = "
            f"{per_query / statistics.median(took):,.0f} rows/s; loop lag {lag.summary()}",
        )
    await store.async_close()

    on_disk, used = _size(db)
    line(
        "database size",
        f"{on_disk / 1e6:.1f} MB on disk, {used / 1e6:.1f} MB in use = "
        f"{used / servers / 1e6:.2f} MB per server",
    )
    line(
        "peak RSS",
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
    )


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=3, help="hours of polls, each with its rollup"
    )
    parser.add_argument(
        "--db", type=Path, help="database file to create (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.db:
        asyncio.run(measure(args.servers, args.rounds, args.db))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args.servers, args.rounds, Path(folder) / "history.db"))


if __name__ == "__main__":
    main()
