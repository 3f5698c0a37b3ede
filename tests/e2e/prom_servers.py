"""Real Prometheus and VictoriaMetrics on a free 127.0.0.1 port, scraping targets or holding made-up history.

Importable without pytest (the scale benchmark uses it): `require()` imports pytest only to skip.

- `MetricsServer("prometheus" | "victoria-metrics", targets=[...])` scrapes node_exporter targets
  (job "node") every `scrape_interval`; `fleet` serves many made-up nodes from one `FleetExporter`
  through a URL parameter, each with its own `instance` label.
- `openmetrics()` / `exposition_ms()` turn scrapes (instance, time, exposition text) into what
  `promtool tsdb create-blocks-from openmetrics` (Prometheus, before start) and
  `/api/v1/import/prometheus` (VictoriaMetrics, while running) take: the same history in both.
- VictoriaMetrics hides the newest 30 s by default (`-search.latencyOffset`) and caches range
  results: tests start it with a 1 s offset and no cache. Its scrape config parser refuses keys it
  does not know (`evaluation_interval`), so its config holds only what both read.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
import http.server
import json
from pathlib import Path
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

from .agents import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
VICTORIA_METRICS = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
KINDS = ("prometheus", "victoria-metrics")
INSTALL_HINT = {
    "prometheus": "prometheus not installed: apt-get install prometheus",
    "victoria-metrics": "victoria-metrics not installed: apt-get install victoria-metrics",
}


def available(kind: str) -> bool:
    """Whether the server's binaries are here."""
    binaries = (PROMETHEUS, PROMTOOL) if kind == "prometheus" else (VICTORIA_METRICS,)
    return all(Path(b).is_file() for b in binaries)


def require(kind: str) -> None:
    """Skip the calling test, saying what to install, when the server is missing."""
    if not available(kind):
        import pytest

        pytest.skip(INSTALL_HINT[kind])


Scrape = tuple[str, float, str]
"""(instance, seconds since the epoch, exposition text) of one made-up scrape."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _lines(scrapes: Iterable[Scrape], job: str) -> Iterator[tuple[str, str, float]]:
    """(series with instance and job labels, value text, time) of every sample, in time order.

    Exposition lines are `name value` or `name{labels} value`; label text is kept as written
    (both formats escape alike), so the same bytes reach both servers.
    """
    for instance, at, text in sorted(scrapes, key=lambda s: s[1]):
        extra = f'instance="{_escape(instance)}",job="{job}"'
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            series, value = line.rsplit(" ", 1)
            if series.endswith("}"):
                inner = series[series.index("{") + 1 : -1]
                series = f"{series[: series.index('{')]}{{{inner + ',' if inner else ''}{extra}}}"
            else:
                series = f"{series}{{{extra}}}"
            yield series, value, at


def openmetrics(scrapes: Iterable[Scrape], job: str = "node") -> str:
    """The scrapes as OpenMetrics without metadata (all of type unknown), for promtool."""
    body = [f"{series} {value} {at:.3f}" for series, value, at in _lines(scrapes, job)]
    return "\n".join([*body, "# EOF", ""])


def exposition_ms(scrapes: Iterable[Scrape], job: str = "node") -> str:
    """The scrapes as exposition text with millisecond timestamps, for VictoriaMetrics' import."""
    return "".join(
        f"{series} {value} {round(at * 1000)}\n"
        for series, value, at in _lines(scrapes, job)
    )


