"""History store figures for N servers: writes, rollups, queries, size, memory.

Usage: .venv/bin/python benchmarks/history.py [--servers 50] [--db FILE]
Fills a database through benchmarks/generate.py (7 days raw at 1-minute polls, 90 days hourly,
400 days daily per server), then measures on it. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import resource
import tempfile
import time

import _path  # noqa: F401
from generate import DAY, fill, server_samples

from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import HistoryStore


async def measure(servers: int, db: Path) -> None:
    """Fill, then time the operations the integration performs."""
    now = int(time.time())
    now -= now % 3600
    result = await fill(db, servers=servers, now=now - 1)
    print(f"servers                         {servers}")
    print(
        f"samples written (bulk)          {result.samples:,} in {result.write_seconds:.1f} s "
        f"= {result.samples / result.write_seconds:,.0f} samples/s"
    )
    print(
        f"full catch-up rollup            {result.rollup_seconds:.2f} s "
        f"({result.rollup.hours:,} hours, {result.rollup.days:,} days, {result.rollup.pruned:,} rows pruned)"
    )

    store = HistoryStore(db)
    await store.async_open()
    # The poll path: one sample per server per minute, one transaction each, for one hour.
    started = time.perf_counter()
    count = 0
    for minute in range(60):
        for n in range(servers):
            sample = next(
                server_samples(n, now + minute * 60, now + minute * 60 + 1, 60)
            )
            await store.async_add(f"server_{n:03d}", sample)
            count += 1
    elapsed = time.perf_counter() - started
    print(
        f"poll-path inserts (1 per call)  {count / elapsed:,.0f} samples/s ({elapsed / count * 1e3:.2f} ms each)"
    )

    started = time.perf_counter()
    stats = await store.async_rollup(now + 3600 + 60)
    print(
        f"hourly rollup, all servers      {(time.perf_counter() - started) * 1e3:.0f} ms ({stats.hours} hours)"
    )

    end = now + 3600
    for tier, days in (
        (Tier.RAW, 1),
        (Tier.RAW, 7),
        (Tier.HOURLY, 30),
        (Tier.HOURLY, 90),
        (Tier.DAILY, 400),
    ):
        started = time.perf_counter()
        rows = 0
        for n in range(min(servers, 10)):
            async for batch in store.async_query(
                f"server_{n:03d}", tier, end - days * DAY, end + 1
            ):
                rows += len(batch)
        elapsed = time.perf_counter() - started
        print(
            f"query {tier.value:6} {days:3} days         {rows / elapsed:,.0f} rows/s ({rows // min(servers, 10):,} rows per server)"
        )
    await store.async_close()

    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    print(
        f"database size                   {size / 1e6:.1f} MB = {size / servers / 1e6:.2f} MB per server"
    )
    print(
        f"peak RSS                        {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
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
