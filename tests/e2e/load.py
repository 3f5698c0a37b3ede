"""A load run through a real Home Assistant: many servers on a fleet of fake agents, export clients,
a probe inside Home Assistant, and the count of polls answered against samples stored.

Shared by benchmarks/soak.py, benchmarks/scale.py and tests/e2e/test_soak.py:

    run = LoadRun(LoadPlan(servers=50, history_servers=50), config)
    async with run:             # history, fleet, Home Assistant, servers added, first polls
        await run.arm()         # hostile agents misbehave from here on
        window = await run.measure(600, clients=20, export_servers=50, warmup=30)
    accounts = run.account(window)  # the history file, read once Home Assistant has stopped

How each figure is taken:
- polls answered: the fleet notes the wall-clock time each valid poll answer was completely written
  (node_exporter /metrics, Glances /api/4/cpu, which the client asks once per poll);
- samples stored: after Home Assistant stopped, the raw rows of the history file. The integration
  stamps a sample with its own clock after reading and parsing the answer, and a server's next poll
  starts only after that, so a poll answered at t is stored when a row of that server has a
  timestamp from t - 2 (whole seconds, two clocks) up to the server's next answer; each row
  matches one poll at most.
- event-loop stalls, poll durations, history write latency and garbage collections: the loop probe
  (tests/e2e/loop_probe), reset when the window opens;
- memory and CPU of Home Assistant: /proc/<pid>/status VmRSS and /proc/<pid>/stat utime + stime.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import os
from pathlib import Path
import sqlite3
import statistics
import subprocess
import sys
import time
from typing import Any, Self

import aiohttp

from .agents import REPO
from .fleet import AgentSpec, AgentStats, Fleet
from .hass import RealHomeAssistant, proc_usage

PROBE = Path(__file__).with_name("loop_probe")
HOSTILE = {"drip": "hostile_drip", "labels": "hostile_labels", "flap": "hostile_flap"}
"""Behaviour → server name of the hostile servers."""
DB_FILE = "homelab_metrics.db"
MATCH_BEFORE = 2
"""A stored sample matches a poll answered at t from t - 2 on (see the module docstring)."""
MATCH_LAST = 60
"""Up to this long after the last answer, when no later answer bounds it."""
DAY = 86_400


@dataclass(kw_only=True)
class LoadPlan:
    """What to run."""

    servers: int = 50
    """Well-behaved servers."""
    glances_every: int = 2
    """Every n-th well-behaved server is a Glances agent, the others node_exporter (0: none, 1: all)."""
    hostile: tuple[str, ...] = tuple(HOSTILE)
    """Hostile servers to add, by behaviour (drip, labels, flap)."""
    interval: int = 10
    """Scan interval of every server, seconds (set through the options flow)."""
    history_servers: int = 0
    """Servers (the first ones) that start with 400 days of generated history, for the exports."""
    labels_line: int = 200
    """Length of each adversarial label line the labels agent sends."""
    concurrency: int = 8
    """Config and options flows at a time while adding servers."""
    log_level: str = "info"
    """The integration's log level during the run (debug logs a line per poll)."""
    extra_config: str = ""
    """More configuration.yaml (e.g. `recorder:`)."""

    def specs(self) -> list[AgentSpec]:
        """The fleet: well-behaved servers first, then the hostile ones."""
        specs = [
            AgentSpec(
                server_name(n),
                "glances"
                if self.glances_every
                and n % self.glances_every == self.glances_every - 1
                else "node_exporter",
            )
            for n in range(self.servers)
        ]
        specs += [AgentSpec(HOSTILE[b], behaviour=b) for b in self.hostile]
        return specs


def server_name(n: int) -> str:
    """Name (and server_id) of the n-th well-behaved server."""
    return f"server_{n:03d}"


@dataclass
class RequestStats:
    """One kind of export request: what completed, what failed and why, how long each took."""

    completed: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    bytes: int = 0
    rows: int = 0

    def fail(self, reason: str) -> None:
        """Count a failure with its reason."""
        self.failed += 1
        self.reasons[reason] += 1


