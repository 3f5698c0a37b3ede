"""Many fake agents in one process on loopback, for load tests and benchmarks.

Each agent has its own loopback address (127.0.1.1, 127.0.1.2, …; Linux routes all of 127/8 to
loopback) and they all share one port, so every server is a distinct host:port for the config flow.

- node_exporter: `tests/fixtures/node_exporter/metrics_1.txt` replayed with moving CPU seconds,
  network byte counters, `node_time_seconds` and a CPU temperature, gzipped when asked (as the real
  exporter does). The unchanging part is compressed once; a request only compresses the moving tail.
- glances: `/api/4/{cpu,mem,fs,load,uptime,network,sensors}` from `tests/fixtures/glances/`, with a
  non-zero CPU, moving `*_gauge` network counters and a growing uptime; `/api/3/…` is 404.
- hostile ones (node_exporter until `arm()`, so that the config flow can add them):
  `drip` sends headers, then one byte a second and never finishes; `labels` sends a valid scrape
  padded to just under the integration's 4 MiB cap with adversarial `node_hwmon_sensor_label` lines
  full of escaped backslashes; `flap` cycles through a valid scrape, HTTP 500, an HTML page and
  binary garbage.

The fleet counts, per agent, the requests and the polls it answered (with the wall-clock time each
valid answer was completed), which a benchmark compares with the samples Home Assistant stored.

    fleet = await Fleet([AgentSpec("a", "node_exporter"), ...]).start()
    fleet.address("a")          # (host, port)
    await fleet.arm()           # hostile agents turn hostile
    stats = await fleet.stats() # {name: AgentStats}
    fleet.stop()

The fleet runs as its own process (`python -m tests.e2e.fleet --spec FILE`), so its work does not
compete with the benchmark's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
import errno
import json
from pathlib import Path
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Self
import zlib

import aiohttp
from aiohttp import web

from .agents import REPO

FIXTURES = REPO / "tests" / "fixtures"
NODE_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""The integration's cap on an agent's body (agents/base.py); `labels` stays just under it."""
GLANCES_PLUGINS = ("cpu", "mem", "fs", "load", "uptime", "network", "sensors")
BEHAVIOURS = ("normal", "drip", "labels", "flap")
_DYNAMIC = (
    "node_cpu_seconds_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_time_seconds",
)
_HTML = b"<html><head><title>Node Exporter</title></head><body><h1>Node Exporter</h1></body></html>"
_TEMPERATURE_CHIP = (
    "# HELP node_hwmon_chip_names Annotation metric for human-readable chip names\n"
    "# TYPE node_hwmon_chip_names gauge\n"
    'node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1\n'
)


def loopback(index: int) -> str:
    """The loopback address of the index-th agent (room for about 64,000)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


@dataclass(frozen=True)
class AgentSpec:
    """One fake agent: its name, what it pretends to be and how it behaves once armed."""

    name: str
    kind: str = "node_exporter"
    behaviour: str = "normal"

    def __post_init__(self) -> None:
        """Hostile agents are node_exporters."""
        if self.kind not in ("node_exporter", "glances"):
            raise ValueError(f"unknown agent kind {self.kind!r}")
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.behaviour!r}")
        if self.behaviour != "normal" and self.kind != "node_exporter":
            raise ValueError("hostile agents are node_exporters")


@dataclass
class AgentStats:
    """What one agent saw and answered."""

    requests: int = 0
    """Every request, whatever the path."""
    polls: int = 0
    """Requests that start a poll: /metrics, or Glances' /api/4/cpu (asked once per poll)."""
    served: list[float] = field(default_factory=list)
    """time.time() when each valid poll answer was completely written."""
    answers: dict[str, int] = field(default_factory=dict)
    """Poll answers by kind: valid, http_500, html, garbage, drip, labels."""
    drip_seconds: list[float] = field(default_factory=list)
    """How long each dripping answer went on until the client hung up."""

    def served_between(self, start: float, end: float) -> list[float]:
        """Valid answers completed in [start, end)."""
        return [t for t in self.served if start <= t < end]


