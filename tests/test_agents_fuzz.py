"""Fuzzing both agents through their real clients: a plausible Sample or a typed error, nothing else.

The captured payloads are mutated (cut, lines duplicated or dropped, non-UTF-8 bytes, huge numbers,
NaN and Inf, missing and extra fields, wrong JSON types, deep nesting, HTML instead of the expected
format) and served to the clients through Home Assistant's aiohttp mock, two polls per example so
that rates and boot times are computed too. The example counts are fixed (200; 150 for Glances)
and the runs derandomized, so CI is fast and repeatable; FUZZ_EXAMPLES=2000 runs longer locally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import fields
from functools import cache
import gzip
import json
import math
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.agents import glances as glances_agent
from custom_components.homelab_metrics.agents.base import (
    AgentConfig,
    AgentError,
    AgentInfo,
    Sample,
)
from custom_components.homelab_metrics.agents.glances import (
    INFO_PLUGINS,
    PLUGINS,
    GlancesClient,
)
from custom_components.homelab_metrics.agents.node_exporter import (
    NodeExporterClient,
    build_info,
    build_sample,
    parse_metrics,
)

from .agent_mocks import (
    NODE_EXPORTER_CONTENT_TYPE,
    glances_has,
    glances_payload as read_payload,
)

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
NOW = 1_800_000_000
"""2027-01-15: after the captures' boot times, so that those are kept."""
BOUNDS: dict[str, tuple[float, float]] = {
    "cpu_percent": (0, 100),
    "memory_percent": (0, 100),
    "disk_percent": (0, 100),
    "load_1m": (0, 2**22),
    "load_5m": (0, 2**22),
    "load_15m": (0, 2**22),
    "memory_used_bytes": (0, 2**63 - 1),
    "memory_total_bytes": (0, 2**63 - 1),
    "disk_used_bytes": (0, 2**63 - 1),
    "disk_total_bytes": (0, 2**63 - 1),
    "network_rx_bytes_per_second": (0, 1e12),
    "network_tx_bytes_per_second": (0, 1e12),
    "temperature_celsius": (-40, 125),
    "swap_percent": (0, 100),
}
"""What each figure may be (the rules in readings.py, restated here as the oracle)."""
LISTS = ("filesystems", "interfaces", "updates_pending", "reboot_required")
"""Figures checked one by one in assert_plausible."""


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """Leave the loop's debug mode off here: it records a traceback for every callback,
    which made the fuzz runs five times slower, and the other agent tests keep it on."""


def assert_plausible(sample: Sample) -> None:
    """Every figure missing, or finite, of its type and within its bounds."""
    assert isinstance(sample, Sample)
    assert {f.name for f in fields(Sample)} == {
        *BOUNDS,
        *LISTS,
        "timestamp",
        "boot_time",
    }
    for name, (low, high) in BOUNDS.items():
        value = getattr(sample, name)
        if value is None:
            continue
        assert isinstance(value, int if name.endswith("_bytes") else float), name
        assert not isinstance(value, bool), name
        assert math.isfinite(value), name
        assert low <= value <= high, (name, value)
    for fs in sample.filesystems:
        assert fs.mountpoint
        assert 0 <= fs.used_bytes <= 2**63 - 1
        assert 0 <= fs.free_bytes <= 2**63 - 1
        assert 0 <= fs.percent <= 100
    for traffic in sample.interfaces:
        for rate in (traffic.rx_bytes_per_second, traffic.tx_bytes_per_second):
            assert rate is None or (math.isfinite(rate) and 0 <= rate <= 1e12)
    assert sample.updates_pending is None or 0 <= sample.updates_pending <= 1_000_000
    assert sample.reboot_required in (None, True, False)
    if sample.boot_time is not None:
        assert isinstance(sample.boot_time, int)
        assert 946_684_800 <= sample.boot_time <= sample.timestamp + 86_400
    assert len(sample.filesystems) <= 64
    assert len(sample.interfaces) <= 32
    for name in [fs.mountpoint for fs in sample.filesystems] + [
        i.name for i in sample.interfaces
    ]:
        assert isinstance(name, str)
        assert 0 < len(name) <= 255
        assert name.isprintable()
        assert name == name.strip()


def assert_plausible_info(info: AgentInfo) -> None:
    """What an agent says about itself: short printable text or nothing, and a flag."""
    assert isinstance(info, AgentInfo)
    for text in (info.hostname, info.agent_version, info.os):
        if text is not None:
            assert isinstance(text, str)
            assert 0 < len(text) <= 255
            assert text.isprintable()
            assert text == text.strip()
    assert info.web_ui in (True, False)