@dataclass
class Window:
    """What was measured between the window's start and end."""

    start: float
    end: float
    rss_before: int
    """Before the export clients started (the window opens after a warm-up)."""
    rss_start: int
    rss_end: int
    series: list[tuple[float, int, float]]
    """(seconds into the window, RSS, CPU seconds) every sample_every seconds."""
    cpu_start: float
    cpu_end: float
    fleet_start: dict[str, AgentStats]
    fleet_end: dict[str, AgentStats]
    probe: dict[str, Any]
    exports: dict[str, RequestStats]
    exports_cut: int = 0
    """Requests still running when the window closed and cut after the grace period."""
    fleet_cpu: float = 0.0
    load: str = ""

    @property
    def seconds(self) -> float:
        """Length of the window."""
        return self.end - self.start


@dataclass
class Account:
    """One server's polls in the window against its stored samples."""

    name: str
    behaviour: str
    polls: int
    """Poll requests the agent received in the window."""
    answered: int
    """Valid poll answers completed in the window."""
    stored: int
    """Of those, how many have a stored sample."""
    lost: list[float]
    """When the answers without a stored sample were written."""
    ha_ok: int
    ha_failed: int

    @property
    def missing(self) -> int:
        """Answered polls without a stored sample."""
        return len(self.lost)


def summary(values: Iterable[float]) -> str:
    """Median with the 10th-90th percentile spread, for a table."""
    data = sorted(values)
    if not data:
        return "-"
    if len(data) == 1:
        return f"{data[0]:.3g}"
    deciles = statistics.quantiles(data, n=10, method="inclusive")
    return f"{statistics.median(data):.3g} ({deciles[0]:.3g}-{deciles[-1]:.3g})"


def machine_load() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def prefill_history(db: Path, server_ids: list[str]) -> float:
    """400 days of history for the servers: generated for the first, copied to the others.

    The first server's history comes from benchmarks/generate.py (as `scripts/develop --history`
    does it); the copies are made in SQL, which takes seconds where generating each would take a
    minute. Returns the seconds it took.
    """
    started = time.perf_counter()
    if not server_ids:
        return 0.0
    first, *others = server_ids
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "generate.py"),
            "--servers",
            "1",
            "--server-id",
            first,
            "--out",
            str(db),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        ]
        for table in tables:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            if "server_id" not in columns:
                continue
            rest = ", ".join(c for c in columns if c != "server_id")
            for other in others:
                conn.execute(
                    f"INSERT OR REPLACE INTO {table} (server_id, {rest}) "
                    f"SELECT ?, {rest} FROM {table} WHERE server_id = ?",
                    (other, first),
                )
    return time.perf_counter() - started


