"""Prometheus source: PromQL built from the direct agent's rules, bounded parsing, typed errors.

Recorded answers (tests/fixtures/prometheus/) come from Prometheus 2.42 and VictoriaMetrics 1.79
scraping a node_exporter and a closed port; the live comparison is in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import pairwise
import json
from pathlib import Path
import re
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    FilesystemUsage,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from custom_components.homelab_metrics.agents.http import Reply
from custom_components.homelab_metrics.agents.prometheus import (
    HOUR,
    MAX_RANGE_POINTS,
    MAX_SERIES,
    OFF_LOOP_BYTES,
    ImportChunk,
    PrometheusClient,
    PrometheusConfig,
    build_hours,
    build_nodes,
    build_poll,
    decode,
    matrix_entries,
    plan_import,
    split_url,
    suggest_rate_window,
    value_of,
    vector_entries,
)
from custom_components.homelab_metrics.agents.promql import (
    FIELDS,
    POLL_BATCHES,
    cpu_chip_regex,
    field_queries,
    history_stat_queries,
    physical_interface_regex,
    poll_queries,
    promql_string,
)
from custom_components.homelab_metrics.agents.readings import is_cpu_chip, is_physical

from .agent_mocks import hung_agent
from .fake_server import serve

FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
KINDS = ("prometheus", "victoria_metrics")
NOW = 1_795_974_270

INTERFACES = [
    "eth0", "enp5s0", "eno1", "wlan0", "wlp2s0", "ens18", "end0", "usb0", "lo", "docker0",
    "veth9a1b2c3", "br0", "br-1234", "vmbr0", "virbr0", "vnet3", "cni0", "flannel.1", "cali12",
    "cilium_host", "weave", "kube-ipvs0", "lxcbr0", "fwbr100i0", "fwln100i0", "fwpr100p0",
    "bond0", "team0", "vlan20", "eth0.100", "macvlan0", "macvtap0", "tun0", "tap0", "wg0",
    "tailscale0", "zt12345", "ifb0", "dummy0", "eth1", "bridge", "lowpan0",
]  # fmt: skip
CHIPS = [
    "coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu0_thermal", "soc_thermal",
    "soc-thermal", "nvme", "nct6798", "acpitz", "amdgpu", "cpufreq", "socket", "thermal",
    "xcoretemp", "k10temp2",
]  # fmt: skip


def recorded(kind: str, name: str) -> bytes:
    """A recorded answer."""
    return (FIXTURES / f"{kind}_{name}.json").read_bytes()


def reply(
    body: bytes | str, status: int = 200, content_type: str = "application/json"
) -> Reply:
    """An HTTP answer as the bounded GET returns it."""
    raw = body.encode() if isinstance(body, str) else body
    return Reply(status=status, content_type=content_type, body=raw)


def answer(result: list[Any], result_type: str = "vector") -> bytes:
    """A successful API answer."""
    return json.dumps(
        {"status": "success", "data": {"resultType": result_type, "result": result}}
    ).encode()


def entry(instance: str, tag: str, value: str) -> dict[str, Any]:
    """One tagged entry of a poll answer."""
    return {"metric": {"instance": instance, "hm": tag}, "value": [NOW, value]}


# --- PromQL from the direct agent's rules -----------------------------------------------------------


def test_interface_regex_is_the_direct_agents_filter() -> None:
    """The PromQL regex leaves out exactly the interfaces is_physical leaves out."""
    pattern = re.compile(physical_interface_regex())
    for name in INTERFACES:
        assert (pattern.fullmatch(name) is None) == is_physical(name), name


def test_cpu_chip_regex_is_the_direct_agents_choice() -> None:
    """The PromQL regex keeps exactly the hwmon chips the direct agent reads as CPU sensors."""
    pattern = re.compile(cpu_chip_regex())
    for name in CHIPS:
        assert (pattern.fullmatch(name) is not None) == is_cpu_chip(name), name


def test_promql_string_escapes() -> None:
    """Quotes and backslashes in an instance cannot end the string literal."""
    assert promql_string('a"b\\c') == '"a\\"b\\\\c"'


def test_every_selector_names_the_instance() -> None:
    """An import's queries read one node's series only, whatever the field."""
    queries = field_queries(60, 'nas:9100"x')
    assert set(queries) == set(FIELDS)
    for query in queries.values():
        selectors = re.findall(r"\b((?:node|apt)_\w+)(\{[^}]*\})?", query)
        assert selectors
        for name, matchers in selectors:
            assert 'instance="nas:9100\\"x"' in matchers, (name, query)
    assert "[60s]" in queries["cpu_percent"]


def test_poll_query_count_does_not_grow_with_nodes() -> None:
    """One query per batch; a small selection filters on the server, a large one does not."""
    assert len(poll_queries(60)) == len(POLL_BATCHES) == 4
    asked = sorted(part for group in POLL_BATCHES for part in group)
    assert asked == sorted(("up", *FIELDS))  # every field once
    assert len(poll_queries(60, batches=[["up"], ["cpu_percent", "boot_time"]])) == 2
    few = poll_queries(60, instances=["a:9100", "b.lan:9100"])
    assert 'instance=~"a:9100|b\\\\.lan:9100"' in few[0]
    many = poll_queries(60, instances=[f"n{i}:9100" for i in range(500)])
    assert many == poll_queries(60)
    assert all("(?!)" in query for query in poll_queries(60, instances=[]))


def test_history_stat_queries() -> None:
    """avg, min, max and count of each field over [1h] at the step."""
    queries = history_stat_queries(240, 60, "a:9100", ["cpu_percent", "load_1m"])
    assert sorted(queries) == sorted(
        f"{f}:{s}"
        for f in ("cpu_percent", "load_1m")
        for s in ("avg", "min", "max", "count")
    )
    assert queries["load_1m:max"].startswith("max_over_time((")
    assert queries["load_1m:max"].endswith("[1h:60s])")


def test_suggest_rate_window() -> None:
    """The scan interval, but four scrapes at least; 60 s scrapes assumed when unknown."""
    assert suggest_rate_window(60, 15.0) == 60
    assert suggest_rate_window(10, 15.0) == 60
    assert suggest_rate_window(60, 30.0) == 120
    assert suggest_rate_window(60, None) == 240
    assert suggest_rate_window(300, float("nan")) == 300


@pytest.mark.parametrize(
    ("url", "host", "port", "ssl", "prefix"),
    [
        ("http://192.168.1.5:9090", "192.168.1.5", 9090, False, ""),
        (
            "https://metrics.example.org/prometheus/",
            "metrics.example.org",
            443,
            True,
            "/prometheus",
        ),
        ("http://[fd00::5]:8428", "fd00::5", 8428, False, ""),
        ("http://vm.lan", "vm.lan", 80, False, ""),
    ],
)
def test_split_url(url: str, host: str, port: int, ssl: bool, prefix: str) -> None:
    """Address and path prefix of a server URL."""
    address, got_prefix = split_url(url)
    assert (address.host, address.port, address.ssl, got_prefix) == (
        host,
        port,
        ssl,
        prefix,
    )


@pytest.mark.parametrize(
    "url", ["ftp://x", "http://", "http://u:p@x:9090", "http://x:9090/?a=1", "x:9090"]
)
def test_split_url_refuses(url: str) -> None:
    """Unusable URLs are a ValueError (the config flow's form error)."""
    with pytest.raises(ValueError):
        split_url(url)


def test_token_and_user_exclude_each_other() -> None:
    """Bearer token and basic auth together are refused at construction."""
    with pytest.raises(ValueError):
        PrometheusClient(
            None,  # type: ignore[arg-type]
            PrometheusConfig(url="http://x:9090", token="t", username="u"),
        )


def test_plan_import_covers_everything_once() -> None:
    """Raw chunks back to the first whole hour of the last 7 days, hours before, no gap or overlap."""
    now = 1_795_974_270
    plan = plan_import(now=now, step=60, oldest=None)
    raw = [c for c in plan if c.tier == "raw"]
    hourly = [c for c in plan if c.tier == "hourly"]
    assert plan == raw + hourly  # newest first
    assert raw[0].end == now and raw[-1].start % HOUR == 0
    assert now - 7 * 86_400 <= raw[-1].start < now - 7 * 86_400 + HOUR
    assert hourly[0].end == raw[-1].start
    assert hourly[-1].start == (now - 90 * 86_400) // HOUR * HOUR
    for newer, older in pairwise(plan):
        assert older.end == newer.start
    assert all((c.end - c.start) // 60 <= MAX_RANGE_POINTS for c in raw)
    assert all(c.start % HOUR == 0 and c.end % HOUR == 0 for c in hourly)
    assert plan == plan_import(now=now, step=60, oldest=None)


def test_plan_import_starts_at_the_oldest_data() -> None:
    """A node with two days of data gets only raw chunks from that hour on."""
    now = 1_795_974_270
    oldest = now - 2 * 86_400 + 1234
    plan = plan_import(now=now, step=30, oldest=oldest)
    assert {c.tier for c in plan} == {"raw"}
    assert plan[-1].start == oldest // HOUR * HOUR
    assert plan_import(now=now, step=60, oldest=now + 2 * HOUR) == []


# --- Parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_poll(kind: str) -> None:
    """A real answer: the live node with every figure a VM has, the closed port offline."""
    entries = vector_entries(decode(reply(recorded(kind, "poll")), "query"))
    nodes = build_poll(entries, NOW)
    assert nodes["127.0.0.1:19101"] is None
    sample = nodes["127.0.0.1:19100"]
    assert sample is not None and sample.timestamp == NOW
    # Recorded before swap, updates and reboot were polled; a VM has no sensors.
    for field in FIELDS[: FIELDS.index("boot_time") + 1]:
        if field != "temperature_celsius":
            assert getattr(sample, field) is not None, field
    assert sample.temperature_celsius is None
    assert isinstance(sample.memory_total_bytes, int) and isinstance(
        sample.boot_time, int
    )


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_discovery(kind: str) -> None:
    """A real answer: instance, job, host name, up and scrape interval."""
    nodes = build_nodes(
        vector_entries(decode(reply(recorded(kind, "discovery")), "query"))
    )
    live, down = nodes
    assert (live.instance, live.job, live.nodename, live.up) == (
        "127.0.0.1:19100",
        "node",
        "vm",
        True,
    )
    assert live.scrape_interval is not None and 0.9 < live.scrape_interval < 1.2
    assert (down.instance, down.nodename, down.up) == ("127.0.0.1:19101", None, False)


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_range(kind: str) -> None:
    """A real range answer: one Sample per step, oldest first."""
    from custom_components.homelab_metrics.agents.prometheus import build_range_samples

    samples = build_range_samples(
        matrix_entries(decode(reply(recorded(kind, "range")), "q"))
    )
    assert len(samples) >= 5
    stamps = [s.timestamp for s in samples]
    assert stamps == sorted(stamps) and len({b - a for a, b in pairwise(stamps)}) == 1
    assert all(s.memory_percent is not None for s in samples)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1.5),
        ("-0", 0.0),
        ("NaN", None),
        ("+Inf", None),
        ("-Inf", None),
        ("1e999", None),
        ("abc", None),
        ("1" * 41, None),
        (1.5, None),
        (None, None),
    ],
)
def test_value_of(text: Any, expected: float | None) -> None:
    """Values are strings; only finite numbers of a sane length count."""
    assert value_of(text) == expected


