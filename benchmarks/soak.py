"""Soak: a real Home Assistant polling many servers for minutes while clients export without pause.

Usage: .venv/bin/python benchmarks/soak.py [--minutes 10] [--servers 50] [--clients 20]

Set-up (not measured): 400 days of generated history for every well-behaved server; a fleet of
fake agents on loopback (tests/e2e/fleet.py: node_exporter and Glances replaying captured payloads
with moving counters) plus three hostile ones: `drip` (headers, then a byte a second, never ends),
`labels` (a valid scrape padded to just under the 4 MiB cap with escaped-backslash labels) and
`flap` (valid, HTTP 500, HTML, garbage in turn); `hass -c` on a temporary config with the loop
probe (tests/e2e/loop_probe); every server added through the config flow and set to --interval
through the options flow; the hostile agents armed once every server has polled; a warm-up.

Measured window (--minutes): the clients each loop over the servers: a raw 7-day custom-window
export and a 12-month export through the view, and the export action for 7 days, CSV and JSON in
turn. Printed at the end: the event loop's longest stall (probe inside Home Assistant), polls
scheduled, received and succeeded, samples stored and lost (history file read after the stop),
exports completed and failed with reasons, Home Assistant's RSS at the start and end of the
window, and the figures the issue asks for, met or not. It never asserts: the figures are the
output. Figures on a busy machine are indicative only; `uptime` is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
import json
from pathlib import Path
import shutil
import tempfile

import _path  # noqa: F401

from tests.e2e.load import (
    HOSTILE,
    Account,
    LoadPlan,
    LoadRun,
    Window,
    machine_load,
    mb,
    summary,
    table,
)

GOAL_STALL_MS = 100
GOAL_RSS_GROWTH = 20e6


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def stall_causes(window: Window) -> dict[str, list[dict[str, float]]]:
    """The probe's stalls by what ran during them: a long parse, a long collection, or neither.

    "Neither" is export streams, entity updates, or the machine itself. The probe keeps every parse and every collection of 20 ms or more with its start and length;
    a stall goes with the first cause whose interval overlaps its own.
    """
    probe = window.probe
    parses = [
        (c["start"], c["start"] + c["ms"] / 1000)
        for c in probe["long_calls"]
        if c["name"] == "node_exporter_parse"
    ]
    pauses = [(p["at"] - p["ms"] / 1000, p["at"]) for p in probe["gc_pauses"]]
    causes: dict[str, list[dict[str, float]]] = {"parse": [], "gc": [], "other": []}
    for stall in probe["loop"]["stalls"]:
        began, ended = stall["at"] - stall["lag_ms"] / 1000, stall["at"]
        for cause, spans in (("parse", parses), ("gc", pauses)):
            if any(start < ended and end > began for start, end in spans):
                causes[cause].append(stall)
                break
        else:
            causes["other"].append(stall)
    return causes


def report(
    plan: LoadPlan, run: LoadRun, window: Window, accounts: list[Account], clients: int
) -> str:
    """The figures as text tables."""
    probe = window.probe
    loop = probe["loop"]
    polls = probe["polls"]
    good = [a for a in accounts if a.behaviour in ("node_exporter", "glances")]
    hostile = {a.behaviour: a for a in accounts if a.name in HOSTILE.values()}
    scheduled = len(good) * window.seconds / plan.interval
    lost = sum(a.missing for a in good)
    received = sum(a.polls for a in good)
    answered = sum(a.answered for a in good)
    stored = sum(a.stored for a in good)
    ha_ok = sum(a.ha_ok for a in good)
    ha_failed = sum(a.ha_failed for a in good)
    glances = sum(1 for a in good if a.behaviour == "glances")
    worst = loop["worst"][0] if loop["worst"] else {"lag_ms": 0, "busy_ms": 0, "at": 0}
    failed_exports = sum(s.failed for s in window.exports.values())
    growth = window.rss_end - window.rss_start
    cpu = window.cpu_end - window.cpu_start
    causes = stall_causes(window)
    out = [
        f"Soak: {len(good)} servers ({len(good) - glances} node_exporter, {glances} Glances)"
        f"{' + hostile: ' + ', '.join(plan.hostile) if plan.hostile else ''}, "
        f"{plan.interval} s interval, {clients} export clients, "
        f"{window.seconds:.0f} s window ({_clock(window.start)}-{_clock(window.end)} UTC)",
        f"Machine load (1/5/15 min) at the end of the window: {window.load}",
        "Set-up: "
        + "; ".join(f"{name} {seconds:.0f} s" for name, seconds in run.timings.items()),
        "",
        table(
            [
                (
                    "longest stall",
                    f"{loop['max_ms']:.1f} ms at {_clock(worst['at'])} "
                    f"(loop thread on CPU {worst['busy_ms']:.1f} ms of it)",
                ),
                (
                    "most loop-thread CPU in one tick",
                    f"{loop['busiest']['busy_ms']:.1f} ms at {_clock(loop['busiest']['at'])} "
                    "(what a quiet machine's longest stall would be near)",
                ),
                (
                    "stall p50 / p99 / p99.9",
                    f"{loop['p50_ms']:.2f} / {loop['p99_ms']:.2f} / {loop['p999_ms']:.2f} ms "
                    f"over {loop['count']:,} ticks",
                ),
                *(
                    (
                        f"stalls >= {loop['stall_threshold_ms']:.0f} ms {label}",
                        f"{len(causes[cause])}, longest "
                        f"{max((st['lag_ms'] for st in causes[cause]), default=0):.1f} ms, "
                        "most loop CPU in one "
                        f"{max((st['busy_ms'] for st in causes[cause]), default=0):.1f} ms",
                    )
                    for cause, label in (
                        ("parse", "during a parse of 20 ms+"),
                        ("gc", "during a collection of 20 ms+"),
                        ("other", "otherwise"),
                    )
                ),
                (
                    "10 worst (lag/on CPU ms)",
                    ", ".join(
                        f"{w['lag_ms']:.0f}/{w['busy_ms']:.0f} {_clock(w['at'])}"
                        for w in loop["worst"]
                    ),
                ),
                (
                    "parses of 20 ms or more",
                    ", ".join(
                        f"{c['ms']:.0f}"
                        for c in probe["long_calls"]
                        if c["name"] == "node_exporter_parse"
                    )
                    + " ms",
                ),
                (
                    "garbage collections",
                    ", ".join(
                        f"gen{g} {h['count']} (max {h['max_ms']:.1f} ms)"
                        for g, h in probe["gc"].items()
                    ),
                ),
            ],
            "Event loop (a task inside Home Assistant sleeping 10 ms again and again)",
        ),
        "",
        table(
            [
                ("scheduled (window / interval)", f"{scheduled:,.0f}"),
                ("received by the agents", f"{received:,}"),
                ("answered validly by the agents", f"{answered:,}"),
                ("succeeded in Home Assistant", f"{ha_ok:,} (failed {ha_failed:,})"),
                ("samples stored for answered polls", f"{stored:,}"),
                (
                    "samples lost",
                    f"{lost}"
                    + (
                        " ("
                        + ", ".join(
                            f"{a.name} at {', '.join(_clock(t) for t in a.lost[:3])}"
                            for a in good
                            if a.lost
                        )[:300]
                        + ")"
                        if lost
                        else ""
                    ),
                ),
                (
                    "fewest polls of one server",
                    f"{min((a.polls for a in good), default=0)} "
                    f"(of {window.seconds / plan.interval:.0f} scheduled)",
                ),
                (
                    "poll duration p50 / p99 / max",
                    f"{polls['p50_ms']:.1f} / {polls['p99_ms']:.1f} / {polls['max_ms']:.0f} ms "
                    "(all servers, hostile included)",
                ),
                *(
                    (
                        f"  {agent} p50 / p99 / max",
                        f"{h['p50_ms']:.1f} / {h['p99_ms']:.1f} / {h['max_ms']:.0f} ms",
                    )
                    for agent, h in polls["by_agent"].items()
                ),
                (
                    "history write p50 / p99 / max",
                    f"{probe['store_add']['p50_ms']:.2f} / {probe['store_add']['p99_ms']:.2f} / "
                    f"{probe['store_add']['max_ms']:.0f} ms (awaited by the poll); "
                    f"SQLite {probe['store_insert']['p50_ms']:.2f} / "
                    f"{probe['store_insert']['p99_ms']:.2f} / "
                    f"{probe['store_insert']['max_ms']:.0f} ms",
                ),
            ],
            "Polls of the well-behaved servers",
        ),
    ]
    if hostile:
        rows = []
        for behaviour, account in hostile.items():
            stats = window.fleet_end[account.name]
            detail = (
                f"polls {account.polls}, valid answers {account.answered}, "
                f"stored {account.stored}, Home Assistant ok {account.ha_ok} "
                f"failed {account.ha_failed}"
            )
            if behaviour == "drip":
                ended = [s for s in stats.drip_seconds if s > 0]
                detail += f"; drip cut by the client after {summary(ended)} s"
            rows.append((behaviour, detail))
        out += ["", table(rows, "Hostile servers (expected to fail, except labels)")]
    export_rows = []
    for name, stats in window.exports.items():
        reasons = ", ".join(f"{r} x{n}" for r, n in stats.reasons.most_common(3))
        export_rows.append(
            (
                name,
                f"completed {stats.completed}, failed {stats.failed}"
                + (f" ({reasons})" if reasons else "")
                + f"; seconds {summary(stats.seconds)}; "
                f"{stats.rows / max(1, stats.completed):,.0f} rows, "
                f"{stats.bytes / max(1, stats.completed) / 1e3:,.0f} kB each",
            )
        )
    if window.exports_cut:
        export_rows.append(("cut at the end", f"{window.exports_cut}"))
    out += [
        "",
        table(export_rows, f"Exports ({clients} clients, median (p10-p90))"),
        "",
        table(
            [
                (
                    "RSS before the clients / at start / at end",
                    f"{mb(window.rss_before)} / {mb(window.rss_start)} / "
                    f"{mb(window.rss_end)}",
                ),
                ("RSS growth", f"{growth / 1e6:+.1f} MB"),
                (
                    "RSS during the window",
                    ", ".join(
                        f"{at / 60:.1f} min {rss / 1e6:.0f}"
                        for at, rss, _ in window.series
                    )
                    + " MB",
                ),
                (
                    "CPU of Home Assistant",
                    f"{cpu:.0f} s ({cpu / window.seconds:.0%} of one core); "
                    f"fleet {window.fleet_cpu:.1f} s",
                ),
            ],
            "Home Assistant process",
        ),
        "",
        table(
            [
                (
                    f"longest stall < {GOAL_STALL_MS} ms",
                    _goal(loop["max_ms"] < GOAL_STALL_MS, f"{loop['max_ms']:.0f} ms"),
                ),
                ("0 samples lost", _goal(lost == 0, str(lost))),
                ("0 exports failed", _goal(failed_exports == 0, str(failed_exports))),
                (
                    "RSS growth < 20 MB",
                    _goal(growth < GOAL_RSS_GROWTH, f"{growth / 1e6:+.1f} MB"),
                ),
            ],
            "Goals (issue 8)",
        ),
    ]
    return "\n".join(out)


def _goal(met: bool, figure: str) -> str:
    return f"{'met' if met else 'NOT met'}: {figure}"


async def main(args: argparse.Namespace) -> None:
    """Set up, soak, stop, count, print."""
    plan = LoadPlan(
        servers=args.servers,
        glances_every=args.glances_every,
        hostile=tuple(h for h in args.hostile.split(",") if h),
        interval=args.interval,
        history_servers=args.servers if args.history else 0,
        labels_line=args.labels_line,
    )
    folder = Path(args.config or tempfile.mkdtemp(prefix="homelab-soak-"))
    print(f"config folder: {folder} (Home Assistant's log: home-assistant.log)")
    print(f"machine load before: {machine_load()}", flush=True)
    try:
        run = LoadRun(plan, folder / "config")
        async with run:
            if plan.hostile:
                await run.arm()
            print(
                f"set up in {sum(run.timings.values()):.0f} s; warming up {args.warmup:.0f} s, "
                f"then measuring {args.minutes:g} min",
                flush=True,
            )
            window = await run.measure(
                args.minutes * 60,
                clients=args.clients,
                export_servers=plan.history_servers,
                warmup=args.warmup,
            )
        accounts = run.account(window)
        print()
        print(report(plan, run, window, accounts, args.clients))
        raw = folder / "soak-result.json"
        raw.write_text(
            json.dumps(
                {
                    "plan": asdict(plan),
                    "timings": run.timings,
                    "window": asdict(window),
                    "accounts": [asdict(a) for a in accounts],
                }
            )
        )
        if args.keep or args.config:
            print(f"\nevery figure, raw: {raw}")
    finally:
        if not args.keep and not args.config:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10, help="measured window")
    parser.add_argument("--servers", type=int, default=50, help="well-behaved servers")
    parser.add_argument("--clients", type=int, default=20, help="export clients")
    parser.add_argument("--interval", type=int, default=10, help="scan interval, s")
    parser.add_argument(
        "--warmup", type=float, default=30, help="seconds before measuring"
    )
    parser.add_argument(
        "--glances-every",
        type=int,
        default=2,
        help="every n-th server is Glances (0: none)",
    )
    parser.add_argument(
        "--labels-line",
        type=int,
        default=200,
        help="bytes per adversarial label line (4194304: one line, the quadratic case)",
    )
    parser.add_argument(
        "--hostile",
        default="drip,labels,flap",
        help="hostile servers, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        help="no generated history (and so no exports)",
    )
    parser.add_argument("--config", help="keep Home Assistant's files in this folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    asyncio.run(main(parser.parse_args()))