class ExportClients:
    """Clients that download exports and call the export action in a loop until told to stop.

    Each loop, for one server after another: a raw custom window of 7 days through the view, 12
    months through the view, and the action for 7 days (hourly), CSV and JSON alternately. A
    request fails on any status but 200, a broken stream, a file that does not end as its format
    ends, or no rows.
    """

    RAW_7D = "raw 7 d custom window (view)"
    MONTHS_12 = "12 months daily (view)"
    SERVICE_7D = "7 d hourly (action)"

    def __init__(
        self, hass: RealHomeAssistant, token: str, targets: list[tuple[str, str]]
    ) -> None:
        """targets: (server_id, device id) of the servers to export."""
        self._hass = hass
        self._headers = {"Authorization": f"Bearer {token}"}
        self._targets = targets
        self.stats: dict[str, RequestStats] = {}
        self.reset()
        self.in_flight = 0

    def reset(self) -> None:
        """Count afresh (the window opens)."""
        self.stats = {
            name: RequestStats()
            for name in (self.RAW_7D, self.MONTHS_12, self.SERVICE_7D)
        }

    async def run(self, clients: int, stop: asyncio.Event) -> None:
        """`clients` concurrent loops until stop is set (a request under way finishes)."""
        connector = aiohttp.TCPConnector(limit=clients * 2)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout
        ) as session:
            await asyncio.gather(
                *(self._loop(session, n, stop) for n in range(clients))
            )

    async def _loop(
        self, session: aiohttp.ClientSession, n: int, stop: asyncio.Event
    ) -> None:
        k = n
        while not stop.is_set():
            server_id, device_id = self._targets[k % len(self._targets)]
            fmt = ("csv", "json")[k % 2]
            now = time.time()
            # Ten minutes inside the raw tier's 7 days, so the raw tier serves it.
            start = _iso(now - 7 * DAY + 600)
            end = _iso(now)
            base = f"/api/homelab_metrics/servers/{server_id}/export"
            await self._counted(
                self._download,
                session,
                self.RAW_7D,
                f"{base}?start={start}&end={end}&format={fmt}",
                fmt,
            )
            if stop.is_set():
                break
            await self._counted(
                self._download,
                session,
                self.MONTHS_12,
                f"{base}?range=12m&format={fmt}",
                fmt,
            )
            if stop.is_set():
                break
            await self._counted(self._action, session, device_id, fmt)
            k += 1

    async def _counted(self, request: Any, *args: Any) -> None:
        """Run one request, counted as under way while it runs."""
        self.in_flight += 1
        try:
            await request(*args)
        finally:
            self.in_flight -= 1

    async def _download(
        self, session: aiohttp.ClientSession, kind: str, path: str, fmt: str
    ) -> None:
        stats = self.stats[kind]
        started = time.perf_counter()
        try:
            async with session.get(
                self._hass.url + path, headers=self._headers
            ) as response:
                if response.status != 200:
                    stats.fail(f"HTTP {response.status}")
                    await response.read()
                    return
                head = tail = carry = b""
                size = rows = 0
                marker = b'{"timestamp":'
                async for chunk in response.content.iter_chunked(65536):
                    if len(head) < 64:
                        head += chunk[:64]
                    if fmt == "csv":
                        rows += chunk.count(b"\n")
                    else:
                        # The carry is too short to hold a whole marker: none counts twice.
                        joined = carry + chunk
                        rows += joined.count(marker)
                        carry = joined[-(len(marker) - 1) :]
                    tail = (tail + chunk)[-32:]
                    size += len(chunk)
        except (aiohttp.ClientError, TimeoutError) as err:
            stats.fail(f"{type(err).__name__}: {err}"[:120])
            return
        if fmt == "csv":
            rows -= 1  # the header
            whole = head.startswith(b"timestamp,") and tail.endswith(b"\n")
        else:
            whole = head.startswith(b'{"server_id"') and tail.endswith(b"]}\n")
        if not whole:
            stats.fail(f"truncated {fmt}")
        elif rows <= 0:
            stats.fail("no rows")
        else:
            stats.completed += 1
            stats.bytes += size
            stats.rows += rows
            stats.seconds.append(time.perf_counter() - started)

    async def _action(
        self, session: aiohttp.ClientSession, device_id: str, fmt: str
    ) -> None:
        stats = self.stats[self.SERVICE_7D]
        started = time.perf_counter()
        try:
            async with session.post(
                f"{self._hass.url}/api/services/homelab_metrics/export?return_response",
                json={"server": device_id, "range": "7d", "format": fmt},
                headers=self._headers,
            ) as response:
                body = await response.read()
                if response.status != 200:
                    stats.fail(f"HTTP {response.status}: {body[:80]!r}")
                    return
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            stats.fail(f"{type(err).__name__}: {err}"[:120])
            return
        rows = (answer.get("service_response") or {}).get("rows", 0)
        if not rows:
            stats.fail(f"no rows in {str(answer)[:80]}")
            return
        stats.completed += 1
        stats.rows += rows
        stats.bytes += len(body)
        stats.seconds.append(time.perf_counter() - started)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).isoformat().replace("+00:00", "Z")