@pytest.mark.parametrize(
    ("body", "status", "content_type"),
    [
        (b"<html><body>Grafana</body></html>", 200, "text/html"),
        (b"404 page not found\n", 404, "text/plain"),
        (b'{"status": "success", "data": ', 200, "application/json"),
        (b"[1, 2, 3]", 200, "application/json"),
        (b'{"status": "maybe"}', 200, "application/json"),
        (
            b'{"status": "success", "data": {"v": ' + b"9" * 5000 + b"}}",
            200,
            "application/json",
        ),
        (b'{"status": "success", "data": {"v": NaN}}', 200, "application/json"),
        (b'{"status": "success", "data": {"v": Infinity}}', 200, "application/json"),
        (b"[" * 100_000 + b"]" * 100_000, 200, "application/json"),
        (b'{"status": "success", "data": {}}', 500, "application/json"),
    ],
)
def test_decode_refuses(body: bytes, status: int, content_type: str) -> None:
    """Anything but a Prometheus API answer is InvalidResponse, never another exception."""
    with pytest.raises(InvalidResponse):
        decode(reply(body, status, content_type), "query")


def test_decode_error_status_carries_the_reason() -> None:
    """Prometheus' own error answer (bad_data) names its reason."""
    body = (
        b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": '
        b'1:6: parse error: expected type range vector in call to function \\"rate\\", got instant vector"}'
    )
    with pytest.raises(InvalidResponse, match="bad_data: invalid parameter"):
        decode(reply(body, 400), "query")