# node_exporter --------------------------------------------------------------------------------

NODE_PAYLOADS = [
    (FIXTURES / "node_exporter" / name).read_bytes()
    for name in (
        "metrics_1.txt",
        "metrics_2.txt",
        "amd_server.txt",
        "hwmon.txt",
        "raspberry_pi.txt",
        "nas.txt",
        "metrics_textfile.txt",
    )
]
WANTED = [
    b"node_cpu_seconds_total",
    b"node_memory_MemAvailable_bytes",
    b"node_memory_MemTotal_bytes",
    b"node_memory_SwapTotal_bytes",
    b"node_memory_SwapFree_bytes",
    b"node_filesystem_size_bytes",
    b"node_filesystem_free_bytes",
    b"node_filesystem_avail_bytes",
    b"node_load1",
    b"node_load15",
    b"node_boot_time_seconds",
    b"node_time_seconds",
    b"node_network_receive_bytes_total",
    b"node_network_transmit_bytes_total",
    b"node_hwmon_temp_celsius",
    b"node_hwmon_chip_names",
    b"node_hwmon_sensor_label",
    b"node_thermal_zone_temp",
    b"node_uname_info",
    b"node_os_info",
    b"node_exporter_build_info",
    b"apt_upgrades_pending",
    b"node_reboot_required",
]
ODD_NUMBERS = [
    b"NaN", b"+Inf", b"-Inf", b"1e308", b"-1e308", b"1e999", b"-1e999", b"9" * 400,
    b"-" + b"9" * 400, b"0", b"-0", b"-1", b"5e-324", b"0x10", b"", b"1_000",
    b"18446744073709551616", b"1e12", b"-4e9", b"1.7976931348623157e308",
]  # fmt: skip
ODD_LABEL_VALUES = [
    b"", b"/", b"eth0", b"docker0", b"coretemp", b"k10temp", b"Tctl", b"Tdie", b"idle",
    b"iowait", b'q\\"uote', b"\\\\" * 40, b"\\n", b"\xff\xfe", b"\xc3\xa9", b"x" * 300,
    b"\\", b'"', b"}", b"{", b"=",
]  # fmt: skip
LABEL_NAMES = [b"cpu", b"mode", b"device", b"mountpoint", b"chip", b"chip_name"]
LABEL_NAMES += [b"sensor", b"label", b"type", b"zone", b"fstype", b"nodename"]
LABEL_NAMES += [b"pretty_name", b"version", b"sysname", b"release", b"origin", b"arch"]


@st.composite
def extra_line(draw: st.DrawFn) -> bytes:
    """A line of a wanted series with odd labels and an odd value."""
    labels = draw(
        st.lists(
            st.tuples(st.sampled_from(LABEL_NAMES), st.sampled_from(ODD_LABEL_VALUES)),
            max_size=4,
        )
    )
    body = b",".join(name + b'="' + value + b'"' for name, value in labels)
    value = draw(st.sampled_from(ODD_NUMBERS))
    braces = b"{" + body + b"}" if labels or draw(st.booleans()) else b""
    return draw(st.sampled_from(WANTED)) + braces + b" " + value


def _replace_value(line: bytes, value: bytes) -> bytes:
    head, _, _ = line.rpartition(b" ")
    return (head or line) + b" " + value


@st.composite
def node_exporter_body(draw: st.DrawFn) -> bytes:
    """A captured scrape with a few mutations, or something else altogether."""
    kind = draw(st.sampled_from(["mutated"] * 8 + ["html", "binary", "tokens"]))
    if kind == "html":
        return b"<html><head><title>Node Exporter</title></head><body>metrics</body></html>"
    if kind == "binary":
        return draw(st.binary(max_size=512))
    if kind == "tokens":
        tokens = [*WANTED, b"{", b"}", b'"', b"\\", b"=", b",", b" ", b"\n", b"1"]
        tokens += [*ODD_NUMBERS[:6], *LABEL_NAMES[:4]]
        return b"".join(draw(st.lists(st.sampled_from(tokens), max_size=80)))
    lines = draw(st.sampled_from(NODE_PAYLOADS)).split(b"\n")
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(lines) - 1)) if lines else 0
        action = draw(
            st.sampled_from(
                ["duplicate", "drop", "number", "extra", "bytes", "long", "crlf"]
            )
        )
        if not lines and action != "extra":
            continue
        if action == "duplicate":
            lines[at:at] = [lines[at]] * draw(st.integers(1, 50))
        elif action == "drop":
            del lines[at]
        elif action == "number":
            lines[at] = _replace_value(lines[at], draw(st.sampled_from(ODD_NUMBERS)))
        elif action == "extra":
            lines.insert(at, draw(extra_line()))
        elif action == "bytes":
            cut = draw(st.integers(0, len(lines[at])))
            noise = draw(st.binary(min_size=1, max_size=16))
            lines[at] = lines[at][:cut] + noise + lines[at][cut:]
        elif action == "long":
            lines.insert(
                at, b'node_hwmon_sensor_label{label="' + b"\\\\" * 5000 + b'"} 1'
            )
        else:
            lines[at] += b"\r"
    body = b"\n".join(lines)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


