"""Export speed through a real Home Assistant, against Home Assistant's own history API.

Usage: .venv/bin/python benchmarks/export.py [--servers 50] [--runs 5]

Starts `hass -c` on a temporary config whose history database holds N servers (benchmarks/generate.py),
adds server_000 through the config flow (a real node_exporter on loopback), and posts the same 7 days
of that server's CPU, memory and disk polls as states of three sensors into the recorder. Then prints,
median of --runs: the time for our view to export (CSV and JSON) and for /api/history/period to return
those three sensors over the same 7 days, with the ratio, plus the Home Assistant process's memory.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
import sqlite3
import statistics
import tempfile
import time

import _path  # noqa: F401
import aiohttp
from generate import DAY, fill

from tests.e2e.agents import RealAgent
from tests.e2e.hass import RealHomeAssistant

SENSORS = {
    "cpu_percent": "sensor.bench_cpu",
    "memory_percent": "sensor.bench_memory",
    "disk_percent": "sensor.bench_disk",
}


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process, in MB."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(
        fields["VmHWM"].split()[0]
    ) / 1024


async def timed_get(hass: RealHomeAssistant, path: str) -> tuple[float, int]:
    """Seconds to read the whole answer, and its size."""
    assert hass.session is not None
    start = time.perf_counter()
    async with hass.session.get(
        hass.url + path, headers={"Authorization": f"Bearer {hass.token}"}
    ) as response:
        response.raise_for_status()
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
    return time.perf_counter() - start, size


async def post_states(hass: RealHomeAssistant, db: Path, start: int) -> int:
    """The raw 7 days of server_000 as states of three sensors, through the REST API."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT ts, cpu_percent, memory_percent, disk_percent FROM raw "
            "WHERE server_id = 'server_000' AND ts >= ? ORDER BY ts",
            (start,),
        ).fetchall()
    queue: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    for _ts, *values in rows:
        for entity_id, value in zip(SENSORS.values(), values, strict=True):
            if value is not None:
                queue.put_nowait((entity_id, value))
    total = queue.qsize()

    async def worker() -> None:
        assert hass.session is not None
        while not queue.empty():
            entity_id, value = queue.get_nowait()
            async with hass.session.post(
                f"{hass.url}/api/states/{entity_id}",
                json={
                    "state": value,
                    "attributes": {
                        "unit_of_measurement": "%",
                        "state_class": "measurement",
                    },
                },
                headers={"Authorization": f"Bearer {hass.token}"},
            ) as response:
                response.raise_for_status()

    await asyncio.gather(*(worker() for _ in range(8)))
    return total


async def main(servers: int, runs: int) -> None:
    """Set everything up, then measure."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config"
        config.mkdir()
        now = int(time.time())
        started = time.perf_counter()
        await fill(config / "homelab_metrics.db", servers=servers, now=now)
        print(
            f"history of {servers} servers generated in {time.perf_counter() - started:.0f} s"
        )
        agent = RealAgent("node_exporter").start()
        try:
            async with RealHomeAssistant(
                config, extra_config="recorder:\n  commit_interval: 1\nhistory:\n"
            ) as hass:
                await hass.add_server(
                    "node_exporter", agent.host, agent.port, "server_000"
                )
                posted_from = time.time()
                states = await post_states(
                    hass, config / "homelab_metrics.db", now - 7 * DAY
                )
                await asyncio.sleep(3)  # let the recorder commit
                print(
                    f"{states:,} states posted to the recorder in {time.time() - posted_from:.0f} s"
                )
                start_iso = datetime.fromtimestamp(posted_from - 60, UTC).isoformat()
                history_path = (
                    f"/api/history/period/{start_iso.replace('+00:00', 'Z')}?"
                    f"filter_entity_id={','.join(SENSORS.values())}&minimal_response&no_attributes"
                )
                # Just inside raw retention, so the custom window is served from the raw tier.
                week_start = (
                    datetime.fromtimestamp(now - 7 * DAY + 600, UTC)
                    .isoformat()
                    .replace("+00:00", "Z")
                )
                week_end = (
                    datetime.fromtimestamp(now + 60, UTC)
                    .isoformat()
                    .replace("+00:00", "Z")
                )
                export = "/api/homelab_metrics/servers/server_000/export"
                cases = {
                    "baseline: GET /api/ (HTTP + auth only)": "/api/",
                    "ours 7d hourly CSV": f"{export}?range=7d&format=csv",
                    "ours 7d hourly JSON": f"{export}?range=7d&format=json",
                    "ours 7d raw CSV (custom window)": f"{export}?start={week_start}&end={week_end}&format=csv",
                    "ours 7d raw JSON (custom window)": f"{export}?start={week_start}&end={week_end}&format=json",
                    "ours 24h raw CSV": f"{export}?range=24h&format=csv",
                    "ours 12m daily CSV": f"{export}?range=12m&format=csv",
                    "HA history API, 3 sensors, 7d": history_path,
                }
                results = {}
                assert hass.process is not None
                for name, path in cases.items():
                    times, size = [], 0
                    for _ in range(runs):
                        seconds, size = await timed_get(hass, path)
                        times.append(seconds)
                    results[name] = (
                        statistics.median(times),
                        size,
                        *rss_mb(hass.process.pid),
                    )
                reference = results["HA history API, 3 sensors, 7d"][0]
                print(
                    f"\n{'request':36} {'median ms':>10} {'kB':>9} {'vs history API':>15} {'HA RSS MB':>10} {'peak MB':>8}"
                )
                for name, (seconds, size, rss, peak) in results.items():
                    print(
                        f"{name:36} {seconds * 1000:10.1f} {size / 1000:9.1f} {reference / seconds:14.1f}x "
                        f"{rss:10.0f} {peak:8.0f}"
                    )
        finally:
            agent.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.servers, args.runs))
    except aiohttp.ClientError as err:
        raise SystemExit(f"benchmark failed: {err}") from err