@pytest.mark.parametrize("status", [502, 503, 504])
def test_decode_unavailable_is_cannot_connect(status: int) -> None:
    """A proxy or an overloaded server saying it cannot answer now is an outage."""
    with pytest.raises(CannotConnect):
        decode(reply(b"Service Unavailable", status, "text/plain"), "query")


def test_too_many_series() -> None:
    """More series than the cap is refused before any is turned into a Sample."""
    data = {"resultType": "vector", "result": [{}] * (MAX_SERIES + 1)}
    with pytest.raises(InvalidResponse, match="series"):
        vector_entries(data)
    with pytest.raises(InvalidResponse):
        vector_entries({"resultType": "matrix", "result": []})
    with pytest.raises(InvalidResponse):
        matrix_entries({"resultType": "matrix", "result": "x"})


def test_poll_entries_are_checked_one_by_one() -> None:
    """Malformed entries are skipped; implausible figures missing; a node up without figures absent."""
    data = {
        "resultType": "vector",
        "result": [
            entry("a:9100", "up", "1"),
            entry("a:9100", "cpu_percent", "150"),
            entry("a:9100", "memory_percent", "42.5"),
            entry("a:9100", "network_rx_bytes_per_second", "-5"),
            entry("a:9100", "boot_time", "0"),
            entry("a:9100", "memory_total_bytes", "8e300"),
            entry("a:9100", "load_1m", "NaN"),
            entry("a:9100", "unknown_field", "1"),
            {"metric": {"instance": 5, "hm": "up"}, "value": [NOW, "1"]},
            {"metric": {"instance": "x" * 2000, "hm": "up"}, "value": [NOW, "1"]},
            {"metric": "oops", "value": [NOW, "1"]},
            {"metric": {"instance": "b:9100", "hm": "up"}, "value": [NOW]},
            "not an object",
            entry("other-exporter:8080", "up", "1"),
            entry("down:9100", "up", "0"),
            entry("down:9100", "memory_percent", "10"),
            entry("no-up:9100", "load_1m", "0.5"),
        ],
    }
    nodes = build_poll(vector_entries(data), NOW)
    assert nodes == {
        "a:9100": Sample(timestamp=NOW, memory_percent=42.5),
        "down:9100": None,
        "no-up:9100": Sample(timestamp=NOW, load_1m=0.5),
    }


