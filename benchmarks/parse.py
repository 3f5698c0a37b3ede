"""Parse cost of agent payloads, normal and adversarial, and the longest event-loop step of a poll.

Usage: .venv/bin/python benchmarks/parse.py [--runs 15] [--polls 5] [--section normal|adversarial|loop]

normal: node_exporter's targeted scanner (parse_metrics + build_sample, everything a poll does
with the body) against prometheus_client's full parser, on real payloads.
adversarial: bodies of up to 4 MiB (the body cap) that anyone answering on the agent's port may
send, the issue's four first, parsed or refused; then the most work one step does on the loop.
loop: the real clients poll an agent in another process serving each body, while a probe task
measures the longest step of the event loop, in wall time and in the loop thread's CPU time.
Times are medians with min-max; CPU time is what the work costs, wall time adds what else the
machine did meanwhile. Prints figures, asserts nothing; the machine is shared, so run it a few times.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import multiprocessing
from multiprocessing.queues import Queue
from pathlib import Path
import statistics
import time
import zlib

import _path
from aiohttp import ClientSession, web
from prometheus_client.parser import text_string_to_metric_families

from custom_components.homelab_metrics.agents.base import AgentConfig, AgentError
from custom_components.homelab_metrics.agents.glances import (
    INFO_PLUGINS,
    MAX_PLUGIN_BYTES,
    PLUGINS,
    GlancesClient,
    decode_json,
)
from custom_components.homelab_metrics.agents.http import INFLATE_ON_LOOP_BYTES
from custom_components.homelab_metrics.agents.node_exporter import (
    MAX_DEVICES_READ,
    MAX_ESCAPES,
    MAX_MOUNTS_READ,
    MAX_SERIES,
    MAX_SERIES_BYTES,
    SLICE_BYTES,
    STEP_BYTES,
    NodeExporterClient,
    build_sample,
    parse_lines,
    parse_metrics,
    wanted_lines,
)
from tests.fake_server import probe_loop_steps

MiB = 1 << 20
FIXTURES = _path.REPO / "tests/fixtures"
PAYLOADS = {
    "captured (Debian 1.5.0, small VM)": FIXTURES / "node_exporter/metrics_1.txt",
    "captured with the apt textfile collector": FIXTURES
    / "node_exporter/metrics_textfile.txt",
    "hand-written NAS (mounts, swap, info, apt)": FIXTURES / "node_exporter/nas.txt",
    "upstream e2e fixture": _path.REPO.parent
    / "shared/fixtures/node_exporter_upstream_e2e_output.txt",
}
CPU_LINE = b'node_cpu_seconds_total{cpu="12",mode="idle"} 123456.78\n'


def mount_lines(count: int) -> bytes:
    """Size, free and avail lines of count distinct real mounts."""
    return b"".join(
        b'node_filesystem_%s_bytes{device="/dev/disk%d",fstype="ext4",'
        b'mountpoint="/srv/disk%05d"} 1e12\n' % (stat, i, i)
        for i in range(count)
        for stat in (b"size", b"free", b"avail")
    )


def device_lines(count: int) -> bytes:
    """Receive and transmit lines of count distinct physical interfaces."""
    return b"".join(
        b'node_network_%s_bytes_total{device="eth%d"} 123456789\n' % (way, i)
        for i in range(count)
        for way in (b"receive", b"transmit")
    )


def timings(func: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU times of func() in milliseconds.

    CPU time (of the whole process, executor threads included) is what the work costs; wall time
    also holds what other processes on a shared machine took meanwhile.
    """
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        func()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def spread(times: list[float]) -> str:
    """Median and min-max of a list of milliseconds."""
    return f"{statistics.median(times):8.2f} [{min(times):.2f}-{max(times):.2f}]"


def costs(func: Callable[[], object], runs: int) -> str:
    """Wall and CPU time of func(), medians with min-max."""
    wall, cpu = timings(func, runs)
    return f"{spread(wall):>26} {spread(cpu):>26}"


HEADER = f"{'wall ms: median [min-max]':>26} {'cpu ms: median [min-max]':>26}"


def normal(runs: int) -> None:
    """The scanner against prometheus_client on real payloads."""
    print(f"## normal payloads, {runs} runs")
    print(f"{'payload':52} {'kB':>6} {'samples':>8}")
    for name, path in PAYLOADS.items():
        if not Path(path).exists():
            print(f"{name:52} missing: {path}")
            continue
        body = Path(path).read_bytes()
        text = body.decode()
        samples = sum(
            len(family.samples) for family in text_string_to_metric_families(text)
        )
        print(f"{name:52} {len(body) / 1000:6.1f} {samples:8d}")
        print(f"{'':4}{'':48} {HEADER}")
        full = costs(lambda text=text: list(text_string_to_metric_families(text)), runs)
        print(f"{'':4}{'prometheus_client full parse':48} {full}")
        scan = costs(
            lambda body=body: build_sample(parse_metrics(body), None, timestamp=0), runs
        )
        print(f"{'':4}{'scanner: parse_metrics + build_sample':48} {scan}")


