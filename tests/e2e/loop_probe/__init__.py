"""Loop probe: how late Home Assistant's event loop wakes up, and how long polls and history writes take.

Only for Homelab Metrics' load tests and benchmarks: `RealHomeAssistant(components=[PROBE])`
links it into the test configuration and `loop_probe:` in configuration.yaml sets it up.

- Event loop: a task sleeps 10 ms again and again; how much later than asked it wakes up is the
  loop's stall at that moment. Beside it, the CPU time the loop's thread used during that tick: a
  stall with little CPU means the thread waited (for the GIL or for the operating system), a
  stall with as much CPU as lag means code ran on the loop that long. On a machine where Home
  Assistant has a core to itself the two agree; on a crowded one the CPU figure is the better
  estimate of the stall a quiet machine would see.
- Garbage collection: every collection's duration, by generation (gc.callbacks), and the time of
  those from 20 ms on.
- Polls: the duration and outcome of each `HomelabCoordinator._async_update_data` (fetch, parse and
  history write, as the coordinator's own "Finished fetching" debug line measures it), by server.
- History writes: `HistoryStore.async_add` or `async_add_each` as the coordinator awaits it (queue,
  worker, hand-back) and `history.writes.insert` on the worker thread (the SQLite transaction alone).
- Where a poll's CPU goes, for the parts that run without awaiting (so their wall time is their
  time on the loop): `node_exporter.parse_metrics`, `GlancesClient._sample` and the
  coordinator's `async_update_listeners` (every entity of the server writing its state); each
  call from 20 ms on is also kept with its time, to tell which stalls it caused.

The last three wrap the integration's methods with two clock readings each, in this process only, the
first time the figures are reset after the integration has been imported.

GET /api/loop_probe answers the figures since the last reset; POST /api/loop_probe resets them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
import functools
import gc
import sys
import threading
import time
from typing import Any

from aiohttp import web
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.helpers.typing import ConfigType

DOMAIN = "loop_probe"
TICK = 0.010
"""Seconds the probe asks to sleep each time."""
UNIT = 1e-5
"""Histogram resolution: 10 µs."""
WORST = 10
"""How many of the worst stalls are kept with their time."""
STALL = 0.020
"""Stalls from this long on are also kept in a list with their time (up to STALLS of them)."""
STALLS = 5000
COLLECTIONS = 200_000
"""Garbage collections kept (about 20 minutes of a busy Home Assistant)."""

COORDINATOR = "custom_components.homelab_metrics.coordinator"
STORE = "custom_components.homelab_metrics.history.store"
WRITES = "custom_components.homelab_metrics.history.writes"
NODE_EXPORTER = "custom_components.homelab_metrics.agents.node_exporter"
GLANCES = "custom_components.homelab_metrics.agents.glances"


class Histogram:
    """Durations counted in 10 µs steps: memory stays bounded however long the run."""

    def __init__(self) -> None:
        """Empty."""
        self.counts: Counter[int] = Counter()
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Count one duration."""
        self.counts[int(seconds / UNIT)] += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100), in seconds, to the histogram's resolution."""
        n = sum(self.counts.values())
        if not n:
            return 0.0
        rank = q / 100 * (n - 1)
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen > rank:
                return key * UNIT
        return self.max

    def summary(self) -> dict[str, float]:
        """Count, mean, p50, p99, p99.9 and max, in milliseconds."""
        n = sum(self.counts.values())
        return {
            "count": n,
            "mean_ms": self.total / n * 1000 if n else 0.0,
            "p50_ms": self.percentile(50) * 1000,
            "p99_ms": self.percentile(99) * 1000,
            "p999_ms": self.percentile(99.9) * 1000,
            "max_ms": self.max * 1000,
        }


