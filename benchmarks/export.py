"""Export speed through a real Home Assistant, against Home Assistant's own history and statistics APIs.

Usage: .venv/bin/python benchmarks/export.py [--servers 50] [--runs 15] [--pollers 20] [--db FILE]

Set-up (not measured): a history of N servers (benchmarks/generate.py; or a copy of --db, a file
generate.py wrote within the last hour); `hass -c` on a temporary config with the recorder
(commit interval 1 s), the history integration and the loop probe (tests/e2e/loop_probe);
server_000 added through the config flow (a real node_exporter on loopback), and --pollers
fake node_exporters (tests/e2e/fleet.py) added beside it at a 10 s interval, so that polls are
recorded while exports run. Then, for Home
Assistant's side of each comparison:
- raw: the 7 days of server_000's CPU, memory and disk polls posted as states of three sensors
  (about 30,000 states), and waited for until the recorder has committed every one of them (the
  history API returns them all);
- hourly: our own 30-day hourly export of server_000 (JSON) imported as long-term statistics of
  three other sensors with `recorder/import_statistics` (mean, min, max of the same buckets), and
  waited for until `recorder/statistics_during_period` returns every hour.

Measured, one run of each case in turn, --runs times (so Home Assistant's background work falls on
all cases alike): our view's export (CSV and JSON) of a raw 7-day custom window, of `7d` and of
`30d` (hourly), against `/api/history/period` (minimal_response, no_attributes) for the three
sensors and `recorder/statistics_during_period` (period hour, mean/min/max, the three sensors)
over the same hours, on one open websocket. Also an authenticated GET of `/api/` and a websocket
`ping`: the floor of each kind of request. Every time is the client's, from sending the request to
the last byte of the answer. Ratios are paired: Home Assistant's time over ours in the same run.

Then the event loop: the probe's longest wake-up delay (and the CPU the loop's thread used in
that tick) during back-to-back raw 7-day exports, during Home Assistant's history API, and while
nothing is asked; the CPU of the loop's thread per export (/proc, the main thread); and how long
the polls of those seconds waited for their history write (`HistoryStore.async_add` as the
coordinator awaits it: queue, writer thread, hand-back), the longest and the median.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import shutil
import sqlite3
import statistics
import tempfile
import time
from typing import Any

import _path  # noqa: F401
import aiohttp
from generate import DAY, HOUR, fill

from tests.e2e.agents import RealAgent
from tests.e2e.fleet import AgentSpec, Fleet
from tests.e2e.hass import RealHomeAssistant
from tests.e2e.load import PROBE, machine_load

SENSORS = {
    "cpu_percent": "sensor.bench_cpu",
    "memory_percent": "sensor.bench_memory",
    "disk_percent": "sensor.bench_disk",
}
"""Raw polls become states of these sensors."""
STATISTICS = {
    "cpu": "sensor.bench_hourly_cpu",
    "memory": "sensor.bench_hourly_memory",
    "disk": "sensor.bench_hourly_disk",
}
"""Hourly buckets (our export's `cpu_avg`, `cpu_min`, ... columns) become statistics of these."""
EXPORT = "/api/homelab_metrics/servers/server_000/export"
LOOP_SECONDS = 20.0
"""How long each event-loop phase lasts."""

type Request = Callable[[], Awaitable[int]]
"""One request: sends it, reads the whole answer, returns its size in bytes."""


def iso(ts: float) -> str:
    """UTC ISO 8601 with a Z, as a query parameter."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def thread_cpu(pid: int, tid: int) -> float:
    """CPU seconds (user + system) a thread of a process has used."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of all threads of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> str:
    """Median with the 10th-90th percentile range."""
    if len(values) < 2:
        return f"{values[0]:.2f}"
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return f"{statistics.median(values):.2f} ({deciles[0]:.2f}-{deciles[-1]:.2f})"


class Client:
    """The benchmark's requests: HTTP with the owner's token, and one open websocket."""

    def __init__(self, hass: RealHomeAssistant) -> None:
        """Nothing is connected yet."""
        self.hass = hass
        self.headers = {"Authorization": f"Bearer {hass.token}"}
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self._id = 0

    async def connect(self) -> None:
        """Open and authenticate the websocket."""
        assert self.hass.session is not None
        self.socket = await self.hass.session.ws_connect(
            f"{self.hass.url}/api/websocket", max_msg_size=0
        )
        await self.socket.receive_json()
        await self.socket.send_json({"type": "auth", "access_token": self.hass.token})
        if (await self.socket.receive_json())["type"] != "auth_ok":
            raise RuntimeError("websocket authentication failed")

    async def close(self) -> None:
        """Close the websocket."""
        if self.socket is not None:
            await self.socket.close()

    async def get(self, path: str) -> int:
        """GET a path, read every byte; the size."""
        assert self.hass.session is not None
        async with self.hass.session.get(
            self.hass.url + path, headers=self.headers
        ) as response:
            response.raise_for_status()
            size = 0
            async for chunk in response.content.iter_chunked(1 << 20):
                size += len(chunk)
        return size

    async def command_text(self, message: dict[str, Any]) -> str:
        """One websocket command; its answer as text, not decoded (the timed part)."""
        assert self.socket is not None
        self._id += 1
        await self.socket.send_str(json.dumps({"id": self._id, **message}))
        reply = await self.socket.receive()
        if reply.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"websocket closed: {reply}")
        return str(reply.data)

    async def command(self, message: dict[str, Any]) -> Any:
        """One websocket command; its result (an error raises)."""
        reply = json.loads(await self.command_text(message))
        if reply["type"] == "pong":
            return None
        if not reply.get("success"):
            raise RuntimeError(f"{message['type']}: {reply.get('error')}")
        return reply.get("result")