# -- payloads ----------------------------------------------------------------------------------


def _split_exposition(text: str) -> tuple[str, dict[str, list[tuple[str, float]]]]:
    """The exposition without the moving families, and those families' (labels, value) series."""
    static: list[str] = []
    moving: dict[str, list[tuple[str, float]]] = {name: [] for name in _DYNAMIC}
    for line in text.splitlines(keepends=True):
        if line.startswith(("# HELP ", "# TYPE ")):
            if line.split()[2] in moving:
                continue
        elif not line.startswith("#"):
            name, _, rest = line.partition("{")
            if rest:
                labels, _, value = rest.rpartition("} ")
                labels = "{" + labels + "}"
            else:
                name, _, value = line.partition(" ")
                labels = ""
            if name in moving:
                moving[name].append((labels, float(value.split()[0])))
                continue
        static.append(line)
    return "".join(static) + _TEMPERATURE_CHIP, moving


_NODE_TEXT, _NODE_SERIES = _split_exposition(
    (FIXTURES / "node_exporter" / "metrics_1.txt").read_text()
)
_NODE_STATIC = _NODE_TEXT.encode()
# The static part is compressed once; each answer copies this state and adds its tail.
_NODE_GZIP = zlib.compressobj(1, zlib.DEFLATED, 31)
_NODE_GZIP_HEAD = _NODE_GZIP.compress(_NODE_STATIC) + _NODE_GZIP.flush(
    zlib.Z_SYNC_FLUSH
)


class NodeExporterPayload:
    """A captured scrape whose counters move on every request, like a busy server's."""

    def __init__(self, rng: random.Random) -> None:
        """A server with its own load level and traffic."""
        self._rng = rng
        self._busy = rng.uniform(0.05, 0.6)
        self._rx_rate = rng.uniform(1e4, 5e6)
        self._tx_rate = rng.uniform(1e3, 1e6)
        self._has_temperature = rng.random() < 0.7
        self._last = time.time()
        self._cpu = dict(_NODE_SERIES[_DYNAMIC[0]])
        self._rx = dict(_NODE_SERIES[_DYNAMIC[1]])
        self._tx = dict(_NODE_SERIES[_DYNAMIC[2]])
        self._cpu_busy = 0.0

    def _advance(self, now: float) -> None:
        """Move the counters forward by the time since the previous answer."""
        dt = max(0.0, now - self._last)
        self._last = now
        busy = min(0.98, self._busy * self._rng.uniform(0.6, 1.4))
        self._cpu_busy = busy
        for labels in self._cpu:
            mode = labels.rpartition('mode="')[2].rstrip('"}')
            share = {"idle": 1 - busy, "user": 0.7 * busy, "system": 0.3 * busy}
            self._cpu[labels] += share.get(mode, 0.0) * dt
        for labels in self._rx:
            if 'device="eth0"' in labels:
                self._rx[labels] += self._rx_rate * dt * self._rng.uniform(0.5, 1.5)
                self._tx[labels] += self._tx_rate * dt * self._rng.uniform(0.5, 1.5)

    def tail(self, now: float) -> bytes:
        """The moving families, as of now."""
        self._advance(now)
        lines = [
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
            "# TYPE node_cpu_seconds_total counter\n"
        ]
        lines += [f"node_cpu_seconds_total{k} {v!r}\n" for k, v in self._cpu.items()]
        for name, values in ((_DYNAMIC[1], self._rx), (_DYNAMIC[2], self._tx)):
            lines.append(f"# HELP {name} Network device statistic.\n")
            lines.append(f"# TYPE {name} counter\n")
            lines += [f"{name}{k} {v!r}\n" for k, v in values.items()]
        lines.append(
            "# HELP node_time_seconds System time in seconds since epoch (1970).\n"
            f"# TYPE node_time_seconds gauge\nnode_time_seconds {now!r}\n"
        )
        if self._has_temperature:
            celsius = 40 + 35 * self._cpu_busy + self._rng.uniform(-1, 1)
            lines.append(
                "# HELP node_hwmon_temp_celsius Hardware monitor for temperature (input)\n"
                "# TYPE node_hwmon_temp_celsius gauge\n"
                f'node_hwmon_temp_celsius{{chip="platform_coretemp_0",sensor="temp1"}} {celsius:.1f}\n'
            )
        return "".join(lines).encode()

    def plain(self, now: float) -> bytes:
        """The whole scrape, uncompressed."""
        return _NODE_STATIC + self.tail(now)

    def gzipped(self, now: float) -> bytes:
        """The whole scrape as one gzip stream."""
        tail = _NODE_GZIP.copy()
        return _NODE_GZIP_HEAD + tail.compress(self.tail(now)) + tail.flush()