def test_swap_updates_and_reboot() -> None:
    """Swap in percent, the updates as a whole count, the reboot flag only from 0 or 1."""
    data = {
        "resultType": "vector",
        "result": [
            entry("a:9100", "swap_percent", "12.5"),
            entry("a:9100", "updates_pending", "7"),
            entry("a:9100", "reboot_required", "1"),
            entry("b:9100", "updates_pending", "-1"),
            entry("b:9100", "reboot_required", "0"),
            entry("c:9100", "reboot_required", "0.5"),
            entry("c:9100", "swap_percent", "101"),
        ],
    }
    nodes = build_poll(vector_entries(data), NOW)
    assert nodes == {
        "a:9100": Sample(
            timestamp=NOW, swap_percent=12.5, updates_pending=7, reboot_required=True
        ),
        "b:9100": Sample(timestamp=NOW, reboot_required=False),
        "c:9100": Sample(timestamp=NOW),
    }
    a = nodes["a:9100"]
    assert a is not None and isinstance(a.updates_pending, int)


def test_root_filesystem_for_disk_free() -> None:
    """The root disk's used bytes, Avail and percentage make the root filesystem ("Disk free")."""
    data = {
        "resultType": "vector",
        "result": [
            entry("a:9100", "disk_used_bytes", "1000"),
            entry("a:9100", "disk_free_bytes", "3000"),
            entry("a:9100", "disk_percent", "25"),
            entry("b:9100", "disk_free_bytes", "3000"),
            entry("c:9100", "disk_used_bytes", "1000"),
            entry("c:9100", "disk_free_bytes", "-1"),
            entry("c:9100", "disk_percent", "25"),
        ],
    }
    nodes = build_poll(vector_entries(data), NOW)
    a, b, c = nodes["a:9100"], nodes["b:9100"], nodes["c:9100"]
    assert a is not None and b is not None and c is not None
    assert a.filesystems == (
        FilesystemUsage(mountpoint="/", used_bytes=1000, free_bytes=3000, percent=25.0),
    )
    assert b.filesystems == () and c.filesystems == ()  # incomplete, implausible