async def post_states(client: Client, db: Path, start: int) -> int:
    """Server_000's raw polls from `start` on as states of three sensors, through the REST API.

    Each sensor's states are posted one after another in time order (two in flight could arrive
    swapped, and Home Assistant drops a state equal to the one before), the three sensors at once;
    the number of state changes is returned.
    """
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT cpu_percent, memory_percent, disk_percent FROM raw "
            "WHERE server_id = 'server_000' AND ts >= ? ORDER BY ts",
            (start,),
        ).fetchall()
    session = client.hass.session
    assert session is not None

    async def sensor(n: int, entity_id: str) -> int:
        posted = 0
        previous = None
        for values in rows:
            # Home Assistant records a state only when it changes.
            if values[n] is None or values[n] == previous:
                continue
            previous = values[n]
            async with session.post(
                f"{client.hass.url}/api/states/{entity_id}",
                json={
                    "state": values[n],
                    "attributes": {
                        "unit_of_measurement": "%",
                        "state_class": "measurement",
                    },
                },
                headers=client.headers,
            ) as response:
                response.raise_for_status()
            posted += 1
        return posted

    counts = await asyncio.gather(
        *(sensor(n, entity_id) for n, entity_id in enumerate(SENSORS.values()))
    )
    return sum(counts)


WAIT = 300
"""Seconds the recorder gets to take in what the benchmark gave it."""