def escaped_lines(size: int) -> bytes:
    """Lines of label values holding as many escapes as a line may, up to size bytes."""
    line = (
        b'node_hwmon_sensor_label{chip="c",label="'
        + b"\\\\" * (MAX_ESCAPES // 2)
        + b"x" * 300
        + b'",sensor="t"} 1\n'
    )
    return line * (size // len(line))


def adversarial_bodies() -> dict[str, bytes]:
    """The bodies of the adversarial section and the loop probe, none over the 4 MiB cap."""
    head = b'node_hwmon_sensor_label{label="'
    escapes = head + b"\\\\" * (MiB - 64) + b'"} 1\n'
    labels = b",".join([b'a="v"'] * 400_000)
    return {
        # The four.
        "escapes in label values (4 MiB)": escaped_lines(2 * MiB) + escapes,
        "one line with 400k labels (2.3 MiB)": b"node_hwmon_sensor_label{"
        + labels
        + b"} 1\n",
        "one 4 MiB line": head + b"x" * (4 * MiB - 64) + b'"} 1\n',
        "4 MiB of ordinary wanted lines": CPU_LINE * (4 * MiB // len(CPU_LINE)),
        # The most that is parsed rather than refused, and a body of tiny lines.
        f"{MAX_SERIES:,} wanted lines (series cap)": CPU_LINE * MAX_SERIES,
        f"{MAX_SERIES_BYTES // 1024} KiB of escaped lines (byte cap)": escaped_lines(
            MAX_SERIES_BYTES
        ),
        f"{MAX_SERIES // 3:,} distinct mounts (series cap)": mount_lines(
            MAX_SERIES // 3
        ),
        f"{MAX_SERIES // 2:,} distinct interfaces (series cap)": device_lines(
            MAX_SERIES // 2
        ),
        "4 MiB of two-byte unwanted lines": b"a\n" * (2 * MiB),
    }


def gzip_bomb(mib: int) -> bytes:
    """Gzip of mib MiB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MiB)
    return b"".join(compressor.compress(zeros) for _ in range(mib)) + compressor.flush()


def _parse_or_refuse(body: bytes) -> str:
    try:
        parse_metrics(body)
    except AgentError:
        return "refused"
    return "parsed"


def adversarial(runs: int) -> None:
    """Each adversarial body parsed or refused, and the most work one loop step does."""
    print(f"\n## adversarial bodies, parsed or refused ({runs} runs)")
    print(f"{'body':52} {HEADER}  outcome")
    for name, body in adversarial_bodies().items():
        outcome = _parse_or_refuse(body)
        print(f"{name:52} {costs(lambda b=body: _parse_or_refuse(b), runs)}  {outcome}")
    bomb = gzip_bomb(1024)

    def inflate() -> None:
        zlib.decompressobj(31).decompress(bomb, 4 * MiB + 1)

    print(
        f"{'gzip bomb (1 MiB to 1 GiB) inflated to the cap':52} {costs(inflate, runs)}"
    )

    print(f"\n## the most work one step does on the event loop ({runs} runs)")
    print(f"{'work':52} {HEADER}")
    lines = wanted_lines(CPU_LINE * (STEP_BYTES // (len(CPU_LINE) + 100)))
    escaped = wanted_lines(escaped_lines(STEP_BYTES * 370 // 470))
    unwanted = b"node_x 1\n" * (SLICE_BYTES // 9)
    ints = b"[" + b"1," * (MAX_PLUGIN_BYTES // 2 - 2) + b"1]"
    mounts = parse_metrics(mount_lines(MAX_SERIES // 3))
    devices = parse_metrics(device_lines(MAX_SERIES // 2))
    rows: dict[str, Callable[[], object]] = {
        f"scan one slice: {SLICE_BYTES // 1024} KiB of node_ lines": lambda: wanted_lines(
            unwanted
        ),
        f"parse one step: {len(lines)} wanted lines": lambda: build_sample(
            parse_lines(lines), None, timestamp=0
        ),
        f"parse one step: {len(escaped)} escaped lines": lambda: parse_lines(escaped),
        f"inflate {INFLATE_ON_LOOP_BYTES // 1024} KiB of a bomb": lambda: zlib.decompressobj(
            31
        ).decompress(bomb, INFLATE_ON_LOOP_BYTES),
        f"decode {MAX_PLUGIN_BYTES // 1024} KiB of JSON ints (a plugin at the cap)": lambda: (
            decode_json(ints)
        ),
        f"build_sample: {MAX_MOUNTS_READ} mounts read (the cap)": lambda: build_sample(
            mounts, None, timestamp=0
        ),
        f"build_sample: rates of {MAX_DEVICES_READ} devices (the cap)": lambda: build_sample(
            devices, devices, timestamp=0, elapsed=10
        ),
    }
    for name, func in rows.items():
        print(f"{name:52} {costs(func, runs)}")


def _loop_bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    """What the agent process serves at /metrics, by name: body and headers."""
    plain = {"Content-Type": "text/plain; version=0.0.4"}
    bodies = {
        f"normal: {name}": (Path(path).read_bytes(), plain)
        for name, path in PAYLOADS.items()
        if Path(path).exists()
    }
    for name, body in adversarial_bodies().items():
        bodies[name] = (body, plain)
    bodies["gzip bomb: 1 MiB inflating to 1 GiB"] = (
        gzip_bomb(1024),
        {**plain, "Content-Encoding": "gzip"},
    )
    return bodies


def _glances_answers() -> dict[str, Callable[[str], bytes]]:
    """What the agent process serves at /api/4/<plugin>, by name."""
    captured = {
        plugin: (FIXTURES / "glances/v4" / f"{plugin}.json").read_bytes()
        for plugin in (*PLUGINS, *INFO_PLUGINS[4])
    }
    ints = b"[" + b"1," * (MAX_PLUGIN_BYTES // 2 - 2) + b"1]"
    return {
        "Glances 4: captured plugins": lambda plugin: captured.get(plugin, b"{}"),
        f"Glances 4: every plugin {MAX_PLUGIN_BYTES // 1024} KiB of ints": lambda _: ints,
        "Glances 4: every plugin nested 30k deep": lambda _: b"[" * 30_000,
    }


def _agent_process(ports: Queue[int]) -> None:
    """An agent in its own process, so that serving the bodies is not on the probed loop.

    GET /select/<n> chooses what /metrics and /api/4/<plugin> answer next.
    """
    bodies = list(_loop_bodies().values())
    answers = list(_glances_answers().values())
    chosen = [0]

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if path.startswith("/select/"):
            chosen[0] = int(path.rsplit("/", 1)[1])
            return web.Response(text="ok")
        if path == "/metrics":
            body, headers = bodies[chosen[0]]
            return web.Response(body=body, headers=headers)
        answer = answers[chosen[0]](path.rsplit("/", 1)[1])
        return web.Response(body=answer, content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(run())


async def _poll(client: NodeExporterClient | GlancesClient) -> str:
    try:
        await client.async_fetch()
    except AgentError as err:
        return type(err).__name__
    return "Sample"


async def loop_probe(polls: int) -> None:
    """Real clients against an agent process: the longest loop step while each body is polled."""
    print(
        f"\n## longest event-loop step of a poll (ms: median [min-max] of {polls} polls)"
    )
    print(
        f"{'body':40} {'longest step, wall':>24} {'longest step, cpu':>24}"
        f" {'poll took, wall':>24}  outcome"
    )
    context = multiprocessing.get_context("spawn")
    ports: Queue[int] = context.Queue()
    agent = context.Process(target=_agent_process, args=(ports,), daemon=True)
    agent.start()
    try:
        port = await asyncio.get_running_loop().run_in_executor(
            None, ports.get, True, 60
        )
        config = AgentConfig(host="127.0.0.1", port=port, timeout=60)
        rows: list[tuple[int, str, type[NodeExporterClient | GlancesClient]]] = [
            *((i, name, NodeExporterClient) for i, name in enumerate(_loop_bodies())),
            *((i, name, GlancesClient) for i, name in enumerate(_glances_answers())),
        ]
        async with ClientSession() as session:
            for select, name, kind in rows:
                async with session.get(f"{config.base_url}/select/{select}") as reply:
                    await reply.read()
                longest, longest_cpu, took, outcome = [], [], [], ""
                for _ in range(polls):
                    client = kind(session, config)
                    async with probe_loop_steps() as steps:
                        start = time.perf_counter()
                        outcome = await _poll(client)
                        took.append((time.perf_counter() - start) * 1000)
                    longest.append(steps.longest * 1000)
                    longest_cpu.append(steps.longest_cpu * 1000)
                print(
                    f"{name:40} {spread(longest):>24} {spread(longest_cpu):>24}"
                    f" {spread(took):>24}  {outcome}"
                )
    finally:
        agent.kill()
        agent.join()


def main() -> None:
    """Print the sections asked for (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--section", choices=["normal", "adversarial", "loop"])
    args = parser.parse_args()
    if args.section in (None, "normal"):
        normal(args.runs)
    if args.section in (None, "adversarial"):
        adversarial(args.runs)
    if args.section in (None, "loop"):
        asyncio.run(loop_probe(args.polls))


if __name__ == "__main__":
    main()