def test_swap_query_gives_no_figure_without_swap() -> None:
    """A server without swap (SwapTotal 0) has no swap figure rather than 0 % or NaN."""
    assert "node_memory_SwapTotal_bytes > 0" in field_queries(60)["swap_percent"]


def test_node_os_and_version() -> None:
    """os-release's pretty name, else its name and version, else the kernel; the exporter's version."""

    def tagged(instance: str, tag: str, **labels: str) -> dict[str, Any]:
        return {
            "metric": {"instance": instance, "job": "node", "hm": tag, **labels},
            "value": [NOW, "1"],
        }

    data = {
        "resultType": "vector",
        "result": [
            tagged("a:9100", "uname", nodename="a", sysname="Linux", release="6.1"),
            tagged("a:9100", "os", pretty_name="Debian GNU/Linux 12 (bookworm)"),
            tagged("a:9100", "build", version="1.5.0"),
            tagged("b:9100", "uname", nodename="b", sysname="Linux", release="6.8"),
            tagged("b:9100", "os", name="Alpine Linux", version="3.20"),
            tagged("c:9100", "uname", nodename="c", sysname="Linux", release="5.10"),
            tagged("c:9100", "build", version="x" * 300),
            tagged("d:9100", "node"),
        ],
    }
    nodes = {n.instance: n for n in build_nodes(vector_entries(data))}
    assert (nodes["a:9100"].os, nodes["a:9100"].version) == (
        "Debian GNU/Linux 12 (bookworm)",
        "1.5.0",
    )
    assert nodes["b:9100"].os == "Alpine Linux 3.20"
    assert (nodes["c:9100"].os, nodes["c:9100"].version) == ("Linux 5.10", None)
    assert (nodes["d:9100"].os, nodes["d:9100"].nodename) == (None, None)


def test_hours_from_stats() -> None:
    """Buckets at the hour's start; a field needs all four stats; samples is the largest count."""
    hour = 1_795_971_600
    at = hour + HOUR - 1

    def series(tag: str, value: str) -> dict[str, Any]:
        return {"metric": {"hm": tag}, "values": [[at, value]]}

    data = {
        "resultType": "matrix",
        "result": [
            series("cpu_percent:avg", "20"),
            series("cpu_percent:min", "5"),
            series("cpu_percent:max", "80"),
            series("cpu_percent:count", "60"),
            series("load_1m:avg", "1"),
            series("load_1m:min", "0.5"),
            series("load_1m:max", "2"),
            series("load_1m:count", "58"),
            series("memory_percent:avg", "30"),  # no min/max/count: left out
            series("cpu_percent", "1"),
            series("bogus:avg", "1"),
            {
                "metric": {"hm": "cpu_percent:avg"},
                "values": [["x", "1"], [at + 1, "1"]],
            },
        ],
    }
    (bucket,) = build_hours(matrix_entries(data), offset=HOUR - 1)
    assert bucket.timestamp == hour and bucket.samples == 60
    assert set(bucket.fields) == {"cpu_percent", "load_1m"}
    stats = bucket.fields["cpu_percent"]
    assert (stats.avg, stats.min, stats.max, stats.count) == (20, 5, 80, 60)