@dataclass
class MetricsServer:
    """A Prometheus or VictoriaMetrics process on 127.0.0.1:port with its own data folder."""

    kind: str
    targets: Sequence[str] = ()
    """host:port of node_exporters, scraped as job "node"."""
    fleet: tuple[str, int] | None = None
    """(host:port of a FleetExporter, number of nodes): one target per made-up node."""
    scrape_interval: str = "1s"
    scrape_timeout: str = "1s"
    extra_args: Sequence[str] = ()
    """More command-line flags (basic auth)."""
    login: tuple[str, str] | None = None
    """The basic-auth user and password those flags set: start() waits for a query with them."""
    port: int = field(default_factory=free_port)
    data_dir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="homelab-tsdb-"))
    )
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        """The scrape configuration (the part both servers read)."""
        jobs: list[dict[str, Any]] = []
        if self.targets:
            jobs.append(
                {
                    "job_name": "node",
                    "static_configs": [{"targets": list(self.targets)}],
                }
            )
        if self.fleet is not None:
            address, count = self.fleet
            jobs.append(
                {
                    "job_name": "fleet",
                    "static_configs": [
                        {
                            "targets": [address],
                            "labels": {"__param_node": f"node-{i:03d}"},
                        }
                        for i in range(count)
                    ],
                    "relabel_configs": [
                        {
                            "source_labels": ["__param_node"],
                            "target_label": "instance",
                            "replacement": "${1}:9100",
                        }
                    ],
                }
            )
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_timeout,
            },
            "scrape_configs": jobs,
        }
        return json.dumps(config)  # YAML is a superset of JSON

    def command(self, config: Path) -> list[str]:
        """How the server is started."""
        if self.kind == "prometheus":
            return [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                "--storage.tsdb.retention.time=100d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
                *self.extra_args,
            ]
        return [
            VICTORIA_METRICS,
            f"-storageDataPath={self.data_dir / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-promscrape.config={config}",
            "-search.latencyOffset=1s",
            "-search.disableCache",
            "-retentionPeriod=100d",
            "-loggerLevel=ERROR",
            *self.extra_args,
        ]

    def add_blocks(self, scrapes: Iterable[Scrape]) -> None:
        """Prometheus only, before start: write the scrapes as TSDB blocks."""
        assert self.kind == "prometheus" and self.process is None
        source = self.data_dir / "history.om"
        source.write_text(openmetrics(scrapes))
        (self.data_dir / "tsdb").mkdir(exist_ok=True)
        subprocess.run(
            [
                PROMTOOL,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(source),
                str(self.data_dir / "tsdb"),
            ],
            check=True,
            capture_output=True,
        )
        source.unlink()

    def import_scrapes(self, scrapes: Iterable[Scrape]) -> None:
        """VictoriaMetrics only, while running: import the scrapes and make them searchable."""
        assert self.kind == "victoria-metrics" and self.process is not None
        body = exposition_ms(scrapes).encode()
        request = urllib.request.Request(
            self.url + "/api/v1/import/prometheus", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60):
            pass
        with urllib.request.urlopen(self.url + "/internal/force_flush", timeout=30):
            pass

    def load(self, scrapes: Sequence[Scrape]) -> None:
        """Give the server these scrapes as history, whichever kind it is, and leave it running."""
        if self.kind == "prometheus":
            self.add_blocks(scrapes)
            self.start()
        else:
            self.start()
            self.import_scrapes(scrapes)

    def start(self, timeout: float = 60) -> MetricsServer:
        """Start (again, on the same port and data) and wait until its API answers a query."""
        config = self.data_dir / "scrape.yml"
        config.write_text(self.config())
        self.process = subprocess.Popen(
            self.command(config),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"{self.kind} exited with {code}")
            try:
                self.query("vector(1)")
                return self
            except urllib.error.HTTPError:
                # 401 before the login is checked, 503 while the TSDB opens (Prometheus 3).
                time.sleep(0.1)
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"{self.kind} did not answer on {self.url} within {timeout} s"
        )

    def stop(self) -> None:
        """Stop the process; the port and the data stay for start()."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        """Stop and delete the data folder."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The server's own answer to an instant query (to wait for data)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        request = urllib.request.Request(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        )
        if self.login is not None:
            token = base64.b64encode(":".join(self.login).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise ValueError(body)
        return list(body["data"]["result"])

    def wait_for(
        self, promql: str, count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        """Wait until an instant query returns at least count series."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                result = self.query(promql)
            except (urllib.error.URLError, OSError, ValueError):
                result = []
            if len(result) >= count:
                return result
            time.sleep(0.25)
        raise TimeoutError(
            f"{self.kind}: {promql!r} gave {len(result)} series, wanted {count}"
        )


@contextmanager
def running(kind: str, **kwargs: Any) -> Iterator[MetricsServer]:
    """A started server, stopped and deleted on exit."""
    server = MetricsServer(kind, **kwargs)
    try:
        yield server.start()
    finally:
        server.remove()


def fleet_payload(node: int, at: float, *, filler: bool = True) -> str:
    """A node_exporter-like scrape of made-up node `node` at time `at` (counters grow with time).

    The series the integration reads, plus as many others as a small real node sends (about 500
    samples), so the server holds a realistic number of series per node.
    """
    up_for = 86_400.0 + node * 60 + at % 1_000_000
    busy = 0.1 + (node % 10) / 20
    lines = [
        f"node_boot_time_seconds {at - up_for:.0f}",
        f"node_time_seconds {at:.3f}",
        f"node_load1 {0.2 + node % 7 / 4:.2f}",
        f"node_load5 {0.3 + node % 5 / 4:.2f}",
        f"node_load15 {0.4 + node % 3 / 4:.2f}",
        f"node_memory_MemTotal_bytes {8 * 2**30 + node * 2**20}",
        f"node_memory_MemAvailable_bytes {3 * 2**30 + node * 2**21}",
        f'node_uname_info{{machine="x86_64",nodename="host-{node:03d}",release="6.1.0",sysname="Linux"}} 1',
    ]
    for cpu in range(4):
        for mode, share in (
            ("idle", 1 - busy - 0.02),
            ("iowait", 0.02),
            ("user", busy * 0.7),
            ("system", busy * 0.3),
        ):
            lines.append(
                f'node_cpu_seconds_total{{cpu="{cpu}",mode="{mode}"}} {up_for * share:.2f}'
            )
        lines.extend(
            f'node_cpu_seconds_total{{cpu="{cpu}",mode="{mode}"}} 0'
            for mode in ("irq", "nice", "softirq", "steal")
        )
    for mount, device in (("/", "/dev/sda1"), ("/boot/efi", "/dev/sda2")):
        labels = f'device="{device}",fstype="ext4",mountpoint="{mount}"'
        lines += [
            f"node_filesystem_size_bytes{{{labels}}} {100 * 2**30}",
            f"node_filesystem_free_bytes{{{labels}}} {(40 + node % 30) * 2**30}",
            f"node_filesystem_avail_bytes{{{labels}}} {(35 + node % 30) * 2**30}",
        ]
    for device, rate in (
        ("eth0", 50_000 + node * 100),
        ("docker0", 1_000),
        ("veth1a2b", 2_000),
    ):
        lines.append(
            f'node_network_receive_bytes_total{{device="{device}"}} {up_for * rate:.0f}'
        )
        lines.append(
            f'node_network_transmit_bytes_total{{device="{device}"}} {up_for * rate / 10:.0f}'
        )
    lines.append(
        'node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1'
    )
    for sensor in range(1, 6):
        lines.append(
            f'node_hwmon_temp_celsius{{chip="platform_coretemp_0",sensor="temp{sensor}"}} {40 + node % 20 + sensor}'
        )
    # Filler: what a real node sends besides (vmstat, netstat, scrape metadata).
    if filler:
        lines += [f'node_vmstat_filler{{n="{i}"}} {i * up_for:.0f}' for i in range(430)]
    return "\n".join(lines) + "\n"


class FleetExporter:
    """One HTTP server on 127.0.0.1 answering /metrics?node=node-NNN for many made-up nodes."""

    def __init__(self) -> None:
        """Bind to a free port (serve with start())."""

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                name = query.get("node", ["node-000"])[0]
                body = fleet_payload(int(name.rsplit("-", 1)[1]), time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """host:port to scrape."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FleetExporter:
        """Serve in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