class LoadRun:
    """History, fleet and Home Assistant with every server added and polling, ready to measure."""

    def __init__(self, plan: LoadPlan, config: Path) -> None:
        """Nothing starts before `async with`."""
        self.plan = plan
        self.config = config
        self.specs = plan.specs()
        self.fleet = Fleet(self.specs, labels_line=plan.labels_line)
        self.hass = RealHomeAssistant(
            config,
            components=[PROBE],
            extra_config="loop_probe:\n" + plan.extra_config,
        )
        self.entries: dict[str, str] = {}
        """Server name → config entry id."""
        self.devices: dict[str, str] = {}
        """Server name → device id."""
        self.token = ""
        self.timings: dict[str, float] = {}
        """Seconds each set-up step took."""

    def _step(self, name: str, started: float) -> None:
        self.timings[name] = time.perf_counter() - started

    async def __aenter__(self) -> Self:
        """Start everything and add the servers; they poll at the plan's interval afterwards."""
        started = time.perf_counter()
        self.config.mkdir(parents=True, exist_ok=True)
        history = [server_name(n) for n in range(self.plan.history_servers)]
        await asyncio.to_thread(prefill_history, self.config / DB_FILE, history)
        self._step("history generated", started)
        try:
            started = time.perf_counter()
            await self.fleet.start()
            await self.hass.start()
            self._step("fleet and Home Assistant started", started)
            self.token = await self.hass.ws(
                {
                    "type": "auth/long_lived_access_token",
                    "client_name": "load run",
                    "lifespan": 1,
                }
            )
            # The owner's own calls outlive the 30-minute access token too.
            self.hass.token = self.token
            await self.hass.rest(
                "POST",
                "/api/services/logger/set_level",
                {"custom_components.homelab_metrics": self.plan.log_level},
            )
            started = time.perf_counter()
            await self._add_servers()
            self._step(f"{len(self.specs)} servers added", started)
            started = time.perf_counter()
            await self.wait_polled()
            self._step("every server polled", started)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop Home Assistant (it writes what it holds) and the fleet."""
        await self.close()

    async def close(self) -> None:
        """Stop Home Assistant, then the fleet."""
        try:
            await self.hass.stop()
        finally:
            self.fleet.stop()

    async def _add_servers(self) -> None:
        """Config flow, then options flow to the plan's interval, a few servers at a time."""
        gate = asyncio.Semaphore(self.plan.concurrency)

        async def add(spec: AgentSpec) -> None:
            async with gate:
                host, port = self.fleet.address(spec.name)
                entry = await self.hass.add_server_via_flow(
                    spec.kind, host, port, spec.name
                )
                self.entries[spec.name] = entry["entry_id"]
                await self.hass.set_scan_interval(entry["entry_id"], self.plan.interval)

        await asyncio.gather(*(add(spec) for spec in self.specs))
        devices = await self.hass.ws({"type": "config/device_registry/list"})
        for device in devices:
            for domain, identifier in device["identifiers"]:
                if domain == "homelab_metrics":
                    self.devices[identifier] = device["id"]

    async def probe(self, *, reset: bool = False) -> dict[str, Any]:
        """The loop probe's figures (and a reset when asked)."""
        result: dict[str, Any] = await self.hass.rest(
            "POST" if reset else "GET", "/api/loop_probe"
        )
        return result

    async def wait_polled(self, timeout: float | None = None) -> None:
        """Until every entry is loaded and every server has had a poll since now."""
        report = await self.probe(reset=True)
        if not report["patched"]:
            raise RuntimeError("the loop probe could not wrap the integration")
        deadline = time.monotonic() + (timeout or 3 * self.plan.interval + 30)
        names = {spec.name for spec in self.specs}
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            entries = await self.hass.rest(
                "GET", "/api/config/config_entries/entry?domain=homelab_metrics"
            )
            loaded = {e["entry_id"] for e in entries if e["state"] == "loaded"}
            polled = set((await self.probe())["polls"]["by_server"])
            if loaded >= set(self.entries.values()) and polled >= names:
                return
        raise TimeoutError(
            f"not every server polled: loaded {len(loaded)}/{len(self.entries)}, "
            f"missing polls {sorted(names - polled)[:10]}"
        )

    async def set_polling(self, enabled: bool) -> None:
        """Turn the servers' polling off or on (the entry's system option; entries reload)."""
        gate = asyncio.Semaphore(self.plan.concurrency)

        async def one(entry_id: str) -> None:
            async with gate:
                await self.hass.ws(
                    {
                        "type": "config_entries/update",
                        "entry_id": entry_id,
                        "pref_disable_polling": not enabled,
                    }
                )

        await asyncio.gather(*(one(e) for e in self.entries.values()))

    async def arm(self) -> None:
        """Hostile agents misbehave from now on."""
        await self.fleet.arm()

    async def measure(
        self,
        seconds: float,
        *,
        clients: int = 0,
        export_servers: int = 0,
        warmup: float = 0,
        sample_every: float = 30,
    ) -> Window:
        """Measure for `seconds` while `clients` export the first `export_servers` servers.

        The clients start `warmup` seconds before the window opens, so that what the first
        exports allocate once (caches, buffers) is not counted as growth. Memory and CPU are
        also read every `sample_every` seconds (growth that levels off is not a leak).
        """
        targets = [
            (server_name(n), self.devices[server_name(n)])
            for n in range(export_servers)
        ]
        exporter = ExportClients(self.hass, self.token, targets)
        stop = asyncio.Event()
        rss_before, _ = self.hass.usage()
        task = asyncio.create_task(
            exporter.run(clients, stop) if clients and targets else asyncio.sleep(0)
        )
        await asyncio.sleep(warmup)
        fleet_start = await self.fleet.stats()
        fleet_cpu = proc_usage(self.fleet.pid)[1]
        await self.probe(reset=True)
        exporter.reset()
        rss_start, cpu_start = self.hass.usage()
        start = time.time()
        series = [(0.0, rss_start, cpu_start)]
        while (elapsed := time.time() - start) < seconds:
            await asyncio.sleep(min(sample_every, seconds - elapsed))
            rss, cpu = self.hass.usage()
            series.append((time.time() - start, rss, cpu))
        end = time.time()
        rss_end, cpu_end = self.hass.usage()
        probe = await self.probe()
        exports = exporter.stats
        fleet_end = await self.fleet.stats()
        fleet_cpu = proc_usage(self.fleet.pid)[1] - fleet_cpu
        load = machine_load()
        stop.set()
        cut = 0
        try:
            await asyncio.wait_for(asyncio.shield(task), 120)
        except TimeoutError:
            cut = exporter.in_flight
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return Window(
            start=start,
            end=end,
            rss_before=rss_before,
            series=series,
            rss_start=rss_start,
            rss_end=rss_end,
            cpu_start=cpu_start,
            cpu_end=cpu_end,
            fleet_start=fleet_start,
            fleet_end=fleet_end,
            probe=probe,
            exports=exports,
            exports_cut=cut,
            fleet_cpu=fleet_cpu,
            load=load,
        )

    def account(self, window: Window) -> list[Account]:
        """Per server, polls answered in the window against samples stored (after the stop)."""
        outcomes: dict[str, list[int]] = window.probe["polls"]["by_server"]
        accounts = []
        with contextlib.closing(
            sqlite3.connect(f"file:{self.config / DB_FILE}?mode=ro", uri=True)
        ) as conn:
            for spec in self.specs:
                stamps = sorted(
                    row[0]
                    for row in conn.execute(
                        "SELECT ts FROM raw WHERE server_id = ? AND ts >= ?",
                        (spec.name, int(window.start) - MATCH_BEFORE),
                    )
                )
                served = window.fleet_end[spec.name].served
                answered = [t for t in served if window.start <= t < window.end]
                lost = _unmatched(answered, served, stamps)
                ok, failed = outcomes.get(spec.name, [0, 0])
                accounts.append(
                    Account(
                        name=spec.name,
                        behaviour=spec.behaviour
                        if spec.behaviour != "normal"
                        else spec.kind,
                        polls=window.fleet_end[spec.name].polls
                        - window.fleet_start[spec.name].polls,
                        answered=len(answered),
                        stored=len(answered) - len(lost),
                        lost=lost,
                        ha_ok=ok,
                        ha_failed=failed,
                    )
                )
        return accounts


def _unmatched(
    answered: list[float], served: list[float], stamps: list[int]
) -> list[float]:
    """Answer times without a sample stamped from t - 2 up to the next answer (`served`, all)."""
    lost = []
    i = 0
    for t in answered:
        later = [u for u in served if u > t]
        bound = later[0] if later else t + MATCH_LAST
        while i < len(stamps) and stamps[i] < t - MATCH_BEFORE:
            i += 1
        if i < len(stamps) and stamps[i] <= bound:
            i += 1
        else:
            lost.append(t)
    return lost


def table(rows: list[tuple[str, str]], title: str = "") -> str:
    """Two aligned columns under a title."""
    width = max((len(name) for name, _ in rows), default=0)
    lines = [title] if title else []
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def mb(value: float) -> str:
    """Bytes as MB with one decimal."""
    return f"{value / 1e6:.1f} MB"