@FUZZ
@given(
    bodies=st.lists(node_exporter_body(), min_size=2, max_size=2),
    elapsed=st.sampled_from([60.0, 1.0, 0.001, 0.0, -30.0, 1e9]),
    encoding=st.sampled_from([None, None, "gzip", "deflate", "br"]),
    content_type=st.sampled_from([NODE_EXPORTER_CONTENT_TYPE] * 4 + ["text/html", ""]),
)
async def test_node_exporter_client_fuzz(
    bodies: list[bytes], elapsed: float, encoding: str | None, content_type: str
) -> None:
    """Two polls of mutated scrapes: plausible Samples or AgentError."""
    config = AgentConfig(host="192.0.2.1", port=9100)
    times = iter([NOW, NOW + elapsed])
    mocker = AiohttpClientMocker()
    session = mocker.create_session(asyncio.get_running_loop())
    client = NodeExporterClient(session, config, clock=lambda: next(times))
    encode: dict[str | None, Callable[[bytes], bytes]] = {
        None: lambda body: body,
        "gzip": gzip.compress,
        "deflate": lambda body: body[:100],  # not zlib at all
        "br": lambda body: body,
    }
    try:
        for body in bodies:
            mocker.clear_requests()
            headers = {"Content-Type": content_type}
            if encoding is not None:
                headers["Content-Encoding"] = encoding
            mocker.get(
                f"{config.base_url}/metrics",
                content=encode[encoding](body),
                headers=headers,
            )
            try:
                sample = await client.async_fetch()
            except AgentError:
                continue
            assert_plausible(sample)
            assert_plausible_info(client.info)
    finally:
        await session.close()


@FUZZ
@given(
    before=node_exporter_body(),
    after=node_exporter_body(),
    elapsed=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_node_exporter_parse_fuzz(
    before: bytes, after: bytes, elapsed: float | None
) -> None:
    """The pure path with any elapsed time: plausible Samples or InvalidResponse."""
    try:
        previous, snap = parse_metrics(before), parse_metrics(after)
    except AgentError:
        return
    assert_plausible(build_sample(snap, previous, timestamp=NOW, elapsed=elapsed))
    assert_plausible(build_sample(snap, None, timestamp=NOW))
    assert_plausible_info(build_info(snap))


# Glances --------------------------------------------------------------------------------------

ODD_JSON: list[Any] = [
    math.nan, math.inf, -math.inf, 10**400, -(10**30), 1e308, -1e308, 2**63, -1, -50,
    150, 0, 0.0, True, None, "ERR", "NA", "", "1e3", [], {}, [1, 2], {"a": 1},
    "3 days, 10:25:20", "1" * 30 + " days, 1:00:00", "999999 days, 0:00:00",
]  # fmt: skip


glances_payload = cache(read_payload)
"""The captured plugins, read once (mutations copy what they change)."""
SENSORS = json.loads((FIXTURES / "glances" / "sensors.json").read_text())
SENSORS_DESKTOP = json.loads(
    (FIXTURES / "glances" / "sensors_desktop.json").read_text()
)


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


ODD_JSON_VALUES = st.one_of(
    st.sampled_from(ODD_JSON), st.builds(_deep, st.integers(1, 60))
)
STATUSES = st.sampled_from([200] * 12 + [400, 404, 500])
RAW = st.sampled_from(["json"] * 6 + ["cut", "bytes", "html", "deep", "digits"])
LIST_ACTIONS = st.sampled_from(["into", "drop", "duplicate"])
DICT_ACTIONS = st.sampled_from(["into", "drop", "extra"])


def _mutate(draw: st.DrawFn, value: Any) -> Any:
    """One change somewhere in a JSON value: a leaf, a key, or the value's whole type."""
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        action = draw(LIST_ACTIONS)
        if action == "drop":
            return value[:index] + value[index + 1 :]
        if action == "duplicate":
            return value[: index + 1] + value[index:]
        return [*value[:index], _mutate(draw, value[index]), *value[index + 1 :]]
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        action = draw(DICT_ACTIONS)
        if action == "drop":
            return {k: v for k, v in value.items() if k != key}
        if action == "extra":
            return {**value, key + "_extra": draw(ODD_JSON_VALUES)}
        return {**value, key: _mutate(draw, value[key])}
    return draw(
        st.one_of(st.sampled_from(ODD_JSON), st.builds(_deep, st.integers(1, 60)))
    )


CPU_ZERO = json.loads((FIXTURES / "glances" / "cpu_zero.json").read_text())
"""Glances' answer when it measured nothing (the client asks again)."""
PAGES = st.sampled_from(
    [
        (404, b'{"detail": "Not Found"}', "application/json"),
        (200, b"<html><head><title>Glances</title></head></html>", "text/html"),
        (401, b"Unauthorized", "text/plain"),
        (200, b"\x1f\x8b" + b"\xff" * 64, "text/html"),
        (500, b"", ""),
    ]
)
"""What / may answer: no web UI, the web UI, a login, garbage, an error."""


@st.composite
def glances_plugin(draw: st.DrawFn, round_: str, plugin: str) -> tuple[int, bytes]:
    """A status and a body for one plugin: its captured JSON mutated, or something else."""
    status = draw(STATUSES)
    value = (
        glances_payload(round_, plugin)
        if glances_has(int(round_[1]), plugin)
        else {"detail": "Unknown plugin"}
    )
    if plugin == "sensors" and draw(st.booleans()):
        value = draw(st.sampled_from([SENSORS, SENSORS_DESKTOP]))
    if plugin == "cpu" and draw(st.integers(0, 3)) == 0:
        value = CPU_ZERO
    for _ in range(draw(st.integers(0, 4))):
        value = _mutate(draw, value)
    body = json.dumps(value).encode()
    raw = draw(RAW)
    if raw == "cut":
        body = body[: draw(st.integers(0, len(body)))]
    elif raw == "bytes":
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:]
    elif raw == "html":
        body = b"<html><body>Not Found</body></html>"
    elif raw == "deep":
        body = b"[" * 5000 + b"]" * 5000
    elif raw == "digits":
        body = b'{"total": ' + b"9" * 5000 + b', "percent": 1e999, "idle": 0}'
    return status, body


