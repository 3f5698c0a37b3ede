"""One poll of a Prometheus-compatible server for a fleet, and one node's 7-day import.

Usage: .venv/bin/python benchmarks/prometheus_scale.py [--nodes 200] [--runs 20] [--kind prometheus]

A made-up fleet (`tests/e2e/prom_servers.FleetExporter`, in a child process so that its work is not
counted) serves --nodes node_exporter-like targets of ~500 samples each; the server scrapes them
every 5 s. One node also gets 7 days of history at 60 s (promtool blocks for Prometheus, the import
API for VictoriaMetrics). Printed: the wall time of one poll of every node and the client's own
CPU time for it (`time.process_time`: aiohttp, JSON and building the Samples), as medians with
min-max over --runs, for the request groupings of `POLL_BATCHES` and alternatives; then the import
of the node's 7 days, raw at 60 s and as hourly buckets. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
import multiprocessing
import statistics
import time

import _path  # noqa: F401
import aiohttp

from custom_components.homelab_metrics.agents.prometheus import (
    ImportChunk,
    PrometheusClient,
    PrometheusConfig,
    plan_import,
)
from custom_components.homelab_metrics.agents.promql import (
    FIELDS,
    POLL_BATCHES,
    RATE_FIELDS,
    ROOT_FREE,
)
from custom_components.homelab_metrics.history.metrics import METRICS
from tests.e2e.prom_servers import FleetExporter, MetricsServer, Scrape, available

GOAL = "goal: under 200 ms wall and 50 ms CPU for 200 nodes"
HISTORY_NODE = "history-000:9100"
HISTORY_FIELDS = tuple(m.key for m in METRICS)
GROUPINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "1 query (all fields)": (("up", *FIELDS),),
    "2 queries (rates, the rest)": (
        ("cpu_percent", "network_rx_bytes_per_second", "network_tx_bytes_per_second"),
        ("up", *(f for f in FIELDS if f not in RATE_FIELDS)),
    ),
    "4 queries (by family)": (
        ("up", "boot_time", "load_1m", "load_5m", "load_15m"),
        ("updates_pending", "reboot_required", *RATE_FIELDS),
        (
            "memory_percent",
            "memory_used_bytes",
            "memory_total_bytes",
            "swap_percent",
            "temperature_celsius",
        ),
        ("disk_percent", "disk_used_bytes", "disk_total_bytes", ROOT_FREE),
    ),
    "one query per field": (("up",), *((f,) for f in FIELDS)),
}
"""Request groupings to compare; every one asks for every field once (checked below)."""
for _name, _grouping in GROUPINGS.items():
    assert sorted(f for group in _grouping for f in group) == sorted(("up", *FIELDS)), (
        _name
    )


def _serve_fleet(queue: multiprocessing.Queue[str]) -> None:
    exporter = FleetExporter().start()
    queue.put(exporter.address)
    while True:
        time.sleep(3600)


def history(days: int = 7, step: int = 60) -> list[Scrape]:
    """One node's scrapes over the last days, the series a poll reads only (no filler)."""
    from tests.e2e.prom_servers import fleet_payload

    now = int(time.time()) - 120
    return [
        (HISTORY_NODE, float(at), fleet_payload(7, float(at), filler=False))
        for at in range(now - days * 86_400, now, step)
    ]


async def timed(
    func: Callable[[], Awaitable[object]], runs: int
) -> tuple[list[float], list[float], object]:
    """Wall and CPU seconds of each run, and the last result."""
    walls, cpus = [], []
    result: object = None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = await func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def spread(values: Sequence[float]) -> str:
    """Median (min-max) in milliseconds."""
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):7.1f} ms ({min(ms):.1f}-{max(ms):.1f})"


async def bench(kind: str, nodes: int, runs: int) -> None:
    """Everything for one kind of server."""
    queue: multiprocessing.Queue[str] = multiprocessing.Queue()
    child = multiprocessing.Process(target=_serve_fleet, args=(queue,), daemon=True)
    child.start()
    address = queue.get(timeout=30)
    server = MetricsServer(
        kind, fleet=(address, nodes), scrape_interval="5s", scrape_timeout="4s"
    )
    try:
        started = time.perf_counter()
        scrapes = history()
        await asyncio.to_thread(server.load, scrapes)
        print(
            f"\n{kind}: {nodes} nodes every 5 s; {len(scrapes)} scrapes of history loaded "
            f"in {time.perf_counter() - started:.1f} s"
        )
        await asyncio.to_thread(server.wait_for, 'up{job="fleet"} == 1', nodes, 120)
        # Four scrapes, so that a 30 s rate window holds data for every node.
        await asyncio.sleep(25)
        async with aiohttp.ClientSession() as session:
            client = PrometheusClient(
                session, PrometheusConfig(url=server.url, timeout=30)
            )
            print(
                f"  one poll of every node ({runs} runs of each grouping, in turn; {GOAL}):"
            )
            measured: dict[str, tuple[list[float], list[float]]] = {
                name: ([], []) for name in GROUPINGS
            }
            last: dict[str, object] = {}
            for _ in range(runs):
                for name, grouping in GROUPINGS.items():
                    walls, cpus, last[name] = await timed(
                        lambda g=grouping: client.async_poll(30, batches=g), 1
                    )
                    measured[name][0].extend(walls)
                    measured[name][1].extend(cpus)
            for name, (walls, cpus) in measured.items():
                polled = last[name] if isinstance(last[name], dict) else {}
                full = sum(
                    1
                    for s in polled.values()
                    if s is not None and s.cpu_percent is not None
                )
                marker = (
                    "  (the integration's)" if GROUPINGS[name] == POLL_BATCHES else ""
                )
                print(
                    f"    {name:28} wall {spread(walls)}  client CPU {spread(cpus)}"
                    f"  nodes {len(polled)} (with CPU {full}){marker}"
                )
            now = int(time.time())
            oldest = await client.async_oldest(HISTORY_NODE, now)
            for label, raw_days in (("raw at 60 s", 7), ("hourly buckets", 0)):
                plan = plan_import(now=now, step=60, oldest=oldest, raw_days=raw_days)

                async def run(plan: list[ImportChunk] = plan) -> int:
                    rows = 0
                    for chunk in plan:
                        rows += len(
                            await client.async_import_chunk(
                                HISTORY_NODE,
                                chunk,
                                step=60,
                                window=240,
                                fields=HISTORY_FIELDS,
                            )
                        )
                    return rows

                walls, cpus, rows = await timed(run, 3)
                print(
                    f"  import of one node's 7 days, {label:15} {len(plan):3} requests, "
                    f"{rows} rows: wall {spread(walls)}  client CPU {spread(cpus)}"
                )
    finally:
        await asyncio.to_thread(server.remove)
        child.kill()
        child.join()


def main() -> None:
    """Run the benchmark for each server that is installed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--kind", choices=("prometheus", "victoria-metrics"), action="append"
    )
    args = parser.parse_args()
    for kind in args.kind or ("prometheus", "victoria-metrics"):
        if not available(kind):
            print(f"{kind}: not installed, skipped")
            continue
        asyncio.run(bench(kind, args.nodes, args.runs))


if __name__ == "__main__":
    main()