def test_too_many_points() -> None:
    """A range answer with more points than the cap is refused."""
    values = [[NOW + i, "1"] for i in range(1000)]
    data = {"resultType": "matrix", "result": [{"metric": {}, "values": values}] * 401}
    with pytest.raises(InvalidResponse, match="points"):
        matrix_entries(data)


# --- The client over HTTP (a real server on loopback) ----------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def routes(
    answers: dict[str, bytes | int], seen: list[web.Request] | None = None
) -> Handler:
    """A fake server answering by path suffix: recorded bodies, or a bare status."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if seen is not None:
            seen.append(request)
        for suffix, body in answers.items():
            if request.path.endswith(suffix):
                if isinstance(body, int):
                    return web.Response(status=body, text="no")
                return web.Response(body=body, content_type="application/json")
        return web.Response(status=404, text="404 page not found")

    return handler


async def client_on(
    port: int, **kw: Any
) -> tuple[aiohttp.ClientSession, PrometheusClient]:
    """A session and a client for a fake server."""
    session = aiohttp.ClientSession()
    config = PrometheusConfig(
        url=f"http://127.0.0.1:{port}{kw.pop('prefix', '')}", timeout=2, **kw
    )
    return session, PrometheusClient(session, config, clock=lambda: float(NOW))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.usefixtures("socket_enabled")
async def test_client_against_recorded_answers(kind: str) -> None:
    """Test, discovery and poll through HTTP, with the path prefix and a bearer token."""
    seen: list[web.Request] = []
    answers: dict[str, bytes | int] = {"/status/buildinfo": recorded(kind, "buildinfo")}
    async with serve(routes(answers, seen)) as port:
        session, client = await client_on(port, prefix="/prom/", token="s3cret")
        async with session:
            info = await client.async_test()
            answers["/query"] = recorded(kind, "discovery")
            nodes = await client.async_discover()
            answers["/query"] = recorded(kind, "poll")
            polled = await client.async_poll(60)
            chosen = await client.async_poll(60, instances=["127.0.0.1:19100"])
    assert info.buildinfo and (info.version is not None) == (kind == "prometheus")
    assert [n.instance for n in nodes] == ["127.0.0.1:19100", "127.0.0.1:19101"]
    assert set(polled) == {"127.0.0.1:19100", "127.0.0.1:19101"}
    assert set(chosen) == {"127.0.0.1:19100"}
    assert all(r.path.startswith("/prom/api/v1/") for r in seen)
    assert all(r.headers["Authorization"] == "Bearer s3cret" for r in seen)
    assert "instance=~" in seen[-1].query["query"]


@pytest.mark.usefixtures("socket_enabled")
async def test_buildinfo_missing_falls_back_to_a_query() -> None:
    """A server without buildinfo (Thanos, Mimir) is recognised by a query."""
    answers: dict[str, bytes | int] = {
        "/query": answer([{"metric": {}, "value": [NOW, "1"]}])
    }
    async with serve(routes(answers)) as port:
        session, client = await client_on(port)
        async with session:
            info = await client.async_test()
    assert info == type(info)(version=None, buildinfo=False)


@pytest.mark.usefixtures("socket_enabled")
async def test_something_else_on_the_port() -> None:
    """A web page answering every path is InvalidResponse, buildinfo and query alike."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html>Grafana</html>", content_type="text/html")

    async with serve(page) as port:
        session, client = await client_on(port)
        async with session:
            with pytest.raises(InvalidResponse, match="text/html"):
                await client.async_test()


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.usefixtures("socket_enabled")
async def test_refused_credentials(status: int) -> None:
    """401 and 403 are InvalidAuth, even on buildinfo (no fallback that hides them)."""
    async with serve(routes({"/status/buildinfo": status, "/query": status})) as port:
        session, client = await client_on(port, username="u", password="p")
        async with session:
            with pytest.raises(InvalidAuth):
                await client.async_test()
            with pytest.raises(InvalidAuth):
                await client.async_poll(60)