def adversarial_labels(size: int, line_bytes: int) -> bytes:
    """`size` bytes of node_hwmon_sensor_label lines whose label is escaped backslashes.

    Each line is about `line_bytes` long; one long line instead of many short ones makes a parser
    that searches for the closing quote from every escape quadratic.
    """
    out: list[bytes] = []
    total = n = 0
    while True:
        head = f'node_hwmon_sensor_label{{chip="hostile_{n}",sensor="temp1",label="'.encode()
        room = min(line_bytes, size - total) - len(head) - len(b'"} 1\n')
        if room < 2:
            break
        line = head + b"\\\\" * (room // 2) + b'"} 1\n'
        out.append(line)
        total += len(line)
        n += 1
    return b"".join(out)


_GLANCES = FIXTURES / "glances" / "v4"
_GLANCES_STATIC = {
    "mem": (_GLANCES / "mem.json").read_bytes(),
    "fs": (_GLANCES / "fs.json").read_bytes(),
    "load": (_GLANCES / "load.json").read_bytes(),
    # The capture with CPU temperatures (and an "ERR" reading), not the VM's empty list.
    "sensors": json.dumps(
        json.loads((FIXTURES / "glances" / "sensors.json").read_text())
    ).encode(),
    "status": b'{"version": "4.5.8"}',
}
_GLANCES_CPU = json.loads((_GLANCES / "cpu.json").read_text())
_GLANCES_NETWORK_TEXT = (_GLANCES / "network.json").read_text()


class GlancesPayload:
    """Glances 4 plugin answers with a busy CPU, moving network counters and a growing uptime."""

    def __init__(self, rng: random.Random) -> None:
        """A server with its own load level, traffic and boot time."""
        self._rng = rng
        self._busy = rng.uniform(5, 60)
        self._boot = time.time() - rng.uniform(3600, 90 * 86400)
        self._last = time.time()
        self._network = json.loads(_GLANCES_NETWORK_TEXT)

    def body(self, plugin: str, now: float) -> bytes | None:
        """A plugin's JSON; None for a plugin Glances would not know."""
        if plugin in _GLANCES_STATIC:
            return _GLANCES_STATIC[plugin]
        if plugin == "cpu":
            total = min(99.0, self._busy * self._rng.uniform(0.6, 1.4))
            cpu = dict(_GLANCES_CPU, total=round(total, 1), idle=round(100 - total, 1))
            cpu["user"], cpu["system"] = round(total * 0.7, 1), round(total * 0.3, 1)
            return json.dumps(cpu).encode()
        if plugin == "network":
            dt = max(0.0, now - self._last)
            self._last = now
            for item in self._network:
                if item["interface_name"] == "eth0":
                    item["bytes_recv_gauge"] += int(
                        2e6 * dt * self._rng.uniform(0.5, 1.5)
                    )
                    item["bytes_sent_gauge"] += int(
                        2e5 * dt * self._rng.uniform(0.5, 1.5)
                    )
            return json.dumps(self._network).encode()
        if plugin == "uptime":
            seconds = int(now - self._boot)
            days, rest = divmod(seconds, 86400)
            clock = f"{rest // 3600}:{rest % 3600 // 60:02}:{rest % 60:02}"
            text = f"{days} day{'s' if days != 1 else ''}, {clock}" if days else clock
            return json.dumps(text).encode()
        return None


# -- the server process ------------------------------------------------------------------------


class FakeAgent:
    """One agent: answers requests according to its kind and behaviour, and counts them."""

    def __init__(self, spec: AgentSpec, seed: int, labels: bytes) -> None:
        """Payload generators seeded per agent, so every server looks a little different."""
        self.spec = spec
        self.stats = AgentStats()
        self.armed = False
        self._rng = random.Random(seed)
        self._node = NodeExporterPayload(self._rng)
        self._glances = GlancesPayload(self._rng)
        self._labels = labels
        self._flap = 0

    def _count(self, answer: str) -> None:
        self.stats.answers[answer] = self.stats.answers.get(answer, 0) + 1

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request."""
        self.stats.requests += 1
        if self.spec.kind == "glances":
            return await self._glances_answer(request)
        if request.path != "/metrics":
            return web.Response(body=_HTML, content_type="text/html")
        self.stats.polls += 1
        behaviour = self.spec.behaviour if self.armed else "normal"
        if behaviour == "drip":
            return await self._drip(request)
        if behaviour == "flap":
            self._flap = (self._flap + 1) % 4
            if self._flap == 1:
                self._count("http_500")
                return web.Response(status=500, text="internal error")
            if self._flap == 2:
                self._count("html")
                return web.Response(body=_HTML, content_type="text/html")
            if self._flap == 3:
                self._count("garbage")
                return web.Response(
                    body=self._rng.randbytes(4096),
                    headers={"Content-Type": NODE_CONTENT_TYPE},
                )
        now = time.time()
        if behaviour == "labels":
            body = self._node.plain(now)
            body += self._labels[: max(0, len(self._labels) - len(body))]
            return await self._complete(request, body, {}, "labels")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return await self._complete(
                request, self._node.gzipped(now), {"Content-Encoding": "gzip"}
            )
        return await self._complete(request, self._node.plain(now), {})

    async def _complete(
        self,
        request: web.Request,
        body: bytes,
        headers: dict[str, str],
        answer: str = "valid",
        content_type: str = NODE_CONTENT_TYPE,
    ) -> web.StreamResponse:
        """Write a whole valid poll answer and note when it was done."""
        response = web.StreamResponse(
            headers={
                "Content-Type": content_type,
                "Content-Length": str(len(body)),
                **headers,
            }
        )
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        self.stats.served.append(time.time())
        self._count(answer)
        return response

    async def _glances_answer(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", "4"]:
            return web.Response(status=404, text="Not Found")
        body = self._glances.body(parts[2], time.time())
        if body is None:
            return web.Response(status=400, text="Unknown plugin")
        if parts[2] != "cpu":
            return web.Response(body=body, content_type="application/json")
        # One cpu request per poll: its complete answer stands for the poll.
        self.stats.polls += 1
        return await self._complete(request, body, {}, content_type="application/json")

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        """Headers, then a byte a second until the client gives up."""
        self._count("drip")
        response = web.StreamResponse(headers={"Content-Type": NODE_CONTENT_TYPE})
        response.enable_chunked_encoding()
        await response.prepare(request)
        started = time.monotonic()
        tick = 0
        try:
            while request.transport is not None and not request.transport.is_closing():
                if tick % 10 == 0:
                    await response.write(b"#")
                tick += 1
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass
        self.stats.drip_seconds.append(round(time.monotonic() - started, 2))
        return response


def _bind_all(hosts: list[str], tries: int = 50) -> tuple[int, list[socket.socket]]:
    """Listening sockets on one port shared by every host."""
    for _ in range(tries):
        sockets: list[socket.socket] = []
        port = 0
        try:
            for host in hosts:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(256)
                sock.setblocking(False)
                port = sock.getsockname()[1]
        except OSError as err:
            for sock in sockets:
                sock.close()
            if err.errno != errno.EADDRINUSE:
                raise
            continue
        return port, sockets
    raise OSError(errno.EADDRINUSE, "no port free on every fleet address")


async def serve(specs: list[AgentSpec], labels_line: int, seed: int) -> None:
    """Run the fleet until SIGTERM; print `READY <port> <control port>` once it listens."""
    labels = adversarial_labels(MAX_PAYLOAD_BYTES - 1024, labels_line)
    agents = {
        loopback(i): FakeAgent(spec, seed * 100_003 + i, labels)
        for i, spec in enumerate(specs)
    }
    by_name = {agent.spec.name: agent for agent in agents.values()}

    async def answer(request: web.Request) -> web.StreamResponse:
        host = request.transport.get_extra_info("sockname")[0]  # type: ignore[union-attr]
        return await agents[host].handle(request)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {name: asdict(agent.stats) for name, agent in by_name.items()}
        )

    async def arm(request: web.Request) -> web.Response:
        for agent in agents.values():
            agent.armed = True
        return web.json_response({"armed": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    control = web.Application()
    control.router.add_get("/stats", stats)
    control.router.add_post("/arm", arm)
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    control_runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await control_runner.setup()
    port, sockets = _bind_all(list(agents))
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    control_site = web.TCPSite(control_runner, "127.0.0.1", 0)
    await control_site.start()
    control_port = control_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {port} {control_port}", flush=True)
    await stop.wait()
    await control_runner.cleanup()
    await runner.cleanup()


# -- the handle the tests and benchmarks use ---------------------------------------------------


@dataclass
class Fleet:
    """The fleet process, seen from a test or benchmark."""

    specs: list[AgentSpec]
    labels_line: int = 200
    """Length of each adversarial label line (bytes); one line of 4 MiB is the worst case."""
    seed: int = 0
    port: int = 0
    control_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _spec_file: Path | None = None

    def address(self, name: str) -> tuple[str, int]:
        """Host and port of the named agent."""
        index = next(i for i, spec in enumerate(self.specs) if spec.name == name)
        return loopback(index), self.port

    @property
    def pid(self) -> int:
        """The fleet process's id (to read its CPU time)."""
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 60) -> Self:
        """Start the process and wait until every agent listens."""
        with tempfile.NamedTemporaryFile(
            "w", suffix=".json", prefix="fleet-", delete=False
        ) as handle:
            json.dump([asdict(spec) for spec in self.specs], handle)
        self._spec_file = Path(handle.name)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.e2e.fleet",
                "--spec",
                str(self._spec_file),
                "--labels-line",
                str(self.labels_line),
                "--seed",
                str(self.seed),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                line = await asyncio.to_thread(self.process.stdout.readline)
        except BaseException:
            self.stop()
            raise
        words = line.decode().split()
        if len(words) != 3 or words[0] != "READY":
            self.stop()
            raise RuntimeError(f"fleet did not start: {line!r}")
        self.port, self.control_port = int(words[1]), int(words[2])
        return self

    async def _control(self, method: str, path: str) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, f"http://127.0.0.1:{self.control_port}{path}"
            ) as response,
        ):
            response.raise_for_status()
            return await response.json()

    async def arm(self) -> None:
        """Hostile agents start misbehaving."""
        await self._control("POST", "/arm")

    async def stats(self) -> dict[str, AgentStats]:
        """Every agent's counts so far."""
        raw = await self._control("GET", "/stats")
        return {name: AgentStats(**values) for name, values in raw.items()}

    def stop(self) -> None:
        """End the process and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        if self._spec_file is not None:
            self._spec_file.unlink(missing_ok=True)
            self._spec_file = None


def _main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fleet of fake agents.")
    parser.add_argument("--spec", type=Path, required=True, help="JSON list of agents")
    parser.add_argument("--labels-line", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    specs = [AgentSpec(**item) for item in json.loads(args.spec.read_text())]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(specs, args.labels_line, args.seed))


if __name__ == "__main__":
    _main()
