"""Cost per poll at scale: a real Home Assistant polling many servers on fake agents.

Usage: .venv/bin/python benchmarks/scale.py [--servers 200] [--minutes 3] [--recorder] [--apart]

Set-up (not measured): a fleet of fake agents on loopback (tests/e2e/fleet.py; every other one
Glances, the rest node_exporter, both replaying captured payloads with moving counters), `hass -c`
on a temporary config with the loop probe (tests/e2e/loop_probe), every server added through the
config flow and set to --interval through the options flow, and polled once.

1. Idle baseline: polling is turned off on every server (the entry's "Enable polling" system
   option, as in the UI: the entries reload, poll once while setting up, then never again). After
   --settle seconds, Home Assistant's CPU time is read over --baseline seconds. Everything else is
   there: entities, the history store and its timers, the probe.
2. Polling is turned on again (the entries reload, a few at a time), every server polls once.
   Then, unless --apart, every entry is reloaded in one call (`homeassistant.reload_config_entry`
   on every server's device, which Home Assistant runs at once, as when it starts), so that every
   server polls first in the same second, as after a restart. --warmup seconds pass, then the
   window of --minutes opens.
3. In the window, every --slice seconds: Home Assistant's CPU time (/proc/<pid>/stat utime +
   stime, all threads) and the probe's count of polls (ended `_async_update_data` calls).
   CPU per poll = (CPU in the slice - baseline CPU per second x slice) / polls in the slice; the
   median over the slices with its spread, and the whole window's figure.
   Poll duration: the probe times every `HomelabCoordinator._async_update_data` (fetch, parse,
   history write; what the coordinator's "Finished fetching" debug line measures, to 10 µs).
   History write latency: `HistoryStore.async_add` as the poll awaits it (queue, worker thread,
   hand-back to the loop), and `HistoryStore._insert` alone on the worker (the SQLite transaction).
   Where the CPU goes: the probe also times the parts of a poll that run on the loop without
   awaiting (parsing a scrape, turning Glances answers into a sample, the entities' state writes).

The integration logs at info during the run (at debug it writes a line per poll). Without
--recorder Home Assistant runs no recorder, so the figure is the integration's own cost; with it,
what the recorder spends on the sensors' state changes is included. Prints, never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import shutil
import statistics
import tempfile
import time

import _path  # noqa: F401

from tests.e2e.load import LoadPlan, LoadRun, machine_load, mb, summary, table

GOAL_CPU_MS = 1.0
GOAL_P99_MS = 50.0


async def slices(
    run: LoadRun, seconds: float, slice_seconds: float
) -> list[tuple[float, float, int]]:
    """(wall seconds, CPU seconds, polls) of each slice of a window that starts now."""
    out = []
    _, cpu = run.hass.usage()
    polls = (await run.probe())["polls"]["count"]
    wall = time.monotonic()
    end = wall + seconds
    while (now := time.monotonic()) < end:
        await asyncio.sleep(min(slice_seconds, end - now))
        _, cpu_now = run.hass.usage()
        polls_now = (await run.probe())["polls"]["count"]
        wall_now = time.monotonic()
        out.append((wall_now - wall, cpu_now - cpu, polls_now - polls))
        wall, cpu, polls = wall_now, cpu_now, polls_now
    return out


async def main(args: argparse.Namespace) -> None:
    """Set up, baseline, measure, print."""
    plan = LoadPlan(
        servers=args.servers,
        glances_every=args.glances_every,
        hostile=(),
        interval=args.interval,
        extra_config="recorder:\n  commit_interval: 5\n" if args.recorder else "",
    )
    folder = Path(tempfile.mkdtemp(prefix="homelab-scale-"))
    print(f"config folder: {folder}; machine load before: {machine_load()}", flush=True)
    try:
        run = LoadRun(plan, folder / "config")
        async with run:
            print(
                f"set up in {sum(run.timings.values()):.0f} s; baseline...", flush=True
            )
            await run.set_polling(False)
            await asyncio.sleep(args.settle)
            await run.probe(reset=True)
            rss_idle, _ = run.hass.usage()
            idle = await slices(run, args.baseline, args.slice)
            idle_rate = sum(c for _, c, _ in idle) / sum(w for w, _, _ in idle)
            idle_polls = sum(p for _, _, p in idle)
            load_idle = machine_load()

            await run.set_polling(True)
            await run.wait_polled()
            if not args.apart:
                await run.hass.rest(
                    "POST",
                    "/api/services/homeassistant/reload_config_entry",
                    {"device_id": list(run.devices.values())},
                )
                await run.wait_polled()
            print(
                f"baseline {idle_rate * 1000:.0f} ms CPU/s; polling again, "
                f"warming up {args.warmup:.0f} s, then measuring {args.minutes:g} min",
                flush=True,
            )
            await asyncio.sleep(args.warmup)
            await run.probe(reset=True)
            rss_start, _ = run.hass.usage()
            started = time.time()
            window = await slices(run, args.minutes * 60, args.slice)
            seconds = time.time() - started
            probe = await run.probe()
            rss_end, _ = run.hass.usage()
            load = machine_load()
        kinds = {spec.kind for spec in run.specs}
        glances = sum(1 for spec in run.specs if spec.kind == "glances")
        polls = sum(p for _, _, p in window)
        cpu = sum(c for _, c, _ in window)
        wall = sum(w for w, _, _ in window)
        per_poll = [(c - idle_rate * w) / p * 1000 for w, c, p in window if p]
        overall = (cpu - idle_rate * wall) / polls * 1000 if polls else 0.0
        durations = probe["polls"]
        loop = probe["loop"]
        worst_busy = loop["worst"][0]["busy_ms"] if loop["worst"] else 0.0
        print()
        print(
            f"Scale: {args.servers} servers ({args.servers - glances} node_exporter, "
            f"{glances} Glances), {args.interval} s interval, {seconds:.0f} s window, "
            f"recorder {'on' if args.recorder else 'off'}"
        )
        print(f"Machine load (1/5/15 min): baseline {load_idle}; end {load}")
        print(
            "Set-up: "
            + "; ".join(f"{name} {secs:.0f} s" for name, secs in run.timings.items())
        )
        print()
        print(
            table(
                [
                    (
                        "idle baseline (polling off)",
                        f"{idle_rate * 1000:.1f} ms CPU per second over "
                        f"{args.baseline:.0f} s ({idle_polls} polls in it)",
                    ),
                    (
                        "polling",
                        f"{cpu / wall * 1000:.1f} ms CPU per second; {polls:,} polls "
                        f"({polls / wall:.1f}/s, {polls / wall * args.interval / args.servers:.0%} "
                        "of the scheduled rate)",
                    ),
                    (
                        "CPU per poll, minus baseline",
                        f"{overall:.2f} ms over the window; per {args.slice:.0f} s slice "
                        f"{summary(per_poll)} ms",
                    ),
                    (
                        "CPU per poll, baseline included",
                        f"{cpu / polls * 1000 if polls else 0:.2f} ms",
                    ),
                    (
                        "poll duration p50 / p99 / max",
                        f"{durations['p50_ms']:.1f} / {durations['p99_ms']:.1f} / "
                        f"{durations['max_ms']:.0f} ms (failed polls: {durations['failed']})",
                    ),
                    *(
                        (
                            f"  {agent} p50 / p99 / max",
                            f"{h['p50_ms']:.1f} / {h['p99_ms']:.1f} / {h['max_ms']:.0f} ms "
                            f"({h['count']:,} polls)",
                        )
                        for agent, h in sorted(durations["by_agent"].items())
                        if agent in kinds
                    ),
                    (
                        "polls under way at a poll's start",
                        f"p50 {durations['concurrent']['p50']}, p99 "
                        f"{durations['concurrent']['p99']}, max "
                        f"{durations['concurrent']['max']} (aligned polls queue on the loop)",
                    ),
                    (
                        "history write p50 / p99 / max",
                        f"{probe['store_add']['p50_ms']:.2f} / "
                        f"{probe['store_add']['p99_ms']:.2f} / "
                        f"{probe['store_add']['max_ms']:.1f} ms (awaited by the poll)",
                    ),
                    (
                        "  SQLite insert on the worker",
                        f"{probe['store_insert']['p50_ms']:.2f} / "
                        f"{probe['store_insert']['p99_ms']:.2f} / "
                        f"{probe['store_insert']['max_ms']:.1f} ms",
                    ),
                    *(
                        (
                            f"  on the loop: {name}",
                            f"mean {h['mean_ms']:.3f} ms, p99 {h['p99_ms']:.2f} ms "
                            f"({h['count']:,} calls)",
                        )
                        for name, h in sorted(probe["sync"].items())
                    ),
                    (
                        "event loop: longest stall, p99",
                        f"{loop['max_ms']:.1f} ms ({worst_busy:.1f} ms of it the loop's "
                        f"own CPU), {loop['p99_ms']:.2f} ms",
                    ),
                    (
                        "garbage collection from 20 ms",
                        f"{len(probe['gc_pauses'])}, longest "
                        f"{max((g['ms'] for g in probe['gc_pauses']), default=0):.0f} ms; "
                        f"gen 2: {probe['gc']['2']['count']}, max "
                        f"{probe['gc']['2']['max_ms']:.0f} ms",
                    ),
                    (
                        "RSS idle / start / end",
                        f"{mb(rss_idle)} / {mb(rss_start)} / {mb(rss_end)}",
                    ),
                ],
                "Home Assistant, measured",
            )
        )
        print()
        print(
            table(
                [
                    (
                        f"CPU per poll < {GOAL_CPU_MS:g} ms",
                        f"{'met' if overall < GOAL_CPU_MS else 'NOT met'}: {overall:.2f} ms",
                    ),
                    (
                        f"p99 poll duration < {GOAL_P99_MS:g} ms",
                        f"{'met' if durations['p99_ms'] < GOAL_P99_MS else 'NOT met'}: "
                        f"{durations['p99_ms']:.1f} ms",
                    ),
                ],
                "Goals (issue 11)",
            )
        )
        if len(per_poll) > 1:
            print(
                f"\nslices: {', '.join(f'{v:.2f}' for v in per_poll)} ms CPU/poll "
                f"(stdev {statistics.stdev(per_poll):.2f})"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=3, help="measured window")
    parser.add_argument("--interval", type=int, default=10, help="scan interval, s")
    parser.add_argument(
        "--glances-every",
        type=int,
        default=2,
        help="every n-th server is Glances (0: none, 1: all)",
    )
    parser.add_argument("--baseline", type=float, default=60, help="idle seconds")
    parser.add_argument("--settle", type=float, default=15, help="after polling stops")
    parser.add_argument("--warmup", type=float, default=30, help="before the window")
    parser.add_argument("--slice", type=float, default=15, help="seconds per slice")
    parser.add_argument(
        "--recorder", action="store_true", help="run Home Assistant's recorder too"
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="skip reloading every entry at once (servers start polling a few at a time)",
    )
    asyncio.run(main(parser.parse_args()))