async def test_a_failed_query_leaves_no_request_behind() -> None:
    """A poll that fails on one query returns only once the other query has ended too.

    Left running, the other request would outlive the poll (on Python 3.14 a server closed under
    it raised in the event loop).
    """
    ended: list[str] = []

    async def query(promql: str, at: float | None, **_: Any) -> list[Any]:
        if promql == first:
            raise InvalidAuth("refused")
        await asyncio.sleep(0.05)
        ended.append(promql)
        return []

    async with aiohttp.ClientSession() as session:
        client = PrometheusClient(
            session, PrometheusConfig(url="http://127.0.0.1:9"), clock=lambda: NOW
        )
        first, *others = poll_queries(60)
        client.async_query = query  # type: ignore[method-assign]
        with pytest.raises(InvalidAuth):
            await client.async_poll(60)
    assert sorted(ended) == sorted(others)


@pytest.mark.usefixtures("socket_enabled")
async def test_unreachable_and_hung() -> None:
    """Connection refused and a server that never answers are CannotConnect."""
    async with serve(routes({})) as port:
        pass  # the port is closed again
    session, client = await client_on(port)
    async with session:
        with pytest.raises(CannotConnect):
            await client.async_poll(60)
    async with hung_agent() as hung:
        session, client = await client_on(hung)
        async with session:
            with pytest.raises(CannotConnect, match="no answer"):
                await client.async_discover()


@pytest.mark.usefixtures("socket_enabled")
async def test_big_answers_leave_the_loop() -> None:
    """A poll answer over OFF_LOOP_BYTES gives the same Samples (built in the executor)."""
    result = [entry(f"n{i:04d}:9100", "memory_percent", "42.5") for i in range(2000)]
    body = answer(result)
    assert len(body) > OFF_LOOP_BYTES
    async with serve(routes({"/query": body})) as port:
        session, client = await client_on(port)
        async with session:
            polled = await client.async_poll(60)
    assert len(polled) == 2000
    assert polled["n0001:9100"] == Sample(timestamp=NOW, memory_percent=42.5)


@pytest.mark.usefixtures("socket_enabled")
async def test_import_chunks_over_http() -> None:
    """Raw chunks ask for start..last step inside the half-open chunk; hourly at each hour's end."""
    seen: list[web.Request] = []
    hour = 1_795_971_600
    raw = answer(
        [
            {
                "metric": {"hm": "cpu_percent"},
                "values": [[hour, "10"], [hour + 60, "NaN"]],
            },
            {"metric": {"hm": "memory_percent"}, "values": [[hour + 60, "50"]]},
        ],
        "matrix",
    )
    async with serve(routes({"/query_range": raw}, seen)) as port:
        session, client = await client_on(port)
        async with session:
            rows = await client.async_import_chunk(
                "a:9100",
                ImportChunk(tier="raw", start=hour, end=hour + 120),
                step=60,
                window=240,
                fields=FIELDS,
            )
            assert (
                await client.async_import_chunk(
                    "a:9100",
                    ImportChunk(tier="raw", start=hour, end=hour),
                    step=60,
                    window=240,
                    fields=FIELDS,
                )
                == []
            )
            await client.async_import_chunk(
                "a:9100",
                ImportChunk(tier="hourly", start=hour - 2 * HOUR, end=hour),
                step=60,
                window=240,
                fields=["cpu_percent"],
            )
    assert rows == [
        Sample(timestamp=hour, cpu_percent=10.0),
        Sample(timestamp=hour + 60, memory_percent=50.0),
    ]
    raw_request, hourly_request = seen
    assert (
        raw_request.query["start"],
        raw_request.query["end"],
        raw_request.query["step"],
    ) == (str(hour), str(hour + 60), "60s")
    assert (
        hourly_request.query["start"],
        hourly_request.query["end"],
        hourly_request.query["step"],
    ) == (str(hour - 2 * HOUR + HOUR - 1), str(hour - HOUR + HOUR - 1), "3600s")
    assert 'instance="a:9100"' in hourly_request.query["query"]