@st.composite
def glances_poll(draw: st.DrawFn, round_: str) -> dict[str, tuple[int, bytes]]:
    """Every plugin of one poll, and what Glances says about itself."""
    about = INFO_PLUGINS[int(round_[1])]
    return {plugin: draw(glances_plugin(round_, plugin)) for plugin in PLUGINS + about}


@settings(FUZZ, max_examples=EXAMPLES * 3 // 4)  # eight requests a poll: the slowest
@given(
    version=st.sampled_from([4, 3]),
    data=st.data(),
    elapsed=st.sampled_from([60.0, 4.0, 0.0, -30.0, 1e9, 3600.0]),
    pages=st.lists(PAGES, min_size=2, max_size=2),
)
async def test_glances_client_fuzz(
    version: int,
    data: st.DataObject,
    elapsed: float,
    pages: list[tuple[int, bytes, str]],
) -> None:
    """Two polls of mutated plugins: plausible Samples or AgentError."""
    polls = [
        data.draw(glances_poll(f"v{version}"), label="first"),
        data.draw(glances_poll(f"v{version}_second"), label="second"),
    ]
    config = AgentConfig(host="192.0.2.2", port=61208)
    times = [float(NOW), NOW + elapsed]
    now = [times[0]]
    mocker = AiohttpClientMocker()
    session = mocker.create_session(asyncio.get_running_loop())
    client = GlancesClient(session, config, clock=lambda: now[0])
    other = 3 if version == 4 else 4
    delay, glances_agent.CPU_RETRY_DELAY = glances_agent.CPU_RETRY_DELAY, 0.0
    try:
        for poll, (page_status, page, page_type), when in zip(
            polls, pages, times, strict=True
        ):
            now[0] = when
            mocker.clear_requests()
            for plugin, (status, body) in poll.items():
                mocker.get(
                    f"{config.base_url}/api/{version}/{plugin}",
                    status=status,
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                mocker.get(f"{config.base_url}/api/{other}/{plugin}", status=404)
            mocker.get(
                f"{config.base_url}/",
                status=page_status,
                content=page,
                headers={"Content-Type": page_type},
            )
            try:
                sample = await client.async_fetch()
            except AgentError:
                continue
            assert_plausible(sample)
            assert_plausible_info(client.info)
    finally:
        glances_agent.CPU_RETRY_DELAY = delay
        await session.close()