class Probe:
    """The figures, and the task and hooks that collect them."""

    def __init__(self) -> None:
        """Nothing measured yet."""
        self._lock = threading.Lock()
        self._gc_started: dict[int, float] = {}
        self._patched = False
        self.reset()

    def reset(self) -> None:
        """Start every figure afresh."""
        with self._lock:
            self.since = time.time()
            self.lag = Histogram()
            self.busy = Histogram()
            self.busiest = (0.0, 0.0, 0.0)
            self.worst: list[tuple[float, float, float]] = []
            self.stalls: list[tuple[float, float, float]] = []
            self.stalls_dropped = 0
            # Appended to by on_gc, which takes no lock: a collection can start anywhere,
            # also in a thread that holds the lock (a deadlock) or while report() reads.
            self.collections: list[tuple[float, int, float]] = []
            self.polls = Histogram()
            self.polls_by_agent: dict[str, Histogram] = {}
            self.poll_outcomes: dict[str, list[int]] = {}
            self.store_add = Histogram()
            self.store_insert = Histogram()
            self.sync: dict[str, Histogram] = {}
            self.long_calls: list[tuple[str, float, float]] = []

    # -- event loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Sleep TICK again and again, noting how late each wake-up is."""
        loop = asyncio.get_running_loop()
        while True:
            start, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(TICK)
            lag = max(0.0, loop.time() - start - TICK)
            busy = time.thread_time() - cpu
            self.lag.add(lag)
            self.busy.add(busy)
            if busy > self.busiest[1]:
                self.busiest = (lag, busy, time.time())
            if lag >= STALL:
                if len(self.stalls) < STALLS:
                    self.stalls.append((lag, busy, time.time()))
                else:
                    self.stalls_dropped += 1
            if len(self.worst) < WORST or lag > self.worst[-1][0]:
                self.worst.append((lag, busy, time.time()))
                self.worst.sort(reverse=True)
                del self.worst[WORST:]

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """gc.callbacks hook: time each collection (in whatever thread it runs), without a lock."""
        generation = int(info.get("generation", 0))
        if phase == "start":
            self._gc_started[generation] = time.perf_counter()
        elif (started := self._gc_started.pop(generation, None)) is not None and len(
            self.collections
        ) < COLLECTIONS:
            self.collections.append(
                (time.perf_counter() - started, generation, time.time())
            )

    # -- the integration's polls and writes ----------------------------------------------------

    def patch(self) -> bool:
        """Wrap the integration's poll and write methods once both modules are imported."""
        if self._patched:
            return True
        coordinator, store = sys.modules.get(COORDINATOR), sys.modules.get(STORE)
        if coordinator is None or store is None:
            return False
        coordinator_class = coordinator.HomelabCoordinator
        store_class = store.HistoryStore
        coordinator_class._async_update_data = self._timed_poll(
            coordinator_class._async_update_data
        )
        store_class.async_add = self._timed_add(store_class.async_add)
        # A coordinator writes its polls with one call (all of a Prometheus server's nodes).
        store_class.async_add_each = self._timed_add(store_class.async_add_each)
        if (writes := sys.modules.get(WRITES)) is not None:
            # The store calls writes.insert through the module, on its worker thread.
            writes.insert = self._timed_insert(writes.insert)
        coordinator_class.async_update_listeners = self._timed_sync(
            "update_listeners", coordinator_class.async_update_listeners
        )
        if (node := sys.modules.get(NODE_EXPORTER)) is not None and hasattr(
            node, "parse_metrics"
        ):
            node.parse_metrics = self._timed_sync(
                "node_exporter_parse", node.parse_metrics
            )
        if (glances := sys.modules.get(GLANCES)) is not None and hasattr(
            glances, "GlancesClient"
        ):
            glances.GlancesClient._sample = self._timed_sync(
                "glances_sample", glances.GlancesClient._sample
            )
        self._patched = True
        return True

    def _timed_sync(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        probe = self

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                probe.sync.setdefault(name, Histogram()).add(elapsed)
                if elapsed >= STALL and len(probe.long_calls) < STALLS:
                    probe.long_calls.append((name, time.time() - elapsed, elapsed))

        return timed

    def _timed_poll(
        self, update: Callable[[Any], Coroutine[Any, Any, Any]]
    ) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        probe = self

        @functools.wraps(update)
        async def timed(coordinator: Any) -> Any:
            start = time.perf_counter()
            ok = False
            try:
                result = await update(coordinator)
                ok = True
                return result
            finally:
                elapsed = time.perf_counter() - start
                probe.polls.add(elapsed)
                agent = str(coordinator.agent)
                probe.polls_by_agent.setdefault(agent, Histogram()).add(elapsed)
                outcome = probe.poll_outcomes.setdefault(coordinator.server_id, [0, 0])
                outcome[0 if ok else 1] += 1

        return timed

    def _timed_add(
        self, add: Callable[..., Coroutine[Any, Any, None]]
    ) -> Callable[..., Coroutine[Any, Any, None]]:
        probe = self

        @functools.wraps(add)
        async def timed(store: Any, *args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            await add(store, *args, **kwargs)
            probe.store_add.add(time.perf_counter() - start)

        return timed

    def _timed_insert(self, insert: Callable[..., None]) -> Callable[..., None]:
        probe = self

        @functools.wraps(insert)
        def timed(store: Any, *args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            insert(store, *args, **kwargs)
            elapsed = time.perf_counter() - start
            with probe._lock:
                probe.store_insert.add(elapsed)

        return timed

    # -- report --------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Every figure since the last reset."""
        count = len(self.collections)
        collections = {0: Histogram(), 1: Histogram(), 2: Histogram()}
        for pause, generation, _ in self.collections[:count]:
            collections[generation].add(pause)
        with self._lock:
            outcomes = {sid: list(v) for sid, v in self.poll_outcomes.items()}
            return {
                "since": self.since,
                "seconds": time.time() - self.since,
                "patched": self._patched,
                "loop": {
                    **self.lag.summary(),
                    "tick_ms": TICK * 1000,
                    "worst": [
                        {"lag_ms": lag * 1000, "busy_ms": busy * 1000, "at": at}
                        for lag, busy, at in self.worst
                    ],
                    "cpu": self.busy.summary(),
                    "busiest": {
                        "lag_ms": self.busiest[0] * 1000,
                        "busy_ms": self.busiest[1] * 1000,
                        "at": self.busiest[2],
                    },
                    "stall_threshold_ms": STALL * 1000,
                    "stalls": [
                        {"lag_ms": lag * 1000, "busy_ms": busy * 1000, "at": at}
                        for lag, busy, at in self.stalls
                    ],
                    "stalls_dropped": self.stalls_dropped,
                },
                "gc": {str(g): h.summary() for g, h in collections.items()},
                "gc_pauses": [
                    {"ms": pause * 1000, "generation": generation, "at": at}
                    for pause, generation, at in self.collections[:count]
                    if pause >= STALL
                ],
                "polls": {
                    **self.polls.summary(),
                    "ok": sum(v[0] for v in outcomes.values()),
                    "failed": sum(v[1] for v in outcomes.values()),
                    "by_server": outcomes,
                    "by_agent": {
                        agent: h.summary() for agent, h in self.polls_by_agent.items()
                    },
                },
                "store_add": self.store_add.summary(),
                "store_insert": self.store_insert.summary(),
                "sync": {name: h.summary() for name, h in self.sync.items()},
                "long_calls": [
                    {"name": name, "start": start, "ms": elapsed * 1000}
                    for name, start, elapsed in self.long_calls
                ],
            }


class ProbeView(HomeAssistantView):
    """The figures (GET) and their reset (POST), for the owner's token."""

    url = "/api/loop_probe"
    name = "api:loop_probe"

    def __init__(self, probe: Probe) -> None:
        """Serve this probe."""
        self._probe = probe

    async def get(self, request: web.Request) -> web.Response:
        """Figures since the last reset."""
        self._probe.patch()
        return self.json(self._probe.report())

    async def post(self, request: web.Request) -> web.Response:
        """Reset, wrapping the integration's methods if that has not been done yet."""
        self._probe.reset()
        self._probe.patch()
        return self.json(self._probe.report())


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Start the probe's task and serve its figures."""
    probe = Probe()
    hass.http.register_view(ProbeView(probe))
    gc.callbacks.append(probe.on_gc)
    task = hass.async_create_background_task(probe.run(), f"{DOMAIN} ticks")

    @callback
    def _stop(event: Event) -> None:
        task.cancel()
        if probe.on_gc in gc.callbacks:
            gc.callbacks.remove(probe.on_gc)

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _stop)
    return True
