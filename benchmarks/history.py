"""History store figures for N servers: writes, rollups, queries, size, memory.

Usage: .venv/bin/python benchmarks/history.py [--servers 50] [--db FILE]

Fills a database through benchmarks/generate.py (7 days of 1-minute polls, 90 days of hours,
400 days of days per server; the fill ends with the catch-up rollup of a week not rolled up), then
times what the integration does: one poll per server per minute for an hour, that hour's rollup,
and exports of each tier. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import resource
import sqlite3
import tempfile
import time

import _path  # noqa: F401
from generate import DAY, HOUR, fill, server_samples

from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import HistoryStore

QUERIED_SERVERS = 10


def _size(db: Path) -> tuple[int, int]:
    """Bytes on disk (file, WAL and shared memory) and bytes of pages in use."""
    on_disk = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    with sqlite3.connect(db) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return on_disk, (pages - free) * page


async def measure(servers: int, db: Path) -> None:
    """Fill, then time the operations the integration performs."""
    now = int(time.time())
    now -= now % HOUR
    result = await fill(db, servers=servers, now=now)
    print(f"servers                         {servers}")
    print(
        f"fill (generate + write)         {result.samples:,} raw samples + "
        f"{result.buckets:,} imported buckets in {result.write_seconds:.1f} s"
    )
    print(
        f"catch-up rollup (7 days raw)    {result.rollup_seconds:.2f} s "
        f"({result.rollup.hours:,} hours, {result.rollup.days:,} days, "
        f"{result.rollup.pruned:,} rows pruned)"
    )

    store = HistoryStore(db)
    await store.async_open()
    # Bulk path (async_add_many) into the full database, samples generated beforehand.
    bulk = {
        f"bulk_{n:03d}": list(server_samples(10_000 + n, now - 7 * DAY, now, 60))
        for n in range(QUERIED_SERVERS)
    }
    started = time.perf_counter()
    for name, samples in bulk.items():
        for first in range(0, len(samples), 2000):
            await store.async_add_many(name, samples[first : first + 2000])
    elapsed = time.perf_counter() - started
    total = sum(len(samples) for samples in bulk.values())
    print(
        f"bulk writes (2000 per call)     {total / elapsed:,.0f} samples/s "
        f"({total:,} samples in {elapsed:.2f} s)"
    )
    started = time.perf_counter()
    for name in bulk:
        await store.async_remove_server(name)
    print(
        f"remove a server (7 days raw)    "
        f"{(time.perf_counter() - started) / len(bulk) * 1e3:.1f} ms each"
    )
    del bulk
    # The poll path: one sample per server per minute, one call and transaction each.
    polls = {n: list(server_samples(n, now, now + HOUR, 60)) for n in range(servers)}
    started = time.perf_counter()
    count = 0
    for minute in range(60):
        for n in range(servers):
            await store.async_add(f"server_{n:03d}", polls[n][minute])
            count += 1
    elapsed = time.perf_counter() - started
    print(
        f"poll-path writes (1 per call)   {count / elapsed:,.0f} samples/s "
        f"({elapsed / count * 1e3:.2f} ms each)"
    )

    later = now + HOUR + 60
    started = time.perf_counter()
    stats = await store.async_rollup(later)
    print(
        f"hourly rollup, all servers      {(time.perf_counter() - started) * 1e3:.0f} ms "
        f"({stats.hours} hours, {stats.pruned} rows pruned)"
    )

    queried = min(servers, QUERIED_SERVERS)
    for tier, days in (
        (Tier.RAW, 1),
        (Tier.RAW, 7),
        (Tier.HOURLY, 30),
        (Tier.HOURLY, 90),
        (Tier.DAILY, 400),
    ):
        started = time.perf_counter()
        rows = 0
        for n in range(queried):
            async for batch in store.async_query(
                f"server_{n:03d}", tier, later - days * DAY, later + 1, now=later
            ):
                rows += len(batch)
        elapsed = time.perf_counter() - started
        print(
            f"query {tier.value:6} {days:3} days         {rows / elapsed:,.0f} rows/s "
            f"({rows // queried:,} rows per server, {elapsed / queried * 1e3:.0f} ms each)"
        )
    await store.async_close()

    on_disk, used = _size(db)
    print(
        f"database size                   {on_disk / 1e6:.1f} MB on disk, {used / 1e6:.1f} MB "
        f"in use = {used / servers / 1e6:.2f} MB per server"
    )
    print(
        f"peak RSS                        "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument(
        "--db", type=Path, help="database file to create (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.db:
        asyncio.run(measure(args.servers, args.db))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args.servers, Path(folder) / "history.db"))


if __name__ == "__main__":
    main()