async def recorder_idle(client: Client) -> None:
    """Until the recorder's queue is empty."""
    deadline = time.monotonic() + WAIT
    while (await client.command({"type": "recorder/info"}))["backlog"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the recorder's backlog did not empty")
        await asyncio.sleep(0.5)


async def wait_for(
    what: str, count: Callable[[], Awaitable[int]], expected: int
) -> None:
    """Until count() reaches expected (the recorder has committed it all)."""
    deadline = time.monotonic() + WAIT
    while (found := await count()) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {found} of {expected} after {WAIT} s")
        await asyncio.sleep(1)


async def import_statistics(client: Client, points: list[dict[str, Any]]) -> None:
    """Our hourly buckets as long-term statistics of three sensors, for the recorder to import."""
    for prefix, statistic_id in STATISTICS.items():
        metadata: dict[str, Any] = {
            "has_mean": True,
            "has_sum": False,
            "name": None,
            "source": "recorder",
            "statistic_id": statistic_id,
            "unit_of_measurement": "%",
        }
        stats = [
            {
                "start": point["timestamp"],
                "mean": point[f"{prefix}_avg"],
                "min": point[f"{prefix}_min"],
                "max": point[f"{prefix}_max"],
            }
            for point in points
            if point[f"{prefix}_avg"] is not None
        ]
        message = {
            "type": "recorder/import_statistics",
            "metadata": metadata,
            "stats": stats,
        }
        try:
            await client.command(message)
        except RuntimeError:
            # Newer Home Assistant releases want the mean's kind and the unit's class.
            metadata.update(mean_type=1, unit_class=None)
            await client.command(message)


async def measure(
    cases: dict[str, Request], runs: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds of each case in each run, and its size; the cases take turns, one later each run."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    sizes: dict[str, int] = {}
    names = list(cases)
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            started = time.perf_counter()
            sizes[name] = await cases[name]()
            times[name].append(time.perf_counter() - started)
    return times, sizes


async def loop_phase(
    client: Client, pid: int, request: Request | None, seconds: float
) -> tuple[dict[str, Any], int, float, float]:
    """The probe's report while `request` runs back to back (or nothing does) for `seconds`.

    Also: requests done, and the CPU of the loop's thread and of the process over the phase.
    """
    await client.hass.rest("POST", "/api/loop_probe")
    loop_cpu, all_cpu = thread_cpu(pid, pid), process_cpu(pid)
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if request is None:
            await asyncio.sleep(0.1)
        else:
            await request()
            done += 1
    probe = await client.hass.rest("GET", "/api/loop_probe")
    return (
        probe,
        done,
        thread_cpu(pid, pid) - loop_cpu,
        process_cpu(pid) - all_cpu,
    )


async def main(args: argparse.Namespace) -> None:
    """Set everything up, then measure."""
    folder = Path(tempfile.mkdtemp(prefix="homelab-export-"))
    config = folder / "config"
    config.mkdir()
    db = config / "homelab_metrics.db"
    load_before = machine_load()
    now = int(time.time())
    started = time.perf_counter()
    if args.db:
        shutil.copy(args.db, db)
        print(f"history copied from {args.db}")
    else:
        await fill(db, servers=args.servers, now=now)
        print(
            f"history of {args.servers} servers generated in {time.perf_counter() - started:.0f} s"
        )
    agent = RealAgent("node_exporter").start()
    fleet = Fleet([AgentSpec(f"poller_{n:02d}") for n in range(args.pollers)])
    try:
        await fleet.start()
        async with RealHomeAssistant(
            config,
            components=[PROBE],
            extra_config="recorder:\n  commit_interval: 1\nhistory:\nloop_probe:\n",
        ) as hass:
            await hass.add_server("node_exporter", agent.host, agent.port, "server_000")
            for spec in fleet.specs:
                host, port = fleet.address(spec.name)
                entry = await hass.add_server("node_exporter", host, port, spec.name)
                await hass.set_scan_interval(entry["entry_id"], 10)
            client = Client(hass)
            await client.connect()
            try:
                await run(args, client, hass, db, now)
            finally:
                await client.close()
    finally:
        fleet.stop()
        agent.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nmachine load before: {load_before}; after: {machine_load()}")


async def run(
    args: argparse.Namespace,
    client: Client,
    hass: RealHomeAssistant,
    db: Path,
    now: int,
) -> None:
    """Fill Home Assistant's side, wait for its recorder, then measure and print."""
    assert hass.process is not None
    pid = hass.process.pid
    week_start = now - 7 * DAY + 600  # inside the raw tier's 7 days
    posted_from = time.time()
    states = await post_states(client, db, week_start)
    history_path = (
        f"/api/history/period/{iso(posted_from - 60)}?"
        f"filter_entity_id={','.join(SENSORS.values())}&minimal_response&no_attributes"
    )

    async def history_states() -> int:
        answer = json.loads(await hass_text(client, history_path))
        return sum(len(series) for series in answer)

    await recorder_idle(client)
    await wait_for("states in the history API", history_states, states)
    print(
        f"{states:,} states posted and committed in {time.time() - posted_from:.0f} s"
    )

    # Our 30-day hourly file is what Home Assistant's statistics will hold.
    month = json.loads(await hass_text(client, f"{EXPORT}?range=30d&format=json"))
    points = month["data_points"]
    await import_statistics(client, points)
    first_hour = int(datetime.fromisoformat(points[0]["timestamp"]).timestamp())
    last_hour = int(datetime.fromisoformat(points[-1]["timestamp"]).timestamp())

    def statistics_request(start: int) -> dict[str, Any]:
        return {
            "type": "recorder/statistics_during_period",
            "start_time": iso(start),
            "end_time": iso(last_hour + HOUR),
            "statistic_ids": list(STATISTICS.values()),
            "period": "hour",
            "types": ["mean", "min", "max"],
        }

    async def imported() -> int:
        result = await client.command(statistics_request(first_hour))
        return min(len(result.get(sid, [])) for sid in STATISTICS.values())

    await recorder_idle(client)
    await wait_for("imported statistics", imported, len(points))
    print(f"{len(points)} hours of 3 statistics imported and committed")

    week = json.loads(await hass_text(client, f"{EXPORT}?range=7d&format=json"))
    week_first = int(
        datetime.fromisoformat(week["data_points"][0]["timestamp"]).timestamp()
    )

    raw_window = f"start={iso(week_start)}&end={iso(now + 60)}"

    async def ws(message: dict[str, Any]) -> int:
        return len(await client.command_text(message))

    cases: dict[str, Request] = {
        "HTTP: GET /api/ (auth only)": lambda: client.get("/api/"),
        "websocket: ping": lambda: ws({"type": "ping"}),
        "raw 7d: HA history API": lambda: client.get(history_path),
        "raw 7d: ours CSV": lambda: client.get(f"{EXPORT}?{raw_window}&format=csv"),
        "raw 7d: ours JSON": lambda: client.get(f"{EXPORT}?{raw_window}&format=json"),
        "hourly 7d: HA statistics": lambda: ws(statistics_request(week_first)),
        "hourly 7d: ours CSV": lambda: client.get(f"{EXPORT}?range=7d&format=csv"),
        "hourly 7d: ours JSON": lambda: client.get(f"{EXPORT}?range=7d&format=json"),
        "hourly 30d: HA statistics": lambda: ws(statistics_request(first_hour)),
        "hourly 30d: ours CSV": lambda: client.get(f"{EXPORT}?range=30d&format=csv"),
        "hourly 30d: ours JSON": lambda: client.get(f"{EXPORT}?range=30d&format=json"),
        "24h raw: ours CSV": lambda: client.get(f"{EXPORT}?range=24h&format=csv"),
        "12m daily: ours CSV": lambda: client.get(f"{EXPORT}?range=12m&format=csv"),
    }
    for case in cases.values():  # one warm-up each
        await case()
    times, sizes = await measure(cases, args.runs)
    raw_rows = (await hass_text(client, f"{EXPORT}?{raw_window}&format=csv")).count(
        "\n"
    )

    print(
        f"\n{args.runs} runs, cases in turn; milliseconds: median (10th-90th percentile)"
    )
    print(f"{'case':30} {'ms':>24} {'kB':>8}   vs Home Assistant (paired)")
    anchors = {
        "raw 7d": "raw 7d: HA history API",
        "hourly 7d": "hourly 7d: HA statistics",
        "hourly 30d": "hourly 30d: HA statistics",
    }
    for name, seconds in times.items():
        ms = [s * 1000 for s in seconds]
        ratio = ""
        group = name.split(":")[0]
        anchor = anchors.get(group)
        if anchor and anchor != name:
            ratio = spread([a / s for a, s in zip(times[anchor], seconds, strict=True)])
            ratio = f"{ratio} x faster"
        print(f"{name:30} {spread(ms):>24} {sizes[name] / 1000:8.1f}   {ratio}")
    print(
        f"\nrows: raw 7d {raw_rows - 1:,} (Home Assistant: {states:,} states of 3 sensors), "
        f"hourly 7d {len(week['data_points'])}, hourly 30d {len(points)} "
        f"(Home Assistant: the same hours of 3 statistics, mean/min/max)"
    )

    print(
        "\nEvent loop (probe inside Home Assistant, 10 ms ticks), each phase "
        f"{LOOP_SECONDS:.0f} s; delay = how late a tick woke, busy = the loop thread's CPU in it"
    )
    raw_csv = cases["raw 7d: ours CSV"]
    raw_json = cases["raw 7d: ours JSON"]
    turn = [0]

    async def raw_export() -> int:
        turn[0] += 1
        return await (raw_csv if turn[0] % 2 else raw_json)()

    phases: dict[str, Request | None] = {
        "idle": None,
        "raw 7d exports, CSV and JSON in turn": raw_export,
        "HA history API (raw 7d)": cases["raw 7d: HA history API"],
    }
    idle_loop_rate = 0.0
    for name, request in phases.items():
        probe, done, loop_cpu, all_cpu = await loop_phase(
            client, pid, request, LOOP_SECONDS
        )
        loop, write = probe["loop"], probe["store_add"]
        line = (
            f"  {name:38} delay max {loop['max_ms']:6.1f} ms, p99 {loop['p99_ms']:5.1f}, "
            f"p50 {loop['p50_ms']:5.2f}; busy max {loop['cpu']['max_ms']:5.1f} ms; "
            f"poll write wait max {write['max_ms']:5.1f} ms, p50 {write['p50_ms']:4.1f} "
            f"({write['count']} polls)"
        )
        if request is None:
            idle_loop_rate = loop_cpu / LOOP_SECONDS
        else:
            per = (loop_cpu - idle_loop_rate * LOOP_SECONDS) / done * 1000
            line += (
                f"; {done} requests, loop thread {per:.1f} ms CPU each, "
                f"process {all_cpu / done * 1000:.1f} ms"
            )
        print(line)


async def hass_text(client: Client, path: str) -> str:
    """GET a path as text."""
    assert client.hass.session is not None
    async with client.hass.session.get(
        client.hass.url + path, headers=client.headers
    ) as response:
        response.raise_for_status()
        return await response.text()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--pollers",
        type=int,
        default=20,
        help="fake servers polled every 10 s during the benchmark",
    )
    parser.add_argument(
        "--db", type=Path, help="a history generate.py wrote (within the last hour)"
    )
    arguments = parser.parse_args()
    try:
        asyncio.run(main(arguments))
    except aiohttp.ClientError as err:
        raise SystemExit(f"benchmark failed: {err}") from err
